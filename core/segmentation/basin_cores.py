"""Basins that touch, parted by their cores.

A semantic map cannot tell two touching basins from one: their union is one region, which matches
at most one of them. A network with ``cores`` also maps each basin's core, the inner part of its
extent, and cores stay apart where extents touch. A region of the extent map that holds several
cores is split between them, each pixel going to the core whose centroid is nearest (a Voronoi
partition, so the vector path in ``split_polygon`` draws the same lines as the raster path here).
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

# A basin's core: the pixels at least this share of its deepest inside distance from its edge.
CORE_SHARE = 0.5
CORE_PROBABILITY = 0.5
# Smaller specks of the core map are noise, not basins (a 90 m basin's core is ~10 pixels).
MIN_CORE_PIXELS = 6
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


def core_centroids(core_probability: np.ndarray, within: np.ndarray, threshold: float = CORE_PROBABILITY,
                   min_pixels: int = MIN_CORE_PIXELS) -> np.ndarray:
    """[M, 2] (row, col) centroids of the core map's regions inside ``within`` big enough to be
    basins."""
    labels, count = ndimage.label((np.asarray(core_probability) >= threshold) & within, structure=EIGHT)
    if not count:
        return np.zeros((0, 2))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = np.flatnonzero(sizes >= min_pixels) + 1
    if not len(keep):
        return np.zeros((0, 2))
    return np.asarray(ndimage.center_of_mass(np.ones(labels.shape), labels, keep), dtype=np.float64).reshape(-1, 2)


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


def split_polygon(polygon, cores: Sequence, pixel_area: float, min_pixels: int = MIN_CORE_PIXELS) -> List:
    """``polygon`` (a zone, shapely) split between the ``cores`` (shapely polygons of the core map)
    that lie in it, as ``split_by_cores`` splits a raster region: each core part inside the zone
    of at least ``min_pixels`` pixels is a seed, and the zone is cut along the Voronoi cells of the
    seeds' centroids. Fewer than two seeds: the zone as it is."""
    from shapely.geometry import MultiPoint
    from shapely.ops import voronoi_diagram

    seeds = []
    for core in cores:
        if not core.intersects(polygon):
            continue
        inside = core.intersection(polygon)
        seeds.extend(part.centroid for part in _polygons(inside) if part.area >= min_pixels * abs(pixel_area))
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
