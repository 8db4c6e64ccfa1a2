"""SBAS inversion: analytic truth, independent least squares, network handling, errors, QGIS."""
import math
from datetime import date, timedelta

import numpy as np
import pytest
from conftest import GEOTRANSFORM, SAMPLE_DIR, sample_interferograms, write_geotiff
from osgeo import gdal
from scipy.stats import linregress

from minesar.core.errors import Cancelled, MineSARError
from minesar.core.progress import Progress
from minesar.core.sbas import (
    Network, Pair, PatternCache, SbasOutputs, coherence_to_weight, invert_block, make_backend, run_sbas,
    select_pairs,
)

WAVELENGTH = 0.05546576
MM_TO_PHASE = -4 * math.pi / WAVELENGTH / 1000.0  # phase (rad) of 1 mm range change, MintPy's sign


def _network(n_dates=12, step=12, span=3):
    dates = [date(2021, 1, 1) + timedelta(days=step * i) for i in range(n_dates)]
    pairs = [Pair(dates[i], dates[j]) for i in range(n_dates) for j in range(i + 1, min(n_dates, i + span + 1))]
    return Network.from_pairs(pairs), pairs


def _write_stack(folder, network, truth_mm, shape, holes=(), coherence=None, tags=True):
    """GeoTIFFs of pair phase from a (dates, rows, cols) displacement truth; ``holes``: (pair, slice)."""
    paths, coherence_paths = [], []
    for k, (i, j) in enumerate(network.pairs):
        phase = ((truth_mm[j] - truth_mm[i]) * MM_TO_PHASE).astype(np.float32)
        for pair, region in holes:
            if pair == k:
                phase[region] = np.nan
        name = f"{network.dates[i]:%Y%m%d}-{network.dates[j]:%Y%m%d}"
        metadata = {"MINESAR_KIND": "unwrapped", "WAVELENGTH_M": str(WAVELENGTH)} if tags else None
        paths.append(write_geotiff(folder / f"{name}_unw.tif", phase, gdal.GDT_Float32, nodata=float("nan"), metadata=metadata))
        if coherence is not None:
            coherence_paths.append(write_geotiff(
                folder / f"{name}_cc.tif", coherence[k].astype(np.float32), gdal.GDT_Float32,
                metadata={"MINESAR_KIND": "coherence"}))
    return paths, coherence_paths


def _outputs(folder, stem="sbas"):
    return SbasOutputs(str(folder / f"{stem}_ts.tif"), str(folder / f"{stem}_vel.tif"), str(folder / f"{stem}_coh.tif"))


def _xy(row, col):
    return GEOTRANSFORM[0] + (col + 0.5) * GEOTRANSFORM[1], GEOTRANSFORM[3] + (row + 0.5) * GEOTRANSFORM[5]


@pytest.fixture
def linear_stack(tmp_path):
    """Pixels moving linearly (velocity varies over the grid) plus a seasonal term; NaN holes."""
    network, _ = _network()
    rows, cols = 9, 11
    velocity = np.linspace(-40, 25, rows * cols).reshape(rows, cols)  # mm/yr
    years = network.years
    truth = years[:, None, None] * velocity[None] + 3.0 * np.sin(2 * np.pi * years)[:, None, None]
    truth -= truth[0]
    holes = [(3, (slice(0, 4), slice(0, 5))), (10, (slice(5, 9), slice(6, 11))), (20, (slice(2, 7), slice(3, 4)))]
    paths, _ = _write_stack(tmp_path, network, truth, (rows, cols), holes)
    return network, truth, paths


def test_design_matrix_sums_interval_lengths():
    network, _ = _network(n_dates=4, step=73, span=3)
    design = network.design_matrix()
    assert design.shape == (6, 3)
    k = network.pairs.index((0, 3))
    np.testing.assert_allclose(design[k], [73 / 365.25] * 3)
    assert np.count_nonzero(design[network.pairs.index((1, 2))]) == 1


