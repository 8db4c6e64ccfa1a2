"""Total area control and patch scores on hand-made overlays with known answers."""
import numpy as np
import pytest

from minesar.core.errors import MineSARError
from minesar.core.segmentation.area_control import Overlay, calibrate_p_intsct, refine
from minesar.core.segmentation.mrs import MRSParameters, segment
from minesar.core.segmentation.scores import evaluate


def figure_4_overlay():
    """Seed 003's Figure 4: six 100-pixel segments the preliminary mask covers by 99, 2, 15, 7, 5 and 12 %."""
    labels = np.repeat(np.arange(6), 100).reshape(6, 100)
    covered = [99, 2, 15, 7, 5, 12]
    preliminary = np.zeros_like(labels, dtype=bool)
    for segment_id, count in enumerate(covered):
        preliminary[segment_id, :count] = True
    return labels, preliminary


def test_p_intsct_is_where_the_cumulative_area_meets_the_reference_area():
    labels, preliminary = figure_4_overlay()
    overlay = Overlay.of(labels, preliminary)
    assert np.allclose(overlay.proportion, [0.99, 0.02, 0.15, 0.07, 0.05, 0.12])
    touching = np.ones(6, dtype=bool)
    # Descending p: R1 99, R3 15, R6 12, R4 7, R5 5, R2 2 → ΣA_intsct 99, 114, 126, 133, 138, 140.
    calibration = calibrate_p_intsct(overlay, touching, reference_area=125.0, accumulate="intersection")
    assert calibration.p_intsct == pytest.approx(0.12)
    assert calibration.cumulative_area.tolist() == [99, 114, 126, 133, 138, 140]
    assert calibrate_p_intsct(overlay, touching, 100.0, "intersection").p_intsct == pytest.approx(0.99)
    # Summing the segments' own areas (100 each) instead: 210 m² of reference → two segments, p = 0.15.
    assert calibrate_p_intsct(overlay, touching, 210.0).p_intsct == pytest.approx(0.15)  # the default
    # Segments that touch no reference patch take no part.
    only = np.array([True, False, False, True, True, False])
    assert calibrate_p_intsct(overlay, only, 106.0, "intersection").p_intsct == pytest.approx(0.07)
    with pytest.raises(MineSARError, match="accumulate must be one of"):
        calibrate_p_intsct(overlay, touching, 100.0, "area")
    with pytest.raises(MineSARError, match="No segment touches"):
        calibrate_p_intsct(overlay, np.zeros(6, dtype=bool), 100.0)
    with pytest.raises(MineSARError, match="cover no pixel"):
        calibrate_p_intsct(overlay, touching, 0.0)


