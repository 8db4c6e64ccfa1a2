"""The decision threshold a checkpoint carries (models/calibration.py): chosen on the val split for
the best basin-level F1, stored by training, read back with a 0.5 fallback."""
import json

import pytest
import torch

from minesar.core.simulation.generate import simulate_dataset
from minesar.core.simulation.interferograms import SimulationRecipe
from minesar.models.calibration import (
    CANDIDATES,
    best_threshold,
    calibrated_metadata,
    sweep_thresholds,
    threshold_of,
)
from minesar.models.data import SubsidenceDataset


def rows(f1_values):
    return [{"threshold": t, "F1": f} for t, f in zip(CANDIDATES, f1_values)]


def test_the_choice_is_the_centre_of_the_best_three_neighbours():
    # One lucky spike at 0.30 loses to a broad plateau 0.60-0.70.
    f1 = [0.5] * len(CANDIDATES)
    f1[CANDIDATES.index(0.3)] = 0.95
    for t in (0.6, 0.65, 0.7):
        f1[CANDIDATES.index(t)] = 0.9
    assert best_threshold(rows(f1))["threshold"] == 0.65
    # At the end of the sweep the window is the two rows there are; NaN (nothing predicted) is 0.
    f1 = [float("nan")] * (len(CANDIDATES) - 2) + [0.8, 0.9]
    assert best_threshold(rows(f1))["threshold"] == 0.95
    # Equal plateaus: the lower threshold (more recall) wins.
    f1 = [0.0] * len(CANDIDATES)
    for t in (0.2, 0.25, 0.3, 0.7, 0.75, 0.8):
        f1[CANDIDATES.index(t)] = 0.9
    assert best_threshold(rows(f1))["threshold"] == 0.25


def test_the_stored_threshold_is_read_for_the_task_with_a_fallback():
    assert threshold_of({"task": "detection", "score_threshold": 0.8}) == 0.8
    assert threshold_of({"task": "segmentation", "threshold": 0.35, "score_threshold": 0.9}) == 0.35
    assert threshold_of({"task": "detection"}) == 0.5
    assert threshold_of({"task": "detection", "score_threshold": "bad"}) == 0.5
    assert threshold_of({"task": "detection", "score_threshold": 1.0}) == 0.5  # would drop everything


def deep_basins(tmp_path, basins=(1, 2), count=6, seed=3, splits=None, distractors=True):
    """A folder of small scenes with 30–120 mm basins (none shallow enough to be ignored)."""
    folder = str(tmp_path / "ds")
    recipe = SimulationRecipe(rows=96, cols=96, basin_count=basins, subsidence_mm=(30.0, 120.0),
                              **({} if distractors else {"distractor_share": 0.0}))
    simulate_dataset(folder, recipe, count=count, seed=seed, split_fractions=splits or {"train": 0.5, "val": 0.5})
    return folder


class Oracle:
    """A detector that knows the truth: every basin at score 0.93, one false alarm per image at
    0.75, the same answer mirrored for a mirrored image (so fusing the two views changes nothing).
    The best thresholds are therefore 0.80-0.90, and 0.85 is their centre."""

    task = "detection"

    def __init__(self, dataset, false_alarm_when_mirrored=True):
        self.known = [dataset[i] for i in range(len(dataset))]
        self.false_alarm_when_mirrored = false_alarm_when_mirrored

    def to(self, device):
        return self

    def eval(self):
        return self

    def predict(self, images):
        answers = []
        for image in images:
            mirrored = not any(torch.equal(known, image) for known, _ in self.known)
            target = next(t for known, t in self.known if torch.equal(known.flip(-1) if mirrored else known, image))
            boxes = torch.cat([torch.as_tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4),
                               torch.tensor([[0.0, 0.0, 5.0, 5.0]])])
            scores = torch.cat([torch.full((len(boxes) - 1,), 0.93), torch.tensor([0.75])])
            if mirrored:
                boxes[:, [0, 2]] = image.shape[-1] - boxes[:, [2, 0]]
                if not self.false_alarm_when_mirrored:
                    boxes, scores = boxes[:-1], scores[:-1]
            answers.append({"boxes": boxes, "scores": scores})
        return answers


def test_the_sweep_finds_where_a_detector_separates_basins_from_false_alarms(tmp_path):
    folder = deep_basins(tmp_path, distractors=False)
    dataset = SubsidenceDataset(folder, "val")
    truths = sum(len(dataset[i][1]["boxes"]) for i in range(len(dataset)))
    result = sweep_thresholds(Oracle(dataset), folder, "val", mirror=False)
    assert result["threshold"] == 0.85 and result["F1"] == 1.0 and result["images"] == len(dataset) == 3
    by_threshold = {row["threshold"]: row for row in result["sweep"]}
    low = by_threshold[0.7]  # the false alarms pass
    assert (low["TP"], low["FP"], low["FN"]) == (truths, 3, 0)
    assert low["precision"] == pytest.approx(truths / (truths + 3))
    high = by_threshold[0.95]  # nothing passes
    assert (high["TP"], high["FN"]) == (0, truths)
    assert result["split"] == "val" and result["dataset"] == "ds" and "F1" in result["criterion"]


