"""minesar:evaluatemodel: score a detector checkpoint on a dataset split (the papers' metrics)."""
import math

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
from .base import MineSARAlgorithm, progress_for, require_torch, user_errors

class EvaluateModelAlgorithm(MineSARAlgorithm):
    _name = "evaluatemodel"
    _display_name = "Evaluate subsidence detector"
    _group_id = "detection"
    _help = (
        "Runs a detector checkpoint (MODEL: a .pt file from 'Train subsidence detector', or the name of a "
        "shipped model: maskrcnn, maskrcnn_light, yolobasin) over the SPLIT of DATASET and scores it as the "
        "papers do.\n\n"
        "Predictions scoring at least SCORE_THRESHOLD are matched to the truth basins greedily by score at "
        "IoU ≥ IOU_THRESHOLD (mask IoU for Mask R-CNN, box IoU for box-only detectors): precision P = "
        "TP/(TP+FP), recall R = TP/(TP+FN), F1, accuracy A = TP/(TP+FP+FN) (seed 001). Pixels: PA, MPA and "
        "MIoU over background and subsidence, from the union of predicted masks (filled boxes for box-only "
        "detectors). AP50 … AP95 and mAP: COCO 101-point interpolated average precision over all "
        "predictions, ranked by score. BASIN_RULE applies the basin-level rule instead: IoU ≥ 0.25 and "
        "basins shallower than 8 mm neither missed nor false alarms when found. Detection rates per band "
        "of peak subsidence (1–150 mm) give the minimum detectable subsidence.\n\n"
        "OUTPUT: a table (metric, value); REPORT: the same with the settings as JSON (or HTML if named "
        ".html)."
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
        self.addParameter(number("SCORE_THRESHOLD", "Score threshold", type=number.Double, minValue=0.0,
                                 maxValue=1.0, defaultValue=0.5))
        self.addParameter(number("IOU_THRESHOLD", "IoU threshold for a match", type=number.Double, minValue=0.01,
                                 maxValue=1.0, defaultValue=0.5))
        rule = QgsProcessingParameterBoolean(
            "BASIN_RULE", "Basin-level rule (IoU ≥ 0.25, basins under 8 mm ignored)", defaultValue=False)
        rule.setFlags(rule.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(rule)
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
        from ..models.checkpoint import checkpoint_for, load_detector
        from ..models.data import open_dataset
        from ..models.device import resolve_device
        from ..models.evaluation import BASIN_RULE, evaluate_model, metric_rows, write_report
        model_name = self.parameterAsFile(parameters, "MODEL", context).strip()
        folder = self.parameterAsFile(parameters, "DATASET", context)
        split = self.parameterAsEnumString(parameters, "SPLIT", context) or "test"
        options = {"score_threshold": self.parameterAsDouble(parameters, "SCORE_THRESHOLD", context),
                   "iou_threshold": self.parameterAsDouble(parameters, "IOU_THRESHOLD", context)}
        if self.parameterAsBool(parameters, "BASIN_RULE", context):
            options.update(BASIN_RULE)
        with user_errors():
            device = resolve_device(self.parameterAsString(parameters, "DEVICE", context))
            path = checkpoint_for(model_name)
            index = open_dataset(folder)
            if not index.images(split):
                raise QgsProcessingException(f"{folder}: the dataset has no images in the '{split}' split.")
            model, metadata = load_detector(path, device)
            feedback.pushInfo(f"{metadata.get('training', {}).get('dataset', '?')}-trained {model.architecture} "
                              f"from {path}, on {len(index.images(split))} '{split}' images, {device}.")
            metrics = evaluate_model(model, folder, split, device=device,
                                     batch_size=self.parameterAsInt(parameters, "BATCH_SIZE", context),
                                     progress=progress_for(feedback), **options)

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
        feedback.pushInfo(f"IoU: {metrics['iou_type']}, score ≥ {metrics['score_threshold']:g}, IoU ≥ "
                          f"{metrics['iou_threshold']:g}\n" + "\n".join(lines))

        report_path = self.parameterAsFileOutput(parameters, "REPORT", context)
        report = {"model": path, "architecture": model.architecture, "dataset": folder, "split": split,
                  "device": str(device), "model_metadata": metadata, "metrics": metrics}
        if report_path:
            write_report(report_path, report)
        results = {"OUTPUT": sink_id, "REPORT": report_path}
        for name in ("precision", "recall", "F1", "mAP", "MIoU"):
            results[name.upper()] = metrics[name]
        return results
