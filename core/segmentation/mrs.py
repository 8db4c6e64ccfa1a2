"""Multiresolution segmentation after Baatz & Schäpe (2000), as eCognition and seed 003 use it.

Every pixel starts as a region; regions merge with neighbours while the fusion cost

    f = w_color·h_color + (1 − w_color)·h_shape  <  scale²

with h_color = Σ_b w_b·[n_M·σ_M − (n_1·σ_1 + n_2·σ_2)] and h_shape = w_cmpct·h_cmpct +
(1 − w_cmpct)·h_smooth (SPEC §5.1; eCognition's "shape" = 1 − w_color, "compactness" = w_cmpct).

Written as passes over arrays, never a Python loop per pixel or region: per pass the cost of
every adjacent pair of regions is computed at once, each region picks its best (cheapest)
neighbour, and the pairs that are each other's best merge — Baatz's "mutual best fitting"
rule, applied to all such pairs of a pass together, which is what makes it order-independent
and vectorisable. A pair's cost ties are broken by a seeded random key shared by both ends, so
a flat area still finds many disjoint mutual pairs per pass instead of a chain that merges one
pair at a time. Region statistics are running sums (n, Σx, Σx², perimeter, bounding box), so a
merge is a few additions, and the region adjacency graph is renumbered with ``np.unique``.

Big scenes are cut into tiles segmented one after another; the tiles' regions and the edges that
cross the seams then go through the same passes once more, so a segment cut by a seam is joined
again whenever its halves would have merged (the seams never decide the outcome).
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import numpy as np
from scipy import sparse

from ..errors import MineSARError
from ..progress import SILENT, Progress

DEFAULT_TILE = 512


@dataclass
class MRSParameters:
    scale: float = 79.0
    shape: float = 0.2
    compactness: float = 0.5
    weights: Optional[Sequence[float]] = None  # one per band; None = all 1
    seed: int = 0

    def check(self, bands: Optional[int] = None) -> None:
        problems = []
        if not self.scale > 0:
            problems.append(f"scale {self.scale} must be positive")
        if not 0.0 <= self.shape < 1.0:
            problems.append(f"shape {self.shape} must be in [0, 1) (1 would ignore colour)")
        if not 0.0 <= self.compactness <= 1.0:
            problems.append(f"compactness {self.compactness} must be in [0, 1]")
        if self.weights is not None:
            if bands is not None and len(self.weights) != bands:
                problems.append(f"{len(self.weights)} band weights for {bands} bands")
            if any(w < 0 for w in self.weights) or not any(w > 0 for w in self.weights):
                problems.append("band weights must be non-negative and not all zero")
        if problems:
            raise MineSARError("Segmentation parameters: " + "; ".join(problems) + ".")

    def band_weights(self, bands: int) -> np.ndarray:
        self.check(bands)
        return np.ones(bands) if self.weights is None else np.asarray(self.weights, dtype=np.float64)


@dataclass
class Regions:
    """Running statistics of regions (index = region id) and their adjacency graph."""

    n: np.ndarray  # pixels
    s: np.ndarray  # (R, B) Σx
    ss: np.ndarray  # (R, B) Σx²
    perimeter: np.ndarray  # pixel edges on the region's outline (tile/scene edges included)
    r0: np.ndarray
    r1: np.ndarray
    c0: np.ndarray
    c1: np.ndarray
    ea: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # edge: region a < b
    eb: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    shared: np.ndarray = field(default_factory=lambda: np.empty(0))  # shared boundary length

    @property
    def count(self) -> int:
        return int(self.n.size)

    @property
    def mean(self) -> np.ndarray:
        return self.s / self.n[:, None]

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.clip(self.ss / self.n[:, None] - self.mean**2, 0.0, None))

    @classmethod
    def concatenate(cls, parts: List["Regions"]) -> "Regions":
        offsets = np.cumsum([0] + [p.count for p in parts[:-1]])
        return cls(
            *(np.concatenate([getattr(p, name) for p in parts]) for name in
              ("n", "s", "ss", "perimeter", "r0", "r1", "c0", "c1")),
            ea=np.concatenate([p.ea + o for p, o in zip(parts, offsets)]),
            eb=np.concatenate([p.eb + o for p, o in zip(parts, offsets)]),
            shared=np.concatenate([p.shared for p in parts]),
        )


def pixel_regions(image: np.ndarray, row0: int = 0, col0: int = 0) -> Regions:
    """Every pixel of a (bands, rows, cols) block a region of its own, with its 4-neighbour edges."""
    bands, rows, cols = image.shape
    values = image.reshape(bands, -1).T.astype(np.float64)
    rr, cc = np.divmod(np.arange(rows * cols, dtype=np.int64), cols)
    ids = np.arange(rows * cols, dtype=np.int64).reshape(rows, cols)
    ea = np.concatenate([ids[:, :-1].ravel(), ids[:-1, :].ravel()])
    eb = np.concatenate([ids[:, 1:].ravel(), ids[1:, :].ravel()])
    return Regions(np.ones(rows * cols), values, values**2, np.full(rows * cols, 4.0),
                   (rr + row0).astype(np.int32), (rr + row0).astype(np.int32),
                   (cc + col0).astype(np.int32), (cc + col0).astype(np.int32),
                   ea, eb, np.ones(ea.size))


def _object_terms(n, s, ss, perimeter, bbox_perimeter, weights):
    """Per object: Σ_b w_b·n·σ_b, n·l/√n (= l·√n) and n·l/b — the terms h_color and h_shape difference."""
    variance = np.clip(ss / n[:, None] - (s / n[:, None]) ** 2, 0.0, None)
    colour = n * (np.sqrt(variance) @ weights)
    return colour, perimeter * np.sqrt(n), n * perimeter / bbox_perimeter


def merge_costs(regions: Regions, a: np.ndarray, b: np.ndarray, shared: np.ndarray,
                params: MRSParameters, weights: np.ndarray) -> np.ndarray:
    """The fusion cost f of merging regions a[i] and b[i] (SPEC §5.1)."""
    n, s, ss, perimeter = regions.n, regions.s, regions.ss, regions.perimeter
    bbox = 2.0 * ((regions.r1 - regions.r0 + 1) + (regions.c1 - regions.c0 + 1))
    colour, compact, smooth = _object_terms(n, s, ss, perimeter, bbox, weights)
    n_m = n[a] + n[b]
    l_m = perimeter[a] + perimeter[b] - 2.0 * shared
    b_m = 2.0 * ((np.maximum(regions.r1[a], regions.r1[b]) - np.minimum(regions.r0[a], regions.r0[b]) + 1)
                 + (np.maximum(regions.c1[a], regions.c1[b]) - np.minimum(regions.c0[a], regions.c0[b]) + 1))
    colour_m, compact_m, smooth_m = _object_terms(n_m, s[a] + s[b], ss[a] + ss[b], l_m, b_m, weights)
    w_colour = 1.0 - params.shape
    h_colour = colour_m - colour[a] - colour[b]
    if params.shape == 0.0:
        return h_colour
    h_shape = (params.compactness * (compact_m - compact[a] - compact[b])
               + (1.0 - params.compactness) * (smooth_m - smooth[a] - smooth[b]))
    return w_colour * h_colour + (1.0 - w_colour) * h_shape


def merge_regions(regions: Regions, params: MRSParameters, weights: np.ndarray,
                  on_pass: Optional[Callable[[int, int], None]] = None, max_passes: int = 100_000):
    """Mutual-best-fitting merges in passes until no pair costs less than scale².

    Returns (merged regions, assignment): ``assignment[i]`` is the merged id of input region i.
    """
    threshold = float(params.scale) ** 2
    rng = np.random.default_rng(params.seed)
    assignment = np.arange(regions.count, dtype=np.int64)
    for index in range(max_passes):
        if regions.ea.size == 0:
            break
        cost = merge_costs(regions, regions.ea, regions.eb, regions.shared, params, weights)
        candidates = np.flatnonzero(cost < threshold)
        if candidates.size == 0:
            break
        # Ties (flat areas) broken by a random key both ends of an edge share.
        key = cost[candidates] + rng.random(candidates.size) * (1e-9 * threshold)
        a, b = regions.ea[candidates], regions.eb[candidates]
        lowest = _lowest_per_region(np.concatenate([a, b]), np.concatenate([key, key]), regions.count)
        # An edge both of whose ends have it as their cheapest: a mutual best-fitting pair.
        mutual = (key == lowest[a]) & (key == lowest[b])
        mutual_a, mutual_b, chosen = a[mutual], b[mutual], candidates[mutual]
        # Equal keys (vanishingly rare with the random part) could pair a region twice: keep one pair.
        ends = np.concatenate([mutual_a, mutual_b])
        if ends.size and np.bincount(ends, minlength=regions.count).max() > 1:
            _, first = np.unique(mutual_a, return_index=True)
            keep = np.zeros(mutual_a.size, dtype=bool)
            keep[first] = True
            keep &= ~np.isin(mutual_b, mutual_a[keep]) & ~np.isin(mutual_a, mutual_b)
            mutual_a, mutual_b, chosen = mutual_a[keep], mutual_b[keep], chosen[keep]
        if chosen.size == 0:  # cannot happen with distinct keys; guards against an endless loop
            break
        regions, mapping = _merge_pairs(regions, mutual_a, mutual_b, regions.shared[chosen])
        assignment = mapping[assignment]
        if on_pass is not None:
            on_pass(index, regions.count)
    return regions, assignment


def _lowest_per_region(region: np.ndarray, key: np.ndarray, count: int) -> np.ndarray:
    """min(key) over the entries of each region (+inf where it has none), without a comparison sort:
    scipy's COO → CSR conversion groups the entries by region with a counting sort."""
    grouped = sparse.csr_matrix((key, (region, np.arange(region.size))), shape=(count, region.size))
    lowest = np.full(count, np.inf)
    filled = np.diff(grouped.indptr) > 0
    lowest[filled] = np.minimum.reduceat(grouped.data, grouped.indptr[:-1][filled])
    return lowest


