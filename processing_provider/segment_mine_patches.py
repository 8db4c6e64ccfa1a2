"""minesar:segmentminepatches: preliminary mine patches of a GF-2 orthophoto (seed 003)."""
import os

from qgis.core import QgsProcessingParameterRasterLayer

from ..core.io.optical import GF2_BANDS, Orthophoto
from .base import MineSARAlgorithm, progress_for, require_torch, user_errors
from .preprocessing_common import raster_path
from .segmentation_common import (add_segmentation_parameters, load_segmenter, raster_outputs, style_outputs,
                                  write_zones)


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
        "data. OUTPUT_MASK: 1 mine, 0 not, 255 no data."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "GF-2 orthophoto"))
        add_segmentation_parameters(self, "minepatch_light", "Model (minepatch_light, minepatch or a checkpoint path)",
                                    "Mine-patch mask", "Preliminary mine patches")

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        require_torch("Segmentation")
        from ..core.probability_zones import zones
        from ..models.device import resolve_device
        from ..models.segment_inference import optical_reader, segment_to_rasters

        path = raster_path(self, parameters, "INPUT", context)
        model_name = self.parameterAsString(parameters, "MODEL", context).strip()
        probability, mask = raster_outputs(self, parameters, context)
        tile = self.parameterAsInt(parameters, "TILE_SIZE", context)
        progress = progress_for(feedback)
        with user_errors():
            device = resolve_device(self.parameterAsString(parameters, "DEVICE", context))
            model, metadata, checkpoint = load_segmenter(
                model_name, device, "optical",
                {"detection": "minesar:detectsubsidence", "phase": "minesar:segmentsubsidence"})
            normalisation = metadata.get("normalisation")
            bands = tuple(metadata.get("input_bands") or (normalisation or {}).get("bands") or GF2_BANDS)
            with Orthophoto(path, bands) as image:
                if image.info.geotransform is None:
                    feedback.pushWarning(f"{path}: no georeference; outputs are in pixel coordinates.")
                feedback.pushInfo(f"{os.path.basename(path)}: {image.width} × {image.height} px; model "
                                  f"{model.architecture} from {checkpoint} on {device}.")
                run = segment_to_rasters(
                    optical_reader(image, normalisation, tile), image.width, image.height, model, device, probability,
                    mask, image.info.geotransform, image.info.crs_wkt, tile_size=tile,
                    overlap=self.parameterAsInt(parameters, "OVERLAP", context),
                    batch_size=self.parameterAsInt(parameters, "BATCH_SIZE", context),
                    threshold=self.parameterAsDouble(parameters, "THRESHOLD", context),
                    tags={"MINESAR_MODEL": model.architecture, "MINESAR_SOURCE": os.path.basename(path)},
                    progress=progress.span(0.0, 0.9))
                crs_wkt = image.info.crs_wkt
            found = zones(mask, probability, progress=progress.span(0.9, 1.0))
        label = model_name if "/" not in model_name and not model_name.endswith(".pt") else os.path.basename(checkpoint)
        sink_id = write_zones(self, parameters, context, found, crs_wkt, label)
        feedback.pushInfo(f"{len(found)} patches; {run.tiles - run.tiles_skipped} tiles in {run.seconds:.1f} s, "
                          f"{run.megapixels_per_second:.2f} Mpx/s.")
        style_outputs(context, probability, mask, sink_id,
                      ("mine-patch probability", "mine-patch mask", "preliminary mine patches"), "mine patch")
        return {"OUTPUT_PROBABILITY": probability, "OUTPUT_MASK": mask, "OUTPUT_POLYGONS": sink_id,
                "ZONES": len(found), "POSITIVE_PIXELS": run.positive_pixels}
