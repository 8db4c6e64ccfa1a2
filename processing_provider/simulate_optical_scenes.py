"""minesar:simulateopticalscenes: GF-2-like scenes with mine patches, confusers and imperfect masks."""
import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRange,
)

from ..core.simulation.optical import OpticalRecipe
from ..core.simulation.optical_scenes import simulate_optical_scenes
from ..ui.styles import style_patches_by_kind
from .base import MineSARAlgorithm, progress_for, style_when_loaded, user_errors
from .dataset_parameters import add_split_parameters, split_fractions


class SimulateOpticalScenesAlgorithm(MineSARAlgorithm):
    _name = "simulateopticalscenes"
    _display_name = "Simulate GF-2 scenes with mine patches"
    _group_id = "training"
    _help = (
        "Writes COUNT simulated 4-band (B, G, R, NIR) uint16 scenes of SIZE × SIZE pixels at PIXEL_SIZE "
        "(GF-2: about 1 m) of an arid mining district, for training and testing the mine-patch steps.\n\n"
        "Mine patches of the four kinds seed 003 describes — gray-black coal gangue dumps; grayish-"
        "yellow to reddish-brown iron-ore pits with clumpy texture; whitish, smooth clay pits; bright, "
        "messy, terraced sandstone pits — as irregular polygons of PATCH_AREA (m²). With CONFUSERS, "
        "what the paper's network mistook for mines: mountain shadows (a low sun over the terrain), "
        "wind-farm pads and roads, buildings, and also cropland and water.\n\n"
        "<b>Folder</b>: images/ (the scenes), masks/ (truth: 1 coal gangue, 2 iron ore, 3 clay, "
        "4 sandstone), preliminary/ (a deliberately imperfect first mask: wobbly edges, holes, "
        "fragments, false blobs, a missed small patch), landcover/ (ESA WorldCover codes at 10 m; "
        "mines are bare/sparse 60), dem/ (terrain heights in metres on the image grid), patches.gpkg (truth "
        "polygons with their kind; confusers), split.json and dataset.json (with each scene's sun azimuth and "
        "elevation, for the DEM's terrain shadows). The same SEED gives the same scenes.\n\n"
        "OUTPUT_PATCHES and OUTPUT_CONFUSERS are the two layers of patches.gpkg (for chaining in models); "
        "run from the toolbox they are loaded, outlined by kind."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        number = QgsProcessingParameterNumber
        self.addParameter(number("COUNT", "Number of scenes", type=number.Integer, minValue=1, defaultValue=10))
        self.addParameter(number("SIZE", "Scene size (pixels)", type=number.Integer, minValue=64, maxValue=4096,
                                 defaultValue=1024))
        self.addParameter(number("PIXEL_SIZE", "Pixel size (m)", type=number.Double, minValue=0.1, maxValue=10.0,
                                 defaultValue=1.0))
        self.addParameter(number("SEED", "Random seed", type=number.Integer, minValue=0, defaultValue=1))
        # Optional: QGIS 3.22 rejects a missing range instead of taking its default.
        self.addParameter(QgsProcessingParameterRange("PATCHES", "Mine patches per scene (min, max)",
                                                      type=number.Integer, defaultValue="3,8", optional=True))
        self.addParameter(QgsProcessingParameterRange("PATCH_AREA", "Patch area (m², min, max)",
                                                      type=number.Double, defaultValue="200,200000", optional=True))
        self.addParameter(QgsProcessingParameterBoolean("CONFUSERS", "Add confusers (pads, roads, buildings, "
                                                        "cropland, water)", defaultValue=True))
        relief = number("RELIEF", "Terrain relief (m)", type=number.Double, minValue=0.0, defaultValue=120.0)
        relief.setFlags(relief.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(relief)
        add_split_parameters(self)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Scenes folder"))
        self.addOutput(QgsProcessingOutputNumber("SCENES", "Scenes written"))
        self.addOutput(QgsProcessingOutputNumber("PATCHES_WRITTEN", "Mine patches"))
        self.addOutput(QgsProcessingOutputVectorLayer("OUTPUT_PATCHES", "Mine patches (truth)",
                                                      QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputVectorLayer("OUTPUT_CONFUSERS", "Confusers", QgsProcessing.TypeVectorPolygon))

    def _range(self, parameters, name, context, cast):
        values = self.parameterAsRange(parameters, name, context) or [
            float(v) for v in str(self.parameterDefinition(name).defaultValue()).split(",")]
        if len(values) != 2:
            raise QgsProcessingException(f"{name}: give a minimum and a maximum.")
        return cast(values[0]), cast(values[1])

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        size = self.parameterAsInt(parameters, "SIZE", context)
        recipe = OpticalRecipe(
            rows=size, cols=size,
            pixel_size_m=self.parameterAsDouble(parameters, "PIXEL_SIZE", context),
            patch_count=self._range(parameters, "PATCHES", context, int),
            patch_area_m2=self._range(parameters, "PATCH_AREA", context, float),
            relief_m=self.parameterAsDouble(parameters, "RELIEF", context),
            confusers=self.parameterAsBool(parameters, "CONFUSERS", context),
        )
        folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
        with user_errors():
            description = simulate_optical_scenes(
                folder, recipe, self.parameterAsInt(parameters, "COUNT", context),
                self.parameterAsInt(parameters, "SEED", context),
                split_fractions(self, parameters, context), progress_for(feedback))
        feedback.pushInfo(f"{len(description['scenes'])} scenes, {description['patches']} mine patches in {folder}.")
        vectors = os.path.join(folder, "patches.gpkg")
        layers = {"OUTPUT_PATCHES": (f"{vectors}|layername=patches", "simulated mine patches"),
                  "OUTPUT_CONFUSERS": (f"{vectors}|layername=confusers", "simulated confusers")}
        # A folder output loads nothing by itself; the truth polygons are what a user looks at.
        for output, (uri, name) in layers.items():
            context.addLayerToLoadOnCompletion(uri, QgsProcessingContext.LayerDetails(name, context.project(), output))
            style_when_loaded(context, uri, name, style_patches_by_kind)
        return {"OUTPUT_FOLDER": folder, "SCENES": len(description["scenes"]),
                "PATCHES_WRITTEN": description["patches"],
                **{output: uri for output, (uri, _) in layers.items()}}
