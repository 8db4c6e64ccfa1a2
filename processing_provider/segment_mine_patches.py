"""minesar:segmentminepatches: preliminary mine patches of a GF-2 orthophoto (seed 003)."""
import os

from qgis.core import QgsProcessingParameterRasterLayer

from ..core.io.optical import GF2_BANDS, Orthophoto
from .base import MineSARAlgorithm, require_torch, user_errors
from .segmentation_common import (
    add_segmentation_parameters,
    blend_and_trace,
    finish,
    load_segmenter,
    probability_threshold,
    read_settings,
)


class SegmentMinePatchesAlgorithm(MineSARAlgorithm):
    _name = "segmentminepatches"
    _display_name = "Segment mine patches"
    _group_id = "patches"
    _help = (
        "Finds mine patches in a GF-2 orthophoto (4 bands B, G, R, NIR, 16-bit; seed 003): a probability "
        "raster, a mask and the preliminary patches as polygons, which minesar:refineminepatches then fits "
        "to the image's segments.\n\n"
        "MODEL: minepatch_light (DeepLabV3-MobileNetV3, shipped weights) or minepatch (DeepLabV3-ResNet50, "
        "train it with minesar:trainmodel), or the path of a checkpoint. Each band is stretched between the "
        "scene percentiles stored in the checkpoint (those of its training images). DEVICE: auto (CUDA when "
        "present), cpu or cuda:N.\n"
        "Tiles of TILE_SIZE overlapping by OVERLAP pixels are blended (weights fading to inner tile edges), "
        "so patches show no seams. Pixels zero in every band (outside the orthophoto's footprint) are no "
        "data. OUTPUT_MASK: 1 mine, 0 not, 255 no data.\n"
        "MIRROR (advanced, off by default): each tile is also seen mirrored and the two probabilities "
        "averaged. On held-out scenes it moved the shipped network's pixel F1 only from 0.967 to 0.969, "
        "at twice the time. TURNS (advanced, off by default): each tile is also seen turned by each quarter "
        "turn (with MIRROR, eight views averaged; four times the time)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "GF-2 orthophoto"))
        add_segmentation_parameters(self, "minepatch_light", "Model (minepatch_light, minepatch or a checkpoint path)",
                                    "Mine-patch mask", "Preliminary mine patches", mirror_by_default=False)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        require_torch("Segmentation")
        from ..models.device import resolve_device
        from ..models.segment_inference import optical_reader

        settings = read_settings(self, parameters, context, feedback)
        with user_errors(self):
            device = resolve_device(self.parameterAsString(parameters, "DEVICE", context))
            model, metadata, checkpoint = load_segmenter(
                settings.model_name, device, "optical",
                {"detection": "minesar:detectsubsidence", "phase": "minesar:segmentsubsidence"})
            normalisation = metadata.get("normalisation")
            bands = tuple(metadata.get("input_bands") or (normalisation or {}).get("bands") or GF2_BANDS)
            with Orthophoto(settings.path, bands) as image:
                if image.info.geotransform is None:
                    feedback.pushWarning(f"{settings.path}: no georeference; outputs are in pixel coordinates.")
                feedback.pushInfo(f"{os.path.basename(settings.path)}: {image.width} × {image.height} px; model "
                                  f"{model.architecture} from {checkpoint} on {device}.")
                run, found = blend_and_trace(self, parameters, context, settings,
                                             optical_reader(image, normalisation, settings.tile), image.width,
                                             image.height, image.info.geotransform, image.info.crs_wkt, model, device,
                                             probability_threshold(self, parameters, context, feedback, metadata))
                crs_wkt = image.info.crs_wkt
        return finish(self, parameters, context, feedback, settings, run, found, crs_wkt, checkpoint,
                      ("mine-patch probability", "mine-patch mask", "preliminary mine patches"), "mine patch")
