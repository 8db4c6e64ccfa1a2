"""Polygons ↔ rasters on an image's grid, and other rasters resampled onto it.

The refinement works on one grid, the image's: preliminary masks, land cover and reference
patches come as polygons (burnt by pixel centre) or as rasters of any resolution and CRS
(warped by nearest neighbour, so class codes stay codes).
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, osr
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from ..errors import MineSARError
from ..io.rasters import _GdalFailures, describe, open_raster
from ..io.vectorize import polygonize, rasterize


@dataclass
class Grid:
    width: int
    height: int
    geotransform: Tuple[float, ...]
    crs_wkt: str
    path: str = ""

    @classmethod
    def of_raster(cls, path: str) -> "Grid":
        info = describe(open_raster(path))
        if info.geotransform is None or not info.crs_wkt:
            raise MineSARError(f"{path}: the image has no georeference (geotransform and CRS); "
                               "patches cannot be placed on it.")
        if info.geotransform[2] != 0 or info.geotransform[4] != 0 or info.geotransform[5] >= 0:
            # Masks and land cover are warped onto a north-up grid; a rotated or south-up image would not match.
            raise MineSARError(f"{path}: rotated or south-up grids are not supported; warp the image north-up first.")
        return cls(info.width, info.height, info.geotransform, info.crs_wkt, path)

    @property
    def shape(self) -> Tuple[int, int]:
        return self.height, self.width

    @property
    def pixel_area(self) -> float:
        return abs(self.geotransform[1] * self.geotransform[5])

    @property
    def bounds(self) -> Tuple[float, float, float, float]:
        x0, dx, _, y0, _, dy = self.geotransform
        xs, ys = (x0, x0 + dx * self.width), (y0, y0 + dy * self.height)
        return min(xs), min(ys), max(xs), max(ys)

    def srs(self) -> osr.SpatialReference:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(self.crs_wkt)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        return srs


def burn(geometries: Sequence[Optional[BaseGeometry]], grid: Grid, values: Optional[Sequence[int]] = None) -> np.ndarray:
    """int32 raster on ``grid``: pixels whose centre lies inside geometry i get values[i] (default i + 1)."""
    numbers = [int(v) for v in values] if values is not None else range(1, len(geometries) + 1)
    return rasterize(geometries, grid.shape, grid.geotransform, numbers, np.int32)


def polygons(labels: np.ndarray, grid: Grid, mask: Optional[np.ndarray] = None) -> List[Tuple[int, BaseGeometry]]:
    """(value, polygon in map coordinates) per label value > 0 (or inside ``mask``), one geometry per value."""
    parts = {}
    for value, piece in polygonize(labels, grid.geotransform, mask, connectivity=4):
        parts.setdefault(value, []).append(piece)
    return [(value, pieces[0] if len(pieces) == 1 else unary_union(pieces)) for value, pieces in sorted(parts.items())]


def aligned(path: str, grid: Grid, what: str) -> np.ndarray:
    """Band 1 of a raster resampled (nearest) onto ``grid``; outside its footprint: 0."""
    array, nodata = _warped(path, grid, what, "near", gdal.GDT_Int32)
    if nodata is not None:
        array = np.where(array == nodata, 0, array)
    return array.astype(np.int32)


def aligned_values(path: str, grid: Grid, what: str) -> np.ndarray:
    """Band 1 of a continuous raster (a DEM) resampled bilinearly onto ``grid``, float64; NaN
    outside its footprint and at its nodata."""
    array, _ = _warped(path, grid, what, "bilinear", gdal.GDT_Float64, fill=np.nan)
    return array.astype(np.float64)  # the warp already left the source's nodata out and wrote NaN


def _warped(path: str, grid: Grid, what: str, resample: str, output_type: int, fill=None):
    dataset = open_raster(path)
    info = describe(dataset)
    if info.geotransform is None or not info.crs_wkt:
        raise MineSARError(f"{path}: the {what} raster has no georeference, so it cannot be laid over the image.")
    theirs, ours = osr.SpatialReference(), grid.srs()
    theirs.ImportFromWkt(info.crs_wkt)
    x0, dx, _, y0, _, dy = info.geotransform
    if theirs.IsSame(ours):
        xs, ys = (x0, x0 + dx * info.width), (y0, y0 + dy * info.height)
        left, bottom, right, top = grid.bounds
        if min(xs) >= right or max(xs) <= left or min(ys) >= top or max(ys) <= bottom:
            raise MineSARError(f"{path}: the {what} raster does not overlap the image {grid.path}.")
    nodata = info.nodata[0] if info.nodata else None
    options = {}
    if fill is not None:
        # Cells outside the source come back as ``fill``; its own nodata is kept out of the average.
        options = {"dstNodata": float(fill), "srcNodata": nodata}
    with _GdalFailures() as failures:
        # Debian 12's GDAL has no srcBands for Warp: take band 1 through a VRT first.
        first = gdal.Translate("", dataset, format="VRT", bandList=[1])
        warped = gdal.Warp("", first, format="MEM", width=grid.width, height=grid.height,
                           outputBounds=grid.bounds, dstSRS=grid.crs_wkt, resampleAlg=resample,
                           outputType=output_type, **options) if first is not None else None
    if warped is None:
        raise MineSARError(f"{path}: the {what} raster could not be resampled onto the image ({failures.describe()}).")
    return warped.GetRasterBand(1).ReadAsArray(), nodata