def _merge_pairs(regions: Regions, a: np.ndarray, b: np.ndarray, shared: np.ndarray):
    """Merge disjoint pairs (a[i], b[i]) into a[i]; returns the renumbered regions and the old→new ids."""
    count = regions.count
    keep = np.ones(count, dtype=bool)
    keep[b] = False
    parent = np.arange(count, dtype=np.int64)
    parent[b] = a
    new_id = np.cumsum(keep) - 1
    mapping = new_id[parent]

    n, s, ss, perimeter = regions.n.copy(), regions.s.copy(), regions.ss.copy(), regions.perimeter.copy()
    r0, r1, c0, c1 = regions.r0.copy(), regions.r1.copy(), regions.c0.copy(), regions.c1.copy()
    n[a] += n[b]
    s[a] += s[b]
    ss[a] += ss[b]
    perimeter[a] += perimeter[b] - 2.0 * shared
    r0[a] = np.minimum(r0[a], r0[b])
    c0[a] = np.minimum(c0[a], c0[b])
    r1[a] = np.maximum(r1[a], r1[b])
    c1[a] = np.maximum(c1[a], c1[b])

    ea, eb = mapping[regions.ea], mapping[regions.eb]
    alive = ea != eb
    ea, eb, lengths = ea[alive], eb[alive], regions.shared[alive]
    low, high = np.minimum(ea, eb), np.maximum(ea, eb)
    new_count = int(keep.sum())
    # Edges from both halves of a merged region to one neighbour become one edge: sum their lengths.
    touched = keep.size != new_count
    if touched:
        keys = low * new_count + high
        unique, inverse = np.unique(keys, return_inverse=True)
        lengths = np.bincount(inverse, weights=lengths, minlength=unique.size)
        low, high = np.divmod(unique, new_count)
    merged = Regions(n[keep], s[keep], ss[keep], perimeter[keep], r0[keep], r1[keep], c0[keep], c1[keep],
                     low, high, lengths)
    return merged, mapping


