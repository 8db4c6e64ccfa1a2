"""core.simulation.sequence: a mining area in time whose truth the SBAS inversion and the mine
classes recover. Small scenes (336 × 224 px of 30 m, the least six mines fit in) so each runs in
seconds; the detector's part is in test_sequence_algorithm.py."""

import numpy as np
import pytest
from osgeo import gdal
from shapely.geometry import Point

from minesar.core.activity import mine_activity
from minesar.core.errors import MineSARError
from minesar.core.io.interferogram import open_interferogram
from minesar.core.sbas import SbasOutputs, run_sbas
from minesar.core.simulation.fields import phase_from_los_mm
from minesar.core.simulation.sequence import SequenceRecipe, default_mines, simulate_sequence

SMALL = dict(rows=224, cols=336)


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sequence")
    recipe = SequenceRecipe(**SMALL)
    return recipe, simulate_sequence(str(folder), recipe, seed=5)


@pytest.fixture(scope="module")
def sbas(sequence, tmp_path_factory):
    _, result = sequence
    folder = tmp_path_factory.mktemp("sbas")
    outputs = SbasOutputs(str(folder / "ts.tif"), str(folder / "v.tif"), str(folder / "c.tif"))
    run_sbas(result.unwrapped, outputs, coherence_paths=result.coherence, weighting="coherence",
             reference_xy=result.reference_xy)
    return outputs


def _pixel(geotransform, point):
    return int((point.y - geotransform[3]) / geotransform[5]), int((point.x - geotransform[0]) / geotransform[1])


def _deepest(mine_truth, geotransform):
    return _pixel(geotransform, mine_truth.footprint.centroid)


def test_too_small_a_scene_is_refused_with_the_size_it_needs(tmp_path):
    with pytest.raises(MineSARError, match=r"at least 9\.6 × 6\.4 km \(320 × 214 pixels"):
        simulate_sequence(str(tmp_path), SequenceRecipe(rows=200, cols=300), seed=1)
    with pytest.raises(MineSARError, match="at least 4"):
        simulate_sequence(str(tmp_path), SequenceRecipe(epochs=3, **SMALL), seed=1)


def test_the_default_mines_cover_every_class(sequence):
    recipe, result = sequence
    assert len(result.dates) == recipe.epochs and (result.dates[1] - result.dates[0]).days == recipe.interval_days
    assert {m.activity_class for m in result.mines} == {"negative", "positive", "none", "decorrelated"}
    assert {m.surface_class for m in result.mines} - {None} == {"weak", "moderate", "strong"}
    for mine in result.mines:
        if mine.first_date is not None:
            assert (mine.last_date - mine.first_date).days == mine.active_days
            assert mine.active_days == len(mine.active_intervals) * recipe.interval_days
    # Footprints apart: a site or a buffer belongs to one mine.
    for a in result.mines:
        for b in result.mines:
            if a is not b:
                assert a.footprint.buffer(500).disjoint(b.footprint)


def test_each_interferogram_deforms_only_the_mines_active_in_it(sequence):
    recipe, result = sequence
    assert len(result.interferograms) == recipe.epochs - 1
    mines = default_mines(recipe)
    still = np.abs(gdal.Open(result.true_velocity).ReadAsArray()) < 0.5
    rows, cols = np.indices(still.shape)
    for k, path in enumerate(result.interferograms):
        d1, d2 = result.dates[k], result.dates[k + 1]
        assert path.endswith(f"{d1:%Y%m%d}_{d2:%Y%m%d}.tif")
        with open_interferogram(path) as source:
            assert (source.metadata.kind, source.metadata.date1, source.metadata.date2) == ("wrapped", d1, d2)
            assert source.metadata.wavelength_m == pytest.approx(recipe.wavelength_m)
        # The same pair unwrapped: phase at each mine's deepest point against the still ground
        # within 3 km is the phase of rate × active days (atmosphere and noise aside).
        unwrapped = gdal.Open(result.unwrapped[result.pairs.index((k, k + 1))]).ReadAsArray()
        for mine, truth in zip(mines, result.mines):
            if mine.decorrelated:
                continue
            row, col = _deepest(truth, result.geotransform)
            centre = np.nanmedian(unwrapped[row - 1:row + 2, col - 1:col + 2])
            near = np.hypot(rows - row, cols - col) * recipe.pixel_size_m < 3000
            around = np.nanmedian(unwrapped[near & still])
            expected = phase_from_los_mm(np.float64(mine.displacement_mm(recipe, k, k + 1)), recipe.wavelength_m)
            active = k in truth.active_intervals
            assert active == (mine.rate_mm_per_day < 0 and abs(expected) > 0)
            # 2 rad ≈ 9 mm of LOS: atmosphere and noise are a few mm; a mine moves ≥ 33 mm when active.
            assert centre - around == pytest.approx(expected, abs=2.0), (mine.name, k)