def test_recovers_analytic_time_series_and_velocity_with_holes(linear_stack, tmp_path):
    network, truth, paths = linear_stack
    # Reference at a pixel that moves: every output is relative to it.
    ref = (8, 0)
    report = run_sbas(paths, _outputs(tmp_path), reference_xy=_xy(*ref))
    assert report.reference_pixel == ref and report.reference_chosen == "given"
    assert len(report.dates) == 12 and len(report.pairs_used) == len(paths) and report.network_components == 1
    series = gdal.Open(str(tmp_path / "sbas_ts.tif"))
    assert [series.GetRasterBand(b + 1).GetDescription() for b in range(series.RasterCount)] == [
        f"D{d:%Y%m%d}" for d in network.dates]
    expected = truth - truth[:, ref[0]:ref[0] + 1, ref[1]:ref[1] + 1]
    np.testing.assert_allclose(series.ReadAsArray(), expected, atol=2e-3)
    # The line fit of a linear trend plus a sine sampled at these dates: fitted here independently.
    years = network.decimal_years  # the velocity's time axis (MintPy's), see core.sbas
    slope = np.polyfit(years, expected.reshape(len(years), -1), 1)[0].reshape(expected.shape[1:])
    velocity = gdal.Open(str(tmp_path / "sbas_vel.tif")).ReadAsArray()
    np.testing.assert_allclose(velocity, slope, atol=2e-3)
    assert velocity[0, 0] < -30  # moving away from the satellite: negative, like MintPy
    coherence = gdal.Open(str(tmp_path / "sbas_coh.tif")).ReadAsArray()
    np.testing.assert_allclose(coherence[0], 1.0, atol=1e-5)  # noise-free: residuals vanish
    assert np.all(coherence[1] == 1)


def test_weighted_solution_matches_per_pixel_weighted_least_squares():
    network, _ = _network(n_dates=10, span=4)
    rng = np.random.default_rng(1)
    pixels = 300
    phase = rng.normal(0, 2, (len(network.pairs), pixels))
    phase[rng.random(phase.shape) < 0.1] = np.nan
    coherence = rng.uniform(0.1, 0.95, phase.shape)
    weights = coherence_to_weight(coherence, 20)
    cache = PatternCache(network)
    result = invert_block(phase, cache, weights)
    design = network.design_matrix()
    for pixel in range(0, pixels, 7):
        ok = np.isfinite(phase[:, pixel])
        root = np.sqrt(weights[ok, pixel])
        rates = np.linalg.lstsq(design[ok] * root[:, None], phase[ok, pixel] * root, rcond=None)[0]
        expected = np.concatenate([[0.0], np.cumsum(rates * np.diff(network.years))])
        np.testing.assert_allclose(result.displacement[:, pixel], expected, atol=1e-8)
    torch_result = invert_block(phase, cache, weights, make_backend("torch"))
    np.testing.assert_allclose(torch_result.displacement, result.displacement, atol=1e-8)


def test_weights_grow_with_coherence_and_looks():
    low, mid, high = coherence_to_weight(np.array([0.2, 0.5, 0.9]), 20)
    assert low < mid < high
    assert coherence_to_weight(np.array([0.5]), 40)[0] > mid
    # Known limit: for many looks the variance tends to the Cramér–Rao bound (1−γ²)/(2Lγ²).
    crb = (1 - 0.9 ** 2) / (2 * 80 * 0.9 ** 2)
    assert coherence_to_weight(np.array([0.9]), 80)[0] == pytest.approx(1 / crb, rel=0.05)
    assert coherence_to_weight(np.array([np.nan]), 20)[0] == coherence_to_weight(np.array([0.0]), 20)[0]


def test_a_pixel_with_a_split_network_is_reported_not_zeroed():
    network, _ = _network(n_dates=6, span=2)
    phase = np.ones((len(network.pairs), 3))
    bridging = [k for k, (i, j) in enumerate(network.pairs) if i < 3 <= j]
    phase[bridging, 1] = np.nan
    result = invert_block(phase, PatternCache(network))
    assert result.components.tolist() == [1, 2, 1]
    assert np.all(np.isfinite(result.displacement[:, 1]))
    # Both parts are still solved: the epochs after the gap move relative to each other.
    assert result.displacement[5, 1] != result.displacement[3, 1]


