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
        (90.0, np.full((10, 10), np.nan), "0 valid pixel"),
    ],
)
def test_bad_requests_name_the_problem(tmp_path, distance, values, message):
    values = np.arange(100, dtype=np.float32).reshape(10, 10) if values is None else values
    path = write_geotiff(tmp_path / "in.tif", values.astype(np.float32), gdal.GDT_Float32)
    with pytest.raises(MineSARError, match=message):
        getis_ord_hotspots(path, str(tmp_path / "out.tif"), distance)
    assert not (tmp_path / "out.tif").exists()
