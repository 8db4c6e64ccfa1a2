"""The decision threshold a checkpoint carries: the detector score (or segmenter probability) at
which its basin-level F1 on the validation split is best.

A network trained from scratch on simulations does not put its scores where 0.5 is the right cut:
on the held-out set the shipped Mask R-CNN gives F1 0.784 at 0.5 and 0.846 at 0.8, Light YOLO-Basin
is best near 0.5. One fixed default cannot serve both, nor a user's own checkpoint, so training
sweeps the thresholds on the dataset's ``val`` split and stores the best in the metadata
(``score_threshold`` for detectors, ``threshold`` for segmenters); the algorithms use it when the
user leaves the threshold empty.

The choice is the centre of the best run of three neighbouring thresholds (mean F1), not the
single best: a validation set of a few hundred tiles moves F1 by ±0.005 between neighbours, and a
plateau's centre is the value least likely to be on the edge of a cliff.

A detector's box NMS IoU can be chosen the same way (``nms_candidates``; the threshold sweep is run
at each and the best F1 wins). It is stored in the network's own config, so the checkpoint rebuilds
with it. A lower IoU drops more of the near-duplicate boxes that a network trained from scratch
puts around one basin; too low a one drops a neighbouring basin.
"""
import os
from typing import Dict, Optional, Sequence

import numpy as np

from ..core.errors import MineSARError
from ..core.progress import SILENT
from ..core.reports import json_safe
from .evaluation import BASIN_RULE, DetectionEvaluator, SegmentationEvaluator, predict_batches

CANDIDATES = tuple(round(0.05 * step, 2) for step in range(2, 20))  # 0.10, 0.15 … 0.95
NMS_CANDIDATES = (0.3, 0.4, 0.5)
FALLBACK_THRESHOLD = 0.5
METADATA_KEY = {"detection": "score_threshold", "segmentation": "threshold"}


def threshold_of(metadata: Dict) -> float:
    """The threshold a checkpoint's metadata carries for its task, else 0.5."""
    value = metadata.get(METADATA_KEY.get(metadata.get("task", "detection"), "score_threshold"))
    try:
        value = float(value)
    except (TypeError, ValueError):
        return FALLBACK_THRESHOLD
    return value if 0.0 < value < 1.0 else FALLBACK_THRESHOLD


def best_threshold(rows: Sequence[Dict]) -> Dict:
    """The row at the centre of the best three neighbours by mean F1 (rows sorted by threshold);
    at the ends of the sweep the window is the two rows there is."""
    f1 = np.array([row["F1"] if row["F1"] is not None and np.isfinite(row["F1"]) else 0.0 for row in rows],
                  dtype=np.float64)
    if not len(f1):
        raise MineSARError("No thresholds to choose from.")
    smoothed = np.array([f1[max(0, k - 1): k + 2].mean() for k in range(len(f1))])
    # Among equal plateaus the first (lowest threshold, more recall) wins: argmax is stable.
    return rows[int(np.argmax(np.round(smoothed, 6)))]


