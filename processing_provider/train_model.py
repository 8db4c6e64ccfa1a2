"""minesar:trainmodel: train a registered detector on a dataset folder into a checkpoint file."""

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..models.registry import ARCHITECTURES
from .base import MineSARAlgorithm, progress_for, require_torch, user_errors

ARCHITECTURE_NAMES = tuple(ARCHITECTURES)


def _command(name, parameters) -> str:
    """How this run can be repeated: stored in the checkpoint's metadata."""
    shown = {key: value for key, value in parameters.items() if not key.startswith("_")}
    return f"processing.run('minesar:{name}', {shown!r})"


class TrainModelAlgorithm(MineSARAlgorithm):
    _name = "trainmodel"
    _display_name = "Train subsidence detector"
    _group_id = "detection"
    _help = (
        "Trains a detector (ARCHITECTURE: maskrcnn = Mask R-CNN ResNet50-FPN of seed 001, maskrcnn_light "
        "= MobileNetV3-FPN, lighter and quick enough for a CPU, yolobasin = Light YOLO-Basin of seed 002) "
        "on the train split of DATASET, a folder written by 'Simulate interferograms' or 'Build training "
        "dataset'. Images are read as wrapped phase and fed as cos/sin (0 at no data); random flips and "
        "quarter turns augment them. AdamW with a linear warm-up and a cosine decay of LEARNING_RATE over "
        "EPOCHS; the progress bar moves every iteration and the log shows the loss.\n\n"
        "OUTPUT is a .pt checkpoint holding the weights and what is needed to run them (architecture, "
        "input bands, normalisation, tile size, classes, training data, command, final loss); it opens "
        "without executing code. Cancel stops training and still writes the weights reached so far.\n\n"
        "DEVICE: auto (CUDA GPU when present, else CPU), cpu, cuda or cuda:N. Without pretrained weights "
        "(none are downloaded) expect tens of epochs over thousands of images for useful results."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        number = QgsProcessingParameterNumber
        self.addParameter(QgsProcessingParameterFile("DATASET", "Dataset folder",
                                                     behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterEnum(
            "ARCHITECTURE", "Architecture", options=list(ARCHITECTURE_NAMES), defaultValue="maskrcnn_light",
            usesStaticStrings=True))
        self.addParameter(number("EPOCHS", "Epochs", type=number.Integer, minValue=1, defaultValue=20))
        self.addParameter(number("BATCH_SIZE", "Batch size", type=number.Integer, minValue=1, defaultValue=4))
        self.addParameter(number("LEARNING_RATE", "Learning rate", type=number.Double, minValue=1e-8,
                                 maxValue=1.0, defaultValue=1e-3))
        self.addParameter(QgsProcessingParameterString("DEVICE", "Device (auto, cpu, cuda, cuda:N)",
                                                       defaultValue="auto"))
        seed = number("SEED", "Random seed", type=number.Integer, minValue=0, defaultValue=0)
        seed.setFlags(seed.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(seed)
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Checkpoint",
                                                                fileFilter="PyTorch checkpoint (*.pt)"))
        self.addOutput(QgsProcessingOutputNumber("FINAL_LOSS", "Final training loss"))
        self.addOutput(QgsProcessingOutputNumber("ITERATIONS", "Iterations run"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        require_torch("Training")
        from ..models.data import open_dataset
        from ..models.device import resolve_device
        from ..models.registry import build_detector
        from ..models.training import seed_everything, train
        folder = self.parameterAsFile(parameters, "DATASET", context)
        architecture = self.parameterAsEnumString(parameters, "ARCHITECTURE", context) or "maskrcnn_light"
        output = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        seed = self.parameterAsInt(parameters, "SEED", context)
        with user_errors():
            device = resolve_device(self.parameterAsString(parameters, "DEVICE", context))
            index = open_dataset(folder)
            tiles = index.images("train")
            if not tiles:
                raise QgsProcessingException(f"{folder}: the train split has no images.")
            feedback.pushInfo(f"Training {architecture} on {len(tiles)} images of {folder} on {device}.")
            seed_everything(seed)
            model = build_detector(architecture, **self._size_config(architecture, tiles[0]))
            result = train(
                model, folder,
                epochs=self.parameterAsInt(parameters, "EPOCHS", context),
                batch_size=self.parameterAsInt(parameters, "BATCH_SIZE", context),
                learning_rate=self.parameterAsDouble(parameters, "LEARNING_RATE", context),
                checkpoint_path=output, device=device, seed=seed, progress=progress_for(feedback),
                metadata={"command": _command(self._name, parameters)},
            )
        if result.cancelled:
            feedback.pushWarning(f"Cancelled after {result.iterations} iterations; the weights reached so far "
                                 f"are in {output}.")
        feedback.pushInfo(f"{result.iterations} iterations in {result.wall_time_s:.1f} s, final loss "
                          f"{result.final_loss:.4f}: {output}")
        return {"OUTPUT": output, "FINAL_LOSS": result.final_loss, "ITERATIONS": result.iterations}

    @staticmethod
    def _size_config(architecture, image) -> dict:
        """The tile size goes into the network's config where the network takes one."""
        defaults = ARCHITECTURES[architecture][2]
        if architecture.startswith("maskrcnn") or "tile_size" in defaults:
            return {"tile_size": int(max(image["width"], image["height"]))}
        return {}
