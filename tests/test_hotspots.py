"""Getis-Ord Gi* (core/hotspots.py) against a hand-computed statistic and a planted hot block."""
import math

import numpy as np
import pytest
from conftest import GEOTRANSFORM, write_geotiff
from osgeo import gdal
from scipy.special import erfc

from minesar.core.errors import MineSARError
from minesar.core.hotspots import CLASS_NODATA, band_runs, getis_ord_hotspots

PIXEL = GEOTRANSFORM[1]  # 30 m


def read(path):
    dataset = gdal.Open(str(path))
    return dataset.GetRasterBand(1).ReadAsArray()


def reference_gi_star(values, row, col, radius_px):
    """Gi* of one pixel straight from its definition, by an explicit list of neighbours."""
    valid = np.isfinite(values)
    x = values[valid]
    n, mean = x.size, x.mean()
    s = math.sqrt((x ** 2).mean() - mean ** 2)
    rr, cc = np.nonzero(valid)
    inside = (rr - row) ** 2 + (cc - col) ** 2 <= radius_px ** 2
    w = inside.sum()
    total = values[rr[inside], cc[inside]].sum()
    return (total - mean * w) / (s * math.sqrt((n * w - w * w) / (n - 1)))


def test_band_runs_form_a_disc():
    runs = band_runs(3 * PIXEL, PIXEL, PIXEL)
    assert runs == [(-3, 0), (-2, 2), (-1, 2), (0, 3), (1, 2), (2, 2), (3, 0)]
    assert sum(2 * h + 1 for _, h in runs) == 29  # lattice points in a disc of radius 3


def test_z_scores_match_the_definition_and_ignore_nodata(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(40, 30))
    values[5:9, 3:6] = np.nan
    path = write_geotiff(tmp_path / "v.tif", values.astype(np.float32), gdal.GDT_Float32)
    summary = getis_ord_hotspots(path, str(tmp_path / "cls.tif"), 4 * PIXEL, z_path=str(tmp_path / "z.tif"),
                                 p_path=str(tmp_path / "p.tif"), block_bytes=30 * 64 * 12)
    z, p = read(tmp_path / "z.tif"), read(tmp_path / "p.tif")
    stored = values.astype(np.float32).astype(np.float64)
    for row, col in [(0, 0), (7, 7), (20, 15), (39, 29), (10, 4)]:
        assert z[row, col] == pytest.approx(reference_gi_star(stored, row, col, 4), abs=1e-4)
        assert p[row, col] == pytest.approx(erfc(abs(z[row, col]) / math.sqrt(2)), rel=1e-4)
    assert np.isnan(z[5:9, 3:6]).all() and (read(tmp_path / "cls.tif")[5:9, 3:6] == CLASS_NODATA).all()
    assert summary.valid_pixels == 40 * 30 - 12


def test_one_hot_block_is_flagged_and_nothing_else_at_99(tmp_path):
    rng = np.random.default_rng(1)
    rows, cols = 160, 140
    velocity = rng.normal(0.0, 2.0, (rows, cols))  # mm/yr of noise
    block = (slice(70, 82), slice(40, 52))
    velocity[block] -= 60.0  # a subsiding mine: a cold spot in velocity
    values = -velocity  # subsidence rate as a positive number: the block is the hot spot
    path = write_geotiff(tmp_path / "rate.tif", values.astype(np.float32), gdal.GDT_Float32)
    radius = 5
    summary = getis_ord_hotspots(path, str(tmp_path / "whole.tif"), radius * PIXEL)
    getis_ord_hotspots(path, str(tmp_path / "blocks.tif"), radius * PIXEL, block_bytes=cols * 64 * 14)
    classes = read(tmp_path / "whole.tif")
    np.testing.assert_array_equal(read(tmp_path / "blocks.tif"), classes)

    assert (classes[block] == 3).all()
    # Only pixels whose band reaches into the block can be hot; nothing is cold at 99 %.
    near = np.zeros((rows, cols), bool)
    near[block[0].start - radius:block[0].stop + radius, block[1].start - radius:block[1].stop + radius] = True
    assert not (classes[~near] == 3).any()
    assert not (classes == -3).any()
    assert summary.class_counts[3] == int((classes == 3).sum()) >= 144
    # The same raster with the sign flipped: the block is the cold spot.
    flipped = write_geotiff(tmp_path / "velocity.tif", velocity.astype(np.float32), gdal.GDT_Float32)
    getis_ord_hotspots(flipped, str(tmp_path / "cold.tif"), radius * PIXEL)
    np.testing.assert_array_equal(read(tmp_path / "cold.tif") == -3, classes == 3)


@pytest.mark.parametrize(
    "distance, values, message",
    [
        (10.0, None, "less than one pixel"),
        (-5.0, None, "DISTANCE = -5"),
        (90.0, np.full((10, 10), 4.0), "every valid pixel has the value 4"),
        (90.0, np.full((10, 10), 0.1), "every valid pixel has the value 0.1"),  # std rounding ≠ 0
        (90.0, np.full((10, 10), np.nan), "0 valid pixel"),
    ],
)
def test_bad_requests_name_the_problem(tmp_path, distance, values, message):
    values = np.arange(100, dtype=np.float32).reshape(10, 10) if values is None else values
    path = write_geotiff(tmp_path / "in.tif", values.astype(np.float32), gdal.GDT_Float32)
    with pytest.raises(MineSARError, match=message):
        getis_ord_hotspots(path, str(tmp_path / "out.tif"), distance)
    assert not (tmp_path / "out.tif").exists()


