"""Interferogram preprocessing in core/ (no QGIS): Goldstein filter, multilook, coherence,
residues and rendering, each against an answer known from how the input was made."""
import math

import numpy as np
import pytest
from conftest import GEOTRANSFORM, write_geotiff
from osgeo import gdal

from minesar.core.errors import Cancelled, MineSARError
from minesar.core.io.colours import rgb_to_phase, wrap
from minesar.core.io.interferogram import open_interferogram
from minesar.core.io.rasters import read_tags
from minesar.core.preprocess.goldstein import goldstein_filter
from minesar.core.preprocess.residues import count_residues, map_residues
from minesar.core.progress import Progress

WAVELENGTH = 0.05546576
DATES = {"DATE1": "2021-03-01", "DATE2": "2021-03-13"}


def bowl(rows, cols, depth_m, sigma_px, centre=None):
    """Wrapped-phase ingredients of a Gaussian subsidence bowl: its unwrapped LOS phase (rad)."""
    cy, cx = centre or (rows / 2.0, cols / 2.0)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    displacement = -depth_m * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2.0 * sigma_px ** 2))
    return -4.0 * np.pi / WAVELENGTH * displacement  # subsidence moves away from the satellite


def write_phase(path, phase, **tags):
    metadata = {"MINESAR_KIND": "wrapped", **DATES, **tags}
    return write_geotiff(path, np.asarray(wrap(phase), np.float32), gdal.GDT_Float32, metadata=metadata)


def read(path, band=1):
    dataset = gdal.Open(str(path))  # held: a band outlives nothing of its dataset
    return dataset.GetRasterBand(band).ReadAsArray()


