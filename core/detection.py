"""Whole-scene detection bookkeeping: tiles, tile detections as polygons, and their merge.

A detector sees one tile at a time. Tiles overlap so that any basin smaller than the overlap is
whole in at least one tile; a detection touching an inner tile edge (one that is not the raster's
border) is "cut" and only used where no whole detection covers it. Cut pieces of a basin larger
than the overlap are united into one polygon. Everything here is in global pixel coordinates
(x = column, y = row, pixel edges at integers) until ``to_map`` applies the geotransform.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from osgeo import osr
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.ops import unary_union

from .dataset.layout import mask_polygons
from .dataset.tiling import tile_starts
from .errors import MineSARError
from .io.rasters import Window

# A box edge this close (pixels) to an inner tile edge counts as touching it.
EDGE_MARGIN_PX = 2.0
# Two whole detections of one basin from overlapping tiles are near copies; a smaller IoU is
# two basins side by side, which must both survive.
DUPLICATE_IOU = 0.3
DUPLICATE_CONTAINMENT = 0.7
# A detection mostly on no-data is an artefact of the padding or of a masked area.
MAX_NODATA_SHARE = 0.5


@dataclass
class TileDetection:
    polygon: Polygon  # global pixel coordinates
    score: float
    cut: bool


def overlapping_windows(width: int, height: int, tile_size: int, overlap: int) -> List[Window]:
    """Tiles of ``tile_size`` stepping by tile_size − overlap; the last row and column are pulled
    back inside the raster so no tile is mostly padding. A raster smaller than a tile is one tile."""
    if tile_size < 32:
        raise MineSARError(f"Tile size {tile_size}: use at least 32 pixels.")
    if not 0 <= overlap <= tile_size // 2:
        raise MineSARError(f"Overlap {overlap} px: use 0 to half the tile size ({tile_size // 2} px).")
    step = tile_size - overlap
    return [Window(col, row, min(tile_size, width - col), min(tile_size, height - row))
            for row in tile_starts(height, tile_size, step) for col in tile_starts(width, tile_size, step)]


def inner_edges(window: Window, width: int, height: int) -> Tuple[bool, bool, bool, bool]:
    """Which of the tile's left, top, right, bottom edges lie inside the raster."""
    return (window.col > 0, window.row > 0, window.col + window.width < width, window.row + window.height < height)


def touches_inner_edge(bounds, window: Window, width: int, height: int) -> bool:
    x1, y1, x2, y2 = bounds
    left, top, right, bottom = inner_edges(window, width, height)
    return ((left and x1 - window.col <= EDGE_MARGIN_PX)
            or (top and y1 - window.row <= EDGE_MARGIN_PX)
            or (right and window.col + window.width - x2 <= EDGE_MARGIN_PX)
            or (bottom and window.row + window.height - y2 <= EDGE_MARGIN_PX))


def mask_to_polygon(mask: np.ndarray, col: int, row: int) -> Optional[Polygon]:
    """The largest part of a binary mask as a polygon following pixel edges, shifted by (col, row).
    Smaller parts of one instance mask are speckle of the mask head, not separate basins."""
    if not mask.any():
        return None
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    rings = mask_polygons(mask[r0:r1, c0:c1])
    parts = [Polygon(ring) for ring in rings if len(ring) >= 4]
    parts = [part if part.is_valid else part.buffer(0) for part in parts]
    parts = [part for part in parts if not part.is_empty]
    if not parts:
        return None
    largest = max(parts, key=lambda part: part.area)
    if isinstance(largest, MultiPolygon):
        largest = max(largest.geoms, key=lambda part: part.area)
    return affinity.translate(largest, xoff=col + c0, yoff=row + r0)


def tile_detections(
    window: Window,
    width: int,
    height: int,
    valid: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    masks: Optional[np.ndarray],
    score_threshold: float,
    mask_threshold: float = 0.5,
) -> List[TileDetection]:
    """One tile's predictions (tile pixel coordinates, possibly padded beyond ``valid``) as global
    polygons. ``valid`` is the tile's [rows, cols] data mask (False at NaN and at padding)."""
    found = []
    for index in np.flatnonzero(scores >= score_threshold):
        x1, y1, x2, y2 = (float(v) for v in boxes[index])
        x1, y1 = max(x1, 0.0), max(y1, 0.0)
        x2, y2 = min(x2, float(window.width)), min(y2, float(window.height))
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        c0, r0, c1, r1 = int(math.floor(x1)), int(math.floor(y1)), int(math.ceil(x2)), int(math.ceil(y2))
        footprint_valid = valid[r0:r1, c0:c1]
        if masks is not None:
            instance = (masks[index][: valid.shape[0], : valid.shape[1]] >= mask_threshold) & valid
            share_nodata = 1.0 - (instance.sum() / max((masks[index][: valid.shape[0], : valid.shape[1]]
                                                         >= mask_threshold).sum(), 1))
            polygon = mask_to_polygon(instance, window.col, window.row)
        else:
            share_nodata = 1.0 - footprint_valid.mean() if footprint_valid.size else 1.0
            polygon = box(x1 + window.col, y1 + window.row, x2 + window.col, y2 + window.row)
        if polygon is None or share_nodata > MAX_NODATA_SHARE:
            continue
        found.append(TileDetection(polygon, float(scores[index]),
                                   touches_inner_edge(polygon.bounds, window, width, height)))
    return found