@dataclass
class Segmentation:
    labels: np.ndarray  # (rows, cols) int32 segment id, 0 … count−1
    regions: Regions
    params: MRSParameters
    weights: np.ndarray

    @property
    def count(self) -> int:
        return self.regions.count

    def coarser(self, params: MRSParameters) -> "Segmentation":
        """Continue merging at a larger scale (a level above this one, as eCognition's hierarchy)."""
        regions, assignment = merge_regions(self.regions, params, self.weights)
        return Segmentation(assignment.astype(np.int32)[self.labels], regions, params, self.weights)

    def local_variance(self) -> float:
        """ESP2's local variance: the mean over objects of their (band-weight-averaged) standard deviation."""
        return float(np.mean(self.regions.std @ (self.weights / self.weights.sum())))


def segment(image: np.ndarray, params: MRSParameters, tile: int = DEFAULT_TILE,
            progress: Progress = SILENT, workers: Optional[int] = None) -> Segmentation:
    """Segment a (bands, rows, cols) array held in memory, tile by tile (see ``segment_tiles``)."""
    if image.ndim == 2:
        image = image[None]
    bands, rows, cols = image.shape
    return segment_tiles(lambda row, col, height, width: image[:, row:row + height, col:col + width],
                         rows, cols, bands, params, tile, progress, workers)


