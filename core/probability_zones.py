"""Polygons of a segmentation's positive mask with the probabilities inside them.

Both rasters are files on the same grid (written by the segmentation run). GDAL traces the mask
(8-connected: a diagonal step is one zone); the zones are then burnt into a temporary raster of
zone numbers and the probabilities summed strip by strip, so no full-size array is held however
large a zone is.
"""
import os
import tempfile
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
from osgeo import gdal
from shapely import affinity

from .detection import area_m2
from .io.rasters import Window, open_raster, read_window, rows_per_strip, strip_windows
from .io.vectorize import polygonize, rasterize_into


@dataclass
class Zone:
    polygon: object  # shapely, map coordinates (pixel coordinates, y up, without a georeference)
    mean_probability: float
    max_probability: float
    area_m2: float
    pixels: int


def zones(mask_path: str, probability_path: str, positive: int = 1, progress=None,
          cores_path: Optional[str] = None) -> List[Zone]:
    """The zones of the mask with their probabilities; with a ``cores_path`` raster (1 = a basin's
    core, on the same grid) a zone holding several cores is split between them
    (core.segmentation.basin_cores.split_polygon)."""
    mask_dataset = open_raster(mask_path)
    probability = open_raster(probability_path)
    georeferenced = mask_dataset.GetGeoTransform(can_return_null=True) is not None
    crs_wkt = mask_dataset.GetProjection()
    band = mask_dataset.GetRasterBand(1)
    width, height = mask_dataset.RasterXSize, mask_dataset.RasterYSize
    # The band as its own mask: background (0) is never traced, only zones and no data.
    geometries = [polygon for value, polygon in polygonize(band, connectivity=8) if value == positive]
    if cores_path and geometries:
        geometries = _split_by_cores(geometries, cores_path, mask_dataset, positive)
    if progress is not None:
        progress.update(0.3)
    if not geometries:
        return []

    count = len(geometries)
    sums, maxima, pixels = np.zeros(count + 1), np.full(count + 1, -np.inf), np.zeros(count + 1, dtype=np.int64)
    handle, numbers_path = tempfile.mkstemp(suffix=".tif", prefix=".minesar-zones-",
                                            dir=os.path.dirname(os.path.abspath(mask_path)))
    os.close(handle)
    try:
        numbers = gdal.GetDriverByName("GTiff").Create(numbers_path, width, height, 1, gdal.GDT_Int32,
                                                       ["COMPRESS=DEFLATE", "TILED=YES"])
        numbers.SetGeoTransform(mask_dataset.GetGeoTransform())
        rasterize_into(numbers, geometries, range(1, count + 1))
        windows = list(strip_windows(width, height, rows_per_strip(width, 16)))
        for index, window in enumerate(windows):
            if progress is not None:
                progress.update(0.3 + 0.7 * index / len(windows))
            ids = read_window(numbers, window).ravel()
            values = read_window(probability, window).astype(np.float64).ravel()
            inside = (ids > 0) & np.isfinite(values)
            ids, values = ids[inside], values[inside]
            sums += np.bincount(ids, weights=values, minlength=count + 1)
            pixels += np.bincount(ids, minlength=count + 1)
            np.maximum.at(maxima, ids, values)
        numbers = None
    finally:
        for leftover in (numbers_path, numbers_path + ".aux.xml"):
            if os.path.exists(leftover):
                os.remove(leftover)

    found = []
    for number, polygon in enumerate(geometries, start=1):
        if not georeferenced:
            # QGIS shows a raster without georeference at y = −row: the zones must lie on it.
            polygon = affinity.scale(polygon, 1.0, -1.0, origin=(0.0, 0.0))
        n = int(pixels[number])
        found.append(Zone(polygon, float(sums[number] / n) if n else float("nan"),
                          float(maxima[number]) if n else float("nan"), area_m2(polygon, crs_wkt), n))
    if progress is not None:
        progress.update(1.0)
    return found


def _split_by_cores(geometries: List, cores_path: str, mask_dataset, positive: int) -> List:
    """Each zone near a core cut between the cores ``core_centroids`` finds in its own pixels (read
    in the zone's window of the mask and core rasters), so the lines are those the raster split of
    ``split_by_cores`` draws."""
    from shapely.geometry import Point
    from shapely.strtree import STRtree

    from .segmentation.basin_cores import core_centroids, split_polygon

    cores_dataset = open_raster(cores_path)
    cores = [polygon for value, polygon in polygonize(cores_dataset.GetRasterBand(1), connectivity=8) if value == 1]
    if not cores:
        return geometries
    tree = STRtree(cores)
    origin_x, step_x, _, origin_y, _, step_y = mask_dataset.GetGeoTransform()
    split = []
    for polygon in geometries:
        if not len(tree.query(polygon)):
            split.append(polygon)
            continue
        window = _window_of(polygon, mask_dataset, (origin_x, step_x, origin_y, step_y))
        zone_pixels = _zone_pixels(polygon, read_window(mask_dataset, window) == positive, window,
                                   (origin_x, step_x, origin_y, step_y))
        centroids = core_centroids(read_window(cores_dataset, window) == 1, zone_pixels, threshold=0.5)
        seeds = [Point(origin_x + (window.col + col + 0.5) * step_x, origin_y + (window.row + row + 0.5) * step_y)
                 for row, col in centroids]
        split.extend(split_polygon(polygon, seeds))
    return split


def _window_of(polygon, dataset, grid) -> Window:
    """The raster window holding ``polygon`` (north-up grid: origin x, step x, origin y, step y)."""
    origin_x, step_x, origin_y, step_y = grid
    min_x, min_y, max_x, max_y = polygon.bounds
    cols = sorted(((min_x - origin_x) / step_x, (max_x - origin_x) / step_x))
    rows = sorted(((min_y - origin_y) / step_y, (max_y - origin_y) / step_y))
    col0, row0 = max(0, int(np.floor(cols[0] + 1e-6))), max(0, int(np.floor(rows[0] + 1e-6)))
    col1 = min(dataset.RasterXSize, int(np.ceil(cols[1] - 1e-6)))
    row1 = min(dataset.RasterYSize, int(np.ceil(rows[1] - 1e-6)))
    return Window(col0, row0, max(1, col1 - col0), max(1, row1 - row0))


def _zone_pixels(polygon, positive: np.ndarray, window: Window, grid) -> np.ndarray:
    """The 8-connected region of ``positive`` (the window's mask) that ``polygon`` traces: the one
    under a point inside it (a window can hold parts of other zones)."""
    from scipy import ndimage

    origin_x, step_x, origin_y, step_y = grid
    labels, _ = ndimage.label(positive, structure=np.ones((3, 3), dtype=bool))
    point = polygon.representative_point()
    col = int(np.floor((point.x - origin_x) / step_x)) - window.col
    row = int(np.floor((point.y - origin_y) / step_y)) - window.row
    number = labels[min(max(row, 0), labels.shape[0] - 1), min(max(col, 0), labels.shape[1] - 1)]
    if not number:  # a point on the zone's very edge: the window's largest region is the zone
        number = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1 if labels.any() else 0
    return (labels == number) & positive
