"""The detection and segmentation scores on hand-made cases whose answers are worked out here."""
import math

import numpy as np
import pytest

from minesar.models.evaluation import (
    BASIN_RULE,
    DetectionEvaluator,
    average_precision,
    box_iou,
    mask_iou,
    match,
    minimum_detectable,
)


def boxes(*rows):
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


def square_masks(shape, *squares):
    masks = np.zeros((len(squares),) + shape, dtype=np.float32)
    for index, (x1, y1, x2, y2) in enumerate(squares):
        masks[index, y1:y2, x1:x2] = 1.0
    return masks


def test_iou_of_boxes_and_masks():
    assert box_iou(boxes([0, 0, 10, 10]), boxes([0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]))[0].tolist() == \
        pytest.approx([1.0, 50 / 150, 0.0])
    a = square_masks((8, 8), (0, 0, 4, 4))
    b = square_masks((8, 8), (2, 0, 6, 4), (4, 4, 8, 8))
    assert mask_iou(a, b)[0].tolist() == pytest.approx([8 / 24, 0.0])
    assert mask_iou(a, np.zeros((0, 8, 8))).shape == (1, 0)


def test_greedy_matching_gives_each_truth_to_the_best_scored_prediction():
    iou = np.array([[0.6, 0.0], [0.9, 0.0], [0.0, 0.4]])
    outcome, matched = match(np.array([0.9, 0.8, 0.7]), iou, 0.5, np.zeros(2, bool))
    # The 0.9 prediction takes truth 0 although the 0.8 one overlaps it more: ranking is by score.
    assert outcome.tolist() == [1, 0, 0] and matched.tolist() == [True, False]


def test_box_scores_by_hand():
    evaluator = DetectionEvaluator(score_threshold=0.5, iou_threshold=0.5)
    evaluator.add({"boxes": boxes([0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 31]),
                   "scores": np.array([0.9, 0.8, 0.3])},
                  {"boxes": boxes([0, 0, 10, 10], [20, 20, 30, 30])}, image_shape=(64, 64))
    r = evaluator.result()
    # At score ≥ 0.5: one hit, one false alarm, the second basin missed.
    assert (r["TP"], r["FP"], r["FN"]) == (1, 1, 1)
    assert r["precision"] == 0.5 and r["recall"] == 0.5 and r["F1"] == 0.5
    assert r["accuracy"] == pytest.approx(1 / 3)
    # Ranked TP, FP, TP(IoU 100/110 = 0.91): precision envelope 1 up to recall 0.5 (51 of the 101
    # recall points), then 2/3 up to recall 1 (50 points).
    assert r["AP50"] == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert r["AP90"] == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert r["AP95"] == pytest.approx(51 / 101)  # 0.91 < 0.95: the third is a false alarm there
    assert r["mAP"] == pytest.approx((9 * (51 + 50 * 2 / 3) / 101 + 51 / 101) / 10)
    assert r["iou_type"] == "box"
    # Pixels from filled boxes: truth 200 px, predicted 200 px, 100 in common, 64² in all.
    tp, fp, fn = 100, 100, 100
    tn = 64 * 64 - tp - fp - fn
    assert r["PA"] == pytest.approx((tp + tn) / 4096)
    assert r["MPA"] == pytest.approx((tn / (tn + fp) + tp / (tp + fn)) / 2)
    assert r["IoU_subsidence"] == pytest.approx(1 / 3)
    assert r["MIoU"] == pytest.approx((tn / (tn + fp + fn) + 1 / 3) / 2)