def test_select_pairs_by_baselines_and_missing_bperp():
    d = [date(2020, 1, 1) + timedelta(days=12 * i) for i in range(4)]
    pairs = [Pair(d[0], d[1], 50.0), Pair(d[0], d[3], 20.0), Pair(d[1], d[2], 300.0)]
    assert select_pairs(pairs, max_days=30) == [0, 2]
    assert select_pairs(pairs, max_bperp_m=100) == [0, 1]
    with pytest.raises(MineSARError, match="perpendicular-baseline threshold cannot be applied"):
        select_pairs([Pair(d[0], d[1])], max_bperp_m=100)


def test_automatic_reference_is_valid_everywhere_with_highest_coherence(tmp_path):
    network, _ = _network(n_dates=5, span=2)
    truth = np.zeros((5, 6, 7))
    coherence = np.full((len(network.pairs), 6, 7), 0.5)
    coherence[:, 4, 2] = 0.99  # best, but a hole in one pair rules it out…
    coherence[:, 1, 5] = 0.95  # …so this one is chosen
    paths, cc = _write_stack(tmp_path, network, truth, (6, 7), holes=[(2, (slice(4, 5), slice(2, 3)))], coherence=coherence)
    report = run_sbas(paths, _outputs(tmp_path), coherence_paths=cc)
    assert report.reference_pixel == (1, 5)
    assert "highest mean coherence" in report.reference_chosen


def test_blocks_torch_and_vertical_agree_with_one_block(linear_stack, tmp_path):
    _, _, paths = linear_stack
    whole = run_sbas(paths, _outputs(tmp_path, "a"), reference_xy=_xy(8, 0), incidence=35.0)
    run_sbas(paths, _outputs(tmp_path, "b"), reference_xy=_xy(8, 0), incidence=35.0, device="torch", block_bytes=2000)
    los = run_sbas(paths, _outputs(tmp_path, "c"), reference_xy=_xy(8, 0))
    assert whole.vertical and not los.vertical
    a = gdal.Open(str(tmp_path / "a_ts.tif")).ReadAsArray()
    np.testing.assert_allclose(gdal.Open(str(tmp_path / "b_ts.tif")).ReadAsArray(), a, atol=1e-4)
    c = gdal.Open(str(tmp_path / "c_ts.tif")).ReadAsArray()
    np.testing.assert_allclose(a * math.cos(math.radians(35.0)), c, atol=1e-4)


def test_cancel_leaves_no_output(linear_stack, tmp_path):
    _, _, paths = linear_stack
    out = tmp_path / "out"
    calls = []
    progress = Progress(callback=calls.append, is_cancelled=lambda: len(calls) >= 2)
    with pytest.raises(Cancelled):
        run_sbas(paths, _outputs(out), reference_xy=_xy(8, 0), block_bytes=2000, progress=progress)
    assert not out.exists() or list(out.iterdir()) == []


