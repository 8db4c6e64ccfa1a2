"""minesar:evaluatepatches: extracted vs reference mine patches → the paper's accuracy figures."""
from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QVariant

from ..core.segmentation.grid import Grid
from ..core.segmentation.pipeline import evaluate_patches, evaluation_grid
from ..ui.styles import style_patch_scores
from .base import MineSARAlgorithm, progress_for, style_when_loaded, user_errors
from .patch_parameters import shapely_polygons, write_report

FIGURES = (("OA", "overall accuracy", "oa"), ("PRODUCERS_ACCURACY", "producer's accuracy", "producers_accuracy"),
           ("USERS_ACCURACY", "user's accuracy", "users_accuracy"), ("KAPPA", "kappa", "kappa"), ("F1", "F1", "f1"),
           ("IDENTIFICATION_RATE", "object identification rate", "identification_rate"),
           ("MEAN_AREA_SIMILARITY", "mean area similarity", "mean_area_similarity"),
           ("TP", "true positive pixels", "tp"), ("FP", "false positive pixels", "fp"),
           ("FN", "false negative pixels", "fn"), ("TN", "true negative pixels", "tn"))


class EvaluatePatchesAlgorithm(MineSARAlgorithm):
    _name = "evaluatepatches"
    _display_name = "Evaluate mine patches"
    _group_id = "patches"
    _help = (
        "Accuracy of extracted mine patches (INPUT, e.g. refined) against REFERENCE patches, as seed 003 §3.1 "
        "reports it. Both are rasterised by pixel centre on GRID (an image whose extent and pixels define the "
        "area evaluated — give it, because overall accuracy and kappa depend on how much background is "
        "counted) or else on a grid of PIXEL_SIZE over both layers' extent.\n\n"
        "Pixel level: the confusion matrix (TP, FP, FN, TN pixels), overall accuracy, producer's accuracy (share "
        "of reference mine pixels found), user's accuracy (share of extracted pixels that are mine), kappa and "
        "F1 (paper: F1 0.727, kappa 0.723). Object level: a reference patch is identified when an extracted "
        "patch overlaps it (paper: 228 of 238, 95.80 %); each extracted patch counts for the reference patch it "
        "overlaps most, and a patch's area similarity is min(A_extracted, A_reference) / max(…) (paper's mean: "
        "0.78), averaged over identified patches.\n\n"
        "Output: the reference patches with IDENTIFIED, AREA_REF, AREA_EXT (map units²) and AREA_SIM; the "
        "figures as outputs; optionally a JSON REPORT."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterFeatureSource("INPUT", "Extracted mine patches",
                                                              [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterFeatureSource("REFERENCE", "Reference mine patches",
                                                              [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterRasterLayer("GRID", "Evaluation grid (an image; optional)",
                                                            optional=True))
        self.addParameter(QgsProcessingParameterNumber("PIXEL_SIZE", "Pixel size without a grid (map units)",
                                                       QgsProcessingParameterNumber.Double, 1.0, minValue=0.001))
        self.addParameter(QgsProcessingParameterFeatureSink("OUTPUT", "Patch scores", QgsProcessing.TypeVectorPolygon))
        self.addParameter(QgsProcessingParameterFileDestination("REPORT", "Report", "JSON files (*.json)",
                                                                optional=True, createByDefault=False))
        for name, description, _ in FIGURES:
            self.addOutput(QgsProcessingOutputNumber(name, description[0].upper() + description[1:]))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        extracted_source = self.parameterAsSource(parameters, "INPUT", context)
        reference_source = self.parameterAsSource(parameters, "REFERENCE", context)
        grid_layer = self.parameterAsRasterLayer(parameters, "GRID", context)
        if reference_source is None:
            raise QgsProcessingException("REFERENCE: the layer could not be opened.")
        crs = grid_layer.crs() if grid_layer is not None else reference_source.sourceCrs()
        if not crs.isValid():
            raise QgsProcessingException("REFERENCE: the layer has no coordinate reference system.")
        if crs.isGeographic() and grid_layer is None:
            raise QgsProcessingException(
                f"REFERENCE: the layer is in degrees ({crs.authid()}); give a GRID image in a projected CRS or "
                "reproject the patches, so that areas are in metres.")
        reference = shapely_polygons(reference_source, crs, context, "REFERENCE")
        extracted = shapely_polygons(extracted_source, crs, context, "INPUT", required=False)
        if extracted_source is None:
            raise QgsProcessingException("INPUT: the layer could not be opened.")
        progress = progress_for(feedback)
        with user_errors():
            if grid_layer is not None:
                grid = Grid.of_raster(grid_layer.source())
            else:
                grid = evaluation_grid(reference + extracted, crs.toWkt(),
                                       self.parameterAsDouble(parameters, "PIXEL_SIZE", context))
            progress.update(0.2)
            scores = evaluate_patches([g for g in extracted if g is not None], reference, grid)
        figures = scores.as_dict()
        fields = QgsFields()
        for name, kind in (("REF_ID", QVariant.Int), ("IDENTIFIED", QVariant.Bool), ("AREA_REF", QVariant.Double),
                           ("AREA_EXT", QVariant.Double), ("AREA_SIM", QVariant.Double)):
            fields.append(QgsField(name, kind))
        sink, sink_id = self.create_sink(parameters, "OUTPUT", context, fields, reference_source.wkbType(), crs)
        features = [f for f in reference_source.getFeatures()]
        by_id = {p.reference_id: p for p in scores.patches}
        for index, (feature, geometry) in enumerate(zip(features, reference)):
            patch = by_id.get(index + 1)
            out = QgsFeature(fields)
            out.setGeometry(feature.geometry())
            if patch is None:  # no geometry, or too small to cover a pixel centre
                out.setAttributes([index + 1, None, None, None, None])
            else:
                out.setAttributes([index + 1, patch.identified, round(patch.area_reference, 3),
                                   round(patch.area_extracted, 3), round(patch.similarity, 4)])
            sink.addFeature(out, QgsFeatureSink.FastInsert)
        feedback.pushInfo(
            f"F1 {figures['f1']:.3f}, kappa {figures['kappa']:.3f}, OA {figures['oa']:.4f}; identified "
            f"{figures['identified']} of {figures['reference_patches']} patches; mean area similarity "
            f"{figures['mean_area_similarity']:.3f}.")
        report_path = write_report(self.parameterAsFileOutput(parameters, "REPORT", context),
                                   dict(figures, patches=[vars(p) for p in scores.patches]))
        style_when_loaded(context, sink_id, "Patch scores", style_patch_scores)
        outputs = {"OUTPUT": sink_id, **{name: figures[key] for name, _, key in FIGURES}}
        if report_path:
            outputs["REPORT"] = report_path
        return outputs