def angle_error(a, b):
    return np.abs(wrap(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


# --- Goldstein ---------------------------------------------------------------------------------

def test_noise_free_fringes_pass_the_filter_unchanged(tmp_path):
    rows, cols = 200, 170
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    # Straight fringes plus a two-fringe basin: the pattern a filter must not bend.
    phase = 0.35 * x - 0.12 * y + bowl(rows, cols, 2 * WAVELENGTH / 2, 80.0, (100, 90))
    source_path = write_phase(tmp_path / "clean.tif", phase)
    with open_interferogram(source_path) as source:
        goldstein_filter(source, str(tmp_path / "filtered.tif"), alpha=0.5)
    filtered = read(tmp_path / "filtered.tif")
    margin = 16  # half a patch: the edge rows have only half the usual neighbours
    assert angle_error(filtered, phase)[margin:-margin, margin:-margin].max() < 0.05
    assert np.isfinite(filtered).all()


def test_filter_removes_residues_and_keeps_the_fringe_count(tmp_path):
    rows, cols = 256, 256
    depth = 3.0 * WAVELENGTH / 2  # three fringes from rim to centre
    truth = bowl(rows, cols, depth, 45.0)
    rng = np.random.default_rng(7)
    noisy = truth + rng.normal(0.0, 1.0, truth.shape)
    source_path = write_phase(tmp_path / "noisy.tif", noisy)
    with open_interferogram(source_path) as source:
        goldstein_filter(source, str(tmp_path / "filtered.tif"), alpha=0.8)
    filtered = read(tmp_path / "filtered.tif")

    before, after = count_residues(wrap(noisy)).total, count_residues(filtered).total
    assert before > 1000
    assert after <= 0.2 * before
    # Fringe count: unwrap the filtered phase along the row through the centre, centre → rim.
    profile = np.unwrap(filtered[rows // 2, cols // 2:].astype(np.float64))
    fringes = (profile[-1] - profile[0]) / (2 * np.pi)
    expected = (truth[rows // 2, -1] - truth[rows // 2, cols // 2]) / (2 * np.pi)
    assert expected == pytest.approx(-3.0, abs=0.1)  # the Gaussian has not quite reached 0 at the rim
    assert fringes == pytest.approx(expected, abs=0.25)


def test_filter_is_independent_of_the_block_size_and_keeps_nodata(tmp_path):
    rows, cols = 150, 90
    rng = np.random.default_rng(3)
    phase = bowl(rows, cols, 0.05, 30.0) + rng.normal(0.0, 0.5, (rows, cols))
    phase = wrap(phase).astype(np.float32)
    phase[40:60, 10:30] = np.nan
    phase[-1, :] = np.nan
    source_path = write_phase(tmp_path / "in.tif", phase)
    with open_interferogram(source_path) as source:
        goldstein_filter(source, str(tmp_path / "whole.tif"), alpha=0.6, patch_size=16)
        goldstein_filter(source, str(tmp_path / "blocks.tif"), alpha=0.6, patch_size=16, block_bytes=90 * 24 * 30)
    whole, blocks = read(tmp_path / "whole.tif"), read(tmp_path / "blocks.tif")
    np.testing.assert_array_equal(np.isnan(whole), np.isnan(phase))
    np.testing.assert_allclose(blocks, whole, atol=1e-6, equal_nan=True)
    tags = read_tags(str(tmp_path / "blocks.tif"))[0]
    assert tags["MINESAR_KIND"] == "wrapped" and tags["DATE1"] == "2021-03-01"
    assert "patch=16" in tags["MINESAR_FILTER"]
    assert gdal.Open(str(tmp_path / "blocks.tif")).GetGeoTransform() == GEOTRANSFORM


def test_coherence_sets_the_exponent(tmp_path):
    rows, cols = 96, 96
    rng = np.random.default_rng(5)
    noisy = wrap(bowl(rows, cols, 0.04, 25.0) + rng.normal(0.0, 0.8, (rows, cols))).astype(np.float32)
    source_path = write_phase(tmp_path / "in.tif", noisy)
    outputs = {}
    for coherence_value in (1.0, 0.0):
        coherence_path = write_geotiff(
            tmp_path / f"coh{coherence_value}.tif", np.full((rows, cols), coherence_value, np.float32),
            gdal.GDT_Float32, metadata={"MINESAR_KIND": "coherence"},
        )
        with open_interferogram(source_path) as source, open_interferogram(coherence_path) as coherence:
            goldstein_filter(source, str(tmp_path / f"out{coherence_value}.tif"), coherence=coherence)
        outputs[coherence_value] = read(tmp_path / f"out{coherence_value}.tif")
    # Coherence 1 → α = 0: H = 1, the patches are reassembled as they were.
    assert angle_error(outputs[1.0], noisy).max() < 1e-4
    # Coherence 0 → α = 1, the strongest filter: far fewer residues than α = 0.
    assert count_residues(outputs[0.0]).total < 0.2 * count_residues(noisy).total


@pytest.mark.parametrize(
    "kwargs, message",
    [({"alpha": 1.5}, "ALPHA = 1.5"), ({"patch_size": 24}, "PATCH_SIZE = 24"), ({"alpha": -0.1}, "within 0–1")],
)
def test_filter_refuses_bad_parameters(tmp_path, kwargs, message):
    source_path = write_phase(tmp_path / "in.tif", np.zeros((20, 20)))
    with open_interferogram(source_path) as source, pytest.raises(MineSARError, match=message):
        goldstein_filter(source, str(tmp_path / "out.tif"), **kwargs)
    assert not (tmp_path / "out.tif").exists()


def test_filter_refuses_other_kinds_mismatched_grids_and_empty_rasters(tmp_path):
    unwrapped = write_geotiff(tmp_path / "u.tif", np.ones((20, 20), np.float32) * 9, gdal.GDT_Float32,
                              metadata={"MINESAR_KIND": "unwrapped"})
    with open_interferogram(unwrapped) as source, pytest.raises(MineSARError, match="u.tif: holds unwrapped"):
        goldstein_filter(source, str(tmp_path / "out.tif"))
    phase = write_phase(tmp_path / "p.tif", np.zeros((20, 20)))
    small = write_geotiff(tmp_path / "c.tif", np.ones((20, 19), np.float32), gdal.GDT_Float32,
                          metadata={"MINESAR_KIND": "coherence"})
    with open_interferogram(phase) as source, open_interferogram(small) as coherence:
        with pytest.raises(MineSARError, match="c.tif: the coherence raster is 19 × 20 px"):
            goldstein_filter(source, str(tmp_path / "out.tif"), coherence=coherence)
    empty = write_phase(tmp_path / "e.tif", np.full((20, 20), np.nan))
    with open_interferogram(empty) as source, pytest.raises(MineSARError, match="e.tif: no valid pixels"):
        goldstein_filter(source, str(tmp_path / "out.tif"))
    assert not (tmp_path / "out.tif").exists()


def test_cancel_leaves_no_output(tmp_path):
    source_path = write_phase(tmp_path / "in.tif", np.zeros((64, 64)))
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 1

    with open_interferogram(source_path) as source, pytest.raises(Cancelled):
        goldstein_filter(source, str(tmp_path / "out.tif"), patch_size=8, progress=Progress(is_cancelled=cancelled),
                         block_bytes=64 * 24 * 16)
    assert list(tmp_path.iterdir()) == [tmp_path / "in.tif"]


# --- residues ----------------------------------------------------------------------------------

def test_a_single_vortex_is_one_residue_of_the_right_sign(tmp_path):
    y, x = np.mgrid[0:40, 0:50].astype(np.float64)
    vortex = np.arctan2(y - 20.5, x - 30.5)  # winds once anticlockwise around (30.5, 20.5)
    path = write_phase(tmp_path / "v.tif", vortex)
    with open_interferogram(path) as source:
        count = map_residues(source, str(tmp_path / "r.tif"), block_bytes=50 * 40 * 7)
    charges = read(tmp_path / "r.tif")
    assert (count.positive, count.negative) == (1, 0)
    assert charges[20, 30] == 1 and np.nansum(np.abs(charges)) == 1
    assert np.isnan(charges[-1]).all() and np.isnan(charges[:, -1]).all()
    assert count.loops == 39 * 49
    # The mirrored vortex winds the other way.
    assert count_residues(-vortex).negative == 1 and count_residues(-vortex).positive == 0