def test_training_stores_what_the_sweep_chose_and_nothing_without_a_val_split(tmp_path):
    folder = deep_basins(tmp_path, count=4, seed=4)
    entries = calibrated_metadata(Oracle(SubsidenceDataset(folder, "val")), folder)
    assert entries["score_threshold"] == entries["threshold_calibration"]["threshold"] == 0.85
    json.dumps(entries, allow_nan=False)  # the metadata stays plain JSON (null where F1 is undefined)

    lonely = deep_basins(tmp_path / "train-only", count=2, seed=4, splits={"train": 1.0})
    assert calibrated_metadata(Oracle(SubsidenceDataset(lonely, "train")), lonely) is None


def test_evaluation_can_see_each_image_mirrored_as_detection_does(tmp_path):
    """A false alarm the mirrored view does not repeat keeps half its score (0.375) when fused."""
    from minesar.models.evaluation import evaluate_model

    folder = deep_basins(tmp_path, count=3, seed=6, splits={"test": 1.0}, distractors=False)
    oracle = Oracle(SubsidenceDataset(folder, "test"), false_alarm_when_mirrored=False)
    once = evaluate_model(oracle, folder, "test", score_threshold=0.5, iou_threshold=0.5)
    mirrored = evaluate_model(oracle, folder, "test", score_threshold=0.5, iou_threshold=0.5, mirror=True)
    assert (once["FP"], mirrored["FP"]) == (3, 0) and once["TP"] == mirrored["TP"] > 0
    assert mirrored["mirror"] is True and once["mirror"] is False


def test_an_optical_network_is_not_calibrated_on_basins(tmp_path):
    from minesar.core.errors import MineSARError
    from minesar.models.registry import build_model

    with pytest.raises(MineSARError, match="optical networks keep 0.5"):
        sweep_thresholds(build_model("minepatch_light"), str(tmp_path))


class SegmentingOracle(Oracle):
    """A segmenter that knows the truth: 0.93 on the basins, and a 0.75 false alarm in the top-left
    corner that the mirrored view does not repeat (so averaging the views halves it to 0.375)."""

    task, input_kind = "segmentation", "phase"

    def predict(self, images):
        maps = []
        for image in images:
            mirrored = not any(torch.equal(known, image) for known, _ in self.known)
            target = next(t for known, t in self.known if torch.equal(known.flip(-1) if mirrored else known, image))
            probability = torch.as_tensor(target["masks"]).bool().any(0).float() * 0.93
            if mirrored:
                probability = probability.flip(-1)
            else:
                probability[:5, :5] = 0.75
            maps.append(probability)
        return torch.stack(maps)


def test_segmenters_are_calibrated_and_evaluated_with_mirrored_views(tmp_path):
    from minesar.models.evaluation import evaluate_segmenter

    folder = deep_basins(tmp_path, basins=(1, 1), distractors=False)
    oracle = SegmentingOracle(SubsidenceDataset(folder, "val"))
    # The false alarm's corner is clear of every basin in this set (seed 3), so it is one on its own.
    assert not any(torch.as_tensor(t["masks"]).bool()[:, :5, :5].any() for _, t in oracle.known)
    once = sweep_thresholds(oracle, folder, "val", mirror=False)
    assert once["threshold"] == 0.85 and once["F1"] == 1.0 and once["mirror"] is False
    both = sweep_thresholds(oracle, folder, "val")  # as segmentsubsidence runs by default
    assert both["mirror"] is True and both["F1"] == 1.0
    assert both["threshold"] == 0.45  # 0.40-0.90 separate now; 0.35 lets the halved false alarm in
    plain = evaluate_segmenter(oracle, folder, "val", threshold=0.5)
    averaged = evaluate_segmenter(oracle, folder, "val", threshold=0.5, mirror=True)
    assert (plain["FP"], averaged["FP"]) == (3, 0) and plain["TP"] == averaged["TP"] == 3
    assert averaged["mirror"] is True and plain["mirror"] is False


class DuplicatingOracle(Oracle):
    """Every basin at 0.93 plus a near-duplicate box at 0.9 (IoU 0.45 with it), and its own NMS:
    at IoU 0.5 the duplicates survive as false alarms, at 0.4 or lower they are dropped."""

    def __init__(self, dataset):
        super().__init__(dataset, false_alarm_when_mirrored=True)
        self.nms_iou = 0.5

    def set_nms_iou(self, iou):
        self.nms_iou = iou

    def predict(self, images):
        from torchvision.ops import box_iou, nms

        answers = []
        for answer in super().predict(images):
            boxes, scores = answer["boxes"][:-1], answer["scores"][:-1]  # without the corner alarm
            shift = (boxes[:, 2] - boxes[:, 0]) * 0.55 / 1.45
            duplicates = boxes + torch.stack([shift, torch.zeros_like(shift), shift, torch.zeros_like(shift)], 1)
            assert torch.allclose(box_iou(boxes, duplicates).diagonal(), torch.full((len(boxes),), 0.45), atol=1e-3)
            boxes = torch.cat([boxes, duplicates])
            scores = torch.cat([scores, torch.full((len(duplicates),), 0.9)])
            kept = nms(boxes, scores, self.nms_iou)
            answers.append({"boxes": boxes[kept], "scores": scores[kept]})
        return answers


