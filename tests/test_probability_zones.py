"""Zones of a mask with the probabilities inside them, against scipy's labelling."""
import numpy as np
import pytest
from osgeo import gdal, osr
from scipy import ndimage

from minesar.core.probability_zones import zones


def write(path, array, gdal_type, geotransform=None, nodata=None):
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), array.shape[1], array.shape[0], 1, gdal_type)
    if geotransform:
        dataset.SetGeoTransform(geotransform)
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(32650)
        dataset.SetProjection(srs.ExportToWkt())
    if nodata is not None:
        dataset.GetRasterBand(1).SetNoDataValue(nodata)
    dataset.GetRasterBand(1).WriteArray(array)
    dataset = None
    return str(path)


@pytest.mark.parametrize("georeferenced", [True, False])
def test_zone_statistics_match_the_labelled_mask(tmp_path, georeferenced):
    rng = np.random.default_rng(3)
    probability = rng.uniform(0, 1, (90, 70)).astype(np.float32)
    mask = np.zeros(probability.shape, np.uint8)
    mask[10:30, 5:25] = 1
    mask[30, 25] = 1  # joined diagonally: the same zone
    mask[50:80, 40:65] = 1
    mask[60:65, 50:55] = 0  # a hole
    mask[0:5, 60:70] = 255  # no data is not a zone
    probability[0:5, 60:70] = np.nan
    geotransform = (500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0) if georeferenced else None
    found = zones(write(tmp_path / "m.tif", mask, gdal.GDT_Byte, geotransform, 255),
                  write(tmp_path / "p.tif", probability, gdal.GDT_Float32, geotransform), )
    labels, count = ndimage.label(mask == 1, structure=np.ones((3, 3)))
    assert len(found) == count == 2
    expected = sorted((int((labels == i).sum()), float(probability[labels == i].mean()), float(probability[labels == i].max()))
                      for i in range(1, count + 1))
    got = sorted((z.pixels, z.mean_probability, z.max_probability) for z in found)
    assert [g[0] for g in got] == [e[0] for e in expected]
    assert np.allclose([g[1:] for g in got], [e[1:] for e in expected])
    if georeferenced:
        assert sorted(z.area_m2 for z in found) == pytest.approx(sorted(e[0] * 900.0 for e in expected))
    else:
        # Pixel coordinates as QGIS shows an ungeoreferenced raster: x = column, y = −row.
        big = max(found, key=lambda z: z.pixels).polygon
        assert big.bounds == (40.0, -80.0, 65.0, -50.0) and np.isnan(found[0].area_m2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tif", "p.tif"]  # no temporary left
