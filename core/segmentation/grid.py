"""Polygons ↔ rasters on an image's grid, and other rasters resampled onto it.

The refinement works on one grid, the image's: preliminary masks, land cover and reference
patches come as polygons (burnt by pixel centre) or as rasters of any resolution and CRS
(warped by nearest neighbour, so class codes stay codes).
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, ogr, osr
from shapely import wkb
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from ..errors import MineSARError
from ..io.rasters import _GdalFailures, describe, open_raster


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
    target = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal.GDT_Int32)
    target.SetGeoTransform(list(grid.geotransform))
    target.SetProjection(grid.crs_wkt)
    vector = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = vector.CreateLayer("burn", grid.srs(), ogr.wkbUnknown)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    for index, geometry in enumerate(geometries):
        if geometry is None or geometry.is_empty:
            continue
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("value", int(values[index]) if values is not None else index + 1)
        feature.SetGeometry(ogr.CreateGeometryFromWkb(geometry.wkb))
        layer.CreateFeature(feature)
    with _GdalFailures():
        gdal.RasterizeLayer(target, [1], layer, options=["ATTRIBUTE=value"])
    return target.GetRasterBand(1).ReadAsArray().astype(np.int32)


def polygons(labels: np.ndarray, grid: Grid, mask: Optional[np.ndarray] = None) -> List[Tuple[int, BaseGeometry]]:
    """(value, polygon in map coordinates) per label value > 0 (or inside ``mask``), one geometry per value."""
    source = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal.GDT_Int32)
    source.SetGeoTransform(list(grid.geotransform))
    band = source.GetRasterBand(1)
    band.WriteArray(labels.astype(np.int32))
    mask_band = None
    if mask is not None:
        mask_source = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal.GDT_Byte)
        mask_source.GetRasterBand(1).WriteArray(mask.astype(np.uint8))
        mask_band = mask_source.GetRasterBand(1)
    vector = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = vector.CreateLayer("parts", geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    gdal.Polygonize(band, mask_band if mask_band is not None else band, layer, 0, [])
    parts = {}
    for feature in layer:
        parts.setdefault(feature.GetField(0), []).append(wkb.loads(bytes(feature.GetGeometryRef().ExportToWkb())))
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
