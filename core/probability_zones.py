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
from .io.rasters import open_raster, read_window, rows_per_strip, strip_windows
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
        geometries = _split_by_cores(geometries, cores_path, mask_dataset.GetGeoTransform())
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


def _split_by_cores(geometries: List, cores_path: str, geotransform) -> List:
    from shapely.strtree import STRtree

    from .segmentation.basin_cores import split_polygon

    cores_dataset = open_raster(cores_path)
    cores = [polygon for value, polygon in polygonize(cores_dataset.GetRasterBand(1), connectivity=8) if value == 1]
    if not cores:
        return geometries
    tree = STRtree(cores)
    pixel_area = abs(geotransform[1] * geotransform[5] - geotransform[2] * geotransform[4])
    split = []
    for polygon in geometries:
        nearby = [cores[index] for index in tree.query(polygon)]
        split.extend(split_polygon(polygon, nearby, pixel_area) if len(nearby) > 1 else [polygon])
    return split