def patch_scene(seed=0):
    """A bright 40 × 40 pit and a 5 × 5 one on noisy dark ground, and a first mask that wobbles,
    has a hole and a gap across the big pit, and a false blob."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((80, 100), dtype=bool)
    truth[20:60, 20:60] = True
    small = np.zeros_like(truth)
    small[5:10, 80:85] = True
    image = np.where(truth | small, 900.0, 300.0)[None] + rng.normal(0, 10, (2, 80, 100))
    preliminary = truth.copy()
    preliminary[18:20, 25:45] = True  # bulges out
    preliminary[50:60, 55:60] = False  # bitten in
    preliminary[30:36, 30:36] = False  # hole
    preliminary[40:42, 20:60] = False  # gap: two fragments
    preliminary[5:9, 80:84] = True  # 16 of its 25 pixels
    preliminary[70:74, 85:89] = True  # false blob on plain ground
    return image, truth, small, preliminary


def test_refinement_fills_holes_joins_fragments_and_follows_the_segments():
    image, truth, small, preliminary = patch_scene()
    labels = segment(image, MRSParameters(scale=60.0, shape=0.1, compactness=0.5), tile=32).labels
    result = refine(labels, preliminary, p_intsct=0.5, pixel_area=1.0, min_area=10.0)
    assert np.array_equal(result.mask, truth | small)
    assert result.report["patches"] == 2
    # Minimum area: the 25 m² pit goes below a 50 m² minimum (and a pinhole fill never creates patches).
    large = refine(labels, preliminary, p_intsct=0.5, pixel_area=1.0, min_area=50.0)
    assert np.array_equal(large.mask, truth) and large.report["patches_dropped_small"] == 1
    # Pixel size counts: at 2 m pixels the small pit is 100 m² and stays.
    assert refine(labels, preliminary, 0.5, pixel_area=4.0, min_area=50.0).report["patches"] == 2


def test_land_cover_drops_the_segments_it_touches():
    image, truth, small, preliminary = patch_scene()
    labels = segment(image, MRSParameters(scale=60.0, shape=0.1, compactness=0.5)).labels
    landcover = np.full(truth.shape, 60)
    landcover[0:10, 90:100] = 50  # built-up overlapping the small pit's … neighbourhood only
    kept = refine(labels, preliminary, 0.5, 1.0, landcover=landcover, min_area=10.0)
    assert np.array_equal(kept.mask, truth | small)
    for code in (40, 50, 80):
        landcover[:] = 60
        landcover[8, 84] = code  # one pixel inside the small pit
        dropped = refine(labels, preliminary, 0.5, 1.0, landcover=landcover, min_area=10.0)
        assert np.array_equal(dropped.mask, truth) and dropped.report["segments_dropped_landcover"] == 1
    landcover[8, 84] = 30  # grassland is not excluded
    assert refine(labels, preliminary, 0.5, 1.0, landcover=landcover, min_area=10.0).report["patches"] == 2


def test_scores_of_a_known_confusion_matrix():
    reference = np.zeros((10, 10), dtype=np.int32)
    reference[0:4, 0:5] = 1  # 20 px
    reference[6:10, 6:10] = 2  # 16 px
    reference[0, 9] = 3  # missed
    extracted = np.zeros((10, 10), dtype=bool)
    extracted[0:4, 0:4] = True  # 16 of patch 1
    extracted[5:10, 6:10] = True  # 16 of patch 2 + 4 outside
    scores = evaluate(extracted, reference)
    assert (scores.tp, scores.fp, scores.fn, scores.tn) == (32, 4, 5, 59)
    assert scores.overall_accuracy == pytest.approx(0.91)
    assert scores.producers_accuracy == pytest.approx(32 / 37) and scores.users_accuracy == pytest.approx(32 / 36)
    assert scores.f1 == pytest.approx(64 / 73)
    expected = (36 * 37 + 64 * 63) / 100**2
    assert scores.kappa == pytest.approx((0.91 - expected) / (1 - expected))
    assert scores.identification_rate == pytest.approx(2 / 3)
    similarity = {p.reference_id: p.similarity for p in scores.patches}
    assert similarity == pytest.approx({1: 16 / 20, 2: 16 / 20, 3: 0.0})
    assert scores.mean_area_similarity == pytest.approx(0.8)


def test_holes_are_filled_where_the_segments_say_so():
    # A pit textured in 5 × 5 blocks of 800 and 1000, on ground of 300; at scale 60 every block
    # stays a segment. The first mask misses two blocks: one of the pit's own texture, one a pond (200).
    image = np.full((1, 60, 60), 300.0)
    yy, xx = np.mgrid[:60, :60]
    pit = (yy >= 10) & (yy < 50) & (xx >= 10) & (xx < 50)
    image[0][pit] = np.where(((yy // 5 + xx // 5) % 2 == 0), 800.0, 1000.0)[pit]
    pond = (yy >= 30) & (yy < 35) & (xx >= 30) & (xx < 35)
    image[0][pond] = 200.0
    same = (yy >= 20) & (yy < 25) & (xx >= 20) & (xx < 25)
    segmentation = segment(image, MRSParameters(scale=60.0, shape=0.0))
    assert np.unique(segmentation.labels[same]).size == 1 and np.unique(segmentation.labels[pond]).size == 1
    preliminary = pit & ~same & ~pond
    plain = refine(segmentation.labels, preliminary, 0.5, 1.0, min_area=10.0)
    assert np.array_equal(plain.mask, preliminary)  # both 25-pixel holes are segments of their own
    told = refine(segmentation.labels, preliminary, 0.5, 1.0, min_area=10.0, segmentation=segmentation)
    assert np.array_equal(told.mask, pit & ~pond) and told.report["holes_filled"] == 1


def test_a_hole_within_the_patch_own_spread_is_filled_a_pond_is_not():
    # A pit of 5 × 5 blocks of 700 and 1100 (mean 900, σ 200) on ground of 300, large enough that
    # merging a 10 × 10 clump of 1250 into it costs far more than scale² (n·σ grows with the pit),
    # though 1250 lies within three of the pit's σ. A pond of 200 lies 3.5 σ away and stays a hole.
    image = np.full((1, 80, 80), 300.0)
    yy, xx = np.mgrid[:80, :80]
    pit = (yy >= 10) & (yy < 70) & (xx >= 10) & (xx < 70)
    image[0][pit] = np.where(((yy // 5 + xx // 5) % 2 == 0), 700.0, 1100.0)[pit]
    clump = (yy >= 20) & (yy < 30) & (xx >= 20) & (xx < 30)
    pond = (yy >= 45) & (yy < 55) & (xx >= 45) & (xx < 55)
    image[0][clump], image[0][pond] = 1250.0, 200.0
    segmentation = segment(image, MRSParameters(scale=60.0, shape=0.0))
    assert np.unique(segmentation.labels[clump]).size == 1 and np.unique(segmentation.labels[pond]).size == 1
    preliminary = pit & ~clump & ~pond
    told = refine(segmentation.labels, preliminary, 0.5, 1.0, min_area=10.0, segmentation=segmentation)
    assert np.array_equal(told.mask, pit & ~pond) and told.report["holes_filled"] == 1
    # An island of the ground around the pit (ground 300 ± 10, the island 320: 2.9 σ off the pit's
    # mean, 2 of the ground's σ off its mean) stays a hole, though it lies within the pit's spread.
    image[0][~pit] += np.random.default_rng(1).normal(0.0, 10.0, int((~pit).sum()))
    image[0][clump] = 320.0
    segmentation = segment(image, MRSParameters(scale=60.0, shape=0.0))
    island = refine(segmentation.labels, preliminary, 0.5, 1.0, min_area=10.0, segmentation=segmentation)
    assert np.array_equal(island.mask, preliminary) and island.report["holes_filled"] == 0
    # A clump on excluded land cover stays a hole whatever its colour.
    image[0][clump] = 1250.0
    segmentation = segment(image, MRSParameters(scale=60.0, shape=0.0))
    landcover = np.full(pit.shape, 60)
    landcover[clump] = 50
    built = refine(segmentation.labels, preliminary | clump, 0.5, 1.0, landcover=landcover, min_area=10.0,
                   segmentation=segmentation)
    assert np.array_equal(built.mask, pit & ~pond & ~clump) and built.report["segments_dropped_landcover"] == 1


def test_patches_mostly_in_terrain_shadow_are_dropped():
    image, truth, small, preliminary = patch_scene()
    labels = segment(image, MRSParameters(scale=60.0, shape=0.1, compactness=0.5), tile=32).labels
    lit = np.ones(truth.shape, dtype=np.float32)
    unchanged = refine(labels, preliminary, 0.5, 1.0, min_area=10.0, illumination=lit)
    assert np.array_equal(unchanged.mask, truth | small) and unchanged.report["patches_dropped_shadow"] == 0
    # The small pit in shadow goes; the big pit keeps its patch with 40 % of it in shadow.
    lit[0:15, 75:90] = 0.2
    lit[20:36, 20:60] = 0.3
    shaded = refine(labels, preliminary, 0.5, 1.0, min_area=10.0, illumination=lit)
    assert np.array_equal(shaded.mask, truth) and shaded.report["patches_dropped_shadow"] == 1
    # Unknown heights (NaN) count neither way: half of what is known dark is not "more than half".
    lit[20:30, 20:60], lit[30:50, 20:60], lit[50:60, 20:60] = 0.3, np.nan, 1.0
    assert refine(labels, preliminary, 0.5, 1.0, min_area=10.0, illumination=lit).report["patches"] == 1
    lit[50:60, 20:60] = np.nan  # all that is known of it is dark
    assert refine(labels, preliminary, 0.5, 1.0, min_area=10.0, illumination=lit).report["patches"] == 0
    # The threshold decides what is dark: at 0.25 the big pit's 0.3 is lit, at 0.35 it is not.
    lit[20:60, 20:60] = 0.3
    assert refine(labels, preliminary, 0.5, 1.0, min_area=10.0, illumination=lit,
                  shadow_illumination=0.25).report["patches"] == 1
    assert refine(labels, preliminary, 0.5, 1.0, min_area=10.0, illumination=lit,
                  shadow_illumination=0.35).report["patches"] == 0
    with pytest.raises(MineSARError, match="illumination grid"):
        refine(labels, preliminary, 0.5, 1.0, illumination=lit[:-1])


def test_a_lit_mine_merged_with_a_larger_shadow_keeps_its_own_segments():
    # Segment 1: a lit 10 × 20 mine; segment 2: a 20 × 20 shadow blob beside it; both under the first mask.
    labels = np.zeros((30, 60), dtype=np.int32)
    labels[5:15, 5:25] = 1
    labels[5:25, 25:45] = 2
    preliminary = labels > 0
    lit = np.ones(labels.shape, dtype=np.float32)
    lit[labels == 2] = 0.1
    result = refine(labels, preliminary, 0.5, 1.0, min_area=10.0, illumination=lit)
    assert np.array_equal(result.mask, labels == 1)
    assert result.report["patches_dropped_shadow"] == 1 and result.report["shadow_area_dropped_px"] == 400


def test_a_hole_below_a_hundredth_of_its_patch_is_filled_unless_land_cover_keeps_it():
    labels = np.zeros((80, 80), dtype=np.int32)
    labels[10:70, 10:70] = 1  # a 3600-pixel pit …
    labels[30:35, 30:35] = 2  # … and a 25-pixel segment inside it, above the 10-pixel minimum area
    preliminary = labels == 1
    filled = refine(labels, preliminary, 0.5, 1.0, min_area=10.0)
    assert np.array_equal(filled.mask, labels > 0) and filled.report["holes_filled"] == 1  # 25 < 1 % of 3575
    kept = refine(labels, preliminary, 0.5, 1.0, min_area=10.0, hole_share=0.005)
    assert np.array_equal(kept.mask, preliminary)
    water = np.full(labels.shape, 60)
    water[32, 32] = 80
    assert np.array_equal(refine(labels, preliminary, 0.5, 1.0, landcover=water, min_area=10.0).mask, preliminary)
