"""minesar:evaluatemodel: score a detector or segmenter checkpoint on a dataset split (the papers' metrics)."""
import math
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
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.dataset.layout import SPLITS
from .base import MineSARAlgorithm, decision_threshold, progress_for, require_torch, user_errors


class EvaluateModelAlgorithm(MineSARAlgorithm):
    _name = "evaluatemodel"
    _display_name = "Evaluate model"
    _group_id = "detection"
    _help = (
        "Runs a checkpoint (MODEL: a .pt file from 'Train model', or the name of a shipped model: "
        "maskrcnn, maskrcnn_light, yolobasin, …) over the SPLIT of DATASET and scores it as the papers "
        "do. What is scored follows the checkpoint's task.\n\n"
        "Detectors: predictions scoring at least SCORE_THRESHOLD are matched to the truth basins greedily "
        "by score at IoU ≥ IOU_THRESHOLD (mask IoU for Mask R-CNN, box IoU for box-only detectors): "
        "precision P = TP/(TP+FP), recall R = TP/(TP+FN), F1, accuracy A = TP/(TP+FP+FN) (seed 001). "
        "Pixels: PA, MPA and MIoU over background and subsidence, from the union of predicted masks "
        "(filled boxes for box-only detectors). AP50 … AP95 and mAP: COCO 101-point interpolated average "
        "precision over all predictions, ranked by score. BASIN_RULE applies the basin-level rule instead: "
        "IoU ≥ 0.25 and basins shallower than 8 mm neither missed nor false alarms when found. Detection "
        "rates per band of peak subsidence (1–150 mm) give the minimum detectable subsidence.\n\n"
        "Segmenters (ecaunet, unet, fcn8s/16s/32s, pspnet, deeplabv3, minepatch, minepatch_light): a "
        "pixel is positive where the probability is at least SCORE_THRESHOLD. Seed 000's metrics: PA, "
        "MIoU, IoU_background, IoU_subsidence (the positive class: mine patch for the optical networks) "
        "and the training time from the checkpoint; also MPA and the positive class's pixel precision, "
        "recall and F1. On an interferogram dataset, the basin level too, always by the basin-level rule "
        "(IOU_THRESHOLD and BASIN_RULE do not apply): each connected region of positive pixels is one "
        "prediction, matching a truth basin at IoU ≥ 0.25, basins shallower than 8 mm ignored. Under the "
        "basin-level rule the pixel scores come a second time, named *_counted (PA_counted, MIoU_counted, "
        "IoU_subsidence_counted, …): the pixels that only basins shallower than 8 mm cover are left out, "
        "neither subsidence nor background. A simulated basin's truth reaches out to 10 % of its depth, so "
        "a 3 mm basin labels ground that no one can see under a few mm of atmosphere. Mine-patch "
        "networks read a folder of optical scenes, tiled as in training and scaled with the checkpoint's "
        "percentiles; every pixel is counted once.\n\n"
        "SCORE_THRESHOLD left empty is the checkpoint's own threshold: the one minesar:trainmodel chose on "
        "the val split for the best basin-level F1 (for detectors with mirrored views, as detectsubsidence "
        "runs by default; advanced MIRROR makes this evaluation see them so too), else 0.5. MIRROR (off by "
        "default as in the papers): each image is also seen mirrored and the two answers fused, as "
        "detectsubsidence and segmentsubsidence do (boxes fused for detectors, probabilities averaged "
        "for segmenters). TURNS (segmenters; off by default): each image is also seen turned by one, two "
        "and three quarter turns, with MIRROR all eight views averaged, as segmentsubsidence does by default.\n\n"
        "OUTPUT: a table (metric, value); REPORT: the same with the settings as JSON (or HTML if named "
        "\".html\"). PRECISION, RECALL, F1: basin level for detectors and subsidence segmenters, pixel level "
        "for mine-patch networks."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        number = QgsProcessingParameterNumber
        # "All files" too: a shipped model's name (no .pt) must pass the parameter check.
        self.addParameter(QgsProcessingParameterFile("MODEL", "Model checkpoint (.pt) or shipped model name",
                                                     fileFilter="PyTorch checkpoint (*.pt);;All files (*)"))
        self.addParameter(QgsProcessingParameterFile("DATASET", "Dataset folder",
                                                     behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterEnum("SPLIT", "Split", options=list(SPLITS), defaultValue="test",
                                                     usesStaticStrings=True))
        self.addParameter(number("SCORE_THRESHOLD", "Score threshold (segmenters: probability; empty: the model's "
                                 "own)", type=number.Double, minValue=0.0, maxValue=1.0, optional=True))
        self.addParameter(number("IOU_THRESHOLD", "IoU threshold for a match", type=number.Double, minValue=0.01,
                                 maxValue=1.0, defaultValue=0.5))
        rule = QgsProcessingParameterBoolean(
            "BASIN_RULE", "Basin-level rule (IoU ≥ 0.25, basins under 8 mm ignored)", defaultValue=False)
        rule.setFlags(rule.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(rule)
        mirror = QgsProcessingParameterBoolean(
            "MIRROR", "Also see each image mirrored, as detectsubsidence and segmentsubsidence do by default",
            defaultValue=False)
        mirror.setFlags(mirror.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(mirror)
        turns = QgsProcessingParameterBoolean(
            "TURNS", "Segmenters: also see each image turned by quarter turns, as segmentsubsidence does by default",
            defaultValue=False)
        turns.setFlags(turns.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(turns)
        self.addParameter(QgsProcessingParameterString("DEVICE", "Device (auto, cpu, cuda, cuda:N)",
                                                       defaultValue="auto"))
        batch = number("BATCH_SIZE", "Batch size", type=number.Integer, minValue=1, defaultValue=4)
        batch.setFlags(batch.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(batch)
        self.addParameter(QgsProcessingParameterFeatureSink("OUTPUT", "Metrics", QgsProcessing.TypeVector))
        self.addParameter(QgsProcessingParameterFileDestination("REPORT", "Report",
                                                                fileFilter="JSON (*.json);;HTML (*.html)"))
        for name in ("precision", "recall", "F1", "mAP", "MIoU"):
            self.addOutput(QgsProcessingOutputNumber(name.upper(), name))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        require_torch("Evaluation")
        from ..models.checkpoint import checkpoint_for, load_model
        from ..models.device import resolve_device
        from ..models.evaluation import BASIN_RULE, evaluate_model, evaluate_segmenter, metric_rows, write_report
        model_name = self.parameterAsFile(parameters, "MODEL", context).strip()
        folder = self.parameterAsFile(parameters, "DATASET", context)
        split = self.parameterAsEnumString(parameters, "SPLIT", context) or "test"
        options = {"iou_threshold": self.parameterAsDouble(parameters, "IOU_THRESHOLD", context)}
        if self.parameterAsBool(parameters, "BASIN_RULE", context):
            options.update(BASIN_RULE)
        batch_size = self.parameterAsInt(parameters, "BATCH_SIZE", context)
        with user_errors(self):
            device = resolve_device(self.parameterAsString(parameters, "DEVICE", context))
            path = checkpoint_for(model_name)
            if not folder or not os.path.isdir(folder):  # before the model: which folder it needs is no matter
                raise QgsProcessingException(f"{folder}: dataset folder not found.")
            model, metadata = load_model(path, device)
            score_threshold, _ = decision_threshold(self, parameters, "SCORE_THRESHOLD", context, metadata)
            options["score_threshold"] = score_threshold
            segmenter = getattr(model, "task", "detection") == "segmentation"
            optical = segmenter and model.input_kind == "optical"
            if not segmenter and self.parameterAsBool(parameters, "TURNS", context):
                raise QgsProcessingException(f"{path}: TURNS is for segmenters; a detector is seen as it is or with "
                                             "MIRROR.")
            count = self._split_size(folder, split, optical)
            feedback.pushInfo(f"{metadata.get('training', {}).get('dataset', '?')}-trained {model.architecture} "
                              f"from {path}, on {count} '{split}' {'scenes' if optical else 'images'}, {device}.")
            if segmenter:
                metrics = evaluate_segmenter(model, folder, split, device=device, batch_size=batch_size,
                                             threshold=score_threshold,
                                             normalisation=metadata.get("normalisation") if optical else None,
                                             progress=progress_for(feedback), tile_size=metadata.get("tile_size"),
                                             mirror=self.parameterAsBool(parameters, "MIRROR", context),
                                             turns=self.parameterAsBool(parameters, "TURNS", context))
                metrics["training_time_s"] = metadata.get("training", {}).get("wall_time_s")
            else:
                metrics = evaluate_model(model, folder, split, device=device, batch_size=batch_size,
                                         progress=progress_for(feedback),
                                         mirror=self.parameterAsBool(parameters, "MIRROR", context), **options)

        fields = QgsFields()
        fields.append(QgsField("metric", QVariant.String))
        fields.append(QgsField("value", QVariant.Double))
        sink, sink_id = self.create_sink(parameters, "OUTPUT", context, fields, QgsWkbTypes.NoGeometry,
                                         QgsCoordinateReferenceSystem())
        lines = []
        for name, value in metric_rows(metrics):
            feature = QgsFeature(fields)
            number = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
            feature.setAttributes([name, number])
            sink.addFeature(feature, QgsFeatureSink.FastInsert)
            lines.append(f"{name:>28}: {'n/a' if number is None else f'{number:.4f}'}")
        seen = "; each image also seen mirrored" if metrics.get("mirror") else ""
        if segmenter:
            rule = (f"basins: IoU ≥ {metrics['iou_threshold']:g}, under {metrics['ignore_below_mm']:g} mm ignored"
                    if "iou_threshold" in metrics else "pixels only")
            feedback.pushInfo(f"probability ≥ {metrics['threshold']:g}; {rule}{seen}\n" + "\n".join(lines))
        else:
            feedback.pushInfo(f"IoU: {metrics['iou_type']}, score ≥ {metrics['score_threshold']:g}, IoU ≥ "
                              f"{metrics['iou_threshold']:g}{seen}\n" + "\n".join(lines))

        report_path = self.parameterAsFileOutput(parameters, "REPORT", context)
        task = metadata.get("task", getattr(model, "task", "detection"))
        report = {"model": path, "architecture": model.architecture, "task": task, "dataset": folder, "split": split,
                  "device": str(device), "model_metadata": metadata, "metrics": metrics}
        if report_path:
            write_report(report_path, report)
        results = {"OUTPUT": sink_id, "REPORT": report_path}
        for name in ("precision", "recall", "F1", "mAP", "MIoU"):
            value = metrics.get(name, float("nan"))
            if segmenter and optical and name in ("precision", "recall", "F1"):
                value = metrics[f"pixel_{name}"]
            results[name.upper()] = value
        return results

    @staticmethod
    def _split_size(folder, split, optical) -> int:
        """Images (scenes) in the split; a clear error when there are none."""
        if optical:
            from ..models.optical_data import OpticalFolder

            count = len(OpticalFolder(folder).scenes(split))
        else:
            from ..models.data import open_dataset

            count = len(open_dataset(folder).images(split))
        if not count:
            raise QgsProcessingException(f"{folder}: the dataset has no images in the '{split}' split.")
        return count
