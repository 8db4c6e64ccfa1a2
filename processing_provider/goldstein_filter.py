"""minesar:goldsteinfilter: Goldstein–Werner adaptive filtering of a wrapped interferogram."""
from qgis.core import (
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core.preprocess.goldstein import BLENDINGS, goldstein_filter
from .base import MineSARAlgorithm, progress_for, user_errors
from .preprocessing_common import date_label, geotiff_output, open_input, style_when_loaded


class GoldsteinFilterAlgorithm(MineSARAlgorithm):
    _name = "goldsteinfilter"
    _display_name = "Goldstein filter (wrapped interferogram)"
    _group_id = "import"
    _help = (
        "Goldstein–Werner adaptive filter (Goldstein & Werner 1998), as used before detection in the "
        "Mask R-CNN and YOLO-Basin papers. The interferogram (wrapped phase in radians, or complex "
        "values: their phase is filtered) is cut into PATCH_SIZE patches overlapping by half; each "
        "patch's spectrum is weighted by its 3 × 3-smoothed magnitude to the power ALPHA (0 = no "
        "filtering, 1 = strongest). BLENDING: hann (default: √Hann windows before and after the FFT, "
        "so patches blend with Hann weights; keeps noise-free fringes within about 0.02 rad) or "
        "triangular (the classic Goldstein–Werner blend: triangular weights after the filter only; "
        "about 0.08–0.1 rad on noise-free fringes). Both sets of weights sum to 1 across the "
        "half-overlapping patches. With a COHERENCE raster of "
        "the same grid each patch uses α = 1 − its mean coherence (Baran et al. 2003).\n\n"
        "Output: float32 wrapped phase (rad) with the input's georeference and metadata (dates, "
        "wavelength); nodata stays nodata; edges are filtered like the interior. Processed in strips: "
        "rasters larger than memory are fine."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Wrapped interferogram"))
        self.addParameter(QgsProcessingParameterNumber(
            "ALPHA", "Filter exponent α (0–1)", type=QgsProcessingParameterNumber.Double,
            minValue=0.0, maxValue=1.0, defaultValue=0.5,
        ))
        patch = QgsProcessingParameterNumber(
            "PATCH_SIZE", "Patch size (pixels, power of two)", type=QgsProcessingParameterNumber.Integer,
            minValue=4, maxValue=512, defaultValue=32,
        )
        patch.setFlags(patch.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(patch)
        blending = QgsProcessingParameterEnum(
            "BLENDING", "Patch blending (by name: hann, triangular)", options=list(BLENDINGS),
            defaultValue="hann", usesStaticStrings=True,
        )
        blending.setFlags(blending.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(blending)
        self.addParameter(QgsProcessingParameterRasterLayer(
            "COHERENCE", "Coherence (optional: α = 1 − coherence per patch)", optional=True,
        ))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Filtered interferogram"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        alpha = self.parameterAsDouble(parameters, "ALPHA", context)
        patch_size = self.parameterAsInt(parameters, "PATCH_SIZE", context)
        blending = self.parameterAsEnumString(parameters, "BLENDING", context) or "hann"
        output = geotiff_output(self, parameters, "OUTPUT", context)
        with user_errors():
            with open_input(self, parameters, "INPUT", context) as source:
                coherence = open_input(self, parameters, "COHERENCE", context, optional=True)
                try:
                    feedback.pushInfo(f"{source.width} × {source.height} px, patch {patch_size}, {blending} blending, "
                                      + ("α = 1 − coherence" if coherence else f"α = {alpha:g}"))
                    goldstein_filter(source, output, alpha, patch_size, coherence, progress_for(feedback),
                                     blending=blending)
                finally:
                    if coherence is not None:
                        coherence.close()
                label = date_label(source, "filtered")
        style_when_loaded(context, output, label, "style_wrapped_phase")
        return {"OUTPUT": output}