def segment_tiles(read: Callable[[int, int, int, int], np.ndarray], rows: int, cols: int, bands: int,
                  params: MRSParameters, tile: int = DEFAULT_TILE, progress: Progress = SILENT,
                  workers: Optional[int] = None) -> Segmentation:
    """Segment a scene read by ``read(row, col, height, width) → (bands, height, width)`` in tiles.

    Each tile is segmented from its pixels; then the tiles' regions, joined by the edges across
    the seams, go through the same merging passes, so seams do not cut segments.
    """
    weights = params.band_weights(bands)
    if rows < 1 or cols < 1:
        raise MineSARError("Nothing to segment: the image is empty.")
    tile = max(16, int(tile))
    labels = np.empty((rows, cols), dtype=np.int32)
    windows = [(r, c, min(tile, rows - r), min(tile, cols - c)) for r in range(0, rows, tile) for c in range(0, cols, tile)]

    lock = threading.Lock()  # a GDAL dataset must not be read from two threads at once

    def run(window):
        row, col, height, width = window
        with lock:
            block = np.asarray(read(row, col, height, width), dtype=np.float64)
        if block.ndim == 2:
            block = block[None]
        if not np.all(np.isfinite(block)):
            block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
        return merge_regions(pixel_regions(block, row, col), params, weights)

    parts: List[Regions] = []
    offset = 0
    # numpy releases the GIL in its sorts and arithmetic, so tiles segment side by side in threads;
    # the GDAL reads are serialised by the caller's reader where it needs that.
    with ThreadPoolExecutor(max_workers=max(1, min(workers or os.cpu_count() or 1, len(windows)))) as pool:
        futures = [pool.submit(run, window) for window in windows]
        try:
            for index, (window, future) in enumerate(zip(windows, futures)):
                progress.update(0.9 * index / len(windows))  # raises Cancelled when the user cancels
                regions, assignment = future.result()
                row, col, height, width = window
                labels[row:row + height, col:col + width] = (assignment + offset).reshape(height, width)
                offset += regions.count
                parts.append(regions)
        except BaseException:
            # A cancel (or an error) must not wait for the tiles still queued.
            for future in futures:
                future.cancel()
            raise
    regions = Regions.concatenate(parts)
    if len(windows) > 1:
        seam_a, seam_b, seam_len = _seam_edges(labels, tile)
        regions.ea = np.concatenate([regions.ea, seam_a])
        regions.eb = np.concatenate([regions.eb, seam_b])
        regions.shared = np.concatenate([regions.shared, seam_len])
        progress.update(0.92)
        regions, assignment = merge_regions(regions, params, weights)
        labels = assignment.astype(np.int32)[labels]
    progress.update(1.0)
    return Segmentation(labels, regions, params, weights)


def _seam_edges(labels: np.ndarray, tile: int):
    """Region pairs facing each other across tile seams, with the length of boundary they share."""
    rows, cols = labels.shape
    left = [labels[:, c - 1] for c in range(tile, cols, tile)]
    right = [labels[:, c] for c in range(tile, cols, tile)]
    top = [labels[r - 1, :] for r in range(tile, rows, tile)]
    bottom = [labels[r, :] for r in range(tile, rows, tile)]
    a = np.concatenate(left + top).astype(np.int64)
    b = np.concatenate(right + bottom).astype(np.int64)
    low, high = np.minimum(a, b), np.maximum(a, b)
    base = int(labels.max()) + 1
    unique, counts = np.unique(low * base + high, return_counts=True)
    low, high = np.divmod(unique, base)
    return low, high, counts.astype(np.float64)


def cost_of_merging(mask_a: np.ndarray, mask_b: np.ndarray, image: np.ndarray, params: MRSParameters) -> float:
    """f for merging two given pixel sets of an image: for tests and for users checking a scale."""
    if image.ndim == 2:
        image = image[None]
    weights = params.band_weights(image.shape[0])
    parts = []
    for mask in (mask_a, mask_b):
        rr, cc = np.nonzero(mask)
        values = image[:, rr, cc].astype(np.float64)
        inside = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), dtype=bool)
        inside[1:-1, 1:-1] = mask
        perimeter = float(np.sum(inside[1:, :] != inside[:-1, :]) + np.sum(inside[:, 1:] != inside[:, :-1]))
        parts.append((rr.size, values.sum(1), (values**2).sum(1), perimeter, rr.min(), rr.max(), cc.min(), cc.max()))
    shared = float(np.sum(mask_a[1:, :] & mask_b[:-1, :]) + np.sum(mask_b[1:, :] & mask_a[:-1, :])
                   + np.sum(mask_a[:, 1:] & mask_b[:, :-1]) + np.sum(mask_b[:, 1:] & mask_a[:, :-1]))
    regions = Regions(np.array([p[0] for p in parts], float), np.array([p[1] for p in parts]),
                      np.array([p[2] for p in parts]), np.array([p[3] for p in parts]),
                      *(np.array([p[i] for p in parts], np.int32) for i in range(4, 8)))
    return float(merge_costs(regions, np.array([0]), np.array([1]), np.array([shared]), params, weights)[0])

