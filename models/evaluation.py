"""The papers' detection and segmentation scores, from predictions and truth per image.

Counting (numpy only, usable without torch): ``DetectionEvaluator.add(prediction, truth)`` per
image, ``result()`` at the end. ``evaluate_model`` runs a detector over a dataset split into it.

Definitions (TP, FP, FN counted over the whole split at SCORE_THRESHOLD and IOU_THRESHOLD):
    precision P = TP / (TP + FP)          recall R = TP / (TP + FN)
    F1 = 2PR / (P + R)                    accuracy A = TP / (TP + FP + FN)   (seed 001)
Pixels (union of the kept predictions' masks at probability 0.5, or their filled boxes for a
box-only detector, against the union of the truth masks; background and subsidence classes):
    PA = correct / all                    MPA = mean over the two classes of correct / class pixels
    MIoU = mean over the two classes of |pred ∩ truth| / |pred ∪ truth|
AP at IoU t (COCO style): all predictions ranked by score, matched greedily per image, precision
made monotone and read at 101 recall points 0, 0.01 … 1. AP50, AP55 … AP95 and their mean mAP.
Matching uses mask IoU when prediction and truth both have masks, else box IoU (``iou_type``).

"Ignored" truths (peak subsidence below ``ignore_below_mm``, the issue's basin-level rule) are not
misses when undetected, and a prediction matching one is neither a TP nor a false alarm. The pixel
scores are given a second time under the same rule, with the suffix ``_counted``: the pixels that
only ignored basins cover are left out, as neither truth nor background. The truth reaches out to
10 % of a basin's depth, so a 3 mm basin labels a wide area no one can see under several mm of
atmosphere; the papers' hand-drawn labels hold only the basins their authors could see.

Segmenters (``SegmentationEvaluator``, ``evaluate_segmenter``): the same pixel scores from the
map of probability ≥ threshold (seed 000: PA, MIoU, IoU of background and of subsidence, i.e. of
the positive class, mine patch for optical networks), pixel precision/recall/F1 of the positive
class, and on interferogram datasets the basin level: each 8-connected region of the map is one
prediction, matched as above under BASIN_RULE.
"""
import html
import json
import math
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..core.reports import json_safe, write_text_atomically

AP_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_IOU_THRESHOLD = 0.5
DEPTH_BINS_MM = (1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0)
# The basin-level rule: polygon (mask) IoU ≥ 0.25, basins shallower than 8 mm ignored.
BASIN_RULE = {"iou_threshold": 0.25, "iou_type": "mask", "ignore_below_mm": 8.0}
MASK_PROBABILITY = 0.5


