"""minesar:estimatecoherence: coherence in a moving window."""
from qgis.core import (
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core.preprocess.coherence import estimate_coherence
from .base import MineSARAlgorithm, progress_for, user_errors
from .preprocessing_common import date_label, geotiff_output, open_input, style_when_loaded


class EstimateCoherenceAlgorithm(MineSARAlgorithm):
    _name = "estimatecoherence"
    _display_name = "Estimate coherence"
    _group_id = "import"
    _help = (
        "Coherence in a WINDOW × WINDOW box (odd, default 5) around each pixel.\n"
        "• INPUT and SECOND_SLC both complex SLCs: the standard |Σ s1·s2*| / √(Σ|s1|² Σ|s2|²).\n"
        "• INPUT a complex interferogram (with amplitudes): |Σ z| / Σ|z|, the amplitude-weighted phase "
        "coherence; equal to the standard estimator where the two images' amplitude ratio is constant in "
        "the box, an upper bound otherwise.\n"
        "• INPUT wrapped phase (or PHASE_ONLY): |Σ e^(iφ)| / N, N the valid pixels of the box — 1 for a "
        "noise-free flat phase, RMS 1/√N for pure noise.\n"
        "Output: float32 coherence 0–1 with the input's metadata; the estimator is named in the log, "
        "the ESTIMATOR output and the file's tags."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Interferogram (wrapped or complex) or first SLC"))
        self.addParameter(QgsProcessingParameterNumber(
            "WINDOW", "Window (pixels, odd)", type=QgsProcessingParameterNumber.Integer, minValue=3, defaultValue=5))
        self.addParameter(QgsProcessingParameterRasterLayer("SECOND_SLC", "Second SLC (complex, same grid)", optional=True))
        phase_only = QgsProcessingParameterBoolean("PHASE_ONLY", "Phase-only even when amplitudes are available", defaultValue=False)
        phase_only.setFlags(phase_only.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(phase_only)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Coherence"))
        self.addOutput(QgsProcessingOutputString("ESTIMATOR", "Estimator used"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        window = self.parameterAsInt(parameters, "WINDOW", context)
        phase_only = self.parameterAsBool(parameters, "PHASE_ONLY", context)
        output = geotiff_output(self, parameters, "OUTPUT", context)
        with user_errors():
            with open_input(self, parameters, "INPUT", context) as source:
                second = open_input(self, parameters, "SECOND_SLC", context, optional=True)
                try:
                    estimator = estimate_coherence(source, output, window, second, phase_only, progress_for(feedback))
                finally:
                    if second is not None:
                        second.close()
                label = date_label(source, "coherence")
        feedback.pushInfo(f"Estimator: {estimator}")
        style_when_loaded(context, output, label, "style_coherence")
        return {"OUTPUT": output, "ESTIMATOR": estimator}
