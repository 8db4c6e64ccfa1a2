"""GF-2 4-band 16-bit orthophotos: scene percentiles from block histograms, stretch, band checks."""
import numpy as np
import pytest
from conftest import write_geotiff
from osgeo import gdal

from minesar.core.errors import MineSARError
from minesar.core.io.optical import GF2_BANDS, Orthophoto, percentile_limits
from minesar.core.io.rasters import Window, tile_windows


@pytest.fixture
def scene(tmp_path):
    rng = np.random.default_rng(7)
    rows, cols = 700, 530
    # Band levels like a GF-2 PMS scene: a few hundred to a thousand DN, long bright tails.
    bands = np.stack([rng.gamma(k, s, (rows, cols)) for k, s in ((6, 60), (7, 70), (8, 80), (9, 120))])
    bands = np.clip(bands, 1, 65535).astype(np.uint16)
    bands[:, :40, :60] = 0  # fill outside the footprint
    return write_geotiff(tmp_path / "gf2.tif", bands, gdal.GDT_UInt16), bands


def test_scene_percentiles_from_block_histograms_equal_numpy(scene):
    path, bands = scene
    footprint = np.any(bands != 0, axis=0)
    with Orthophoto(path) as image:
        limits = percentile_limits(image, 2.0, 98.0, block_bytes=530 * 32 * 37)  # 37-row strips
    for index in range(4):
        values = bands[index][footprint]
        expected = np.percentile(values, [2.0, 98.0], method="inverted_cdf")
        assert (limits.low[index], limits.high[index]) == tuple(expected)


def test_stretch_maps_the_limits_to_0_and_1(scene):
    path, bands = scene
    with Orthophoto(path) as image:
        limits = percentile_limits(image)
        block = image.read(Window(100, 100, 50, 40))
    stretched = limits.apply(block)
    assert stretched.dtype == np.float32 and stretched.min() >= 0 and stretched.max() <= 1
    for index in range(4):
        inside = (block[index] > limits.low[index]) & (block[index] < limits.high[index])
        expected = (block[index][inside] - limits.low[index]) / (limits.high[index] - limits.low[index])
        np.testing.assert_allclose(stretched[index][inside], expected, rtol=1e-5)


def test_windows_of_a_16_bit_scene_reassemble_exactly(scene):
    path, bands = scene
    mosaic = np.zeros_like(bands)
    with Orthophoto(path) as image:
        assert image.band_names == GF2_BANDS
        for window in tile_windows(image.width, image.height, 128, 96):
            mosaic[(slice(None),) + window.slices] = image.read(window)
    np.testing.assert_array_equal(mosaic, bands)
    assert mosaic.max() > 255  # really 16-bit: never squeezed into 8 bits


def test_wrong_band_count_is_refused(tmp_path):
    path = write_geotiff(tmp_path / "rgb.tif", np.ones((3, 10, 10), np.uint16), gdal.GDT_UInt16)
    with pytest.raises(MineSARError, match="rgb.tif: 3 band\\(s\\), expected 4 \\(blue, green, red, nir\\)"):
        Orthophoto(path)


def test_float_scene_uses_sampled_percentiles(tmp_path):
    rng = np.random.default_rng(8)
    bands = rng.normal(0.3, 0.05, (4, 200, 300)).astype(np.float32)
    path = write_geotiff(tmp_path / "reflectance.tif", bands, gdal.GDT_Float32)
    with Orthophoto(path) as image:
        limits = percentile_limits(image)
    for index in range(4):
        expected = np.percentile(bands[index], [2, 98])
        np.testing.assert_allclose((limits.low[index], limits.high[index]), expected, atol=2e-3)


def test_band_nodata_is_left_out(tmp_path):
    bands = np.full((4, 50, 50), 1000, np.uint16)
    bands[:, :10] = 9
    bands[:, 10:12] = 3000
    path = write_geotiff(tmp_path / "nodata.tif", bands, gdal.GDT_UInt16, nodata=9)
    with Orthophoto(path) as image:
        limits = percentile_limits(image, 0.0, 100.0)
    assert list(limits.low) == [1000] * 4 and list(limits.high) == [3000] * 4