def _numpy(value) -> np.ndarray:
    if value is None:
        return None
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] IoU of xyxy boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] IoU of boolean masks [K, H, W]."""
    a, b = np.asarray(a), np.asarray(b)
    # Explicit pixel count: reshape(0, -1) cannot infer it for an empty stack.
    a = a.reshape(len(a), int(np.prod(a.shape[1:]))).astype(np.float32)
    b = b.reshape(len(b), int(np.prod(b.shape[1:]))).astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match(scores: np.ndarray, iou: np.ndarray, threshold: float, ignored: np.ndarray):
    """Greedy matching by decreasing score, as COCO does within an image.

    Returns (outcome per prediction: 1 TP, 0 FP, -1 matched an ignored truth; truth matched flags).
    A prediction takes the best-overlapping unmatched counted truth; only failing that may it fall
    on an ignored one (which any number of predictions may share, like a COCO crowd region).
    """
    outcome = np.zeros(len(scores), dtype=np.int8)
    matched = np.zeros(iou.shape[1], dtype=bool)
    for p in np.argsort(-scores, kind="stable"):
        if iou.shape[1] == 0:
            break
        overlaps = iou[p]
        free = (~matched) & (~ignored) & (overlaps >= threshold)
        if free.any():
            t = int(np.argmax(np.where(free, overlaps, -1.0)))
            matched[t] = True
            outcome[p] = 1
            continue
        shadow = ignored & (overlaps >= threshold)
        if shadow.any():
            matched[int(np.argmax(np.where(shadow, overlaps, -1.0)))] = True
            outcome[p] = -1
    return outcome, matched


def average_precision(scores: Sequence[float], outcomes: Sequence[int], truth_count: int) -> float:
    """COCO 101-point interpolated AP; ``outcomes`` 1 TP / 0 FP / -1 ignored. NaN without truth."""
    if truth_count == 0:
        return float("nan")
    scores = np.asarray(scores, dtype=np.float64)
    outcomes = np.asarray(outcomes)
    keep = outcomes >= 0
    scores, outcomes = scores[keep], outcomes[keep]
    if scores.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(outcomes[order] == 1)
    fp = np.cumsum(outcomes[order] == 0)
    recall = tp / truth_count
    precision = tp / np.maximum(tp + fp, 1)
    # Monotone envelope: the best precision reachable at this recall or beyond.
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    positions = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(positions < len(precision), precision[np.minimum(positions, len(precision) - 1)], 0.0)
    return float(sampled.mean())


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def confusion(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """[truth class, predicted class] pixel counts of two boolean maps (of the pixels to count)."""
    return np.array([[np.sum(~truth & ~predicted), np.sum(~truth & predicted)],
                     [np.sum(truth & ~predicted), np.sum(truth & predicted)]], dtype=np.int64)


def pixel_scores(pixels: np.ndarray, suffix: str = "") -> Dict:
    """PA, MPA, IoU of background and of the positive class, MIoU from a confusion matrix."""
    (tn, fpx), (fnx, tpx) = pixels
    total = pixels.sum()
    class_accuracy = [_ratio(tn, tn + fpx), _ratio(tpx, tpx + fnx)]
    class_iou = [_ratio(tn, tn + fpx + fnx), _ratio(tpx, tpx + fpx + fnx)]
    scores = {
        "PA": _ratio(tn + tpx, total),
        "MPA": float(np.nanmean(class_accuracy)) if total else float("nan"),
        "IoU_background": class_iou[0], "IoU_subsidence": class_iou[1],
        "MIoU": float(np.nanmean(class_iou)) if total else float("nan"),
    }
    return {name + suffix: value for name, value in scores.items()}


def only_ignored(truth_masks: np.ndarray, ignored: np.ndarray) -> Optional[np.ndarray]:
    """The pixels that ignored truths cover and no counted truth does; None when none is ignored."""
    if not ignored.any():
        return None
    shallow = truth_masks[ignored].any(axis=0)
    return shallow & ~truth_masks[~ignored].any(axis=0) if (~ignored).any() else shallow


class DetectionEvaluator:
    """Accumulates matches image by image, so a split's masks never all sit in memory."""

    def __init__(self, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                 iou_threshold: float = DEFAULT_IOU_THRESHOLD, iou_type: str = "auto",
                 ignore_below_mm: Optional[float] = None, depth_bins_mm: Sequence[float] = DEPTH_BINS_MM):
        if iou_type not in ("auto", "mask", "box"):
            raise ValueError(f"iou_type '{iou_type}': use auto, mask or box.")
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.iou_type = iou_type
        self.ignore_below_mm = ignore_below_mm
        self.depth_bins_mm = tuple(depth_bins_mm)
        self.used_types = set()
        self.images = 0
        self.tp = self.fp = self.fn = self.ignored_matches = self.ignored_truths = 0
        self.pixels = np.zeros((2, 2), dtype=np.int64)  # [truth class, predicted class]
        self.counted_pixels = np.zeros((2, 2), dtype=np.int64)  # less the pixels of ignored truths alone
        self.ap_scores: List[float] = []
        self.ap_outcomes = {t: [] for t in AP_THRESHOLDS}
        self.counted_truths = 0
        self.depths: List[float] = []
        self.detected: List[bool] = []

    def add(self, prediction: Dict, truth: Dict, image_shape=None) -> None:
        """One image: ``prediction`` boxes/scores(/masks probabilities), ``truth`` boxes(/masks)
        (/depth_mm). Tensors or arrays."""
        boxes = _numpy(prediction.get("boxes")).reshape(-1, 4)
        scores = _numpy(prediction.get("scores")).reshape(-1).astype(np.float64)
        pred_masks = _numpy(prediction.get("masks"))
        truth_boxes = _numpy(truth.get("boxes")).reshape(-1, 4)
        truth_masks = _numpy(truth.get("masks"))
        depths = _numpy(truth.get("depth_mm"))
        depths = np.full(len(truth_boxes), np.nan) if depths is None else depths.astype(np.float64).reshape(-1)
        if image_shape is None:
            for masks in (truth_masks, pred_masks):
                if masks is not None and masks.ndim == 3:
                    image_shape = masks.shape[1:]
                    break
        pred_binary = pred_masks >= MASK_PROBABILITY if pred_masks is not None else None
        truth_binary = truth_masks.astype(bool) if truth_masks is not None else None

        kind = self.iou_type
        if kind == "auto":
            kind = "mask" if pred_binary is not None and truth_binary is not None else "box"
        if kind == "mask" and (pred_binary is None or truth_binary is None):
            kind = "box"  # a box-only detector can only be scored by boxes
        self.used_types.add(kind)
        iou = mask_iou(pred_binary, truth_binary) if kind == "mask" else box_iou(boxes, truth_boxes)
        iou = iou.reshape(len(scores), len(truth_boxes))
        ignored = np.zeros(len(truth_boxes), dtype=bool)
        if self.ignore_below_mm is not None:
            ignored = np.nan_to_num(depths, nan=np.inf) < self.ignore_below_mm

        self.images += 1
        self.counted_truths += int((~ignored).sum())
        self.ignored_truths += int(ignored.sum())
        self.ap_scores.extend(scores.tolist())
        for threshold in AP_THRESHOLDS:
            outcome, _ = match(scores, iou, threshold, ignored)
            self.ap_outcomes[threshold].extend(outcome.tolist())

        kept = scores >= self.score_threshold
        outcome, matched = match(scores[kept], iou[kept], self.iou_threshold, ignored)
        self.tp += int((outcome == 1).sum())
        self.fp += int((outcome == 0).sum())
        self.ignored_matches += int((outcome == -1).sum())
        self.fn += int((~matched & ~ignored).sum())
        self.depths.extend(depths.tolist())
        self.detected.extend(matched.tolist())

        if image_shape is not None:
            self._add_pixels(boxes[kept], pred_binary[kept] if pred_binary is not None else None,
                             truth_boxes, truth_binary, tuple(image_shape), ignored)

    def _add_pixels(self, boxes, pred_binary, truth_boxes, truth_binary, shape, ignored) -> None:
        predicted = np.zeros(shape, dtype=bool)
        if pred_binary is not None:
            if len(pred_binary):
                predicted = pred_binary.any(axis=0)
        else:
            for x1, y1, x2, y2 in boxes:  # box-only: the filled box (pixel centres inside it)
                predicted[max(0, int(math.ceil(y1 - 0.5))):max(0, int(math.ceil(y2 - 0.5))),
                          max(0, int(math.ceil(x1 - 0.5))):max(0, int(math.ceil(x2 - 0.5)))] = True
        if truth_binary is None:
            truth_binary = np.zeros((len(truth_boxes),) + shape, dtype=bool)
            for k, (x1, y1, x2, y2) in enumerate(truth_boxes):
                truth_binary[k, int(round(y1)):int(round(y2)), int(round(x1)):int(round(x2))] = True
        truth = truth_binary.any(axis=0) if len(truth_binary) else np.zeros(shape, dtype=bool)
        pixels = confusion(truth, predicted)
        self.pixels += pixels
        uncounted = only_ignored(truth_binary, ignored)
        self.counted_pixels += pixels if uncounted is None else confusion(truth[~uncounted], predicted[~uncounted])

    def depth_rates(self) -> List[Dict]:
        """Share of truth basins detected (matched at the thresholds) per band of peak subsidence."""
        depths = np.asarray(self.depths, dtype=np.float64)
        detected = np.asarray(self.detected, dtype=bool)
        rows = []
        edges = self.depth_bins_mm
        for index, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
            last = index == len(edges) - 2
            inside = (depths >= low) & ((depths <= high) if last else (depths < high))
            count = int(inside.sum())
            rows.append({"low_mm": low, "high_mm": high, "truths": count, "detected": int(detected[inside].sum()),
                         "rate": _ratio(detected[inside].sum(), count)})
        return rows

    def result(self) -> Dict:
        tp, fp, fn = self.tp, self.fp, self.fn
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _ratio(2 * precision * recall, precision + recall) if tp else (0.0 if tp + fp + fn else float("nan"))
        aps = {f"AP{int(round(t * 100))}": average_precision(self.ap_scores, self.ap_outcomes[t],
                                                            self.counted_truths) for t in AP_THRESHOLDS}
        rates = self.depth_rates()
        return {
            "images": self.images,
            "truths": self.counted_truths,
            "ignored_truths": self.ignored_truths,
            "predictions_kept": tp + fp + self.ignored_matches,
            "TP": tp, "FP": fp, "FN": fn, "ignored_matches": self.ignored_matches,
            "precision": precision, "recall": recall, "F1": f1, "accuracy": _ratio(tp, tp + fp + fn),
            **aps,
            "mAP": float(np.mean(list(aps.values()))) if self.counted_truths else float("nan"),
            **pixel_scores(self.pixels),
            **(pixel_scores(self.counted_pixels, "_counted") if self.ignore_below_mm is not None else {}),
            "iou_type": "+".join(sorted(self.used_types)) or self.iou_type,
            "score_threshold": self.score_threshold,
            "iou_threshold": self.iou_threshold,
            "ignore_below_mm": self.ignore_below_mm,
            "min_detectable_mm": minimum_detectable(rates),
            "depth_rates": rates,
        }