def test_bad_inputs_name_the_file_and_problem(linear_stack, tmp_path):
    network, truth, paths = linear_stack
    out = _outputs(tmp_path / "out")
    other = write_geotiff(tmp_path / "20210101-20210113_small_unw.tif", np.zeros((4, 4), np.float32), gdal.GDT_Float32,
                          metadata={"MINESAR_KIND": "unwrapped"})
    with pytest.raises(MineSARError, match="small_unw.tif: not on the grid"):
        run_sbas(paths[:3] + [other], out)
    undated = write_geotiff(tmp_path / "nodate_unw.tif", np.zeros((9, 11), np.float32), gdal.GDT_Float32,
                            metadata={"MINESAR_KIND": "unwrapped"})
    with pytest.raises(MineSARError, match="nodate_unw.tif: no acquisition dates"):
        run_sbas(paths[:3] + [undated], out)
    with pytest.raises(MineSARError, match="2 coherence rasters for 3 interferograms"):
        run_sbas(paths[:3], out, coherence_paths=paths[:2])
    with pytest.raises(MineSARError, match="outside the interferograms' grid"):
        run_sbas(paths, out, reference_xy=(0.0, 0.0))
    with pytest.raises(MineSARError, match="reference pixel .* has no data"):
        run_sbas(paths, out, reference_xy=_xy(0, 0))  # pair 3 has a hole there
    with pytest.raises(MineSARError, match="No interferogram is within"):
        run_sbas(paths, out, max_days=5)
    with pytest.raises(MineSARError, match="needs the COHERENCE"):
        run_sbas(paths, out, weighting="coherence")
    l_band = write_geotiff(tmp_path / "20210101-20210113_lband_unw.tif", np.zeros((9, 11), np.float32), gdal.GDT_Float32,
                           metadata={"MINESAR_KIND": "unwrapped", "WAVELENGTH_M": "0.2360571"})
    with pytest.raises(MineSARError, match=r"lband_unw.tif: wavelength 0.236057 m .* differs from 0.0554658 m of .*"):
        run_sbas(paths[1:] + [l_band], out, reference_xy=_xy(8, 0))
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_real_gamma_stack_reports_its_network(tmp_path):
    paths = [str(p) for p in sample_interferograms()]
    assert len(paths) == 17
    report = run_sbas(paths, _outputs(tmp_path), coherence_paths=[p + ".cc" for p in paths], weighting="coherence")
    assert len(report.pairs_used) == 17
    assert len(report.dates) == len({d for p in sample_interferograms() for d in (p.name[:8], p.name[9:17])})
    assert report.network_components == 1
    assert report.solved_pixels > 0.9 * 47 * 72
    velocity = gdal.Open(str(tmp_path / "sbas_vel.tif")).ReadAsArray()
    assert velocity[report.reference_pixel] == 0.0
    assert np.nanstd(velocity) > 0.1  # real motion and noise, not a flat field


# --- QGIS -------------------------------------------------------------------------------------
def test_processing_algorithm_writes_styled_layers_and_points(minesar_provider, linear_stack, tmp_path):
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject, QgsVectorLayer

    network, truth, paths = linear_stack
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    x, y = _xy(8, 0)
    result = processing.run("minesar:sbasinversion", {
        "INPUT": paths, "REFERENCE": f"{x},{y}", "OUTPUT_TIMESERIES": str(tmp_path / "ts.tif"),
        "OUTPUT_VELOCITY": str(tmp_path / "vel.tif"), "OUTPUT_COHERENCE": str(tmp_path / "coh.tif"),
        "OUTPUT_POINTS": str(tmp_path / "points.gpkg"),
    }, feedback=QgsProcessingFeedback(), context=context)
    assert (result["EPOCHS"], result["PAIRS"], result["COMPONENTS"]) == (12, len(paths), 1)
    points = QgsVectorLayer(result["OUTPUT_POINTS"], "points", "ogr")
    names = [f.name() for f in points.fields()]
    assert names[names.index("CODE"):names.index("CODE") + 4] == ["CODE", "VEL", "V_STDEV", "COHERENCE"]
    assert f"D{network.dates[-1]:%Y%m%d}" in names
    assert points.featureCount() == 9 * 11
    velocity = gdal.Open(result["OUTPUT_VELOCITY"]).ReadAsArray()
    series = gdal.Open(result["OUTPUT_TIMESERIES"]).ReadAsArray()
    coherence = gdal.Open(result["OUTPUT_COHERENCE"]).ReadAsArray()[0]
    years = network.decimal_years
    features = {f["CODE"]: f for f in points.getFeatures()}
    for row, col in ((0, 0), (3, 7), (8, 10), (5, 2)):
        feature = features[f"{row * 11 + col:07d}"]
        point = feature.geometry().asPoint()
        assert (point.x(), point.y()) == pytest.approx(_xy(row, col))  # the pixel's centre
        assert feature["VEL"] == pytest.approx(float(velocity[row, col]), abs=1e-4)
        assert feature["COHERENCE"] == pytest.approx(float(coherence[row, col]), abs=1e-6)
        for k, day in enumerate(network.dates):
            assert feature[f"D{day:%Y%m%d}"] == pytest.approx(float(series[k, row, col]), abs=1e-4)
        # V_STDEV: the slope's standard error, from scipy's regression of the series (the noisy
        # case is checked against the same in test_noise_sets_v_stdev_and_temporal_coherence).
        fit = linregress(years, series[:, row, col].astype(np.float64))
        assert feature["V_STDEV"] == pytest.approx(fit.stderr, rel=1e-3, abs=1e-4)


