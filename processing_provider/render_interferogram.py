"""minesar:renderinterferogram: rasmph-style colour image of a wrapped interferogram."""
from qgis.core import (
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core.preprocess.render import render_interferogram
from .base import MineSARAlgorithm, progress_for, user_errors
from .preprocessing_common import geotiff_output, open_input, raster_path


class RenderInterferogramAlgorithm(MineSARAlgorithm):
    _name = "renderinterferogram"
    _display_name = "Render interferogram (rasmph colours)"
    _group_id = "import"
    _help = (
        "Renders a wrapped interferogram the way GAMMA's rasmph does — phase as hue, one colour cycle "
        "per 2π, 0 = red — for people who label interferograms (the papers' training images) or "
        "publish them. Optional BRIGHTNESS raster of the same grid, raised to the power 0.35 as "
        "rasmph_pwr does: coherence (used as is) when its MineSAR/PyRate tags, a LiCSAR/HyP3 coherence "
        "product name or a coherence word in its name (cc, coh, cor) say so, otherwise an amplitude "
        "(scaled by its scene mean) — whatever its values, so σ⁰ within 0–1 is not mistaken for "
        "coherence. Or AMPLITUDE_BRIGHTNESS to use a complex interferogram's own amplitude (import "
        "GAMMA .int/.diff with KEEP_COMPLEX); not both. Nodata is black.\n\n"
        "Output: 3-band byte GeoTIFF, or PNG with a world file when OUTPUT ends in .png. MineSAR's "
        "import reads such images back as phase (from the hue)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Wrapped interferogram"))
        self.addParameter(QgsProcessingParameterRasterLayer("BRIGHTNESS", "Brightness: amplitude or coherence (same grid)", optional=True))
        self.addParameter(QgsProcessingParameterBoolean("AMPLITUDE_BRIGHTNESS", "Use the complex interferogram's amplitude as brightness", defaultValue=False))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Colour interferogram (.tif or .png)"))
        self.addOutput(QgsProcessingOutputString("BRIGHTNESS_USED", "Brightness used"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        brightness = raster_path(self, parameters, "BRIGHTNESS", context, optional=True)
        use_amplitude = self.parameterAsBool(parameters, "AMPLITUDE_BRIGHTNESS", context)
        output = geotiff_output(self, parameters, "OUTPUT", context, (".tif", ".tiff", ".png"))
        with user_errors():
            with open_input(self, parameters, "INPUT", context) as source:
                info = render_interferogram(source, output, brightness, use_amplitude, progress_for(feedback))
        used = info["brightness"] if info["reference"] is None else f"{info['brightness']} (reference {info['reference']:.6g})"
        feedback.pushInfo(f"Brightness: {used}")
        return {"OUTPUT": output, "BRIGHTNESS_USED": used}
