"""minesar:estimatesegmentationparameters: shape, compactness and scale as seed 003 chose them."""
from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.segmentation.pipeline import estimate_parameters
from .base import MineSARAlgorithm, progress_for, user_errors
from .patch_parameters import add_band_parameters, add_tile_parameter, bands_and_weights, image_layer, numbers
from .patch_parameters import shapely_polygons, write_report

GRID_TEXT = ",".join(f"{0.1 * i:.1f}" for i in range(1, 10))


class EstimateSegmentationParametersAlgorithm(MineSARAlgorithm):
    _name = "estimatesegmentationparameters"
    _display_name = "Estimate segmentation parameters"
    _group_id = "patches"
    _help = (
        "Estimates the multiresolution segmentation parameters as seed 003 §2.2.3 does, on the part of the image "
        "around the REFERENCE patches (their extent plus MARGIN map units).\n\n"
        "1. Shape and compactness: a grid search over SHAPES × COMPACTNESSES (0.1 … 0.9 each) at GRID_SCALE "
        "(the paper's 50). For each combination, the segments lying more than half inside a reference patch "
        "are merged, and the relative area difference |A_merged − A_ref| / A_ref is averaged over the patches; "
        "the smallest wins.\n"
        "2. Scale: ESP2. Segments are grown bottom-up through SCALES (each level merging the one below); the "
        "local variance LV (mean standard deviation of the segments) and its rate of change ROC = (LV_L − "
        "LV_L−1) / LV_L−1 · 100 are computed per level. Peaks of ROC are the candidate scales; the one whose "
        "segments fill the reference patches best (the same area difference) is chosen.\n\n"
        "Outputs: SCALE, SHAPE, COMPACTNESS, and optionally a JSON REPORT with the grid and the ESP2 curve "
        "(scale, LV, ROC, segments, area difference)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Image"))
        self.addParameter(QgsProcessingParameterFeatureSource("REFERENCE", "Reference mine patches",
                                                              [QgsProcessing.TypeVectorPolygon]))
        add_band_parameters(self)
        number = QgsProcessingParameterNumber
        for parameter in (
            QgsProcessingParameterString("SHAPES", "Shape values to try", GRID_TEXT),
            QgsProcessingParameterString("COMPACTNESSES", "Compactness values to try", GRID_TEXT),
            number("GRID_SCALE", "Scale during the grid search", number.Double, 50.0, minValue=0.01),
            QgsProcessingParameterString("SCALES", "Scales for ESP2 (comma-separated)",
                                         ",".join(str(s) for s in range(10, 160, 10))),
            number("MARGIN", "Margin around the reference patches (map units)", number.Double, 50.0, minValue=0.0),
        ):
            if parameter.name() in ("GRID_SCALE", "MARGIN"):
                parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        add_tile_parameter(self)
        self.addParameter(QgsProcessingParameterFileDestination("REPORT", "Report", "JSON files (*.json)",
                                                                optional=True, createByDefault=False))
        for name in ("SCALE", "SHAPE", "COMPACTNESS"):
            self.addOutput(QgsProcessingOutputNumber(name, name.capitalize()))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        layer = image_layer(self, parameters, context)
        bands, weights = bands_and_weights(self, parameters, context)
        reference = shapely_polygons(self.parameterAsSource(parameters, "REFERENCE", context), layer.crs(), context,
                                     "REFERENCE")
        with user_errors():
            estimate = estimate_parameters(
                layer.source(), reference, bands, weights,
                numbers(self.parameterAsString(parameters, "SHAPES", context), "SHAPES") or (),
                numbers(self.parameterAsString(parameters, "COMPACTNESSES", context), "COMPACTNESSES") or (),
                self.parameterAsDouble(parameters, "GRID_SCALE", context),
                numbers(self.parameterAsString(parameters, "SCALES", context), "SCALES") or (),
                self.parameterAsDouble(parameters, "MARGIN", context),
                self.parameterAsInt(parameters, "TILE_SIZE", context), progress_for(feedback))
        feedback.pushInfo(f"scale {estimate.scale:g}, shape {estimate.shape:g}, compactness {estimate.compactness:g} "
                          f"(ESP2 candidates: {', '.join(f'{s:g}' for s in estimate.report['scale_candidates'])}).")
        outputs = {"SCALE": estimate.scale, "SHAPE": estimate.shape, "COMPACTNESS": estimate.compactness}
        report_path = write_report(self.parameterAsFileOutput(parameters, "REPORT", context), estimate.report)
        if report_path:
            outputs["REPORT"] = report_path
        return outputs
