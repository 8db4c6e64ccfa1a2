"""minesar:multiresolutionsegmentation: image → segments (Baatz & Schäpe, seed 003 §2.2.3)."""
import re

from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterRasterLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.segmentation.pipeline import segment_raster, segment_records
from ..ui.styles import style_segments
from .base import MineSARAlgorithm, progress_for, qgis_geometry, style_when_loaded, user_errors
from .patch_parameters import (add_band_parameters, add_segmentation_parameters, bands_and_weights, image_layer,
                               segmentation_parameters)


def field_name(band_name, used):
    name = "MEAN_" + (re.sub(r"[^A-Za-z0-9]+", "_", band_name).strip("_").upper() or "BAND")
    while name in used:
        name += "_"
    used.add(name)
    return name


class MultiresolutionSegmentationAlgorithm(MineSARAlgorithm):
    _name = "multiresolutionsegmentation"
    _display_name = "Multiresolution segmentation"
    _group_id = "patches"
    _help = (
        "Multiresolution segmentation after Baatz & Schäpe (eCognition's algorithm; seed 003 §2.2.3): every "
        "pixel starts as a segment, and neighbouring segments that are each other's best fit merge in passes "
        "while the fusion cost f = (1 − SHAPE)·h_color + SHAPE·h_shape stays below SCALE². h_color sums, over "
        "the BANDS with their WEIGHTS, the growth of n·σ (pixels × standard deviation); h_shape = COMPACTNESS·"
        "h_compactness + (1 − COMPACTNESS)·h_smoothness, from the perimeter l, √n and the bounding-box "
        "perimeter. Larger SCALE: larger segments. The seed's parameters: scale 79, shape 0.2, compactness "
        "0.5 (estimate yours with <i>Estimate segmentation parameters</i>; the scale depends on the image's "
        "value range).\n\n"
        "Big images are segmented in tiles of TILE_SIZE pixels whose segments are then merged across the "
        "seams by the same rule, so seams do not cut segments.\n\n"
        "Output: one polygon per segment with SEG_ID, the mean of each band (MEAN_<band>), AREA (map units²), "
        "PERIMETER (map units) and COMPACT (Baatz's l/√n in pixels: 4 for a square, more for ragged shapes)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Image"))
        add_band_parameters(self)
        add_segmentation_parameters(self)
        self.addParameter(QgsProcessingParameterFeatureSink("OUTPUT", "Segments", QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputNumber("SEGMENTS", "Segments"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        layer = image_layer(self, parameters, context)
        bands, weights = bands_and_weights(self, parameters, context)
        params = segmentation_parameters(self, parameters, context, weights)
        progress = progress_for(feedback)
        with user_errors():
            grid, segmentation, names = segment_raster(layer.source(), params, bands,
                                                       self.parameterAsInt(parameters, "TILE_SIZE", context),
                                                       progress.span(0.0, 0.8))
            records = segment_records(grid, segmentation)
        fields = QgsFields()
        fields.append(QgsField("SEG_ID", QVariant.Int))
        used = set()
        mean_fields = [field_name(name, used) for name in names]
        for name in mean_fields:
            fields.append(QgsField(name, QVariant.Double))
        for name in ("AREA", "PERIMETER", "COMPACT"):
            fields.append(QgsField(name, QVariant.Double))
        sink, sink_id = self.create_sink(parameters, "OUTPUT", context, fields, QgsWkbTypes.MultiPolygon, layer.crs())
        for index, record in enumerate(records):
            if index % 1000 == 0:  # the segments exist: report, but a cancel no longer applies
                feedback.setProgress(80.0 + 20.0 * index / max(1, len(records)))
            feature = QgsFeature(fields)
            feature.setGeometry(qgis_geometry(record["geometry"]))
            feature.setAttributes([record["id"]] + [round(m, 3) for m in record["mean"]]
                                  + [record["area"], record["perimeter"], round(record["compactness"], 4)])
            sink.addFeature(feature, QgsFeatureSink.FastInsert)
        feedback.pushInfo(f"{len(records)} segments at scale {params.scale:g}, shape {params.shape:g}, "
                          f"compactness {params.compactness:g}.")
        style_when_loaded(context, sink_id, "Segments", style_segments)
        return {"OUTPUT": sink_id, "SEGMENTS": len(records)}
