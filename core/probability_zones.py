"""Polygons of a segmentation's positive mask with the probabilities inside them.

Both rasters are files on the same grid (written by the segmentation run). GDAL traces the mask
(8-connected: a diagonal step is one zone); each zone's probabilities are then read in the window
of its own envelope, so no full-size array is held.
"""
import math
from dataclasses import dataclass
from typing import List

import numpy as np
from osgeo import gdal, ogr
from shapely import wkb

from .detection import area_m2
from .errors import MineSARError
from .io.rasters import Window, _GdalFailures, open_raster, read_window


@dataclass
class Zone:
    polygon: object  # shapely, map coordinates
    mean_probability: float
    max_probability: float
    area_m2: float
    pixels: int


def zones(mask_path: str, probability_path: str, positive: int = 1, progress=None) -> List[Zone]:
    mask_dataset = open_raster(mask_path)
    probability = open_raster(probability_path)
    geotransform = mask_dataset.GetGeoTransform()
    crs_wkt = mask_dataset.GetProjection()
    band = mask_dataset.GetRasterBand(1)
    vector = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = vector.CreateLayer("zones", geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    with _GdalFailures() as failures:
        result = gdal.Polygonize(band, band.GetMaskBand(), layer, 0, ["8CONNECTED=8"])
    if result != 0:
        raise MineSARError(f"{mask_path}: the mask could not be traced into polygons ({failures.describe()}).")
    x0, dx, _, y0, _, dy = geotransform
    width, height = mask_dataset.RasterXSize, mask_dataset.RasterYSize
    found = []
    features = [f for f in layer if f.GetField(0) == positive]
    for number, feature in enumerate(features):
        if progress is not None:
            progress.update(number / max(1, len(features)))
        geometry = feature.GetGeometryRef()
        left, right, bottom, top = geometry.GetEnvelope()
        cols = sorted(((left - x0) / dx, (right - x0) / dx))
        rows = sorted(((top - y0) / dy, (bottom - y0) / dy))
        c0, c1 = max(0, int(math.floor(cols[0] + 1e-9))), min(width, int(math.ceil(cols[1] - 1e-9)))
        r0, r1 = max(0, int(math.floor(rows[0] + 1e-9))), min(height, int(math.ceil(rows[1] - 1e-9)))
        window = Window(c0, r0, c1 - c0, r1 - r0)
        inside = _burn(geometry, window, geotransform)
        values = read_window(probability, window).astype(np.float64)[inside]
        values = values[np.isfinite(values)]
        polygon = wkb.loads(bytes(geometry.ExportToWkb()))
        found.append(Zone(polygon, float(values.mean()) if values.size else float("nan"),
                          float(values.max()) if values.size else float("nan"),
                          area_m2(polygon, crs_wkt), int(inside.sum())))
    if progress is not None:
        progress.update(1.0)
    return found


def _burn(geometry, window: Window, geotransform) -> np.ndarray:
    x0, dx, _, y0, _, dy = geotransform
    target = gdal.GetDriverByName("MEM").Create("", window.width, window.height, 1, gdal.GDT_Byte)
    target.SetGeoTransform((x0 + window.col * dx, dx, 0.0, y0 + window.row * dy, 0.0, dy))
    vector = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = vector.CreateLayer("one", geom_type=ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(geometry.Clone())
    layer.CreateFeature(feature)
    with _GdalFailures():
        gdal.RasterizeLayer(target, [1], layer, burn_values=[1])
    return target.GetRasterBand(1).ReadAsArray().astype(bool)