def minimum_detectable(rates: List[Dict], share: float = 0.5) -> Optional[float]:
    """Lowest depth from which every populated band is detected at least ``share`` of the time."""
    populated = [row for row in rates if row["truths"]]
    lowest = None
    for row in reversed(populated):
        if row["rate"] < share:
            break
        lowest = row["low_mm"]
    return lowest


def evaluate_model(model, dataset_folder: str, split: str = "test", device="cpu", batch_size: int = 4,
                   progress=None, mirror: bool = False, **evaluator_options) -> Dict:
    """Run ``model.predict`` over a split and score it (``evaluator_options`` go to DetectionEvaluator);
    ``mirror``: each image also seen mirrored and the answers fused (models/augment.py)."""
    from ..core.errors import MineSARError
    from ..core.progress import SILENT
    from .data import SubsidenceDataset

    progress = progress or SILENT
    dataset = SubsidenceDataset(dataset_folder, split, augment=False)
    if len(dataset) == 0:
        raise MineSARError(f"{dataset_folder}: the '{split}' split has no images.")
    evaluator = DetectionEvaluator(**evaluator_options)
    if mirror:
        from .augment import MirroredDetector

        model = MirroredDetector(model)
    for images, predictions, targets in predict_batches(model, dataset, batch_size, device, progress):
        for prediction, target in zip(predictions, targets):
            evaluator.add(prediction, target, image_shape=tuple(images.shape[-2:]))
    result = evaluator.result()
    result["split"] = split
    result["mirror"] = bool(mirror)
    return result


