"""minesar:segmentsubsidence: a subsidence probability map of a whole interferogram (seed 000)."""
import os

from qgis.core import QgsProcessingParameterRasterLayer
from qgis.PyQt.QtCore import QVariant

from ..core.io.interferogram import open_interferogram
from .base import MineSARAlgorithm, require_torch, user_errors
from .segmentation_common import (
    add_segmentation_parameters,
    blend_and_trace,
    finish,
    load_segmenter,
    probability_threshold,
    read_settings,
)

SUBSIDENCE_MODELS = ("ecaunet", "unet", "fcn8s", "fcn16s", "fcn32s", "pspnet", "deeplabv3")


class SegmentSubsidenceAlgorithm(MineSARAlgorithm):
    _name = "segmentsubsidence"
    _display_name = "Segment mining subsidence"
    _group_id = "detection"
    _help = (
        "Maps mining subsidence pixel by pixel in a whole interferogram (seed 000): a probability raster, a "
        "mask and one polygon per connected zone with its mean and maximum probability and area.\n\n"
        "INPUT: any interferogram MineSAR reads — wrapped phase, complex values, rasmph colours, or unwrapped "
        "phase (wrapped first). MODEL: ecaunet (ECA-UNet, shipped weights), unet, fcn8s, fcn16s, fcn32s, "
        "pspnet or deeplabv3 (train them with minesar:trainmodel), or the path of a checkpoint. "
        "DEVICE: auto (CUDA when present), cpu or cuda:N.\n"
        "The raster is read in tiles of TILE_SIZE pixels overlapping by OVERLAP pixels. Each tile's "
        "probabilities fade to its inner edges and the tiles are averaged with those weights, so no seam "
        "shows (a network is least sure at a tile's edge). No-data areas stay no data. OUTPUT_MASK: 1 where "
        "the probability reaches THRESHOLD, 0 below, 255 no data; OUTPUT_POLYGONS trace its zones "
        "(8-connected). A network that also maps basin cores (the shipped ECA-UNet; minesar:trainmodel's "
        "CORES) splits a zone holding several cores between them, nearest core first: two touching basins "
        "are one zone of the mask but two polygons. THRESHOLD left empty is the checkpoint's own: the best "
        "basin-level F1 on its "
        "training data's val split when minesar:trainmodel calibrated it, else 0.5.\n"
        "MIRROR and TURNS (advanced, both on by default): each tile is also seen mirrored left–right and "
        "turned by each quarter turn, and the eight probabilities are averaged (each view turned back); a "
        "zone that only one or two views believe in falls to a quarter of its probability or less. On the "
        "held-out set the shipped ECA-UNet's basin-level F1 at its own threshold is 0.808 seen once, 0.834 "
        "mirrored and 0.858 in eight views (precision 0.799 → 0.861 → 0.909), at 2 and 8 times the time; "
        "turn TURNS off for a quick look. Calibration chooses a segmenter's threshold in all eight views."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Interferogram"))
        add_segmentation_parameters(self, "ecaunet", f"Model ({', '.join(SUBSIDENCE_MODELS)} or a checkpoint path)",
                                    "Subsidence mask", "Subsidence zones", mirror_by_default=True,
                                    turns_by_default=True)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        require_torch("Segmentation")
        from ..models.device import resolve_device
        from ..models.segment_inference import phase_reader

        settings = read_settings(self, parameters, context, feedback)
        with user_errors(self), open_interferogram(settings.path, "auto", allow_pixel_coordinates=True) as source:
            reader = phase_reader(source, settings.tile)  # refuses coherence before any model loads
            device = resolve_device(self.parameterAsString(parameters, "DEVICE", context))
            model, metadata, checkpoint = load_segmenter(
                settings.model_name, device, "phase",
                {"detection": "minesar:detectsubsidence", "optical": "minesar:segmentminepatches"})
            feedback.pushInfo(f"{os.path.basename(settings.path)}: {source.width} × {source.height} px "
                              f"({source.metadata.kind}); model {model.architecture} from {checkpoint} on {device}.")
            meta = source.metadata
            dates = [d.isoformat() if d else None for d in (meta.date1, meta.date2)]
            run, found = blend_and_trace(self, parameters, context, settings, reader, source.width, source.height,
                                         source.geotransform, source.crs_wkt, model, device,
                                         probability_threshold(self, parameters, context, feedback, metadata))
            crs_wkt = source.crs_wkt
        return finish(self, parameters, context, feedback, settings, run, found, crs_wkt, checkpoint,
                      ("subsidence probability", "subsidence mask", "subsidence zones"), "subsidence",
                      (("date1", QVariant.String), ("date2", QVariant.String)), dates)
