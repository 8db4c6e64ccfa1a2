"""Rasters ↔ polygons: parts against scipy's labelling, holes, masks, and round trips."""
import numpy as np
import pytest
from osgeo import gdal
from scipy import ndimage
from shapely.geometry import Polygon, box

from minesar.core.errors import MineSARError
from minesar.core.io.vectorize import polygonize, rasterize, rasterize_into

GEOTRANSFORM = (1000.0, 10.0, 0.0, 5000.0, 0.0, -10.0)  # 10 m pixels, north up


def constructed():
    labels = np.zeros((12, 14), np.int32)
    labels[1:6, 1:6] = 1
    labels[3, 3] = 0  # a hole in part 1
    labels[7:9, 2:4] = 2
    labels[9:11, 4:6] = 2  # touches the block above only at a corner
    labels[1:4, 9:13] = 3
    return labels


def part_count(labels, connectivity):
    structure = np.ones((3, 3)) if connectivity == 8 else None
    return sum(ndimage.label(labels == value, structure=structure)[1] for value in np.unique(labels[labels != 0]))


@pytest.mark.parametrize("connectivity, twos", [(4, 2), (8, 1)])
def test_parts_holes_and_map_coordinates(connectivity, twos):
    labels = constructed()
    parts = polygonize(labels, GEOTRANSFORM, connectivity=connectivity)
    assert len(parts) == part_count(labels, connectivity) == 2 + twos
    assert sorted(value for value, _ in parts) == [1] + [2] * twos + [3]
    for value in (1, 2, 3):
        # Edges on pixel edges: the area is the pixel count times 100 m².
        assert sum(p.area for v, p in parts if v == value) == pytest.approx((labels == value).sum() * 100.0)
    (one,) = [p for v, p in parts if v == 1]
    assert len(one.interiors) == 1 and Polygon(one.interiors[0]).bounds == (1030.0, 4960.0, 1040.0, 4970.0)
    assert one.bounds == (1010.0, 4940.0, 1060.0, 4990.0)
    (three,) = [p for v, p in parts if v == 3]
    assert three.equals(box(1090.0, 4960.0, 1130.0, 4990.0))


@pytest.mark.parametrize("connectivity", [4, 8])
def test_rasterizing_the_polygons_gives_the_labels_back(connectivity):
    rng = np.random.default_rng(7)
    # Blocky random labels: diagonal contacts, holes and parts inside parts all occur.
    labels = np.kron(rng.integers(0, 4, (10, 12)), np.ones((2, 2), np.int32))[:19, :23]
    labels[rng.uniform(size=labels.shape) < 0.1] = 5
    parts = polygonize(labels, GEOTRANSFORM, connectivity=connectivity)
    assert len(parts) == part_count(labels, connectivity)
    back = rasterize([p for _, p in parts], labels.shape, GEOTRANSFORM, [v for v, _ in parts])
    assert back.dtype == np.int32 and np.array_equal(back, labels)
    # Without a geotransform: pixel units, x = column, y = row down.
    pixel_parts = polygonize(labels, connectivity=connectivity)
    assert np.array_equal(rasterize([p for _, p in pixel_parts], labels.shape, values=[v for v, _ in pixel_parts]),
                          labels)


def test_a_mask_chooses_the_pixels_traced_zeros_included():
    labels = constructed()
    mask = np.zeros(labels.shape, bool)
    mask[0:7, 0:8] = True  # all of part 1 with its hole and surroundings; none of parts 2 and 3
    parts = polygonize(labels, GEOTRANSFORM, mask=mask)
    assert sorted(value for value, _ in parts) == [0, 0, 1]  # the ring around part 1, and its hole
    assert sum(p.area for _, p in parts) == pytest.approx(mask.sum() * 100.0)
    (one,) = [p for v, p in parts if v == 1]
    assert one.area == pytest.approx((labels == 1).sum() * 100.0)
    with pytest.raises(ValueError):
        polygonize(labels, mask=mask[1:])


def test_a_band_is_traced_on_its_own_georeference(tmp_path):
    labels = constructed()
    dataset = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "l.tif"), 14, 12, 1, gdal.GDT_Byte)
    dataset.SetGeoTransform(GEOTRANSFORM)
    dataset.GetRasterBand(1).WriteArray(labels)
    from_band = polygonize(dataset.GetRasterBand(1), connectivity=8)
    from_array = polygonize(labels, GEOTRANSFORM, connectivity=8)
    assert [v for v, _ in from_band] == [v for v, _ in from_array]
    assert all(a.equals(b) for (_, a), (_, b) in zip(from_band, from_array))
    with pytest.raises(ValueError):
        polygonize(dataset.GetRasterBand(1), GEOTRANSFORM)


def test_rasterize_by_centre_or_touch_later_over_earlier_rings_and_empties():
    shape = (10, 10)
    small = box(2.6, 2.6, 3.4, 3.4)  # over the corner of four pixels, covering none of their centres
    assert not rasterize([small], shape).any()
    touched = rasterize([small], shape, all_touched=True)
    assert set(zip(*np.nonzero(touched))) == {(2, 2), (2, 3), (3, 2), (3, 3)}
    # An unclosed ring of (x, y) points, then a polygon over part of it; None and empty burn nothing.
    ring = [(0, 0), (6, 0), (6, 4), (0, 4)]
    burnt = rasterize([ring, None, Polygon(), box(4, 2, 8, 6)], shape, values=[7, 1, 1, 9], dtype=np.uint8)
    expected = np.zeros(shape, np.uint8)
    expected[0:4, 0:6] = 7
    expected[2:6, 4:8] = 9
    assert burnt.dtype == np.uint8 and np.array_equal(burnt, expected)
    inside = rasterize([ring], shape, dtype=bool)
    assert inside.dtype == bool and inside.sum() == 24 and inside[0:4, 0:6].all()


def test_failures_name_the_raster(tmp_path):
    path = str(tmp_path / "cut.tif")
    dataset = gdal.GetDriverByName("GTiff").Create(path, 64, 64, 1, gdal.GDT_Byte)
    dataset.GetRasterBand(1).WriteArray(np.ones((64, 64), np.uint8))
    dataset = None
    with open(path, "r+b") as handle:  # a file cut short: its pixels cannot be read
        handle.truncate(3000)
    cut = gdal.Open(path)  # held: GDAL 3.6 frees a dataset whose bands alone are referenced
    with pytest.raises(MineSARError, match="cut.tif: the mask could not be traced"):
        polygonize(cut.GetRasterBand(1))
    gdal.GetDriverByName("GTiff").Create(str(tmp_path / "ro.tif"), 5, 5, 1, gdal.GDT_Byte)
    with pytest.raises(MineSARError, match="ro.tif: polygons could not be burnt"):
        read_only = gdal.Open(str(tmp_path / "ro.tif"))
        rasterize_into(read_only, [box(0, 0, 5, 5)])