def predict_batches(model, dataset, batch_size, device, progress, predict=None):
    """(images, model.predict(images), targets) batch by batch over ``dataset``, in eval mode, with
    progress and cancel; one loop for detectors and segmenters (``predict``, e.g.
    ``segmenters.segment_maps``, instead of model.predict)."""
    import torch

    from .data import collate

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    model.to(device)
    model.eval()
    done = 0
    with torch.no_grad():
        for images, targets in loader:
            progress.check_cancelled()
            images = images.to(device)
            yield images, (predict(model, images) if predict else model.predict(images)), targets
            done += len(targets)
            progress.update(done / len(dataset))


# --- Segmentation (seed 000's subsidence maps, seed 003's mine patches) ------------------------

def components(binary: np.ndarray):
    """(labels, count) of the 8-connected regions of a boolean map: a basin touching itself only
    diagonally (thin rims at the threshold) stays one prediction."""
    from scipy import ndimage

    return ndimage.label(binary, structure=np.ones((3, 3), dtype=bool))


def component_iou(labels: np.ndarray, count: int, truth_masks: np.ndarray) -> np.ndarray:
    """[count, K] IoU of labelled regions 1..count with truth masks, counted from the labels
    (no [count, H, W] stack: an untrained network's thousands of specks stay cheap)."""
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:].astype(np.float64)
    iou = np.zeros((count, len(truth_masks)), dtype=np.float64)
    for k, mask in enumerate(truth_masks):
        mask = np.asarray(mask, dtype=bool)
        inter = np.bincount(labels[mask], minlength=count + 1)[1:].astype(np.float64)
        union = areas + mask.sum() - inter
        iou[:, k] = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return iou


