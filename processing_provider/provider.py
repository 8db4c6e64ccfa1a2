"""The ``minesar`` Processing provider."""
import configparser
import os

from qgis.core import QgsApplication, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .base import ICON_PATH, PLUGIN_DIR
from .build_dataset import BuildDatasetAlgorithm
from .deformation_hotspots import DeformationHotspotsAlgorithm
from .detect_subsidence import DetectSubsidenceAlgorithm
from .estimate_coherence import EstimateCoherenceAlgorithm
from .evaluate_model import EvaluateModelAlgorithm
from .estimate_segmentation_parameters import EstimateSegmentationParametersAlgorithm
from .evaluate_patches import EvaluatePatchesAlgorithm
from .goldstein_filter import GoldsteinFilterAlgorithm
from .import_interferogram import ImportInterferogramAlgorithm
from .mine_activity import MineActivityAlgorithm
from .multilook import MultilookAlgorithm
from .multiresolution_segmentation import MultiresolutionSegmentationAlgorithm
from .phase_residues import PhaseResiduesAlgorithm
from .refine_mine_patches import RefineMinePatchesAlgorithm
from .render_interferogram import RenderInterferogramAlgorithm
from .sbas_inversion import SbasInversionAlgorithm
from .segment_mine_patches import SegmentMinePatchesAlgorithm
from .segment_subsidence import SegmentSubsidenceAlgorithm
from .simulate_interferograms import SimulateInterferogramsAlgorithm
from .simulate_optical_scenes import SimulateOpticalScenesAlgorithm
from .simulate_scene import SimulateSceneAlgorithm
from .simulate_sequence import SimulateSequenceAlgorithm
from .surface_activity import SurfaceActivityAlgorithm
from .train_model import TrainModelAlgorithm
from .workflow_algorithms import workflow_models


def plugin_version() -> str:
    parser = configparser.ConfigParser()
    parser.read(os.path.join(PLUGIN_DIR, "metadata.txt"), encoding="utf-8")
    return parser.get("general", "version", fallback="unknown")


class MineSARProvider(QgsProcessingProvider):
    def __init__(self, with_workflows=True):
        super().__init__()
        self.with_workflows = with_workflows

    def id(self):
        return "minesar"

    def name(self):
        return "MineSAR"

    def longName(self):  # noqa: N802 (QGIS API)
        return f"MineSAR {plugin_version()}"

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):  # noqa: N802
        return ICON_PATH

    def loadAlgorithms(self):  # noqa: N802
        for algorithm in (
            ImportInterferogramAlgorithm(),
            GoldsteinFilterAlgorithm(),
            MultilookAlgorithm(),
            EstimateCoherenceAlgorithm(),
            PhaseResiduesAlgorithm(),
            RenderInterferogramAlgorithm(),
            SimulateInterferogramsAlgorithm(),
            SimulateSceneAlgorithm(),
            SimulateSequenceAlgorithm(),
            SimulateOpticalScenesAlgorithm(),
            BuildDatasetAlgorithm(),
            DeformationHotspotsAlgorithm(),
            SbasInversionAlgorithm(),
            SurfaceActivityAlgorithm(),
            MineActivityAlgorithm(),
            TrainModelAlgorithm(),
            EvaluateModelAlgorithm(),
            DetectSubsidenceAlgorithm(),
            SegmentSubsidenceAlgorithm(),
            MultiresolutionSegmentationAlgorithm(),
            EstimateSegmentationParametersAlgorithm(),
            RefineMinePatchesAlgorithm(),
            EvaluatePatchesAlgorithm(),
            SegmentMinePatchesAlgorithm(),
        ):
            self.addAlgorithm(algorithm)
        # A model resolves its steps (minesar:…) through the registry, which holds this provider
        # only once it has loaded: the first load, inside addProvider, leaves the workflows out,
        # and the reload on providerAdded adds them with their steps (and so their outputs) found.
        if self.with_workflows and QgsApplication.processingRegistry().providerById(self.id()) is self:
            for model in workflow_models():
                self.addAlgorithm(model)

    def load(self):
        QgsApplication.processingRegistry().providerAdded.connect(self._provider_added)
        return super().load()

    def unload(self):
        try:
            QgsApplication.processingRegistry().providerAdded.disconnect(self._provider_added)
        except TypeError:  # never connected
            pass
        super().unload()

    def _provider_added(self, provider_id):
        if provider_id == self.id() and self.with_workflows:
            self.refreshAlgorithms()

    # Every raster MineSAR writes is a GeoTIFF: it carries the metadata the next step reads.
    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]

    def defaultRasterFileExtension(self):  # noqa: N802
        return "tif"
