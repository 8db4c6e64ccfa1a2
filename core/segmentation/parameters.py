"""Segmentation parameters estimated the way seed 003 does it (§2.2.3, SPEC §5.1).

1. Shape and compactness: a grid search over 0.1 … 0.9 each at a preset scale (the paper's 50).
   Every combination segments the image; for each reference patch the segments that lie mostly
   inside it (more than half their area) are merged, and the relative area difference
   |A_merged − A_ref| / A_ref is averaged over the patches. The smallest mean wins.
2. Scale: ESP2 (Drăguţ et al. 2014). Segment bottom-up at increasing scales, each level merging
   the one below (as eCognition's hierarchy). Local variance LV = mean standard deviation of the
   objects; its rate of change ROC_L = (LV_L − LV_{L−1}) / LV_{L−1} · 100. Where ROC peaks, LV
   stops rising faster: the objects there best match real objects. Among those peaks the paper
   prefers the one whose segments fill the reference patches most completely, which is the same
   area-difference score as step 1.
"""
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import numpy as np

from ..errors import MineSARError
from ..progress import SILENT, Progress
from .mrs import DEFAULT_TILE, MRSParameters, Segmentation, segment

GRID = tuple(round(0.1 * i, 1) for i in range(1, 10))


def area_difference(labels: np.ndarray, reference: np.ndarray) -> float:
    """Mean over reference patches of |A_merged − A_ref| / A_ref, where A_merged is the area of the
    segments lying more than half inside the patch (no such segment: a difference of 1)."""
    ids = reference.ravel().astype(np.int64)
    flat = labels.ravel().astype(np.int64)
    patches = np.unique(ids[ids > 0])
    if patches.size == 0:
        raise MineSARError("The reference patches cover no pixel of the image.")
    size = np.bincount(flat)
    inside = ids > 0
    pairs, overlap = np.unique(flat[inside] * (ids.max() + 1) + ids[inside], return_counts=True)
    segment_id, patch_id = np.divmod(pairs, ids.max() + 1)
    mostly = overlap > 0.5 * size[segment_id]
    merged = np.bincount(patch_id[mostly], weights=size[segment_id[mostly]], minlength=ids.max() + 1)
    reference_area = np.bincount(ids, minlength=ids.max() + 1)
    return float(np.mean(np.abs(merged[patches] - reference_area[patches]) / reference_area[patches]))


@dataclass
class GridResult:
    shape: float
    compactness: float
    table: List[dict] = field(default_factory=list)  # shape, compactness, area_difference, segments


def grid_search(image: np.ndarray, reference: np.ndarray, scale: float = 50.0, shapes: Sequence[float] = GRID,
                compactnesses: Sequence[float] = GRID, weights: Optional[Sequence[float]] = None,
                tile: int = DEFAULT_TILE, progress: Progress = SILENT) -> GridResult:
    combinations = [(s, c) for s in shapes for c in compactnesses]
    if not combinations:
        raise MineSARError("Give at least one shape and one compactness value to try.")
    table = []
    for index, (shape, compactness) in enumerate(combinations):
        progress.update(index / len(combinations))
        params = MRSParameters(scale=scale, shape=shape, compactness=compactness, weights=weights)
        result = segment(image, params, tile=tile)
        table.append({"shape": shape, "compactness": compactness, "segments": result.count,
                      "area_difference": area_difference(result.labels, reference)})
    best = min(table, key=lambda row: (row["area_difference"], row["segments"]))
    return GridResult(best["shape"], best["compactness"], table)


@dataclass
class ScaleResult:
    scale: float
    candidates: List[float]
    table: List[dict] = field(default_factory=list)  # scale, local_variance, roc, segments, area_difference


def estimate_scale(image: np.ndarray, reference: Optional[np.ndarray], shape: float, compactness: float,
                   scales: Sequence[float], weights: Optional[Sequence[float]] = None, tile: int = DEFAULT_TILE,
                   progress: Progress = SILENT,
                   on_level: Optional[Callable[[float, Segmentation], None]] = None) -> ScaleResult:
    scales = sorted(float(s) for s in scales)
    if len(scales) < 3:
        raise MineSARError("ESP2 needs at least three scales to find a peak of the rate of change.")
    table = []
    level = None
    for index, scale in enumerate(scales):
        progress.update(index / len(scales))
        params = MRSParameters(scale=scale, shape=shape, compactness=compactness, weights=weights)
        level = segment(image, params, tile=tile) if level is None else level.coarser(params)
        row = {"scale": scale, "local_variance": level.local_variance(), "segments": level.count, "roc": None}
        if table and table[-1]["local_variance"] > 0:
            previous = table[-1]["local_variance"]
            row["roc"] = (row["local_variance"] - previous) / previous * 100.0
        if reference is not None:
            row["area_difference"] = area_difference(level.labels, reference)
        if on_level is not None:
            on_level(scale, level)
        table.append(row)
    # No rate of change (the first level, or after a level of zero variance) is never a peak.
    roc = [float("nan") if row["roc"] is None else row["roc"] for row in table]
    # A peak: ROC higher than at the scale before and not lower than at the scale after.
    peaks = [i for i in range(2, len(table) - 1) if roc[i] > roc[i - 1] and roc[i] >= roc[i + 1]]
    candidates = [table[i]["scale"] for i in peaks] or [row["scale"] for row in table[1:]]
    if reference is not None:
        chosen = min((row for row in table if row["scale"] in candidates),
                     key=lambda row: (row["area_difference"], row["segments"]))
    else:
        chosen = next(row for row in table if row["scale"] == candidates[0])
    return ScaleResult(chosen["scale"], candidates, table)