class SegmentationEvaluator:
    """Pixel scores of probability maps, and with instance truth the basin-level rule
    (``BASIN_RULE``): connected regions of probability ≥ ``threshold`` are the predictions, one
    matches a truth basin at mask IoU ≥ 0.25, basins shallower than 8 mm are ignored."""

    def __init__(self, threshold: float = MASK_PROBABILITY, iou_threshold: float = BASIN_RULE["iou_threshold"],
                 ignore_below_mm: Optional[float] = BASIN_RULE["ignore_below_mm"]):
        self.threshold = float(threshold)
        self.iou_threshold = float(iou_threshold)
        self.ignore_below_mm = ignore_below_mm
        self.pixels = np.zeros((2, 2), dtype=np.int64)  # [truth class, predicted class]
        self.counted_pixels = np.zeros((2, 2), dtype=np.int64)  # less the pixels of ignored truths alone
        self.images = 0
        self.instances = False
        self.predictions = self.truths = self.ignored_truths = 0
        self.tp = self.fp = self.fn = self.ignored_matches = 0

    def add(self, probability, truth_masks=None, semantic=None, depth_mm=None, owned=None, cores=None) -> None:
        """One image: ``probability`` [H, W]; truth as instance masks [K, H, W] (their union is the
        positive class; enables the basin level) or a ``semantic`` map (> 0); ``owned`` [H, W]
        restricts the pixel counts to the pixels this tile owns; a ``cores`` map [H, W] parts
        regions holding several cores (core.segmentation.basin_cores)."""
        probability = _numpy(probability).astype(np.float32)
        predicted = probability >= self.threshold
        masks = _numpy(truth_masks)
        if masks is not None:
            masks = masks.reshape((-1,) + probability.shape).astype(bool)
            truth = masks.any(axis=0)
        elif semantic is not None:
            truth = _numpy(semantic) > 0
        else:
            raise ValueError("Give the truth as instance masks or as a semantic map.")
        counted = np.ones(truth.shape, dtype=bool) if owned is None else _numpy(owned).astype(bool)
        pixels = confusion(truth[counted], predicted[counted])
        self.pixels += pixels
        self.images += 1
        if masks is None:
            self.counted_pixels += pixels
            return

        self.instances = True
        depths = _numpy(depth_mm)
        depths = np.full(len(masks), np.nan) if depths is None else depths.astype(np.float64).reshape(-1)
        ignored = np.zeros(len(masks), dtype=bool)
        if self.ignore_below_mm is not None:
            ignored = np.nan_to_num(depths, nan=np.inf) < self.ignore_below_mm
        uncounted = only_ignored(masks, ignored)
        if uncounted is not None:
            counted = counted & ~uncounted
            pixels = confusion(truth[counted], predicted[counted])
        self.counted_pixels += pixels

        if cores is None:
            labels, count = components(predicted)
        else:
            from ..core.segmentation.basin_cores import split_by_cores

            labels, count = split_by_cores(predicted, _numpy(cores))
        scores = np.zeros(count, dtype=np.float64)
        if count:
            scores = (np.bincount(labels.ravel(), weights=probability.ravel(), minlength=count + 1)[1:]
                      / np.maximum(np.bincount(labels.ravel(), minlength=count + 1)[1:], 1))
        outcome, matched = match(scores, component_iou(labels, count, masks), self.iou_threshold, ignored)
        self.predictions += count
        self.truths += int((~ignored).sum())
        self.ignored_truths += int(ignored.sum())
        self.tp += int((outcome == 1).sum())
        self.fp += int((outcome == 0).sum())
        self.ignored_matches += int((outcome == -1).sum())
        self.fn += int((~matched & ~ignored).sum())

    def result(self) -> Dict:
        (tn, fpx), (fnx, tpx) = self.pixels
        precision, recall = _ratio(tpx, tpx + fpx), _ratio(tpx, tpx + fnx)
        result = {
            "images": self.images,
            "pixels": int(self.pixels.sum()),
            **pixel_scores(self.pixels),
            "pixel_precision": precision, "pixel_recall": recall,
            "pixel_F1": _ratio(2 * tpx, 2 * tpx + fpx + fnx),
            "threshold": self.threshold,
        }
        if self.instances:
            tp, fp, fn = self.tp, self.fp, self.fn
            basin_precision, basin_recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
            result.update({
                "precision": basin_precision, "recall": basin_recall,
                "F1": (_ratio(2 * basin_precision * basin_recall, basin_precision + basin_recall) if tp
                       else (0.0 if tp + fp + fn else float("nan"))),
                "TP": tp, "FP": fp, "FN": fn, "ignored_matches": self.ignored_matches,
                "truths": self.truths, "ignored_truths": self.ignored_truths, "predictions": self.predictions,
                "iou_threshold": self.iou_threshold, "ignore_below_mm": self.ignore_below_mm,
            })
            if self.ignore_below_mm is not None:
                result.update(pixel_scores(self.counted_pixels, "_counted"))
        return result