def write_lat_lon(path, values, lon0, lat0, step_x, step_y):
    """A GeoTIFF on a WGS 84 lat/lon grid (degrees) with its top-left corner at (lon0, lat0)."""
    from osgeo import osr

    rows, cols = values.shape
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, 1, gdal.GDT_Float32)
    dataset.SetGeoTransform((lon0, step_x, 0.0, lat0, 0.0, -step_y))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    dataset.SetProjection(srs.ExportToWkt())
    dataset.GetRasterBand(1).WriteArray(values.astype(np.float32))
    dataset = None
    return str(path)


def metres_per_pixel_by_projection(lon, lat, step_x, step_y):
    """Pixel size in metres at (lon, lat), independently: PROJ's azimuthal equidistant projection
    centred there keeps distances from the centre exact."""
    from osgeo import osr

    wgs84, local = osr.SpatialReference(), osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    local.ImportFromProj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m")
    local.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(wgs84, local)
    east = transform.TransformPoint(lon + step_x, lat)[0]
    north = transform.TransformPoint(lon, lat + step_y)[1]
    return east, north


def test_distance_is_metres_on_a_geographic_raster(tmp_path):
    from minesar.core.hotspots import pixel_size_in_metres

    # 0.0003° pixels at 40° N: about 25.6 m east–west and 33.3 m north–south. The default band of
    # 300 m read as degrees would reach 10⁶ rows; in metres it is 9 rows and 11 columns.
    rows, cols, step = 120, 140, 0.0003
    lon0, lat0 = 116.0, 40.0 + rows / 2 * step  # centre latitude 40°
    rng = np.random.default_rng(8)
    values = rng.normal(0.0, 1.0, (rows, cols))
    block = (slice(50, 62), slice(60, 72))
    values[block] += 30.0
    path = write_lat_lon(tmp_path / "rate_wgs84.tif", values, lon0, lat0, step, step)
    width_m, height_m, how = pixel_size_in_metres((lon0, step, 0, lat0, 0, -step),
                                                  gdal.Open(path).GetProjection(), rows)
    expected = metres_per_pixel_by_projection(lon0 + cols / 2 * step, 40.0, step, step)
    assert (width_m, height_m) == pytest.approx(expected, rel=2e-4)
    assert "degrees at latitude 40.0000" in how

    summary = getis_ord_hotspots(path, str(tmp_path / "cls.tif"), 300.0)
    assert summary.rows_in_band == 2 * int(300.0 // height_m) + 1 == 19
    runs = band_runs(300.0, width_m, height_m)
    assert dict(runs)[0] == int(300.0 // width_m) == 11  # an ellipse in pixels: wider than tall
    classes = read(tmp_path / "cls.tif")
    assert (classes[block] == 3).all()
    near = np.zeros((rows, cols), bool)
    near[50 - 9:62 + 9, 60 - 11:72 + 11] = True
    assert not (classes[~near] == 3).any()
    assert "degrees" in gdal.Open(str(tmp_path / "cls.tif")).GetMetadataItem("GI_PIXEL_SIZE_M")


def test_a_band_across_the_raster_is_refused_by_name(tmp_path):
    values = np.random.default_rng(0).normal(size=(50, 60)).astype(np.float32)
    path = write_geotiff(tmp_path / "small.tif", values, gdal.GDT_Float32)
    # 1.5 km at 30 m pixels is 50 rows: the band would cover every row of a 50-row raster.
    with pytest.raises(MineSARError, match=r"small.tif: a DISTANCE of 1500 m .* whole raster"):
        getis_ord_hotspots(path, str(tmp_path / "out.tif"), 1500.0)
    # The same refusal, not a MemoryError, for 300 "degrees" worth of rows on a lat/lon grid.
    geographic = write_lat_lon(tmp_path / "ll.tif", values, 116.0, 40.0, 0.0003, 0.0003)
    with pytest.raises(MineSARError, match="ll.tif: a DISTANCE of 3e\\+07 m"):
        getis_ord_hotspots(geographic, str(tmp_path / "out.tif"), 3.0e7)
    assert not (tmp_path / "out.tif").exists()


def test_a_hopelessly_wide_band_is_refused_before_reading(tmp_path):
    # 20 000² px (sparse: nothing written, a few kB on disk) with a 30 km band: 1 000 rows of
    # reach, 1.6 × 10¹² pixel operations: refused at once instead of running for hours.
    path = tmp_path / "huge.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 20000, 20000, 1, gdal.GDT_Float32,
                                                   ["TILED=YES", "SPARSE_OK=TRUE", "COMPRESS=DEFLATE"])
    dataset.SetGeoTransform(GEOTRANSFORM)
    dataset = None
    with pytest.raises(MineSARError, match="huge.tif: a DISTANCE of 30000 m reaches 1000 rows.*multilook"):
        getis_ord_hotspots(str(path), str(tmp_path / "out.tif"), 30000.0)
    assert not (tmp_path / "out.tif").exists()


def test_a_band_holding_every_valid_pixel_is_refused(tmp_path):
    # Only a 3 × 3 cluster is valid: a 120 m band around any of them holds all nine, so
    # n W − W² = 0 and Gi* is 0/0 everywhere — an error, not a raster of nodata classes.
    values = np.full((40, 40), np.nan, np.float32)
    values[10:13, 10:13] = np.arange(9).reshape(3, 3)
    path = write_geotiff(tmp_path / "cluster.tif", values, gdal.GDT_Float32)
    with pytest.raises(MineSARError, match="cluster.tif: the 120 m band .* all 9 valid pixels.*undefined"):
        getis_ord_hotspots(path, str(tmp_path / "out.tif"), 120.0)
    assert not (tmp_path / "out.tif").exists()
