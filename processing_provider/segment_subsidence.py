"""minesar:segmentsubsidence: a subsidence probability map of a whole interferogram (seed 000)."""
import os

from qgis.core import QgsProcessingParameterRasterLayer
from qgis.PyQt.QtCore import QVariant

from ..core.io.interferogram import open_interferogram
from .base import MineSARAlgorithm, progress_for, require_torch, user_errors
from .preprocessing_common import raster_path
from .segmentation_common import (add_segmentation_parameters, load_segmenter, raster_outputs, style_outputs,
                                  write_zones)

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
        "(8-connected)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Interferogram"))
        add_segmentation_parameters(self, "ecaunet", f"Model ({', '.join(SUBSIDENCE_MODELS)} or a checkpoint path)",
                                    "Subsidence mask", "Subsidence zones")

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        require_torch("Segmentation")
        from ..models.device import resolve_device
        from ..models.segment_inference import phase_reader, segment_to_rasters
        from ..core.probability_zones import zones

        path = raster_path(self, parameters, "INPUT", context)
        model_name = self.parameterAsString(parameters, "MODEL", context).strip()
        probability, mask = raster_outputs(self, parameters, context)
        tile = self.parameterAsInt(parameters, "TILE_SIZE", context)
        progress = progress_for(feedback)
        with user_errors(), open_interferogram(path, "auto", allow_pixel_coordinates=True) as source:
            reader = phase_reader(source, tile)  # refuses coherence before any model loads
            device = resolve_device(self.parameterAsString(parameters, "DEVICE", context))
            model, metadata, checkpoint = load_segmenter(
                model_name, device, "phase",
                {"detection": "minesar:detectsubsidence", "optical": "minesar:segmentminepatches"})
            feedback.pushInfo(f"{os.path.basename(path)}: {source.width} × {source.height} px "
                              f"({source.metadata.kind}); model {model.architecture} from {checkpoint} on {device}.")
            meta = source.metadata
            dates = [d.isoformat() if d else None for d in (meta.date1, meta.date2)]
            run = segment_to_rasters(
                reader, source.width, source.height, model, device, probability, mask,
                source.geotransform, source.crs_wkt, tile_size=tile,
                overlap=self.parameterAsInt(parameters, "OVERLAP", context),
                batch_size=self.parameterAsInt(parameters, "BATCH_SIZE", context),
                threshold=self.parameterAsDouble(parameters, "THRESHOLD", context),
                tags={"MINESAR_MODEL": model.architecture, "MINESAR_SOURCE": os.path.basename(path)},
                progress=progress.span(0.0, 0.9))
            found = zones(mask, probability, progress=progress.span(0.9, 1.0))
            crs_wkt = source.crs_wkt
        label = model_name if "/" not in model_name and not model_name.endswith(".pt") else os.path.basename(checkpoint)
        sink_id = write_zones(self, parameters, context, found, crs_wkt, label,
                              (("date1", QVariant.String), ("date2", QVariant.String)), dates)
        feedback.pushInfo(f"{len(found)} zones; {run.tiles - run.tiles_skipped} tiles ({run.tiles_skipped} all "
                          f"no-data skipped) in {run.seconds:.1f} s, {run.megapixels_per_second:.2f} Mpx/s.")
        style_outputs(context, probability, mask, sink_id,
                      ("subsidence probability", "subsidence mask", "subsidence zones"), "subsidence")
        return {"OUTPUT_PROBABILITY": probability, "OUTPUT_MASK": mask, "OUTPUT_POLYGONS": sink_id,
                "ZONES": len(found), "POSITIVE_PIXELS": run.positive_pixels}