def evaluate_segmenter(model, folder: str, split: str = "test", device="cpu", batch_size: int = 4,
                       threshold: float = MASK_PROBABILITY, normalisation: Optional[Dict] = None,
                       progress=None, tile_size: Optional[int] = None, mirror: bool = False,
                       use_cores: bool = True, turns: bool = False) -> Dict:
    """Run a segmenter's ``predict`` over a split and score it (``SegmentationEvaluator``).

    Phase networks read an interferogram dataset (whole images; pixels and the basin-level rule).
    Optical networks read a folder of scenes in tiles that share the pixels out (pixels only) and
    need the checkpoint's ``normalisation`` (metadata["normalisation"]); ``tile_size`` defaults to
    256 (pass metadata["tile_size"]). With ``mirror`` each image is also seen mirrored and the two
    probabilities averaged, as segmentsubsidence's MIRROR does; with ``turns`` its quarter turns
    too (TURNS; all eight views with both). A network with ``cores`` has its
    regions split by them, as segmentsubsidence does (``use_cores`` False: not, to see what they add).
    """
    from ..core.errors import MineSARError
    from ..core.progress import SILENT
    from .data import SubsidenceDataset
    from .segmenters import segment_maps

    progress = progress or SILENT
    if getattr(model, "input_kind", "phase") == "optical":
        from .optical_data import TILE_SIZE, OpticalSceneDataset

        if normalisation is None:
            raise MineSARError("An optical network is evaluated with the normalisation it was trained with: "
                               "pass its checkpoint's metadata['normalisation'].")
        dataset = OpticalSceneDataset(folder, split, bands=model.bands, normalisation=normalisation,
                                      tile_size=tile_size or TILE_SIZE, augment=False)
    else:
        dataset = SubsidenceDataset(folder, split, augment=False)
    if len(dataset) == 0:
        raise MineSARError(f"{folder}: the '{split}' split has no images.")
    evaluator = SegmentationEvaluator(threshold=threshold)
    from .augment import segmenter_views

    model = segmenter_views(model, mirror, turns)
    for _, maps, targets in predict_batches(model, dataset, batch_size, device, progress, segment_maps):
        for tile_maps, target in zip(maps.float().cpu().numpy(), targets):
            probability, cores = tile_maps[0], (tile_maps[1] if len(tile_maps) > 1 and use_cores else None)
            if "masks" in target:
                evaluator.add(probability, truth_masks=target["masks"], depth_mm=target.get("depth_mm"), cores=cores)
            else:
                evaluator.add(probability, semantic=target["semantic"], owned=target.get("owned"))
    result = evaluator.result()
    result["task"] = "segmentation"
    result["split"] = split
    result["input_kind"] = getattr(model, "input_kind", "phase")
    result["mirror"] = bool(mirror)
    result["turns"] = bool(turns)
    if result["input_kind"] == "optical":
        result["scenes"] = dataset.scene_count
    return result