def _same_basin(a: Polygon, b: Polygon) -> bool:
    shared = a.intersection(b).area
    if shared <= 0:
        return False
    iou = shared / (a.area + b.area - shared)
    return iou >= DUPLICATE_IOU or shared / min(a.area, b.area) >= DUPLICATE_CONTAINMENT


def merge_detections(detections: Sequence[TileDetection],
                     max_extent_px=None) -> List[Tuple[Polygon, float]]:
    """One (polygon, score) per basin from all tiles' detections.

    Whole detections are de-duplicated by score (the best tile's outline wins). A cut detection
    that a kept whole one already covers is dropped; the remaining cut pieces that touch or
    overlap are united (a basin larger than the overlap) with the best piece's score. A detection
    or union wider or taller than ``max_extent_px`` (one number, or (columns, rows)) is dropped: mining basins are a few km across,
    and anything larger is a broad non-mining signal (a groundwater bowl, an atmospheric front)
    that a detector boxed whole or in a chain of edge pieces, which otherwise grows into one
    polygon of hundreds of km².
    """
    limits = (max_extent_px, max_extent_px) if isinstance(max_extent_px, (int, float)) else max_extent_px

    def too_large(polygon) -> bool:
        x1, y1, x2, y2 = polygon.bounds
        return limits is not None and (x2 - x1 > limits[0] or y2 - y1 > limits[1])

    kept: List[Tuple[Polygon, float]] = []
    for detection in sorted((d for d in detections if not d.cut), key=lambda d: -d.score):
        if too_large(detection.polygon):
            continue
        if not any(_same_basin(detection.polygon, polygon) for polygon, _ in kept):
            kept.append((detection.polygon, detection.score))

    pieces = [d for d in detections if d.cut and not any(
        d.polygon.intersection(polygon).area >= 0.5 * d.polygon.area for polygon, _ in kept)]
    groups: List[List[TileDetection]] = []
    for piece in sorted(pieces, key=lambda d: -d.score):
        touching = [group for group in groups
                    if any(piece.polygon.distance(member.polygon) <= 1.0 for member in group)]
        merged = [piece] + [member for group in touching for member in group]
        groups = [group for group in groups if group not in touching] + [merged]
    for group in sorted(groups, key=lambda g: -max(d.score for d in g)):
        union = unary_union([member.polygon for member in group])
        if isinstance(union, MultiPolygon):  # pieces joined at a corner only: keep the body
            union = max(union.geoms, key=lambda part: part.area)
        score = max(member.score for member in group)
        if too_large(union):
            continue
        if not any(_same_basin(union, polygon) for polygon, _ in kept):
            kept.append((union, score))
    return kept


def pixel_size_m(geotransform: Optional[Sequence[float]], crs_wkt: Optional[str],
                 rows: int = 0) -> Optional[Tuple[float, float]]:
    """A pixel's (width, height) in metres (None without a georeference); in a geographic CRS the
    width is taken at the latitude of the raster's middle row (of ``rows``)."""
    if not geotransform or not crs_wkt:
        return None
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs_wkt)
    x0, dx, _, y0, _, dy = geotransform
    if srs.IsGeographic():
        per_degree = math.pi * (srs.GetSemiMajor() or 6378137.0) / 180.0
        latitude = y0 + dy * rows / 2.0
        return abs(dx) * per_degree * math.cos(math.radians(latitude)), abs(dy) * per_degree
    unit = srs.GetLinearUnits() or 1.0
    return abs(dx) * unit, abs(dy) * unit


def to_map(polygon: Polygon, geotransform: Sequence[float]) -> Polygon:
    """Pixel-edge coordinates -> the raster's CRS through its GDAL geotransform."""
    x0, dx, rx, y0, ry, dy = geotransform
    return affinity.affine_transform(polygon, [dx, rx, ry, dy, x0, y0])


def area_m2(polygon: Polygon, crs_wkt: str) -> float:
    """Area in square metres: planar in a projected CRS, on a local sphere in a geographic one
    (within a fraction of a percent for basins of a few kilometres)."""
    if not crs_wkt:
        return float("nan")
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs_wkt)
    if srs.IsGeographic():
        radius = srs.GetSemiMajor() or 6378137.0
        metres_per_degree = math.pi * radius / 180.0
        latitude = polygon.centroid.y
        return float(polygon.area * metres_per_degree ** 2 * math.cos(math.radians(latitude)))
    return float(polygon.area * srs.GetLinearUnits() ** 2)
