"""minesar:simulatescene: the scene mode of the simulator — one large interferogram and its truth."""
from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterCrs,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterNumber,
    QgsProcessingParameterPoint,
    QgsProcessingParameterRasterDestination,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.simulation.generate import simulate_scene
from ..ui.styles import style_coherence, style_truth_polygons, style_wrapped_phase
from .base import MineSARAlgorithm, progress_for, qgis_geometry, style_when_loaded, user_errors
from .simulation_parameters import (RECIPE_HELP, add_recipe_parameters, auxiliary_paths, recipe_from,
                                    simulation_grid)


def truth_fields() -> QgsFields:
    fields = QgsFields()
    fields.append(QgsField("id", QVariant.Int))
    fields.append(QgsField("label", QVariant.String, len=16))
    fields.append(QgsField("kind", QVariant.String, len=16))
    fields.append(QgsField("depth_mm", QVariant.Double))
    fields.append(QgsField("area_m2", QVariant.Double))
    return fields


class SimulateSceneAlgorithm(MineSARAlgorithm):
    _name = "simulatescene"
    _display_name = "Simulate interferogram scene (with truth polygons)"
    _group_id = "training"
    _help = (
        "The scene mode of the simulator: one large wrapped interferogram (WIDTH × HEIGHT pixels, "
        "georeferenced at ORIGIN in CRS) and its truth as a polygon layer — mining basins "
        "(label 'mining') and non-mining signals (label 'background') with their kind, depth and "
        "area — for demonstrations, detection tests and benchmarks. Optionally the coherence and the "
        "true mining LOS displacement (mm) as rasters.\n\n" + RECIPE_HELP
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        number = QgsProcessingParameterNumber
        self.addParameter(number("WIDTH", "Width (pixels)", type=number.Integer, minValue=32, defaultValue=2048))
        self.addParameter(number("HEIGHT", "Height (pixels)", type=number.Integer, minValue=32, defaultValue=2048))
        add_recipe_parameters(self, "5,12")
        # Optional: QGIS 3.22 rejects a missing CRS instead of taking its default.
        self.addParameter(QgsProcessingParameterCrs("CRS", "Coordinate reference system (default UTM 49N)",
                                                    defaultValue="EPSG:32649", optional=True))
        self.addParameter(QgsProcessingParameterPoint("ORIGIN", "Top-left corner (default 300000, 4100000)",
                                                      optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Simulated interferogram"))
        self.addParameter(QgsProcessingParameterFeatureSink("OUTPUT_TRUTH", "Truth polygons",
                                                            type=QgsProcessing.TypeVectorPolygon))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT_COHERENCE", "Coherence", optional=True,
                                                                  createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_DEFORMATION", "True mining LOS displacement (mm)", optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber("BASINS_WRITTEN", "Mining basins"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        recipe = recipe_from(self, parameters, context, self.parameterAsInt(parameters, "HEIGHT", context),
                             self.parameterAsInt(parameters, "WIDTH", context))
        gacos, dem = auxiliary_paths(self, parameters, context)
        crs, origin = simulation_grid(self, parameters, context)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        coherence = self.parameterAsOutputLayer(parameters, "OUTPUT_COHERENCE", context) or None
        deformation = self.parameterAsOutputLayer(parameters, "OUTPUT_DEFORMATION", context) or None
        with user_errors():
            _, truth, _, _ = simulate_scene(
                output, recipe, self.parameterAsInt(parameters, "SEED", context), origin=origin, crs_wkt=crs.toWkt(),
                gacos_paths=gacos, dem_path=dem, coherence_path=coherence, deformation_path=deformation,
                progress=progress_for(feedback).span(0.0, 0.95),
            )
        sink, sink_id = self.create_sink(parameters, "OUTPUT_TRUTH", context, truth_fields(),
                                             QgsWkbTypes.MultiPolygon, crs)
        for item in truth:
            feature = QgsFeature(truth_fields())
            geometry = qgis_geometry(item.geometry)
            geometry.convertToMultiType()
            feature.setGeometry(geometry)
            feature.setAttributes([item.identifier, item.label, item.kind, float(item.depth_mm),
                                   float(item.geometry.area)])
            sink.addFeature(feature, QgsFeatureSink.FastInsert)
        mining = sum(1 for item in truth if item.label == "mining")
        feedback.pushInfo(f"{mining} mining basins and {len(truth) - mining} non-mining signals.")
        style_when_loaded(context, output, "simulated interferogram", style_wrapped_phase)
        style_when_loaded(context, coherence, "simulated coherence", style_coherence)
        style_when_loaded(context, sink_id, "simulation truth", style_truth_polygons)
        result = {"OUTPUT": output, "OUTPUT_TRUTH": sink_id, "BASINS_WRITTEN": mining}
        if coherence:
            result["OUTPUT_COHERENCE"] = coherence
        if deformation:
            result["OUTPUT_DEFORMATION"] = deformation
        return result