def test_the_stack_is_small_baseline_with_coherence_and_the_pit_masked(sequence):
    recipe, result = sequence
    assert result.pairs == [(i, j) for i in range(recipe.epochs) for j in (i + 1, i + 2) if j < recipe.epochs]
    pit = next(m for m in result.mines if m.activity_class == "decorrelated")
    row, col = _deepest(pit, result.geotransform)
    for unwrapped_path, coherence_path in zip(result.unwrapped, result.coherence):
        with open_interferogram(unwrapped_path) as source, open_interferogram(coherence_path) as coherence:
            assert source.metadata.kind == "unwrapped" and coherence.metadata.kind == "coherence"
            assert (coherence.metadata.date1, coherence.metadata.date2) == (source.metadata.date1,
                                                                            source.metadata.date2)
        phase = gdal.Open(unwrapped_path).ReadAsArray()
        assert np.isnan(phase[row, col]) and np.isfinite(phase).mean() > 0.9


def test_sbas_recovers_the_rates_and_stable_ground(sequence, sbas):
    recipe, result = sequence
    velocity = gdal.Open(sbas.velocity).ReadAsArray()
    true_velocity = gdal.Open(result.true_velocity).ReadAsArray()
    for mine in result.mines:
        if mine.activity_class == "decorrelated":
            continue
        row, col = _deepest(mine, result.geotransform)
        found = float(np.nanmedian(velocity[row - 1:row + 2, col - 1:col + 2]))
        assert true_velocity[row, col] == pytest.approx(mine.velocity_mm_yr, rel=0.01)
        assert found == pytest.approx(mine.velocity_mm_yr, rel=0.05, abs=4.0), mine.name
    # A mine active over the whole period: its velocity is its rate.
    whole = next(m for m in result.mines if m.active_days == recipe.monitored_days)
    assert whole.velocity_mm_yr == pytest.approx(whole.rate_mm_per_day * 365.25, rel=0.01)
    # The reference the simulation suggests is still and coherent ground.
    row, col = _pixel(result.geotransform, Point(*result.reference_xy))
    assert true_velocity[row, col] == 0 and np.isfinite(velocity[row, col])
    stable = (np.abs(true_velocity) < 0.5) & np.isfinite(velocity)
    assert stable.mean() > 0.5
    assert np.median(np.abs(velocity[stable])) < 2.5
    assert np.percentile(np.abs(velocity[stable]), 95) < 6.0


@pytest.mark.parametrize("with_coherence", [True, False])
def test_mine_activity_on_the_sbas_velocity_gives_the_true_classes(sequence, sbas, with_coherence):
    _, result = sequence
    found = mine_activity([m.footprint for m in result.mines], sbas.velocity,
                          sbas.coherence if with_coherence else None)
    assert [f.activity_class for f in found] == [m.activity_class for m in result.mines]


def test_the_same_seed_gives_the_same_sequence(tmp_path):
    recipe = SequenceRecipe(epochs=4, pair_span=1, **SMALL)
    first = simulate_sequence(str(tmp_path / "a"), recipe, seed=3)
    second = simulate_sequence(str(tmp_path / "b"), recipe, seed=3)
    other = simulate_sequence(str(tmp_path / "c"), recipe, seed=4)
    read = lambda path: gdal.Open(path).ReadAsArray()  # noqa: E731
    assert np.array_equal(read(first.interferograms[1]), read(second.interferograms[1]), equal_nan=True)
    assert not np.array_equal(read(first.interferograms[1]), read(other.interferograms[1]), equal_nan=True)
