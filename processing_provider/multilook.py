"""minesar:multilook: RANGE_LOOKS × AZIMUTH_LOOKS averaging of an interferogram or coherence."""
from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core.preprocess.multilook import looks_for_pixel_size, multilook
from .base import MineSARAlgorithm, progress_for, user_errors
from .preprocessing_common import date_label, geotiff_output, open_input, style_when_loaded


class MultilookAlgorithm(MineSARAlgorithm):
    _name = "multilook"
    _display_name = "Multilook"
    _group_id = "import"
    _help = (
        "Averages boxes of RANGE_LOOKS (columns) × AZIMUTH_LOOKS (rows) pixels into one, as the papers "
        "do before detection (2 × 10 in the Mask R-CNN paper, 1:5 in YOLO-Basin). Complex "
        "interferograms average their complex values; wrapped phase averages e^(iφ); unwrapped phase "
        "and coherence average their values. Nodata is left out of each mean. An incomplete last box "
        "is dropped; the geotransform keeps the corner and multiplies the pixel size by the looks.\n\n"
        "For a geocoded raster PIXEL_SIZE (map units) sets the looks instead: looks = round(size / pixel "
        "size) per axis.\n\nOutput: float32 (wrapped phase in rad, or the input's values) with the "
        "input's metadata and the looks in MINESAR_LOOKS."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Interferogram or coherence"))
        self.addParameter(QgsProcessingParameterNumber(
            "RANGE_LOOKS", "Range looks (columns)", type=QgsProcessingParameterNumber.Integer, minValue=1, defaultValue=2))
        self.addParameter(QgsProcessingParameterNumber(
            "AZIMUTH_LOOKS", "Azimuth looks (rows)", type=QgsProcessingParameterNumber.Integer, minValue=1, defaultValue=10))
        size = QgsProcessingParameterNumber(
            "PIXEL_SIZE", "Output pixel size in map units (0 = use the looks)", type=QgsProcessingParameterNumber.Double,
            minValue=0.0, defaultValue=0.0, optional=True)
        size.setFlags(size.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(size)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Multilooked raster"))
        self.addOutput(QgsProcessingOutputNumber("WIDTH", "Output width (px)"))
        self.addOutput(QgsProcessingOutputNumber("HEIGHT", "Output height (px)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        range_looks = self.parameterAsInt(parameters, "RANGE_LOOKS", context)
        azimuth_looks = self.parameterAsInt(parameters, "AZIMUTH_LOOKS", context)
        pixel_size = self.parameterAsDouble(parameters, "PIXEL_SIZE", context) if parameters.get("PIXEL_SIZE") else 0.0
        output = geotiff_output(self, parameters, "OUTPUT", context)
        with user_errors():
            with open_input(self, parameters, "INPUT", context) as source:
                if pixel_size > 0:
                    range_looks, azimuth_looks = looks_for_pixel_size(source.geotransform, pixel_size)
                feedback.pushInfo(f"{source.metadata.kind}: {range_looks} × {azimuth_looks} looks")
                width, height = multilook(source, output, range_looks, azimuth_looks, progress_for(feedback))
                kind = source.metadata.kind
                label = date_label(source, f"{range_looks}x{azimuth_looks} looks")
        style_when_loaded(context, output, label, "style_interferogram")
        feedback.pushInfo(f"Wrote {output}: {width} × {height} px ({kind})")
        return {"OUTPUT": output, "WIDTH": width, "HEIGHT": height}
