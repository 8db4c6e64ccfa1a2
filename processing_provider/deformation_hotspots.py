"""minesar:deformationhotspots: Getis-Ord Gi* hot and cold spots of a velocity (or any) raster."""
from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core.hotspots import getis_ord_hotspots
from .base import MineSARAlgorithm, progress_for, user_errors
from .preprocessing_common import geotiff_output, raster_path, style_when_loaded


class DeformationHotspotsAlgorithm(MineSARAlgorithm):
    _name = "deformationhotspots"
    _display_name = "Deformation hot spots (Getis-Ord Gi*)"
    _group_id = "deformation"
    _help = (
        "Hot-spot analysis of a deformation-rate map (or any raster), the Category-I comparison of the "
        "Mask R-CNN paper: Getis-Ord Gi* with binary weights for the pixels within DISTANCE metres "
        "(the pixel itself included), global mean and standard deviation over the valid pixels (nodata is "
        "left out everywhere). Gi* is a z-score; p is two-sided from the normal distribution.\n\n"
        "OUTPUT: classes as ArcGIS's Gi_Bin — 3/2/1 hot spot at 99/95/90 % confidence, −3/−2/−1 cold "
        "spot, 0 not significant. Optional Z_SCORES and P_VALUES rasters. Note the sign: on a velocity "
        "map subsidence (negative) clusters are cold spots.\n"
        "DISTANCE is in metres whatever the CRS: on a geographic (lat/lon) raster it is converted to "
        "degrees at the raster's centre latitude, east–west and north–south separately (the band is "
        "then an ellipse in pixels); a raster without georeference is measured in pixels.\n"
        "Cost grows with the band's radius in pixels (one pass per row of the band); a band that "
        "reaches across the raster, or too wide to run in reasonable memory and time, is refused — "
        "multilook the raster first."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Velocity or other raster"))
        self.addParameter(QgsProcessingParameterBand("BAND", "Band", defaultValue=1, parentLayerParameterName="INPUT", optional=True))
        # Metres, not the layer's map units: a Distance parameter would offer degrees on a lat/lon
        # raster, where 300 (meant as metres) would become a band of hundreds of thousands of rows.
        self.addParameter(QgsProcessingParameterNumber("DISTANCE", "Distance band (metres)", defaultValue=300.0,
                                                       type=QgsProcessingParameterNumber.Double, minValue=0.0))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Hot and cold spots (classes)"))
        self.addParameter(QgsProcessingParameterRasterDestination("Z_SCORES", "Gi* z-scores", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination("P_VALUES", "Gi* p-values", optional=True, createByDefault=False))
        for level, what in ((3, "HOT_99"), (-3, "COLD_99"), (2, "HOT_95"), (-2, "COLD_95"), (1, "HOT_90"), (-1, "COLD_90")):
            self.addOutput(QgsProcessingOutputNumber(f"{what}_PIXELS", f"Pixels in class {level}"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        path = raster_path(self, parameters, "INPUT", context)
        band = self.parameterAsInt(parameters, "BAND", context) or 1
        distance = self.parameterAsDouble(parameters, "DISTANCE", context)
        output = geotiff_output(self, parameters, "OUTPUT", context)
        z_path = geotiff_output(self, parameters, "Z_SCORES", context) or None
        p_path = geotiff_output(self, parameters, "P_VALUES", context) or None
        with user_errors():
            summary = getis_ord_hotspots(path, output, distance, z_path, p_path, band, progress_for(feedback))
        feedback.pushInfo(
            f"{summary.valid_pixels} valid pixels, mean {summary.mean:.4g}, std {summary.std:.4g}; "
            f"{summary.pixels_in_band} pixels in the band"
        )
        style_when_loaded(context, output, "Gi* hot and cold spots", "style_hotspot_classes")
        style_when_loaded(context, z_path, "Gi* z-scores", "style_z_scores")
        style_when_loaded(context, p_path, "Gi* p-values", "style_p_values")
        counts = summary.class_counts
        results = {"OUTPUT": output, "Z_SCORES": z_path, "P_VALUES": p_path}
        for level, what in ((3, "HOT_99"), (-3, "COLD_99"), (2, "HOT_95"), (-2, "COLD_95"), (1, "HOT_90"), (-1, "COLD_90")):
            results[f"{what}_PIXELS"] = counts[level]
        return results
