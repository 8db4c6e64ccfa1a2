"""Multiresolution segmentation on constructed images whose answers are known analytically."""
import numpy as np
import pytest

from minesar.core.errors import MineSARError
from minesar.core.segmentation.mrs import MRSParameters, cost_of_merging, segment


def two_squares(delta=10.0, size=10):
    image = np.full((1, size, 2 * size), 100.0)
    image[0, :, size:] += delta
    left = np.zeros(image.shape[1:], dtype=bool)
    left[:, :size] = True
    return image, left, ~left


def test_two_uniform_squares_merge_exactly_when_the_scale_passes_the_analytic_cost():
    image, left, right = two_squares(delta=10.0)
    colour_only = MRSParameters(shape=0.0)
    # h_color = n_M·σ_M − 0 − 0 = 200 · (10 / 2): population σ of two equal halves 100 and 110.
    assert cost_of_merging(left, right, image, colour_only) == pytest.approx(1000.0)
    for scale, expected in ((31.5, 2), (31.7, 1)):  # √1000 = 31.62
        labels = segment(image, MRSParameters(scale=scale, shape=0.0)).labels
        assert len(np.unique(labels)) == expected, scale
        assert len(np.unique(labels[left])) == 1 and len(np.unique(labels[right])) == 1
    # With shape: w_color·h_color + shape·(w_cmpct·h_cmpct + (1 − w_cmpct)·h_smooth), where
    # l_M = 40 + 40 − 2·10, h_cmpct = 60·√200 − 2·40·√100, h_smooth = 200·60/60 − 2·100·40/40 = 0.
    params = MRSParameters(shape=0.3, compactness=0.5)
    expected = 0.7 * 1000.0 + 0.3 * 0.5 * (60 * np.sqrt(200) - 800)
    cost = cost_of_merging(left, right, image, params)
    assert cost == pytest.approx(expected)
    for factor, count in ((0.99, 2), (1.01, 1)):
        labels = segment(image, MRSParameters(scale=np.sqrt(cost) * factor, shape=0.3, compactness=0.5)).labels
        assert len(np.unique(labels)) == count


def test_band_weights_scale_the_colour_cost():
    image, left, right = two_squares(delta=10.0)
    image = np.concatenate([image, image])
    assert cost_of_merging(left, right, image, MRSParameters(shape=0.0, weights=(1.0, 0.5))) == pytest.approx(1500.0)
    assert len(np.unique(segment(image, MRSParameters(scale=38.0, shape=0.0, weights=(1, 0.5))).labels)) == 2
    assert len(np.unique(segment(image, MRSParameters(scale=39.0, shape=0.0, weights=(1, 0.5))).labels)) == 1


def test_shape_weight_prefers_the_compact_merge():
    # A (100) has two neighbours of equal size and equal colour difference: B (110), a square
    # beside it, and C (90), a long thin strip below it. Colour alone cannot choose.
    image = np.full((1, 20, 60), 1000.0)
    a = np.zeros((20, 60), dtype=bool)
    a[0:10, 40:50] = True
    b = np.zeros_like(a)
    b[0:10, 50:60] = True
    c = np.zeros_like(a)
    c[10:12, 0:50] = True
    image[0][a], image[0][b], image[0][c] = 100.0, 110.0, 90.0
    colour = MRSParameters(shape=0.0)
    assert cost_of_merging(a, b, image, colour) == pytest.approx(cost_of_merging(a, c, image, colour))
    shaped = MRSParameters(shape=0.8, compactness=0.5)
    ab, ac = cost_of_merging(a, b, image, shaped), cost_of_merging(a, c, image, shaped)
    assert ab < ac
    labels = segment(image, MRSParameters(scale=np.sqrt((ab + ac) / 2), shape=0.8, compactness=0.5)).labels
    assert np.unique(labels[a | b]).size == 1
    assert np.intersect1d(labels[c], labels[a]).size == 0


def test_tile_seams_do_not_cut_segments():
    rng = np.random.default_rng(4)
    rows, cols = 96, 96
    yy, xx = np.mgrid[:rows, :cols]
    truth = np.zeros((rows, cols), dtype=np.int32)
    truth[(yy - 40) ** 2 + (xx - 33) ** 2 < 22**2] = 1  # straddles the seams at 32 and 64
    truth[(yy > 60) & (xx > 20) & (xx < 90)] = 2
    levels = np.array([100.0, 180.0, 260.0])
    image = levels[truth][None] + rng.normal(0, 3, (1, rows, cols))
    params = MRSParameters(scale=40.0, shape=0.1, compactness=0.5)
    whole = segment(image, params, tile=1024).labels
    tiled = segment(image, params, tile=32).labels
    for labels in (whole, tiled):
        for value in range(3):
            assert np.unique(labels[truth == value]).size == 1, value
    assert np.unique(tiled).size == 3


def test_segments_are_renumbered_and_bad_parameters_are_refused():
    image = np.random.default_rng(0).normal(100, 30, (2, 40, 50))
    seg = segment(image, MRSParameters(scale=20.0), tile=16)
    assert seg.labels.min() == 0 and seg.labels.max() == seg.count - 1
    assert np.bincount(seg.labels.ravel()).tolist() == seg.regions.n.astype(int).tolist()
    assert np.allclose(seg.regions.mean[seg.labels.ravel(), 0].mean(), image[0].mean())
    # Perimeters stay exact through merges: count the outline edges of every segment directly.
    padded = np.pad(seg.labels, 1, constant_values=-1)
    perimeter = np.zeros(seg.count)
    vertical = padded[1:, 1:-1] != padded[:-1, 1:-1]
    horizontal = padded[1:-1, 1:] != padded[1:-1, :-1]
    for lo, hi, mask in ((padded[:-1, 1:-1], padded[1:, 1:-1], vertical), (padded[1:-1, :-1], padded[1:-1, 1:], horizontal)):
        for side in (lo[mask], hi[mask]):
            np.add.at(perimeter, side[side >= 0], 1)
    assert np.array_equal(perimeter, seg.regions.perimeter)
    with pytest.raises(MineSARError, match="shape"):
        segment(image, MRSParameters(shape=1.0))
    with pytest.raises(MineSARError, match="band weights"):
        segment(image, MRSParameters(weights=(1.0,)))


def test_cancel_stops_between_tiles():
    from minesar.core.errors import Cancelled
    from minesar.core.progress import Progress

    calls = []
    progress = Progress(callback=calls.append, is_cancelled=lambda: len(calls) >= 2)
    image = np.random.default_rng(1).normal(100, 10, (1, 128, 128))
    with pytest.raises(Cancelled):
        segment(image, MRSParameters(scale=10.0), tile=32, progress=progress, workers=1)
    assert len(calls) == 2


def test_esp2_on_a_piecewise_constant_image_does_not_fail():
    """Uniform segments have zero local variance, so no rate of change exists: no peak, no crash."""
    from minesar.core.segmentation.parameters import estimate_scale

    image = np.zeros((1, 32, 32), np.float32)
    image[0, :, 16:] = 100.0
    result = estimate_scale(image, None, shape=0.2, compactness=0.5, scales=[5, 10, 15, 20])
    assert result.scale in (5.0, 10.0, 15.0, 20.0) and len(result.table) == 4
