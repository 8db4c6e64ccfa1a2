"""What minesar:segmentsubsidence and minesar:segmentminepatches share: parameters, the model
check, the blended run into two rasters, and the zones as polygons."""
import os
import tempfile
from dataclasses import dataclass

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
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.progress import Progress
from ..ui.styles import style_probability, style_segmentation_mask, style_segmented_zones
from .base import decision_threshold, progress_for, qgis_geometry, style_when_loaded
from .preprocessing_common import geotiff_output, raster_path


def add_segmentation_parameters(algorithm, default_model: str, model_help: str, mask_label: str,
                                zones_label: str, mirror_by_default: bool, turns_by_default: bool = False) -> None:
    number = QgsProcessingParameterNumber
    algorithm.addParameter(QgsProcessingParameterString("MODEL", model_help, defaultValue=default_model))
    algorithm.addParameter(QgsProcessingParameterString("DEVICE", "Device (auto, cpu, cuda:N)", defaultValue="auto"))
    algorithm.addParameter(number("TILE_SIZE", "Tile size (pixels)", defaultValue=256, minValue=32, maxValue=4096))
    algorithm.addParameter(number("OVERLAP", "Tile overlap (pixels, at most half the tile)", defaultValue=64,
                                  minValue=0, maxValue=2048))
    algorithm.addParameter(number("THRESHOLD", "Probability threshold (empty: the model's own)", type=number.Double,
                                  minValue=0.001, maxValue=0.999, optional=True))
    batch = number("BATCH_SIZE", "Tiles per batch", defaultValue=4, minValue=1, maxValue=256)
    batch.setFlags(batch.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    algorithm.addParameter(batch)
    mirror = QgsProcessingParameterBoolean("MIRROR", "Also look at each tile mirrored (fewer false alarms, "
                                           "twice the time)", defaultValue=mirror_by_default)
    mirror.setFlags(mirror.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    algorithm.addParameter(mirror)
    turns = QgsProcessingParameterBoolean("TURNS", "Also look at each tile turned by quarter turns (with MIRROR all "
                                          "eight views; four times the time)", defaultValue=turns_by_default)
    turns.setFlags(turns.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    algorithm.addParameter(turns)
    algorithm.addParameter(QgsProcessingParameterRasterDestination("OUTPUT_PROBABILITY", "Probability"))
    algorithm.addParameter(QgsProcessingParameterRasterDestination("OUTPUT_MASK", mask_label))
    algorithm.addParameter(QgsProcessingParameterFeatureSink("OUTPUT_POLYGONS", zones_label,
                                                             type=QgsProcessing.TypeVectorPolygon))
    algorithm.addOutput(QgsProcessingOutputNumber("ZONES", "Zones found"))
    algorithm.addOutput(QgsProcessingOutputNumber("POSITIVE_PIXELS", "Pixels at or above the threshold"))


def load_segmenter(model_name: str, device, input_kind: str, use_instead: dict):
    """(model, metadata, checkpoint path) of a segmentation checkpoint of ``input_kind``; a detector
    or the other kind of segmenter is refused with the algorithm to use instead."""
    from ..models.checkpoint import checkpoint_for, load_model

    checkpoint = checkpoint_for(model_name)
    model, metadata = load_model(checkpoint, device)
    task = getattr(model, "task", "detection")
    kind = getattr(model, "input_kind", None) if task == "segmentation" else task
    if kind != input_kind:
        what = "detector" if task == "detection" else f"{kind} segmenter"
        named = model_name if model_name == checkpoint else f"{model_name} ({checkpoint})"
        raise QgsProcessingException(f"MODEL {named} is {model.architecture}, a {what}: "
                                     f"use {use_instead.get(kind, 'another algorithm')} for it.")
    return model, metadata, checkpoint


def raster_outputs(algorithm, parameters, context):
    probability = geotiff_output(algorithm, parameters, "OUTPUT_PROBABILITY", context)
    mask = geotiff_output(algorithm, parameters, "OUTPUT_MASK", context)
    if not probability or not mask:
        raise QgsProcessingException("OUTPUT_PROBABILITY and OUTPUT_MASK need file names (or temporary outputs).")
    if os.path.abspath(probability) == os.path.abspath(mask):
        raise QgsProcessingException(f"OUTPUT_PROBABILITY and OUTPUT_MASK are the same file {probability}.")
    return probability, mask


def zone_fields(extra=()) -> QgsFields:
    fields = QgsFields()
    for name, kind in (("mean_prob", QVariant.Double), ("max_prob", QVariant.Double), ("area_m2", QVariant.Double),
                       ("model", QVariant.String)) + tuple(extra):
        fields.append(QgsField(name, kind))
    return fields


def write_zones(algorithm, parameters, context, found, crs_wkt, label, extra_fields=(), extra_values=()):
    crs = QgsCoordinateReferenceSystem.fromWkt(crs_wkt) if crs_wkt else QgsCoordinateReferenceSystem()
    fields = zone_fields(extra_fields)
    sink, sink_id = algorithm.create_sink(parameters, "OUTPUT_POLYGONS", context, fields, QgsWkbTypes.Polygon, crs)
    for zone in found:
        feature = QgsFeature(fields)
        feature.setGeometry(qgis_geometry(zone.polygon))
        feature.setAttributes([round(zone.mean_probability, 4), round(zone.max_probability, 4), zone.area_m2, label,
                               *extra_values])
        if not sink.addFeature(feature, QgsFeatureSink.FastInsert):
            raise QgsProcessingException(f"OUTPUT_POLYGONS: could not write a zone ({sink.lastError()}).")
    return sink_id


def style_outputs(context, probability, mask, sink_id, names, mask_label) -> None:
    style_when_loaded(context, probability, names[0], style_probability)
    style_when_loaded(context, mask, names[1], lambda layer: style_segmentation_mask(layer, mask_label))
    style_when_loaded(context, sink_id, names[2], style_segmented_zones)


@dataclass
class Settings:
    path: str
    model_name: str
    probability: str
    mask: str
    tile: int
    progress: Progress


def read_settings(algorithm, parameters, context, feedback) -> Settings:
    probability, mask = raster_outputs(algorithm, parameters, context)
    return Settings(raster_path(algorithm, parameters, "INPUT", context),
                    algorithm.parameterAsString(parameters, "MODEL", context).strip(), probability, mask,
                    algorithm.parameterAsInt(parameters, "TILE_SIZE", context), progress_for(feedback))


def probability_threshold(algorithm, parameters, context, feedback, metadata) -> float:
    """THRESHOLD as given, else the checkpoint's own, said in the log."""
    threshold, origin = decision_threshold(algorithm, parameters, "THRESHOLD", context, metadata)
    feedback.pushInfo(f"Probability threshold {threshold:g} ({origin}).")
    return threshold


def blend_and_trace(algorithm, parameters, context, settings: Settings, reader, width, height, geotransform, crs_wkt,
                    model, device, threshold: float):
    """The blended tiles into both rasters (90 % of the progress bar), then the zones of the mask."""
    from ..core.probability_zones import zones
    from ..models.segment_inference import segment_to_rasters

    mirror = algorithm.parameterAsBool(parameters, "MIRROR", context)
    turns = algorithm.parameterAsBool(parameters, "TURNS", context)
    views = (2 if mirror else 1) * (4 if turns else 1)
    if views > 1:
        seen = {2: "mirrored", 4: "turned by each quarter turn", 8: "mirrored and turned by each quarter turn"}[views]
        settings.progress.info(f"Each tile is also seen {seen}; the probability is the mean of the {views} views.")
    cores_path = None
    if getattr(model, "cores", False):
        # The core map lives only until the zones are split by it, beside the outputs (same disk).
        handle, cores_path = tempfile.mkstemp(suffix=".tif", prefix=".minesar-cores-",
                                              dir=os.path.dirname(os.path.abspath(settings.mask)))
        os.close(handle)
        settings.progress.info("Zones holding several basin cores are split between them.")
    try:
        run = segment_to_rasters(
            reader, width, height, model, device, settings.probability, settings.mask, geotransform, crs_wkt,
            tile_size=settings.tile, overlap=algorithm.parameterAsInt(parameters, "OVERLAP", context),
            batch_size=algorithm.parameterAsInt(parameters, "BATCH_SIZE", context),
            threshold=threshold,
            tags={"MINESAR_MODEL": model.architecture, "MINESAR_SOURCE": os.path.basename(settings.path)},
            progress=settings.progress.span(0.0, 0.9), mirror=mirror, cores_path=cores_path, turns=turns)
        return run, zones(settings.mask, settings.probability, progress=settings.progress.span(0.9, 1.0),
                          cores_path=cores_path)
    finally:
        for leftover in (cores_path, (cores_path or "") + ".aux.xml"):
            if leftover and os.path.exists(leftover):
                os.remove(leftover)


def finish(algorithm, parameters, context, feedback, settings: Settings, run, found, crs_wkt, checkpoint, names,
           mask_label, extra_fields=(), extra_values=()) -> dict:
    """Zones into OUTPUT_POLYGONS, a summary in the log, styles, and the outputs dict."""
    from ..models.checkpoint import model_label

    label = model_label(settings.model_name, checkpoint)
    sink_id = write_zones(algorithm, parameters, context, found, crs_wkt, label, extra_fields, extra_values)
    feedback.pushInfo(f"{len(found)} zones; {run.tiles - run.tiles_skipped} tiles ({run.tiles_skipped} all no-data "
                      f"skipped) in {run.seconds:.1f} s, {run.megapixels_per_second:.2f} Mpx/s.")
    style_outputs(context, settings.probability, settings.mask, sink_id, names, mask_label)
    return {"OUTPUT_PROBABILITY": settings.probability, "OUTPUT_MASK": settings.mask, "OUTPUT_POLYGONS": sink_id,
            "ZONES": len(found), "POSITIVE_PIXELS": run.positive_pixels}
