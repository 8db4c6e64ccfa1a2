"""The train/validation/test split parameters every dataset-writing algorithm shares."""
from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
)

DATASET_LAYOUT_HELP = (
    "<b>Folder</b>: images/*.tif (float32 wrapped phase, radians, NaN = no data, georeferenced), "
    "masks/*.tif (uint8, 1 = mining subsidence), labels/*.txt (YOLO: '0 xc yc w h' normalised, one "
    "line per basin), annotations.json (COCO instances with polygon masks, one image entry per "
    "image), split.json (train/val/test lists with their seed) and dataset.json (how it was made). "
    "The three label formats come from the same instance masks. The split is reproducible (its "
    "seed is recorded) and keeps related images (rotations, neighbouring tiles) on the same side. "
    "The folder appears only when complete; it must be new or empty."
)


def add_split_parameters(algorithm) -> None:
    number = QgsProcessingParameterNumber
    for parameter in (
        number("VALIDATION_PERCENT", "Validation share (%)", type=number.Double, minValue=0.0, maxValue=100.0,
               defaultValue=15.0),
        number("TEST_PERCENT", "Test share (%)", type=number.Double, minValue=0.0, maxValue=100.0,
               defaultValue=15.0),
    ):
        parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        algorithm.addParameter(parameter)


def add_dataset_folder_parameters(algorithm) -> None:
    """What every algorithm writing a dataset folder ends with: colour images, split, folder, counts."""
    algorithm.addParameter(QgsProcessingParameterBoolean("RGB", "Also write rasmph-style colour images",
                                                         defaultValue=False))
    add_split_parameters(algorithm)
    algorithm.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Dataset folder"))
    algorithm.addOutput(QgsProcessingOutputNumber("IMAGES", "Images written"))
    algorithm.addOutput(QgsProcessingOutputNumber("INSTANCES", "Labelled basins"))


def split_fractions(algorithm, parameters, context) -> dict:
    validation = algorithm.parameterAsDouble(parameters, "VALIDATION_PERCENT", context)
    test = algorithm.parameterAsDouble(parameters, "TEST_PERCENT", context)
    if validation + test >= 100.0:
        raise QgsProcessingException(
            f"VALIDATION_PERCENT + TEST_PERCENT = {validation + test:g}%: nothing would be left to train on.")
    return {"train": (100.0 - validation - test) / 100.0, "val": validation / 100.0, "test": test / 100.0}
