"""minesar:simulateinterferograms: a training dataset of simulated wrapped interferograms."""
from qgis.core import QgsProcessingParameterNumber

from ..core.simulation.generate import simulate_dataset
from .base import MineSARAlgorithm, progress_for, user_errors
from .dataset_parameters import DATASET_LAYOUT_HELP, add_dataset_folder_parameters, split_fractions
from .simulation_parameters import RECIPE_HELP, add_recipe_parameters, auxiliary_paths, recipe_from


class SimulateInterferogramsAlgorithm(MineSARAlgorithm):
    _name = "simulateinterferograms"
    _display_name = "Simulate interferograms (training dataset)"
    _group_id = "training"
    _help = (
        "Writes COUNT simulated wrapped interferograms of SIZE × SIZE pixels with their labels into "
        "OUTPUT_FOLDER, ready for training and evaluating the MineSAR models.\n\n"
        + RECIPE_HELP + "\n\n" + DATASET_LAYOUT_HELP
        + "\n\nRGB also writes rasmph-style colour images (brightness from coherence) into rgb/."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        number = QgsProcessingParameterNumber
        self.addParameter(number("COUNT", "Number of images", type=number.Integer, minValue=1, defaultValue=100))
        self.addParameter(number("SIZE", "Image size (pixels)", type=number.Integer, minValue=32, maxValue=8192,
                                 defaultValue=256))
        add_recipe_parameters(self, "1,4")
        add_dataset_folder_parameters(self)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        size = self.parameterAsInt(parameters, "SIZE", context)
        recipe = recipe_from(self, parameters, context, size, size)
        gacos, dem = auxiliary_paths(self, parameters, context)
        folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
        with user_errors():
            description = simulate_dataset(
                folder,
                recipe,
                count=self.parameterAsInt(parameters, "COUNT", context),
                seed=self.parameterAsInt(parameters, "SEED", context),
                rgb=self.parameterAsBool(parameters, "RGB", context),
                gacos_paths=gacos,
                dem_path=dem,
                split_fractions=split_fractions(self, parameters, context),
                progress=progress_for(feedback),
            )
        counts = description["split_counts"]
        feedback.pushInfo(
            f"{description['images']} images, {description['instances']} labelled basins in {folder} "
            f"(train {counts['train']}, validation {counts['val']}, test {counts['test']})."
        )
        return {"OUTPUT_FOLDER": folder, "IMAGES": description["images"], "INSTANCES": description["instances"]}
