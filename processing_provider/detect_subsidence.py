"""minesar:detectsubsidence: every mining-subsidence basin of an interferogram as a scored polygon."""
import os

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.io.interferogram import open_interferogram
from ..ui.styles import style_detected_basins
from ..ui.temporal import with_temporal
from .base import (
    MineSARAlgorithm,
    decision_threshold,
    progress_for,
    qgis_geometry,
    require_torch,
    style_when_loaded,
    user_errors,
)
from .preprocessing_common import raster_path


def basin_fields() -> QgsFields:
    fields = QgsFields()
    fields.append(QgsField("score", QVariant.Double))
    fields.append(QgsField("model", QVariant.String))
    fields.append(QgsField("area_m2", QVariant.Double))
    fields.append(QgsField("date1", QVariant.String))
    fields.append(QgsField("date2", QVariant.String))
    return fields


class DetectSubsidenceAlgorithm(MineSARAlgorithm):
    _name = "detectsubsidence"
    _display_name = "Detect mining subsidence"
    _group_id = "detection"
    _help = (
        "Finds mining-subsidence basins in a whole interferogram and writes one polygon per basin with its "
        "score, the model, its area in m² and the pair's dates (from the file's metadata or name).\n\n"
        "INPUT: any interferogram MineSAR reads — wrapped phase, complex values, rasmph colours, or unwrapped "
        "phase (wrapped first). MODEL: yolobasin (Light YOLO-Basin, fast, box outlines; the more accurate "
        "of the two shipped detectors) or maskrcnn (Mask R-CNN with a MobileNetV3-FPN backbone, basin "
        "outlines from its masks) with the shipped weights, or the path of a checkpoint "
        "from minesar:trainmodel. DEVICE: auto (CUDA when present), cpu or cuda:N.\n"
        "The raster is read in tiles of TILE_SIZE pixels overlapping by OVERLAP pixels, BATCH_SIZE tiles at "
        "a time. A basin cut by a tile border is taken from the tile that holds it whole, or its pieces are "
        "united, so each basin is one polygon; keep OVERLAP larger than the largest basin in pixels. "
        "When nothing is found the layer holds one feature without geometry carrying the pair's dates, so "
        "that minesar:surfaceactivity still counts the interferogram as monitored. "
        "No-data (NaN) areas give no detections. Detections below SCORE_THRESHOLD are dropped. Left empty, it is "
        "the checkpoint's own threshold, chosen by minesar:trainmodel for the best basin-level F1 on the "
        "dataset's val split with MIRROR on (the shipped Mask R-CNN's is far above 0.5; a checkpoint without one "
        "uses 0.5). Also dropped are "
        "outlines wider or taller than MAX_EXTENT km (advanced, default 6; 0 = only the tile size) or than a "
        "tile: mining basins are a few km across, larger ones are groundwater bowls or atmospheric fronts. "
        "MIRROR (advanced, on by default): each tile is also seen mirrored left–right and the two answers fused "
        "box by box; a basin only one view sees keeps half its score. On whole held-out scenes this cut the "
        "shipped Light YOLO-Basin's false alarms from 11 to 7 (F1 0.892 → 0.908) at twice the time."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Interferogram"))
        self.addParameter(QgsProcessingParameterString("MODEL", "Model (yolobasin, maskrcnn or a checkpoint path)",
                                                       defaultValue="yolobasin"))
        self.addParameter(QgsProcessingParameterString("DEVICE", "Device (auto, cpu, cuda:N)", defaultValue="auto"))
        self.addParameter(QgsProcessingParameterNumber("TILE_SIZE", "Tile size (pixels, multiple of 32)",
                                                       defaultValue=512, minValue=64, maxValue=4096))
        self.addParameter(QgsProcessingParameterNumber("OVERLAP", "Tile overlap (pixels)", defaultValue=128,
                                                       minValue=0, maxValue=2048))
        self.addParameter(QgsProcessingParameterNumber(
            "SCORE_THRESHOLD", "Score threshold (empty: the model's own, chosen on validation data)",
            type=QgsProcessingParameterNumber.Double, minValue=0.0, maxValue=1.0, optional=True))
        self.addParameter(QgsProcessingParameterNumber("BATCH_SIZE", "Tiles per batch", defaultValue=4, minValue=1,
                                                       maxValue=256))
        largest = QgsProcessingParameterNumber("MAX_EXTENT", "Largest basin (km across)", defaultValue=6.0,
                                               type=QgsProcessingParameterNumber.Double, minValue=0.0)
        largest.setFlags(largest.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(largest)
        mirror = QgsProcessingParameterBoolean("MIRROR", "Also look at each tile mirrored (fewer false alarms, "
                                               "twice the time)", defaultValue=True)
        mirror.setFlags(mirror.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(mirror)
        self.addParameter(QgsProcessingParameterFeatureSink("OUTPUT", "Subsidence basins",
                                                            type=QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputNumber("BASINS", "Basins found"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        require_torch("Detection")
        from ..models.checkpoint import checkpoint_for, load_detector, model_label
        from ..models.device import resolve_device
        from ..models.inference import detect_interferogram

        path = raster_path(self, parameters, "INPUT", context)
        model_name = self.parameterAsString(parameters, "MODEL", context).strip()
        tile_size = self.parameterAsInt(parameters, "TILE_SIZE", context)
        overlap = self.parameterAsInt(parameters, "OVERLAP", context)
        # The input is opened (and so checked) before the device and the model: it is the cheapest
        # to check and the likeliest to be wrong.
        with user_errors(self), open_interferogram(path, "auto", allow_pixel_coordinates=True) as source:
            device = resolve_device(self.parameterAsString(parameters, "DEVICE", context))
            checkpoint = checkpoint_for(model_name)
            model, metadata = load_detector(checkpoint, device)
            score_threshold, origin = decision_threshold(self, parameters, "SCORE_THRESHOLD", context, metadata)
            feedback.pushInfo(f"{os.path.basename(path)}: {source.width} × {source.height} px "
                              f"({source.metadata.kind}); model {model.architecture} from {checkpoint} on {device}; "
                              f"score threshold {score_threshold:g} ({origin}).")
            run = detect_interferogram(
                source, model, device, tile_size=tile_size, overlap=overlap,
                batch_size=self.parameterAsInt(parameters, "BATCH_SIZE", context),
                score_threshold=score_threshold,
                progress=progress_for(feedback).span(0.0, 0.95),
                max_extent_m=1000.0 * self.parameterAsDouble(parameters, "MAX_EXTENT", context) or None,
                mirror=self.parameterAsBool(parameters, "MIRROR", context))
            crs_wkt, meta = source.crs_wkt, source.metadata
        crs = QgsCoordinateReferenceSystem.fromWkt(crs_wkt) if crs_wkt else QgsCoordinateReferenceSystem()
        sink, sink_id = self.create_sink(parameters, "OUTPUT", context, basin_fields(), QgsWkbTypes.Polygon, crs)
        label = model_label(model_name, checkpoint)
        dates = [d.isoformat() if d else None for d in (meta.date1, meta.date2)]
        for basin in run.basins:
            feature = QgsFeature(basin_fields())
            feature.setGeometry(qgis_geometry(basin.polygon))
            feature.setAttributes([round(basin.score, 4), label, basin.area_m2, *dates])
            if not sink.addFeature(feature, QgsFeatureSink.FastInsert):
                raise QgsProcessingException(f"OUTPUT: could not write a basin ({sink.lastError()}).")
        if not run.basins and all(dates):
            # Finding nothing still says when the ground was watched: one feature with the pair's
            # dates and no geometry, which minesar:surfaceactivity counts as a monitored
            # interferogram (an empty layer has no dates, and a chain would stop there).
            feature = QgsFeature(basin_fields())
            feature.setAttributes([None, label, None, *dates])
            if not sink.addFeature(feature, QgsFeatureSink.FastInsert):
                raise QgsProcessingException(f"OUTPUT: could not write the pair's dates ({sink.lastError()}).")
        feedback.pushInfo(f"{len(run.basins)} basins from {run.tiles - run.tiles_skipped} tiles "
                          f"({run.tiles_skipped} all no-data skipped) in {run.seconds:.1f} s, "
                          f"{run.megapixels_per_second:.2f} Mpx/s.")
        style_when_loaded(context, sink_id, "subsidence basins", with_temporal(style_detected_basins))
        return {"OUTPUT": sink_id, "BASINS": len(run.basins)}