def test_banded_cholesky_solves_like_a_dense_solver():
    """The vectorised banded solve against numpy's dense one, for several bandwidths."""
    from minesar.core.sbas import _banded_cholesky_solve

    rng = np.random.default_rng(3)
    n, pixels = 9, 50
    for bandwidth in (0, 1, 3, n - 1):
        dense = np.zeros((pixels, n, n))
        for offset in range(-bandwidth, bandwidth + 1):
            idx = np.arange(max(0, -offset), min(n, n - offset))
            dense[:, idx, idx + offset] = rng.normal(size=(pixels, len(idx)))
        dense = dense @ dense.transpose(0, 2, 1) + n * np.eye(n)  # SPD; bandwidth 2b after the product
        band_width = min(2 * bandwidth, n - 1)
        band = np.zeros((band_width + 1, n, pixels))
        for d in range(band_width + 1):
            band[d, :n - d] = np.diagonal(dense, -d, axis1=1, axis2=2).T
        rhs = rng.normal(size=(n, pixels))
        expected = np.linalg.solve(dense, rhs.T[..., None])[..., 0].T
        np.testing.assert_allclose(_banded_cholesky_solve(band, rhs.copy()), expected, rtol=1e-10, atol=1e-12)


def test_points_are_streamed_block_by_block_after_the_network(linear_stack, tmp_path):
    """The epochs come before any block, then one record set per block: nothing accumulates."""
    network, _, paths = linear_stack
    events = []
    run_sbas(paths, _outputs(tmp_path), reference_xy=_xy(8, 0), block_bytes=2000, points_min_coherence=0.0,
             on_network=lambda dates: events.append(("network", dates)),
             points=lambda block: events.append(("block", len(block["code"]))))
    assert events[0] == ("network", network.dates)
    blocks = [n for kind, n in events[1:] if kind == "block"]
    assert len(blocks) == len(events) - 1 > 2 and sum(blocks) == 9 * 11


@pytest.mark.parametrize("weighted", [False, True])
def test_split_networks_match_the_pseudo_inverse_per_pixel(weighted):
    """Half the pixels lose every pair bridging epoch 5 (their network splits in two), some lose
    more at random; each pixel's answer is np.linalg.pinv's minimum-norm (weighted) solution."""
    network, _ = _network(n_dates=10, span=3)
    rng = np.random.default_rng(7)
    pixels = 400
    phase = rng.normal(0, 2, (len(network.pairs), pixels))
    bridging = [k for k, (i, j) in enumerate(network.pairs) if i < 5 <= j]
    phase[np.ix_(bridging, np.arange(0, pixels, 2))] = np.nan
    phase[rng.random(phase.shape) < 0.05] = np.nan
    phase[:, 3] = np.nan  # no observation at all
    weights = coherence_to_weight(rng.uniform(0.1, 0.95, phase.shape), 20) if weighted else None
    result = invert_block(phase, PatternCache(network), weights)
    design = network.design_matrix()
    split = 0
    for pixel in range(pixels):
        ok = np.isfinite(phase[:, pixel])
        if not ok.any():
            assert result.components[pixel] == 0 and np.all(np.isnan(result.displacement[:, pixel]))
            continue
        root = np.sqrt(weights[ok, pixel]) if weighted else np.ones(ok.sum())
        rates = np.linalg.pinv(design[ok] * root[:, None]) @ (phase[ok, pixel] * root)
        expected = np.concatenate([[0.0], np.cumsum(rates * np.diff(network.years))])
        np.testing.assert_allclose(result.displacement[:, pixel], expected, atol=1e-8, err_msg=f"pixel {pixel}")
        assert result.components[pixel] == len(network.components(ok))
        split += result.components[pixel] > 1
    assert split >= pixels // 2