def sweep_thresholds(model, dataset_folder: str, split: str = "val", device="cpu", batch_size: int = 4,
                     mirror: bool = True, progress=None, candidates: Sequence[float] = CANDIDATES,
                     turns: bool = False) -> Dict:
    """Basin-level precision, recall and F1 of ``model`` on ``split`` at every candidate threshold
    (one pass over the images), and the chosen threshold. Networks are seen as detectsubsidence and
    segmentsubsidence see them by default: with ``mirror`` the tile is also seen mirrored
    (models/augment.py), which halves the score of a basin one view misses, so the threshold is
    chosen for that setting; with ``turns`` (segmenters, segmentsubsidence's TURNS) its quarter
    turns too."""
    from .augment import mirrored, segmenter_views
    from .data import SubsidenceDataset

    progress = progress or SILENT
    task = getattr(model, "task", "detection")
    if task == "segmentation" and getattr(model, "input_kind", "phase") != "phase":
        raise MineSARError("Thresholds are calibrated on interferogram datasets (basins); optical networks keep 0.5.")
    dataset = SubsidenceDataset(dataset_folder, split, augment=False)
    if len(dataset) == 0:
        raise MineSARError(f"{dataset_folder}: the '{split}' split has no images to calibrate the threshold on.")
    if turns and task != "segmentation":
        raise MineSARError("Only segmenters are seen turned; a detector is seen as it is or mirrored.")
    seen = segmenter_views(model, mirror, turns) if task == "segmentation" else (mirrored(model) if mirror else model)
    if task == "detection":
        evaluators = {t: DetectionEvaluator(score_threshold=t, **BASIN_RULE) for t in candidates}
        for images, predictions, targets in predict_batches(seen, dataset, batch_size, device, progress):
            for prediction, target in zip(predictions, targets):
                for evaluator in evaluators.values():
                    evaluator.add(prediction, target, image_shape=tuple(images.shape[-2:]))
    else:
        evaluators = {t: SegmentationEvaluator(threshold=t) for t in candidates}
        from .segmenters import segment_maps

        for _, maps, targets in predict_batches(seen, dataset, batch_size, device, progress, segment_maps):
            for tile_maps, target in zip(maps.float().cpu().numpy(), targets):
                cores = tile_maps[1] if len(tile_maps) > 1 else None
                for evaluator in evaluators.values():
                    evaluator.add(tile_maps[0], truth_masks=target["masks"], depth_mm=target.get("depth_mm"),
                                  cores=cores)
    rows = []
    for threshold, evaluator in sorted(evaluators.items()):
        result = evaluator.result()
        row = {"threshold": threshold, "precision": result["precision"], "recall": result["recall"],
               "F1": result["F1"], "TP": result["TP"], "FP": result["FP"], "FN": result["FN"]}
        if task == "segmentation":
            row["IoU_subsidence"] = result["IoU_subsidence"]
        rows.append(row)
    rows = json_safe(rows)  # NaN (nothing predicted) is null: the metadata stays JSON
    chosen = best_threshold(rows)
    return {"threshold": chosen["threshold"], "F1": chosen["F1"], "precision": chosen["precision"],
            "recall": chosen["recall"], "split": split, "images": len(dataset),
            "dataset": os.path.basename(os.path.normpath(dataset_folder)),  # no machine path in shipped weights
            "criterion": (f"basin-level F1 (IoU ≥ {BASIN_RULE['iou_threshold']:g}, basins under "
                          f"{BASIN_RULE['ignore_below_mm']:g} mm ignored), centre of the best three neighbours"),
            "mirror": bool(mirror), "turns": bool(turns),
            "sweep": rows}


def sweep_nms(model, dataset_folder: str, split: str = "val", device="cpu", batch_size: int = 4,
              progress=None, nms_candidates: Sequence[float] = NMS_CANDIDATES, mirror: bool = True) -> Dict:
    """``sweep_thresholds`` at each box NMS IoU of a detector; the one whose chosen threshold gives
    the best F1 (ties: the highest IoU, the torchvision default's side) is left set on ``model``
    and returned with ``nms_iou`` and, under ``nms_sweep``, each IoU's choice."""
    if getattr(model, "task", "detection") != "detection":
        raise MineSARError("Only detectors have a box NMS IoU to calibrate.")
    progress = progress or SILENT
    candidates = sorted(nms_candidates, reverse=True)
    results = []
    for index, iou in enumerate(candidates):
        model.set_nms_iou(iou)
        span = progress.span(index / len(candidates), (index + 1) / len(candidates))
        results.append((iou, sweep_thresholds(model, dataset_folder, split, device, batch_size, mirror, span)))
    best_iou, best = max(results, key=lambda item: round(item[1]["F1"] or 0.0, 6))
    model.set_nms_iou(best_iou)
    return {**best, "nms_iou": best_iou,
            "nms_sweep": [{"nms_iou": iou, "threshold": r["threshold"], "F1": r["F1"], "precision": r["precision"],
                           "recall": r["recall"]} for iou, r in results]}


def calibrated_metadata(model, dataset_folder: str, device="cpu", batch_size: int = 4, progress=None,
                        split: str = "val", nms_candidates: Optional[Sequence[float]] = None) -> Optional[Dict]:
    """Metadata entries that store the calibrated threshold (the value under its task's key, the
    sweep under ``threshold_calibration``). Without such a split there is nothing; where no
    threshold finds a single basin (an untrained network) only the sweep is kept, as evidence, and
    the threshold stays the default: the lowest candidate would pass every guess. With
    ``nms_candidates`` a detector's box NMS IoU is chosen too (``sweep_nms``) and left set on it:
    save the checkpoint from ``model`` so that its config carries it."""
    from .data import SubsidenceDataset

    if len(SubsidenceDataset(dataset_folder, split, augment=False)) == 0:
        return None
    task = getattr(model, "task", "detection")
    if nms_candidates and task == "detection":
        calibration = sweep_nms(model, dataset_folder, split, device, batch_size, progress, nms_candidates)
    else:
        # As segmentsubsidence sees a segmenter by default: mirrored and turned, eight views.
        calibration = sweep_thresholds(model, dataset_folder, split, device, batch_size, progress=progress,
                                       turns=task == "segmentation")
    if not calibration["F1"]:
        return {"threshold_calibration": {**calibration, "threshold": None}}
    return {METADATA_KEY[task]: calibration["threshold"], "threshold_calibration": calibration}
