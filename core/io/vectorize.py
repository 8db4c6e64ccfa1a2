"""Rasters ↔ polygons through GDAL: the one place that builds the in-memory rasters and layers.

``polygonize`` traces connected parts of equal value into polygons whose edges follow pixel edges;
``rasterize`` burns polygons back by pixel centre (or every pixel they touch). A polygonised array
rasterised onto the same grid is the array again, which the dataset and the refinement rely on.
Without a geotransform both work in pixel units: x = column, y = row, down.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from osgeo import gdal, ogr
from shapely import wkb
from shapely.geometry.base import BaseGeometry

from ..errors import MineSARError
from .rasters import _NUMPY_TO_GDAL, _GdalFailures

PIXEL_GRID = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

# A shapely geometry, or an outer ring as (x, y) points (COCO polygons come that way, not always closed).
Shape = Union[BaseGeometry, Sequence[Tuple[float, float]]]


def polygonize(labels: Union[np.ndarray, "gdal.Band"], geotransform: Optional[Sequence[float]] = None,
               mask: Optional[np.ndarray] = None, connectivity: int = 4) -> List[Tuple[int, BaseGeometry]]:
    """(value, shapely polygon) for every connected part of equal value, in GDAL's order; holes kept.

    ``labels`` is an integer array on ``geotransform`` (default: pixel units), or a GDAL band,
    traced block by block on its own dataset's geotransform so a file larger than memory is never
    read whole. Traced pixels: those with a non-zero value, or those inside ``mask`` (zeros too).
    ``connectivity`` 8 joins parts that touch only at a corner.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, not {connectivity}")
    if isinstance(labels, gdal.Band):
        if geotransform is not None:
            raise ValueError("a band is traced on its own dataset's geotransform")
        band, name = labels, f"{labels.GetDataset().GetDescription()}: the mask"
    else:
        source = _memory_raster(labels.shape, geotransform, gdal.GDT_Int32)  # held while the band is used
        band, name = source.GetRasterBand(1), "The label array"
        band.WriteArray(np.asarray(labels).astype(np.int32))
    mask_band = band  # the band as its own mask: zero is never traced
    if mask is not None:
        if tuple(mask.shape) != (band.YSize, band.XSize):
            raise ValueError(f"the mask is {mask.shape}, the labels {(band.YSize, band.XSize)}")
        mask_source = _memory_raster(mask.shape, None, gdal.GDT_Byte)
        mask_band = mask_source.GetRasterBand(1)
        mask_band.WriteArray(mask.astype(np.uint8))
    vector = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = vector.CreateLayer("parts", geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    options = ["8CONNECTED=8"] if connectivity == 8 else []
    with _GdalFailures() as failures:
        result = gdal.Polygonize(band, mask_band, layer, 0, options)
    if result != 0:
        raise MineSARError(f"{name} could not be traced into polygons ({failures.describe()}).")
    return [(feature.GetField(0), wkb.loads(bytes(feature.GetGeometryRef().ExportToWkb()))) for feature in layer]


def rasterize(shapes: Sequence[Optional[Shape]], shape: Tuple[int, int],
              geotransform: Optional[Sequence[float]] = None, values: Optional[Sequence[float]] = None,
              dtype=np.int32, all_touched: bool = False) -> np.ndarray:
    """A (rows, cols) array of ``dtype`` on ``geotransform`` (default: pixel units): pixels whose
    centre lies inside shapes[i] (or that it touches) get values[i] (default 1), a later shape over
    an earlier one; 0 elsewhere. None and empty shapes burn nothing."""
    dtype = np.dtype(dtype)
    target = _memory_raster(shape, geotransform, gdal.GDT_Byte if dtype == bool else _NUMPY_TO_GDAL[dtype])
    rasterize_into(target, shapes, values, all_touched)
    return target.GetRasterBand(1).ReadAsArray().astype(dtype)


def rasterize_into(dataset: "gdal.Dataset", shapes: Sequence[Optional[Shape]],
                   values: Optional[Sequence[float]] = None, all_touched: bool = False) -> None:
    """``rasterize`` into band 1 of an existing dataset (a file too large to hold as an array).

    The shapes are taken to be in the dataset's coordinates: neither side carries a CRS, and the
    warning GDAL gives for that is kept quiet; a failure is raised.
    """
    vector = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = vector.CreateLayer("burn", geom_type=ogr.wkbUnknown)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTReal))
    for index, item in enumerate(shapes):
        geometry = _ogr_geometry(item)
        if geometry is None:
            continue
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("value", float(values[index]) if values is not None else 1.0)
        feature.SetGeometry(geometry)
        layer.CreateFeature(feature)
    options = ["ATTRIBUTE=value"] + (["ALL_TOUCHED=TRUE"] if all_touched else [])
    with _GdalFailures() as failures:
        result = gdal.RasterizeLayer(dataset, [1], layer, options=options)
    if result != 0:
        raise MineSARError(f"{dataset.GetDescription() or 'a raster in memory'}: polygons could not be "
                           f"burnt into it ({failures.describe()}).")


def _ogr_geometry(item: Optional[Shape]) -> Optional["ogr.Geometry"]:
    if item is None:
        return None
    if isinstance(item, BaseGeometry):
        return None if item.is_empty else ogr.CreateGeometryFromWkb(item.wkb)
    # Built point by point rather than through shapely, which refuses rings it finds degenerate.
    ring = ogr.Geometry(ogr.wkbLinearRing)
    for x, y in item:
        ring.AddPoint_2D(float(x), float(y))
    polygon = ogr.Geometry(ogr.wkbPolygon)
    polygon.AddGeometry(ring)
    return polygon


def _memory_raster(shape: Tuple[int, int], geotransform: Optional[Sequence[float]], gdal_type: int) -> "gdal.Dataset":
    rows, cols = shape
    dataset = gdal.GetDriverByName("MEM").Create("", int(cols), int(rows), 1, gdal_type)
    dataset.SetGeoTransform(list(geotransform if geotransform is not None else PIXEL_GRID))
    return dataset