def test_perfect_and_empty_predictions():
    perfect = DetectionEvaluator()
    truth = {"boxes": boxes([2, 2, 6, 6]), "masks": square_masks((8, 8), (2, 2, 6, 6)).astype(np.uint8)}
    perfect.add({"boxes": boxes([2, 2, 6, 6]), "scores": np.array([0.99]),
                 "masks": square_masks((8, 8), (2, 2, 6, 6)) * 0.9}, truth)
    r = perfect.result()
    assert r["iou_type"] == "mask"
    assert r["precision"] == r["recall"] == r["F1"] == r["accuracy"] == r["mAP"] == 1.0
    assert r["PA"] == r["MPA"] == r["MIoU"] == 1.0

    empty = DetectionEvaluator()
    empty.add({"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "masks": np.zeros((0, 8, 8))}, truth)
    r = empty.result()
    assert (r["TP"], r["FP"], r["FN"]) == (0, 0, 1)
    assert math.isnan(r["precision"]) and r["recall"] == 0.0 and r["F1"] == 0.0 and r["mAP"] == 0.0
    assert r["IoU_subsidence"] == 0.0 and r["PA"] == pytest.approx(48 / 64)


def test_mask_iou_decides_where_boxes_would_agree():
    # An L-shaped prediction has the truth's bounding box but covers a quarter of its pixels.
    truth_mask = square_masks((8, 8), (0, 0, 8, 8)).astype(np.uint8)
    predicted = np.zeros((1, 8, 8), dtype=np.float32)
    predicted[0, 0, :] = predicted[0, :, 0] = 1.0
    prediction = {"boxes": boxes([0, 0, 8, 8]), "scores": np.array([0.9]), "masks": predicted}
    by_mask = DetectionEvaluator()
    by_mask.add(prediction, {"boxes": boxes([0, 0, 8, 8]), "masks": truth_mask})
    by_box = DetectionEvaluator(iou_type="box")
    by_box.add(prediction, {"boxes": boxes([0, 0, 8, 8]), "masks": truth_mask})
    assert by_mask.result()["TP"] == 0 and by_box.result()["TP"] == 1


def test_duplicates_are_false_alarms_and_images_without_truth_have_no_ap():
    evaluator = DetectionEvaluator()
    evaluator.add({"boxes": boxes([0, 0, 10, 10], [0, 0, 10, 11]), "scores": np.array([0.9, 0.8])},
                  {"boxes": boxes([0, 0, 10, 10])})
    r = evaluator.result()
    assert (r["TP"], r["FP"], r["FN"]) == (1, 1, 0)
    background = DetectionEvaluator()
    background.add({"boxes": boxes([0, 0, 10, 10]), "scores": np.array([0.9])}, {"boxes": np.zeros((0, 4))})
    r = background.result()
    assert r["FP"] == 1 and r["precision"] == 0.0 and math.isnan(r["AP50"]) and math.isnan(r["recall"])


def test_basin_rule_ignores_shallow_basins_both_ways():
    shape = (32, 32)
    truth = {"boxes": boxes([0, 0, 8, 8], [16, 16, 24, 24], [0, 16, 8, 24]),
             "masks": square_masks(shape, (0, 0, 8, 8), (16, 16, 24, 24), (0, 16, 8, 24)).astype(np.uint8),
             "depth_mm": np.array([50.0, 5.0, 3.0])}
    # Found: the deep basin and one shallow one (mask IoU 24/64 = 0.375); the other shallow one is missed.
    found = square_masks(shape, (0, 0, 8, 8), (16, 16, 24, 19), (24, 0, 32, 8))
    prediction = {"boxes": boxes([0, 0, 8, 8], [16, 16, 24, 19], [24, 0, 32, 8]),
                  "scores": np.array([0.9, 0.8, 0.7]), "masks": found}
    strict = DetectionEvaluator(iou_threshold=0.5)
    strict.add(prediction, truth)
    r = strict.result()
    assert (r["TP"], r["FP"], r["FN"]) == (1, 2, 2)  # 0.375 < 0.5: a miss and a false alarm
    basin = DetectionEvaluator(**BASIN_RULE)
    basin.add(prediction, truth)
    r = basin.result()
    # Shallow basins: the missed one is no miss, the found one no false alarm; the stray box stays one.
    assert (r["TP"], r["FP"], r["FN"], r["ignored_matches"]) == (1, 1, 0, 1)
    assert r["truths"] == 1 and r["ignored_truths"] == 2
    assert r["precision"] == 0.5 and r["recall"] == 1.0


def test_counted_pixels_leave_out_what_only_shallow_basins_cover():
    shape = (32, 32)
    truth = {"boxes": boxes([0, 0, 8, 8], [16, 16, 24, 24]),
             "masks": square_masks(shape, (0, 0, 8, 8), (16, 16, 24, 24)).astype(np.uint8),
             "depth_mm": np.array([50.0, 5.0])}
    prediction = {"boxes": boxes([0, 0, 8, 8], [24, 0, 32, 8]), "scores": np.array([0.9, 0.8]),
                  "masks": square_masks(shape, (0, 0, 8, 8), (24, 0, 32, 8))}
    basin = DetectionEvaluator(**BASIN_RULE)
    basin.add(prediction, truth, image_shape=shape)
    r = basin.result()
    # Every pixel: 64 found, 64 stray, the shallow basin's 64 missed. Counted: its 64 are left out.
    assert r["IoU_subsidence"] == pytest.approx(64 / 192)
    assert r["IoU_subsidence_counted"] == pytest.approx(64 / 128)
    assert r["IoU_background_counted"] == pytest.approx((1024 - 64 - 128) / (1024 - 64 - 64))
    # Boxes only: the filled boxes play the masks' part.
    boxed = DetectionEvaluator(**{**BASIN_RULE, "iou_type": "box"})
    boxed.add({k: v for k, v in prediction.items() if k != "masks"},
              {k: v for k, v in truth.items() if k != "masks"}, image_shape=shape)
    assert boxed.result()["IoU_subsidence_counted"] == pytest.approx(64 / 128)
    assert "IoU_subsidence_counted" not in DetectionEvaluator().result()


def test_detection_rate_by_depth_and_minimum_detectable_subsidence():
    evaluator = DetectionEvaluator(depth_bins_mm=(1, 4, 8, 150))
    evaluator.add({"boxes": boxes([10, 0, 20, 10], [20, 0, 30, 10], [30, 0, 40, 10]),
                   "scores": np.array([0.9, 0.9, 0.9])},
                  {"boxes": boxes([0, 0, 10, 10], [10, 0, 20, 10], [20, 0, 30, 10], [30, 0, 40, 10]),
                   "depth_mm": np.array([2.0, 6.0, 40.0, 150.0])})
    rates = evaluator.result()["depth_rates"]
    assert [(row["truths"], row["detected"]) for row in rates] == [(1, 0), (1, 1), (2, 2)]
    assert evaluator.result()["min_detectable_mm"] == 4
    assert minimum_detectable([{"low_mm": 1, "truths": 2, "rate": 1.0}, {"low_mm": 8, "truths": 2, "rate": 0.0}]) \
        is None


def test_average_precision_extremes():
    assert average_precision([0.9, 0.8], [1, 1], 2) == 1.0
    assert average_precision([0.9, 0.8], [0, 1], 1) == pytest.approx(0.5)
    assert average_precision([0.9], [-1], 1) == 0.0  # a match on an ignored basin is not a hit
    assert math.isnan(average_precision([], [], 0))