def test_a_singular_batch_falls_back_to_the_pseudo_inverse():
    from minesar.core.sbas import _NumpyBackend

    matrices = np.array([[[2.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]])
    rhs = np.array([[2.0, 3.0], [2.0, 2.0]])
    solution = _NumpyBackend().solve(matrices, rhs)
    np.testing.assert_allclose(solution, [[1.0, 3.0], [1.0, 1.0]])
    np.testing.assert_allclose(make_backend("torch").solve(make_backend("torch").put(matrices),
                                                           make_backend("torch").put(rhs)).numpy(), solution, atol=1e-12)


def test_max_days_splits_the_real_network(tmp_path):
    """MAX_DAYS = 60 keeps the four 35-day pairs of the 17: 6 epochs in 2 disconnected groups,
    which the run reports and every solved pixel's NETWORK_COMPONENTS band shows."""
    paths = [str(p) for p in sample_interferograms()]
    report = run_sbas(paths, _outputs(tmp_path), max_days=60)
    assert (len(report.dates), len(report.pairs_used), len(report.pairs_dropped)) == (6, 4, 13)
    assert report.network_components == 2
    assert any("2 disconnected groups" in note for note in report.notes)
    series = gdal.Open(str(tmp_path / "sbas_ts.tif"))
    assert series.RasterCount == 6
    parts = gdal.Open(str(tmp_path / "sbas_coh.tif")).ReadAsArray()[1]
    solved = np.isfinite(gdal.Open(str(tmp_path / "sbas_vel.tif")).ReadAsArray())
    assert solved.sum() > 0.5 * solved.size and np.all(parts[solved] >= 2)
    assert report.disconnected_pixels == solved.sum()


def test_noise_sets_v_stdev_and_temporal_coherence(tmp_path):
    """With noise on every pair: temporal coherence = |mean exp(i·residual)| of an independent
    per-pixel least squares, V_STDEV = the slope's standard error of scipy's regression."""
    network, _ = _network(n_dates=10, span=3)
    rows, cols = 4, 5
    rng = np.random.default_rng(11)
    truth = network.years[:, None, None] * np.linspace(-30, 10, rows * cols).reshape(1, rows, cols)
    phase = np.array([(truth[j] - truth[i]) * MM_TO_PHASE for i, j in network.pairs])
    phase += rng.normal(0, 0.6, phase.shape)
    phase[:, 0, 0] = (truth[[j for _, j in network.pairs], 0, 0] - truth[[i for i, _ in network.pairs], 0, 0]) * MM_TO_PHASE
    paths = []
    for k, (i, j) in enumerate(network.pairs):
        name = f"{network.dates[i]:%Y%m%d}-{network.dates[j]:%Y%m%d}_unw.tif"
        paths.append(write_geotiff(tmp_path / name, phase[k].astype(np.float32), gdal.GDT_Float32,
                                   metadata={"MINESAR_KIND": "unwrapped", "WAVELENGTH_M": str(WAVELENGTH)}))
    records = []
    run_sbas(paths, _outputs(tmp_path), reference_xy=_xy(0, 0), points=records.append, points_min_coherence=0.0)
    series = gdal.Open(str(tmp_path / "sbas_ts.tif")).ReadAsArray()
    coherence = gdal.Open(str(tmp_path / "sbas_coh.tif")).ReadAsArray()[0]
    stored = phase.astype(np.float32).astype(np.float64)
    design = network.design_matrix()
    v_std = {int(c): v for block in records for c, v in zip(block["code"], block["V_STDEV"])}
    for row in range(rows):
        for col in range(cols):
            y = stored[:, row, col] - stored[:, 0, 0]
            rates = np.linalg.lstsq(design, y, rcond=None)[0]
            expected = abs(np.mean(np.exp(1j * (y - design @ rates))))
            assert coherence[row, col] == pytest.approx(expected, abs=1e-5)
            fit = linregress(network.decimal_years, series[:, row, col].astype(np.float64))
            assert v_std[row * cols + col] == pytest.approx(fit.stderr, rel=1e-3, abs=1e-5)
    assert coherence[0, 0] == pytest.approx(1.0) and np.median(coherence) < 0.95  # the noise shows
    assert np.median(list(v_std.values())) > 0.1
