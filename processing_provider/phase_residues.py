"""minesar:phaseresidues: count and map the phase residues of a wrapped interferogram."""
from qgis.core import QgsProcessingOutputNumber, QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer

from ..core.preprocess.residues import map_residues
from .base import MineSARAlgorithm, progress_for, user_errors
from .preprocessing_common import date_label, geotiff_output, open_input, style_when_loaded


class PhaseResiduesAlgorithm(MineSARAlgorithm):
    _name = "phaseresidues"
    _display_name = "Phase residues"
    _group_id = "import"
    _help = (
        "Counts the residues of a wrapped interferogram — 2 × 2 pixel loops whose wrapped phase "
        "differences add up to ±2π — a quick quality figure per interferogram (noise makes residues; "
        "filtering should remove most of them). Outputs the counts, the density (residues per valid "
        "loop) and, unless skipped, a map of the charges (+1, −1, 0 at each loop's top-left pixel; NaN "
        "where a loop touches nodata)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Wrapped interferogram"))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Residue map", optional=True, createByDefault=True))
        self.addOutput(QgsProcessingOutputNumber("POSITIVE", "Positive residues"))
        self.addOutput(QgsProcessingOutputNumber("NEGATIVE", "Negative residues"))
        self.addOutput(QgsProcessingOutputNumber("TOTAL", "Residues"))
        self.addOutput(QgsProcessingOutputNumber("DENSITY", "Residues per valid loop"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        output = geotiff_output(self, parameters, "OUTPUT", context) or None
        with user_errors():
            with open_input(self, parameters, "INPUT", context) as source:
                count = map_residues(source, output, progress_for(feedback))
                label = date_label(source, "residues")
        feedback.pushInfo(f"{count.total} residues (+{count.positive}, −{count.negative}) in {count.loops} loops: "
                          f"density {count.density:.4g}")
        style_when_loaded(context, output, label, "style_residues")
        return {"OUTPUT": output, "POSITIVE": count.positive, "NEGATIVE": count.negative,
                "TOTAL": count.total, "DENSITY": count.density}