def test_the_box_nms_iou_is_chosen_with_the_threshold(tmp_path):
    from minesar.models.calibration import sweep_nms

    folder = deep_basins(tmp_path, basins=(1, 1), distractors=False)
    oracle = DuplicatingOracle(SubsidenceDataset(folder, "val"))
    # Seen once: a mirrored view would shift its duplicate the other way and halve its score.
    result = sweep_nms(oracle, folder, "val", nms_candidates=(0.3, 0.4, 0.5), mirror=False)
    by_iou = {row["nms_iou"]: row for row in result["nms_sweep"]}
    assert by_iou[0.5]["F1"] < 1.0 and by_iou[0.4]["F1"] == by_iou[0.3]["F1"] == 1.0
    # Ties go to the higher IoU (the side of torchvision's default), and the model is left set to it.
    assert result["nms_iou"] == 0.4 == oracle.nms_iou and result["F1"] == 1.0
    entries = calibrated_metadata(oracle, folder, nms_candidates=(0.5, 0.3))  # mirrored, as by default
    assert entries["threshold_calibration"]["nms_iou"] == 0.5 == oracle.nms_iou  # the duplicates halve
    assert entries["threshold_calibration"]["F1"] == 1.0
    json.dumps(entries, allow_nan=False)


def test_a_failing_threshold_sweep_keeps_the_trained_weights(tmp_path, monkeypatch):
    from minesar.models import training
    from minesar.models.checkpoint import load_model
    from minesar.models.registry import build_model

    folder = deep_basins(tmp_path, count=4, seed=4)

    def broken(*args, **kwargs):
        raise RuntimeError("sweep failed")

    monkeypatch.setattr(training, "_calibration", broken)
    path = str(tmp_path / "net.pt")
    with pytest.raises(RuntimeError, match="sweep failed"):
        training.train(build_model("ecaunet", base_width=4), folder, epochs=1, batch_size=2, learning_rate=1e-3,
                       checkpoint_path=path, device="cpu")
    model, metadata = load_model(path)
    assert metadata["training"]["iterations"] >= 1 and "threshold_calibration" not in metadata


class TurningOracle(Oracle):
    """A segmenter that knows the truth in any of the eight views of an image: 0.93 on the basins,
    and a 0.75 false alarm in the top-left corner of whatever it is shown. Mirrored and turned, each
    corner is the top-left one in two views of eight: averaged, the false alarms fall to 0.1875."""

    task, input_kind = "segmentation", "phase"

    def predict(self, images):
        maps = []
        for image in images:
            for known, target in self.known:
                basins = torch.as_tensor(target["masks"]).bool().any(0).float() * 0.93
                views = [(flip, quarter) for flip in (False, True) for quarter in range(4)]
                seen = [(f, q) for f, q in views
                        if torch.equal(torch.rot90(known.flip(-1) if f else known, q, (-2, -1)), image)]
                if seen:
                    flip, quarter = seen[0]
                    probability = torch.rot90(basins.flip(-1) if flip else basins, quarter, (-2, -1)).clone()
                    break
            probability[:5, :5] = 0.75
            maps.append(probability)
        return torch.stack(maps)


def test_segmenters_are_calibrated_in_the_eight_views_segmentsubsidence_runs(tmp_path):
    folder = deep_basins(tmp_path, basins=(1, 1), distractors=False)
    oracle = TurningOracle(SubsidenceDataset(folder, "val"))
    corners = (slice(None, 5), slice(-5, None))
    assert not any(torch.as_tensor(t["masks"]).bool()[:, rows, cols].any()
                   for _, t in oracle.known for rows in corners for cols in corners)
    mirrored = sweep_thresholds(oracle, folder, "val")
    assert mirrored["threshold"] == 0.45 and mirrored["turns"] is False  # 0.375 false alarms below
    eight = sweep_thresholds(oracle, folder, "val", turns=True)
    assert eight["turns"] is True and eight["mirror"] is True and eight["F1"] == 1.0
    assert eight["threshold"] == 0.25  # 0.20-0.90 separate; 0.15 lets the 0.1875 false alarms in
    stored = calibrated_metadata(oracle, folder)
    assert stored["threshold"] == 0.25 and stored["threshold_calibration"]["turns"] is True


def test_a_detector_is_not_seen_turned(tmp_path):
    from minesar.core.errors import MineSARError

    folder = deep_basins(tmp_path, distractors=False)
    with pytest.raises(MineSARError, match="Only segmenters are seen turned"):
        sweep_thresholds(Oracle(SubsidenceDataset(folder, "val")), folder, "val", turns=True)
