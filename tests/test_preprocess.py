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


def data_type(path):
    dataset = gdal.Open(str(path))  # held while its band is asked
    return dataset.GetRasterBand(1).DataType


def angle_error(a, b):
    return np.abs(wrap(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


# --- Goldstein ---------------------------------------------------------------------------------

# Largest phase change of noise-free fringes, away from the edges: the issue's 0.05 rad holds for
# the default √Hann blend (measured 0.025 rad); Goldstein–Werner's triangular blend, which filters
# unwindowed patches, shifts a fringe between FFT bins by up to 0.097 rad here (0.077 rad on the
# straight fringes alone), so it is held to 0.12.
NOISE_FREE_TOLERANCE = {"hann": 0.05, "triangular": 0.12}


@pytest.mark.parametrize("blending", ["hann", "triangular"])
def test_noise_free_fringes_pass_the_filter_unchanged(tmp_path, blending):
    rows, cols = 200, 170
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    # Straight fringes plus a two-fringe basin: the pattern a filter must not bend.
    phase = 0.35 * x - 0.12 * y + bowl(rows, cols, 2 * WAVELENGTH / 2, 80.0, (100, 90))
    source_path = write_phase(tmp_path / "clean.tif", phase)
    with open_interferogram(source_path) as source:
        goldstein_filter(source, str(tmp_path / "filtered.tif"), alpha=0.5, blending=blending)
    filtered = read(tmp_path / "filtered.tif")
    error = angle_error(filtered, phase)
    margin = 16  # half a patch: the edge rows have only half the usual neighbours
    assert error[margin:-margin, margin:-margin].max() < NOISE_FREE_TOLERANCE[blending]
    assert np.isfinite(filtered).all()
    # Edges padded and filtered like the interior: the outermost rows and columns keep their phase
    # as well (an unfiltered edge would too, so the residue test below shows they are filtered).
    outermost = np.concatenate([error[0], error[-1], error[:, 0], error[:, -1]])
    assert outermost.max() < NOISE_FREE_TOLERANCE[blending]
    assert f"blending={blending}" in read_tags(str(tmp_path / "filtered.tif"))[0]["MINESAR_FILTER"]


def edge_residues(phase, band=8):
    """Residues in the outermost ``band`` rows and columns (four strips, corners counted twice)."""
    return sum(count_residues(strip).total for strip in (phase[:band], phase[-band:], phase[:, :band], phase[:, -band:]))


@pytest.mark.parametrize("blending", ["hann", "triangular"])
def test_filter_removes_residues_and_keeps_the_fringe_count(tmp_path, blending):
    rows, cols = 256, 256
    depth = 3.0 * WAVELENGTH / 2  # three fringes from rim to centre
    truth = bowl(rows, cols, depth, 45.0)
    rng = np.random.default_rng(7)
    noisy = truth + rng.normal(0.0, 1.0, truth.shape)
    source_path = write_phase(tmp_path / "noisy.tif", noisy)
    with open_interferogram(source_path) as source:
        goldstein_filter(source, str(tmp_path / "filtered.tif"), blending=blending)  # default α = 0.5
    filtered = read(tmp_path / "filtered.tif")

    # Measured: 5002 → 245 (−95 %) with hann, → 469 (−91 %) triangular.
    before, after = count_residues(wrap(noisy)).total, count_residues(filtered).total
    assert before > 1000
    assert after <= 0.2 * before
    # The edges are filtered too: residues in the outer 8 px fall as well (533 → 54 / 71).
    assert edge_residues(filtered) <= 0.2 * edge_residues(wrap(noisy))
    # Fringe count: unwrap the filtered phase along the row through the centre, centre → rim.
    profile = np.unwrap(filtered[rows // 2, cols // 2:].astype(np.float64))
    fringes = (profile[-1] - profile[0]) / (2 * np.pi)
    expected = (truth[rows // 2, -1] - truth[rows // 2, cols // 2]) / (2 * np.pi)
    assert expected == pytest.approx(-3.0, abs=0.1)  # the Gaussian has not quite reached 0 at the rim
    assert fringes == pytest.approx(expected, abs=0.25)


def test_blending_weights_sum_to_one_across_half_overlapping_patches():
    from minesar.core.preprocess.goldstein import blending_window, triangular_window

    for patch in (4, 16, 32):
        step = patch // 2
        hann = blending_window(patch).astype(np.float64) ** 2  # applied before and after the FFT
        triangle = triangular_window(patch).astype(np.float64)
        np.testing.assert_allclose(hann[:step] + hann[step:], 1.0, atol=1e-6)
        np.testing.assert_allclose(triangle[:step] + triangle[step:], 1.0, atol=1e-6)
        assert triangle.max() < 1.0 and triangle.min() > 0.0 and triangle[0] == triangle[-1]


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
        goldstein_filter(source, str(tmp_path / "tri.tif"), alpha=0.6, patch_size=16, blending="triangular")
        goldstein_filter(source, str(tmp_path / "tri_blocks.tif"), alpha=0.6, patch_size=16, blending="triangular",
                         block_bytes=90 * 24 * 30)
    np.testing.assert_array_equal(read(tmp_path / "tri_blocks.tif"), read(tmp_path / "tri.tif"))
    whole, blocks = read(tmp_path / "whole.tif"), read(tmp_path / "blocks.tif")
    np.testing.assert_array_equal(np.isnan(whole), np.isnan(phase))
    np.testing.assert_array_equal(blocks, whole)
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
    [({"alpha": 1.5}, "ALPHA = 1.5"), ({"patch_size": 24}, "PATCH_SIZE = 24"), ({"alpha": -0.1}, "within 0–1"),
     ({"blending": "cosine"}, "BLENDING = cosine: use one of hann, triangular")],
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


# --- multilook ---------------------------------------------------------------------------------

def write_complex(path, values, **tags):
    return write_geotiff(path, np.asarray(values, np.complex64), gdal.GDT_CFloat32, metadata={"MINESAR_KIND": "wrapped", **DATES, **tags})


def test_multilook_of_a_constant_complex_field_is_exact(tmp_path):
    from minesar.core.preprocess.multilook import multilook

    value = 3.0 * np.exp(1j * 1.234)
    path = write_complex(tmp_path / "c.tif", np.full((47, 33), value))
    with open_interferogram(path) as source:
        size = multilook(source, str(tmp_path / "ml.tif"), range_looks=2, azimuth_looks=10, block_bytes=33 * 40 * 10)
    assert size == (16, 4)  # whole boxes only: 33 // 2, 47 // 10
    dataset = gdal.Open(str(tmp_path / "ml.tif"))
    result = dataset.ReadAsArray()
    assert result.shape == (4, 16)
    np.testing.assert_allclose(result, np.float32(1.234), atol=1e-6)
    x0, dx, _, y0, _, dy = GEOTRANSFORM
    assert dataset.GetGeoTransform() == pytest.approx((x0, 2 * dx, 0.0, y0, 0.0, 10 * dy))
    assert dataset.GetMetadataItem("MINESAR_LOOKS") == "2x10"
    assert dataset.GetMetadataItem("DATE2") == "2021-03-13"


def test_multilook_averages_complex_values_phasors_and_real_values(tmp_path):
    from minesar.core.preprocess.multilook import multilook

    # One 1 × 2 box: amplitudes 3 and 1 at phases 0 and π/2 → complex mean angle atan2(1, 3).
    complex_path = write_complex(tmp_path / "z.tif", np.array([[3.0, 1j]]))
    with open_interferogram(complex_path) as source:
        multilook(source, str(tmp_path / "z_ml.tif"), 2, 1)
    assert read(tmp_path / "z_ml.tif")[0, 0] == pytest.approx(math.atan2(1, 3), abs=1e-6)
    # The same phases without amplitudes average to π/4; across ±π the mean phase is π, not 0.
    phase_path = write_phase(tmp_path / "p.tif", np.array([[0.0, np.pi / 2, 3.0, -3.0]]))
    with open_interferogram(phase_path) as source:
        multilook(source, str(tmp_path / "p_ml.tif"), 2, 1)
    np.testing.assert_allclose(np.abs(read(tmp_path / "p_ml.tif")[0]), [np.pi / 4, np.pi], atol=1e-6)
    # Coherence: NaN left out of the mean; an all-NaN box is NaN.
    coherence = np.array([[0.2, np.nan, np.nan, np.nan], [0.4, 0.6, np.nan, np.nan]], np.float32)
    coherence_path = write_geotiff(tmp_path / "cc.tif", coherence, gdal.GDT_Float32, metadata={"MINESAR_KIND": "coherence"})
    with open_interferogram(coherence_path) as source:
        multilook(source, str(tmp_path / "cc_ml.tif"), 2, 2)
    result = read(tmp_path / "cc_ml.tif")[0]
    assert result[0] == pytest.approx(0.4) and np.isnan(result[1])


def test_looks_from_an_output_pixel_size():
    from minesar.core.preprocess.multilook import looks_for_pixel_size

    assert looks_for_pixel_size((0, 15.0, 0, 0, 0, -3.0), 30.0) == (2, 10)
    with pytest.raises(MineSARError, match="georeferenced"):
        looks_for_pixel_size(None, 30.0)


# --- coherence ---------------------------------------------------------------------------------

def test_phase_only_coherence_of_noise_and_of_a_clean_field(tmp_path):
    from minesar.core.preprocess.coherence import estimate_coherence

    rng = np.random.default_rng(11)
    rows, cols, window = 240, 200, 5
    noise = rng.uniform(-np.pi, np.pi, (rows, cols))
    clean = 0.4 * np.arange(cols)[None, :] * np.ones((rows, 1))  # fringes, but constant in no box…
    flat = np.full((rows, cols), 0.7)
    results = {}
    for name, phase in (("noise", noise), ("flat", flat), ("ramp", clean)):
        path = write_phase(tmp_path / f"{name}.tif", phase)
        with open_interferogram(path) as source:
            estimate_coherence(source, str(tmp_path / f"{name}_cc.tif"), window=window, block_bytes=cols * 96 * 20)
        results[name] = read(tmp_path / f"{name}_cc.tif")
    inner = (slice(2, -2), slice(2, -2))
    n = window * window
    # E|Σ e^{iφ}|² = N for independent phases: the RMS coherence is exactly 1/√N.
    rms = np.sqrt(np.mean(results["noise"][inner].astype(np.float64) ** 2))
    assert rms == pytest.approx(1 / math.sqrt(n), rel=0.03)
    np.testing.assert_allclose(results["flat"], 1.0, atol=1e-6)
    # …a phase ramp of 0.4 rad/px in a 5-px box: |Σ e^{ikx}|/5 = |sin(5k/2) / (5 sin(k/2))|.
    expected = abs(math.sin(2.5 * 0.4) / (5 * math.sin(0.2)))
    np.testing.assert_allclose(results["ramp"][inner], expected, atol=1e-5)
    assert read_tags(str(tmp_path / "noise_cc.tif"))[0]["MINESAR_KIND"] == "coherence"


def test_coherence_of_two_slcs_and_of_a_complex_interferogram(tmp_path):
    from minesar.core.preprocess.coherence import estimate_coherence

    rng = np.random.default_rng(2)
    shape = (80, 60)
    gamma = 0.6
    common = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    own = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    # s2 shares a fraction γ of s1's scattering: true coherence γ.
    slc1 = common
    slc2 = gamma * common + math.sqrt(1 - gamma ** 2) * own
    first = write_complex(tmp_path / "a_slc.tif", slc1)
    second = write_complex(tmp_path / "b_slc.tif", slc2)
    with open_interferogram(first) as one, open_interferogram(second) as two:
        estimator = estimate_coherence(one, str(tmp_path / "slc_cc.tif"), window=15, second=two)
    assert "s1 s2*" in estimator
    estimate = read(tmp_path / "slc_cc.tif")[10:-10, 10:-10]
    assert np.median(estimate) == pytest.approx(gamma, abs=0.05)
    interferogram = write_complex(tmp_path / "ifg.tif", slc1 * np.conj(slc2))
    with open_interferogram(interferogram) as source:
        estimator = estimate_coherence(source, str(tmp_path / "ifg_cc.tif"), window=15)
    assert "amplitude-weighted" in estimator
    upper = read(tmp_path / "ifg_cc.tif")[10:-10, 10:-10]
    assert (upper >= estimate - 1e-5).all()  # never below the two-SLC estimate


def test_coherence_is_independent_of_blocks_and_refuses_even_windows(tmp_path):
    from minesar.core.preprocess.coherence import estimate_coherence

    rng = np.random.default_rng(4)
    phase = wrap(bowl(70, 50, 0.03, 15.0) + rng.normal(0, 0.6, (70, 50))).astype(np.float32)
    phase[30:33, 20:25] = np.nan
    path = write_phase(tmp_path / "in.tif", phase)
    with open_interferogram(path) as source:
        estimate_coherence(source, str(tmp_path / "whole.tif"), window=7)
        estimate_coherence(source, str(tmp_path / "blocks.tif"), window=7, block_bytes=50 * 96 * 9)
        with pytest.raises(MineSARError, match="WINDOW = 4"):
            estimate_coherence(source, str(tmp_path / "even.tif"), window=4)
    whole = read(tmp_path / "whole.tif")
    np.testing.assert_array_equal(read(tmp_path / "blocks.tif"), whole)
    assert np.isnan(whole[30:33, 20:25]).all() and np.isfinite(whole[:30]).all()


# --- rendering ---------------------------------------------------------------------------------

def test_render_round_trips_through_rgb_to_phase(tmp_path):
    from minesar.core.preprocess.render import render_interferogram

    rows, cols = 60, 80
    phase = wrap(bowl(rows, cols, 0.05, 20.0) + 0.05 * np.arange(cols)[None, :]).astype(np.float32)
    phase[5:8, 5:8] = np.nan
    path = write_phase(tmp_path / "in.tif", phase)
    coherence = np.full((rows, cols), 0.5, np.float32)
    coherence_path = write_geotiff(tmp_path / "cc.tif", coherence, gdal.GDT_Float32, metadata={"MINESAR_KIND": "coherence"})
    with open_interferogram(path) as source:
        render_interferogram(source, str(tmp_path / "plain.tif"), block_bytes=cols * 80 * 7)
        info = render_interferogram(source, str(tmp_path / "dark.png"), brightness_path=coherence_path)
    assert info["reference"] == 1.0
    plain = gdal.Open(str(tmp_path / "plain.tif")).ReadAsArray()
    recovered = rgb_to_phase(np.moveaxis(plain, 0, -1))
    valid = np.isfinite(phase)
    np.testing.assert_array_equal(np.isfinite(recovered), valid)
    assert angle_error(recovered[valid], phase[valid]).max() < 2 * np.pi / 1530  # one 8-bit hue step
    dark = gdal.Open(str(tmp_path / "dark.png")).ReadAsArray()
    # Brightness 0.5^0.35 scales every channel; the hue (phase) survives within the coarser steps.
    assert dark[:, valid].max() == round(255 * 0.5 ** 0.35)
    assert angle_error(rgb_to_phase(np.moveaxis(dark, 0, -1))[valid], phase[valid]).max() < 2 * np.pi / 1000
    assert (tmp_path / "dark.wld").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cc.tif", "dark.png", "dark.png.aux.xml", "dark.wld", "in.tif", "plain.tif"]


# --- complex import (KEEP_COMPLEX) -------------------------------------------------------------

def write_gamma_diff(folder, z):
    """A geocoded GAMMA complex interferogram: big-endian >c8 with the dem_par of its UTM grid."""
    lines, width = z.shape
    path = folder / "20200101_20200113.diff"
    np.asarray(z, np.complex64).astype(">c8").tofile(path)
    (folder / "scene.dem_par").write_text(
        f"DEM_projection: UTM\nwidth: {width}\nnlines: {lines}\ncorner_north: 4200000.0 m\n"
        "corner_east: 500000.0 m\npost_north: -30.0 m\npost_east: 30.0 m\nellipsoid_name: WGS 84\n"
        "projection_zone: 50\nfalse_northing: 0.0 m\n"
    )
    (folder / "20200101.mli.par").write_text("date:  2020 01 01 10 00 00\nradar_frequency:  5.405e9 Hz\n")
    return str(path)


def test_keep_complex_import_reads_back_as_phase_and_as_complex_values(tmp_path):
    from minesar.core.importer import import_interferogram
    from minesar.core.preprocess.blocks import complex_reader
    from minesar.core.io.rasters import Window

    rng = np.random.default_rng(12)
    z = (rng.uniform(0.5, 4.0, (30, 40)) * np.exp(1j * rng.uniform(-np.pi, np.pi, (30, 40)))).astype(np.complex64)
    z[3, 5:9] = 0  # GAMMA's nodata
    with open_interferogram(write_gamma_diff(tmp_path, z)) as source:
        summary = import_interferogram(source, str(tmp_path / "kept.tif"), keep_complex=True)
    assert summary.complex_kept and summary.valid_fraction == pytest.approx(1 - 4 / 1200)
    dataset = gdal.Open(str(tmp_path / "kept.tif"))
    assert dataset.GetRasterBand(1).DataType == gdal.GDT_CFloat32
    np.testing.assert_array_equal(dataset.ReadAsArray(), z)  # amplitude and phase bit for bit
    tags = read_tags(str(tmp_path / "kept.tif"))[0]
    assert tags["MINESAR_KIND"] == "wrapped" and tags["DATE2"] == "2020-01-13" and tags["SOURCE_FORMAT"] == "GAMMA"
    assert float(tags["WAVELENGTH_M"]) == pytest.approx(299_792_458.0 / 5.405e9)
    with open_interferogram(str(tmp_path / "kept.tif")) as again:
        assert again.metadata.kind == "wrapped" and again.is_georeferenced
        phase = again.read(Window(0, 0, 40, 30))
        values = complex_reader(again)(Window(0, 0, 40, 30))
    assert np.isnan(phase[3, 5:9]).all() and np.isfinite(phase).sum() == 1196
    valid = z != 0
    np.testing.assert_allclose(phase[valid], np.angle(z[valid]), atol=1e-6)
    np.testing.assert_array_equal(values, z)
    # Without KEEP_COMPLEX the import is float32 phase, as before.
    with open_interferogram(str(tmp_path / "20200101_20200113.diff")) as source:
        assert not import_interferogram(source, str(tmp_path / "phase.tif")).complex_kept
    assert data_type(str(tmp_path / "phase.tif")) == gdal.GDT_Float32


def test_keep_complex_on_a_phase_raster_imports_float_phase(tmp_path):
    from minesar.core.importer import import_interferogram

    path = write_phase(tmp_path / "p.tif", np.linspace(-3, 3, 200).reshape(10, 20))
    with open_interferogram(path) as source:
        summary = import_interferogram(source, str(tmp_path / "out.tif"), keep_complex=True)
    assert not summary.complex_kept
    assert data_type(str(tmp_path / "out.tif")) == gdal.GDT_Float32


def test_wrong_kind_message_says_how_to_set_it(tmp_path):
    unwrapped = write_geotiff(tmp_path / "u.tif", np.ones((20, 20), np.float32) * 9, gdal.GDT_Float32,
                              metadata={"MINESAR_KIND": "unwrapped"})
    with open_interferogram(unwrapped) as source, pytest.raises(MineSARError, match="importinterferogram and its KIND"):
        goldstein_filter(source, str(tmp_path / "out.tif"))


def test_render_brightness_is_coherence_by_tag_or_name_never_by_range(tmp_path):
    from minesar.core.preprocess.render import render_interferogram

    rows, cols = 20, 30
    phase = np.zeros((rows, cols), np.float32)  # phase 0: pure red, so the red channel is the brightness
    path = write_phase(tmp_path / "in.tif", phase)
    # Calibrated σ⁰ lies within 0–1 too; it is an amplitude, scaled by its scene mean.
    sigma0 = np.full((rows, cols), 0.04, np.float32)
    sigma0[:, :15] = 0.16  # scene mean 0.1
    sigma_path = write_geotiff(tmp_path / "sigma0.tif", sigma0, gdal.GDT_Float32)
    coherence_path = write_geotiff(tmp_path / "pair.cc.tif", sigma0, gdal.GDT_Float32)  # named coherence, untagged
    with open_interferogram(path) as source:
        amplitude = render_interferogram(source, str(tmp_path / "amp.tif"), brightness_path=sigma_path)
        coherence = render_interferogram(source, str(tmp_path / "coh.tif"), brightness_path=coherence_path)
        with pytest.raises(MineSARError, match="in.tif: both a brightness raster .*choose one"):
            render_interferogram(source, str(tmp_path / "both.tif"), brightness_path=sigma_path, amplitude_brightness=True)
    assert amplitude["reference"] == pytest.approx(0.1) and amplitude["brightness"] == "amplitude sigma0.tif"
    red = read(tmp_path / "amp.tif")
    assert red[0, 0] == 255 and red[0, -1] == round(255 * 0.4 ** 0.35)  # 0.16/0.1 clips at 1; 0.04/0.1
    assert coherence["reference"] == 1.0 and coherence["brightness"].startswith("coherence")
    red = read(tmp_path / "coh.tif")
    assert red[0, 0] == round(255 * 0.16 ** 0.35) and red[0, -1] == round(255 * 0.04 ** 0.35)
    assert not (tmp_path / "both.tif").exists()
