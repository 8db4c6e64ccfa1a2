"""Basins that touch, parted by their cores.

A semantic map cannot tell two touching basins from one: their union is one region, which matches
at most one of them. A network with ``cores`` also maps each basin's core, the inner part of its
extent, and cores stay apart where extents touch. A region of the extent map that holds several
cores is split between them, each pixel going to the core whose centroid is nearest (a Voronoi
partition, so the vector path in ``split_polygon`` draws the same lines as the raster path here).

The cores of two touching basins can still run together into one blob of the core map, joined by a
neck narrower than either core. Inside such a blob the distance to its edge rises to each core's
centre and dips between them, so a blob is parted (``core_parts``) where two of its peaks, each at
least MIN_CORE_RADIUS pixels, are joined only at a distance under NECK_SHARE of the lower peak.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

# A basin's core: the pixels at least this share of its deepest inside distance from its edge.
CORE_SHARE = 0.5
CORE_PROBABILITY = 0.5
# Smaller specks of the core map are noise, not basins (a 90 m basin's core is ~10 pixels).
MIN_CORE_PIXELS = 6
# A neck under this share of the lower of two peaks of the inside distance parts a core blob.
# Chosen on the shipped ECA-UNet's val split (eight views, its own threshold): basin F1 0.891
# without, 0.891 / 0.894 / 0.893 at 0.7 / 0.8 / 0.85; at 0.9 single basins split too (F1 0.863).
NECK_SHARE = 0.8
MIN_CORE_RADIUS = 2.0
NECK_STEP = 0.5  # pixels: the inside distance is swept in these steps
EIGHT = np.ones((3, 3), dtype=bool)


def instance_cores(masks: Optional[np.ndarray], shape: Tuple[int, int], share: float = CORE_SHARE) -> np.ndarray:
    """[H, W] float32 0/1: the union of each instance mask's core (inside distance ≥ ``share`` ×
    its largest), the target a ``cores`` network learns."""
    cores = np.zeros(shape, dtype=np.float32)
    if masks is None:
        return cores
    for mask in np.asarray(masks).reshape((-1,) + tuple(shape)):
        mask = mask > 0
        if not mask.any():
            continue
        inside = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        cores[inside >= share * inside.max()] = 1.0
    return cores


def core_parts(blob: np.ndarray, neck_share: float = NECK_SHARE) -> List[np.ndarray]:
    """Boolean masks (``blob``'s shape), one per core in ``blob``, an 8-connected region of the core
    map: the blob itself, or its parts above the necks that join several cores.

    The inside distance is swept upwards; where the blob's level set falls apart into pieces whose
    peaks reach MIN_CORE_RADIUS and stand above the level by 1 / ``neck_share``, each piece is a
    core and is swept on by itself. Lesser pieces (a bump on the rim) are dropped from the sweep.
    """
    blob = np.asarray(blob, dtype=bool)
    inside = ndimage.distance_transform_edt(np.pad(blob, 1))[1:-1, 1:-1]
    parts, pending = [], [(blob, 0.0)]
    while pending:
        part, level = pending.pop()
        peak = inside[part].max()
        while True:
            level += NECK_STEP
            if level >= peak:
                parts.append(part)
                break
            labels, count = ndimage.label(part & (inside >= level), structure=EIGHT)
            if count < 2:
                continue
            peaks = ndimage.maximum(inside, labels, np.arange(1, count + 1))
            cores = [k + 1 for k, top in enumerate(peaks) if top >= MIN_CORE_RADIUS and level <= neck_share * top]
            if len(cores) >= 2:
                pending.extend((labels == k, level) for k in cores)
                break
            part = labels == (cores[0] if cores else int(np.argmax(peaks)) + 1)
    return parts


def core_centroids(core_probability: np.ndarray, within: np.ndarray, threshold: float = CORE_PROBABILITY,
                   min_pixels: int = MIN_CORE_PIXELS) -> np.ndarray:
    """[M, 2] (row, col) centroids of the cores in the core map inside ``within``: its regions big
    enough to be basins, each parted at its necks (``core_parts``)."""
    labels, count = ndimage.label((np.asarray(core_probability) >= threshold) & within, structure=EIGHT)
    centroids = []
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        blob = labels[region] == index
        if blob.sum() < min_pixels:
            continue
        for part in core_parts(blob):
            row, col = ndimage.center_of_mass(part)
            centroids.append((row + region[0].start, col + region[1].start))
    return np.asarray(centroids, dtype=np.float64).reshape(-1, 2)


def split_by_cores(predicted: np.ndarray, core_probability: np.ndarray, threshold: float = CORE_PROBABILITY,
                   min_pixels: int = MIN_CORE_PIXELS) -> Tuple[np.ndarray, int]:
    """(labels, count) of the 8-connected regions of ``predicted``, a region holding several cores
    split into one region per core (nearest core centroid)."""
    predicted = np.asarray(predicted, dtype=bool)
    labels, count = ndimage.label(predicted, structure=EIGHT)
    if not count:
        return labels, 0
    out = np.zeros_like(labels)
    next_label = 1
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        inside = labels[region] == index
        centroids = core_centroids(np.asarray(core_probability)[region], inside, threshold, min_pixels)
        if len(centroids) < 2:
            out[region][inside] = next_label
            next_label += 1
            continue
        rows, cols = np.nonzero(inside)
        nearest = np.argmin((rows[:, None] - centroids[None, :, 0]) ** 2 + (cols[:, None] - centroids[None, :, 1]) ** 2,
                            axis=1)
        cells = np.zeros(inside.shape, dtype=np.int64)
        cells[rows, cols] = nearest + 1
        target = out[region]
        # A cell can cut a winding region into several parts: each part is a region of its own, as
        # each part of a polygon is a polygon of its own in split_polygon.
        for cell in np.unique(nearest) + 1:
            parts, part_count = ndimage.label(cells == cell, structure=EIGHT)
            target[parts > 0] = next_label - 1 + parts[parts > 0]
            next_label += part_count
    return out, next_label - 1


def split_polygon(polygon, seeds: Sequence) -> List:
    """``polygon`` (a zone, shapely) cut along the Voronoi cells of ``seeds`` (shapely points, the
    centroids ``core_centroids`` finds in the zone's pixels, in the polygon's coordinates), as
    ``split_by_cores`` splits a raster region. Fewer than two seeds: the zone as it is."""
    from shapely.geometry import MultiPoint
    from shapely.ops import voronoi_diagram

    if len(seeds) < 2:
        return [polygon]
    cells = voronoi_diagram(MultiPoint(seeds), envelope=polygon.envelope.buffer(polygon.length))
    pieces = []
    for cell in cells.geoms:
        pieces.extend(_polygons(cell.intersection(polygon)))
    return pieces


def _polygons(geometry) -> List:
    """The polygons of any shapely geometry (a cut can leave lines and points too)."""
    if geometry.is_empty:
        return []
    if geometry.geom_type == "Polygon":
        return [geometry]
    if hasattr(geometry, "geoms"):
        return [part for member in geometry.geoms for part in _polygons(member)]
    return []