# --- Reports: the same figures as table rows, JSON or HTML -----------------------------------

COUNTED_PIXEL_ORDER = ("PA_counted", "MPA_counted", "MIoU_counted", "IoU_background_counted", "IoU_subsidence_counted")
SCALAR_ORDER = ("precision", "recall", "F1", "accuracy", "AP50", "AP55", "AP60", "AP65", "AP70", "AP75", "AP80",
                "AP85", "AP90", "AP95", "mAP", "PA", "MPA", "IoU_background", "IoU_subsidence", "MIoU",
                *COUNTED_PIXEL_ORDER, "TP", "FP", "FN", "ignored_matches", "truths", "ignored_truths", "images",
                "min_detectable_mm")


SEGMENTATION_ORDER = ("PA", "MPA", "MIoU", "IoU_background", "IoU_subsidence", *COUNTED_PIXEL_ORDER,
                      "pixel_precision", "pixel_recall", "pixel_F1", "precision", "recall", "F1", "TP", "FP", "FN",
                      "ignored_matches", "truths", "ignored_truths", "predictions", "images", "scenes", "pixels",
                      "threshold", "training_time_s")


def metric_rows(metrics: dict):
    """(name, value) rows of the table: the scalar metrics, then one detection rate per depth band
    (a detector's); a segmenter's (``task`` "segmentation") the metrics it has, seed 000's first."""
    if metrics.get("task") == "segmentation":
        return [(name, metrics[name]) for name in SEGMENTATION_ORDER if name in metrics]
    rows = [(name, metrics[name]) for name in SCALAR_ORDER if name in metrics]
    for band in metrics.get("depth_rates", []):
        rows.append((f"detection_rate_{band['low_mm']:g}-{band['high_mm']:g}mm", band["rate"]))
        rows.append((f"truths_{band['low_mm']:g}-{band['high_mm']:g}mm", band["truths"]))
    return rows


def write_report(path: str, report: dict) -> None:
    """JSON, or HTML when the name ends in .html/.htm; written beside and renamed (atomic)."""
    if path.lower().endswith((".html", ".htm")):
        def shown(value):
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                return ""
            return f"{value:.4f}" if isinstance(value, float) else str(value)

        cells = "".join(f"<tr><td>{html.escape(str(name))}</td><td>{shown(value)}</td></tr>"
                        for name, value in metric_rows(report["metrics"]))
        settings = html.escape(json.dumps(json_safe({k: v for k, v in report.items() if k != "metrics"}), indent=1))
        text = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>MineSAR evaluation</title></head><body>"
                f"<h1>MineSAR evaluation</h1><pre>{settings}</pre><table border='1'><tr><th>metric</th>"
                f"<th>value</th></tr>{cells}</table></body></html>")
    else:
        text = json.dumps(json_safe(report), indent=1)
    write_text_atomically(path, text)
