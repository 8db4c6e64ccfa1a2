"""Mask R-CNN behind the detector contract, the dataset loader, training and the two Processing
algorithms, on tiny datasets (64 × 64 tiles, the light backbone) to stay quick on a CPU."""
import copy
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from minesar.core.dataset.layout import DatasetIndex  # noqa: E402
from minesar.core.errors import MineSARError  # noqa: E402
from minesar.core.progress import Progress  # noqa: E402
from minesar.core.simulation.generate import simulate_dataset  # noqa: E402
from minesar.core.simulation.interferograms import SimulationRecipe  # noqa: E402
from minesar.models.calibration import CANDIDATES, best_threshold  # noqa: E402
from minesar.models.checkpoint import load_detector, read_checkpoint  # noqa: E402
from minesar.models.data import SubsidenceDataset, augment, boxes_of, collate, contract_targets  # noqa: E402
from minesar.models.detectors import CLASSES, INPUT_BANDS  # noqa: E402
from minesar.models.evaluation import evaluate_model  # noqa: E402
from minesar.models.registry import build_detector  # noqa: E402
from minesar.models.training import seed_everything, train  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module", autouse=True)
def few_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 OpenMP threads on a busy 2-core machine spin-wait: 5-20x slower
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """8 images: 4 train, 2 val, 2 test; deep enough basins to be visible."""
    folder = tmp_path_factory.mktemp("training") / "ds"
    recipe = SimulationRecipe(rows=SIZE, cols=SIZE, basin_count=(1, 2), subsidence_mm=(30.0, 120.0))
    simulate_dataset(str(folder), recipe, count=8, seed=5, split_fractions={"train": 0.5, "val": 0.25, "test": 0.25})
    return str(folder)


@pytest.fixture(scope="module")
def light_model():
    seed_everything(0)
    return build_detector("maskrcnn_light", tile_size=SIZE)


def fixed_batch_loss(model, images, targets, seed=123):
    """Training-mode loss (RPN and RoI sampling are random: fix them) without a gradient, and
    without leaving BatchNorm statistics of this batch behind."""
    state = copy.deepcopy(model.state_dict())
    model.train()
    torch.manual_seed(seed)
    with torch.no_grad():
        loss = float(sum(model.losses(images, contract_targets(targets)).values()))
    model.load_state_dict(state)
    return loss


def test_maskrcnn_keeps_the_contract(light_model):
    images = torch.zeros(2, 2, SIZE, SIZE)
    images[:, 0] = 1.0
    mask = torch.zeros(1, SIZE, SIZE, dtype=torch.uint8)
    mask[0, 10:30, 20:44] = 1
    targets = [{"boxes": torch.tensor([[20.0, 10.0, 44.0, 30.0]]), "masks": mask},
               {"boxes": torch.zeros(0, 4), "masks": torch.zeros(0, SIZE, SIZE, dtype=torch.uint8)}]
    light_model.train()
    losses = light_model.losses(images, targets)
    assert losses and all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    light_model.eval()
    predictions = light_model.predict(images)
    assert len(predictions) == 2
    for prediction in predictions:
        k = len(prediction["scores"])
        assert prediction["boxes"].shape == (k, 4) and prediction["masks"].shape == (k, SIZE, SIZE)
        assert prediction["masks"].dtype == torch.float32
        assert k == 0 or (0.0 <= float(prediction["masks"].min()) and float(prediction["masks"].max()) <= 1.0)
    assert light_model.has_masks and light_model.architecture == "maskrcnn_light"
    # Tiles go through at their own size: no resize to torchvision's 800 pixels.
    image_list, _ = light_model.net.transform(list(images))
    assert image_list.image_sizes == [(SIZE, SIZE)] * 2
    config = light_model.config()
    assert json.loads(json.dumps(config)) == config and config["backbone"] == "mobilenet_v3"


def test_resnet_variant_takes_two_channels():
    model = build_detector("maskrcnn", tile_size=SIZE)
    assert model.net.backbone.body.conv1.in_channels == len(INPUT_BANDS)
    assert model.config()["backbone"] == "resnet50"
    mask = torch.zeros(1, SIZE, SIZE, dtype=torch.uint8)
    mask[0, 8:40, 8:24] = 1
    model.train()
    losses = model.losses(torch.rand(1, 2, SIZE, SIZE), [{"boxes": torch.tensor([[8.0, 8.0, 24.0, 40.0]]), "masks": mask}])
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    assert model.predict(torch.rand(1, 2, SIZE, SIZE))[0]["boxes"].shape[1] == 4
    with pytest.raises(ValueError, match="Unknown Mask R-CNN backbone"):
        build_detector("maskrcnn", backbone="vgg")


def test_dataset_gives_the_split_with_instance_targets(dataset):
    index = DatasetIndex.open(dataset)
    train_set = SubsidenceDataset(dataset, "train")
    assert len(train_set) == len(index.split["train"]) == 4
    image, target = train_set[0]
    assert image.shape == (2, SIZE, SIZE) and image.dtype == torch.float32
    annotations = index.annotations_of(train_set.images[0]["id"])
    assert len(target["boxes"]) == len(annotations) >= 1
    for box, mask, annotation in zip(target["boxes"].tolist(), target["masks"], annotations):
        x, y, w, h = annotation["bbox"]
        assert box == [x, y, x + w, y + h]
        assert int(mask.sum()) == annotation["area"]
    assert target["depth_mm"].tolist() == pytest.approx([a["depth_mm"] for a in annotations], abs=1e-3)
    images, targets = collate([train_set[0], train_set[1]])
    assert images.shape == (2, 2, SIZE, SIZE) and len(targets) == 2
    with pytest.raises(MineSARError, match="Unknown split"):
        SubsidenceDataset(dataset, "training")
    with pytest.raises(MineSARError, match="not found"):
        SubsidenceDataset(dataset + "-missing", "train")


def test_augmentation_moves_boxes_with_the_basin():
    # An asymmetric basin (an L) whose phase is marked: after any flip/turn the mark is still
    # exactly under the mask, and the recomputed box still bounds it tightly.
    phase = np.zeros((16, 16), dtype=np.float32)
    masks = np.zeros((1, 16, 16), dtype=np.uint8)
    masks[0, 2:10, 3:5] = 1
    masks[0, 8:10, 3:12] = 1
    phase[masks[0] == 1] = 1.0
    boxes = set()
    for flip_x in (False, True):
        for flip_y in (False, True):
            for turns in range(4):
                new_phase, new_masks = augment(phase, masks, flip_x, flip_y, turns)
                assert np.array_equal(new_phase == 1.0, new_masks[0] == 1)
                x1, y1, x2, y2 = boxes_of(new_masks)[0].astype(int)
                assert new_masks[0, y1:y2, x1:x2].sum() == masks.sum()
                assert new_masks[0, y1, x1:x2].any() and new_masks[0, y2 - 1, x1:x2].any()
                assert new_masks[0, y1:y2, x1].any() and new_masks[0, y1:y2, x2 - 1].any()
                boxes.add((x1, y1, x2, y2))
    assert len(boxes) == 8  # an off-centre L: each of the 8 orientations puts its box elsewhere


def test_augmented_samples_keep_the_basin_in_its_box(dataset):
    torch.manual_seed(0)
    augmented = SubsidenceDataset(dataset, "train", augment=True)
    plain = SubsidenceDataset(dataset, "train")
    for item in range(len(augmented)):
        image, target = augmented[item]
        _, reference = plain[item]
        assert sorted(m.sum().item() for m in target["masks"]) == sorted(m.sum().item() for m in reference["masks"])
        for box, mask in zip(target["boxes"].int().tolist(), target["masks"]):
            x1, y1, x2, y2 = box
            assert mask[y1:y2, x1:x2].sum() == mask.sum()
        # Valid phase has cos² + sin² = 1 wherever the masks are: the image turned with them.
        union = target["masks"].sum(0) > 0
        norm = image[0] ** 2 + image[1] ** 2
        assert torch.all((norm[union] > 0.99) | (norm[union] < 1e-6))


def test_training_lowers_the_loss_and_writes_a_checkpoint(dataset, tmp_path):
    seed_everything(0)
    model = build_detector("maskrcnn_light", tile_size=SIZE)
    images, targets = collate([SubsidenceDataset(dataset, "train")[i] for i in range(4)])
    before = fixed_batch_loss(model, images, targets)
    messages, fractions = [], []
    path = str(tmp_path / "model.pt")
    result = train(model, dataset, epochs=4, batch_size=2, learning_rate=1e-3, checkpoint_path=path, device="cpu",
                   seed=1, progress=Progress(callback=fractions.append, info=messages.append),
                   metadata={"command": "test"})
    after = fixed_batch_loss(model, images, targets)
    assert result.iterations == 8 and not result.cancelled
    assert after < 0.8 * before, (before, after)
    assert fractions[-1] == 1.0 and len(fractions) >= 8 and "loss" in messages[0]
    assert np.isfinite(result.final_loss)

    content = read_checkpoint(path)
    meta = content["metadata"]
    assert content["architecture"] == "maskrcnn_light" and content["config"]["tile_size"] == SIZE
    assert meta["task"] == "detection" and meta["input_bands"] == list(INPUT_BANDS)
    assert meta["classes"] == list(CLASSES) and meta["tile_size"] == SIZE and meta["command"] == "test"
    assert set(meta["input_meaning"]) == set(INPUT_BANDS) and "normalisation" in meta
    training = meta["training"]
    assert training["dataset"] == "ds" and training["images"] == 4 and training["epochs"] == 4
    assert training["batch_size"] == 2 and training["learning_rate"] == 1e-3 and training["seed"] == 1
    assert training["device"] == "cpu" and training["wall_time_s"] > 0
    assert training["dataset_description"]["recipe"]["rows"] == SIZE
    assert meta["final_loss"] == pytest.approx(result.final_loss)
    # The decision threshold, swept on the 2 val images as detectsubsidence sees them (mirrored). An
    # 8-iteration network may find no basin at any threshold: then the default stays.
    calibration = meta["threshold_calibration"]
    assert calibration["split"] == "val" and calibration["images"] == 2 and calibration["mirror"] is True
    assert [row["threshold"] for row in calibration["sweep"]] == list(CANDIDATES)
    if any(row["F1"] for row in calibration["sweep"]):
        assert meta["score_threshold"] == calibration["threshold"] == best_threshold(calibration["sweep"])["threshold"]
        assert any("chosen on the val split" in message for message in messages)
    else:
        assert "score_threshold" not in meta and calibration["threshold"] is None
        assert any("keeps the default threshold 0.5" in message for message in messages)

    loaded, loaded_meta = load_detector(path)
    assert loaded_meta == meta
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value.cpu()), key
    # Evaluation runs on what was saved; the 2 test images give well-formed scores.
    metrics = evaluate_model(loaded, dataset, "test", device="cpu")
    assert metrics["images"] == 2 and metrics["iou_type"] == "mask" and 0.0 <= metrics["PA"] <= 1.0


def test_same_seed_same_weights(dataset, tmp_path):
    states = []
    for run in range(2):
        seed_everything(7)
        model = build_detector("maskrcnn_light", tile_size=SIZE)
        train(model, dataset, epochs=1, batch_size=2, learning_rate=1e-3, checkpoint_path=str(tmp_path / f"{run}.pt"),
              device="cpu", seed=3)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def test_cancel_mid_training_leaves_a_loadable_checkpoint(dataset, tmp_path):
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) >= 1  # the first progress report, after iteration 1

    seed_everything(0)
    model = build_detector("maskrcnn_light", tile_size=SIZE)
    path = str(tmp_path / "cancelled.pt")
    result = train(model, dataset, epochs=50, batch_size=2, learning_rate=1e-3, checkpoint_path=path, device="cpu",
                   progress=Progress(is_cancelled=cancelled))
    assert result.cancelled and result.iterations == 1
    loaded, meta = load_detector(path)
    assert meta["training"]["cancelled"] is True and meta["training"]["iterations"] == 1
    assert "score_threshold" not in meta  # not calibrated: the fallback 0.5 applies
    loaded.eval()
    assert len(loaded.predict(torch.zeros(1, 2, SIZE, SIZE))) == 1


def test_light_maskrcnn_overfits_two_images(tmp_path):
    """The whole chain can learn: two single-basin tiles, 100 iterations, both basins found again
    (mask IoU ≥ 0.5 at score ≥ 0.5) with no false alarm."""
    folder = str(tmp_path / "two")
    simulate_dataset(folder, SimulationRecipe(rows=SIZE, cols=SIZE, basin_count=(1, 1), subsidence_mm=(60.0, 100.0),
                                              distractor_share=0.0, atmosphere_mm=1.0),
                     count=2, seed=1, split_fractions={"train": 1.0, "val": 0.0, "test": 0.0})
    seed_everything(0)
    model = build_detector("maskrcnn_light", tile_size=SIZE)
    result = train(model, folder, epochs=100, batch_size=2, learning_rate=2e-3, checkpoint_path=str(tmp_path / "m.pt"),
                   device="cpu", augment=False)
    assert result.final_loss < 0.3
    metrics = evaluate_model(model, folder, "train", device="cpu")
    assert (metrics["TP"], metrics["FP"], metrics["FN"]) == (2, 0, 0)
    assert metrics["AP50"] == 1.0 and metrics["IoU_subsidence"] > 0.7


def test_training_refuses_bad_settings(dataset, tmp_path, light_model):
    with pytest.raises(MineSARError, match="learning rate"):
        train(light_model, dataset, epochs=1, batch_size=1, learning_rate=0.0, checkpoint_path=str(tmp_path / "x.pt"))
    with pytest.raises(MineSARError, match="Unknown device"):
        train(light_model, dataset, epochs=1, batch_size=1, learning_rate=1e-3, checkpoint_path=str(tmp_path / "x.pt"),
              device="gpu")
    assert not (tmp_path / "x.pt").exists()


# --- Processing ---------------------------------------------------------------------------------

@pytest.fixture
def run_algorithm(minesar_provider):
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    def _run(name, parameters, feedback=None):
        context = QgsProcessingContext()
        feedback = feedback or QgsProcessingFeedback()
        return processing.run(f"minesar:{name}", parameters, context=context, feedback=feedback), context

    return _run


def test_train_and_evaluate_algorithms(run_algorithm, dataset, tmp_path):
    from qgis.core import QgsVectorLayer

    checkpoint = str(tmp_path / "out" / "light.pt")
    result, _ = run_algorithm("trainmodel", {"DATASET": dataset, "ARCHITECTURE": "maskrcnn_light", "EPOCHS": 1,
                                             "BATCH_SIZE": 2, "LEARNING_RATE": 5e-4, "DEVICE": "cpu",
                                             "OUTPUT": checkpoint})
    assert result["OUTPUT"] == checkpoint and result["ITERATIONS"] == 2 and np.isfinite(result["FINAL_LOSS"])
    meta = read_checkpoint(checkpoint)["metadata"]
    assert "minesar:trainmodel" in meta["command"] and meta["training"]["epochs"] == 1
    assert result["THRESHOLD"] == meta.get("score_threshold", 0.5) and "threshold_calibration" in meta

    report = str(tmp_path / "report.json")
    table = str(tmp_path / "metrics.gpkg")
    result, _ = run_algorithm("evaluatemodel", {"MODEL": checkpoint, "DATASET": dataset, "SPLIT": "test",
                                                "SCORE_THRESHOLD": 0.5, "IOU_THRESHOLD": 0.5, "DEVICE": "cpu",
                                                "OUTPUT": table, "REPORT": report})
    layer = QgsVectorLayer(result["OUTPUT"], "metrics", "ogr")
    assert layer.isValid() and not layer.isSpatial()
    rows = {f["metric"]: f["value"] for f in layer.getFeatures()}
    for name in ("precision", "recall", "F1", "accuracy", "AP50", "AP95", "mAP", "PA", "MPA", "MIoU"):
        assert name in rows
    assert rows["images"] == 2
    with open(report, encoding="utf-8") as handle:
        content = json.load(handle)
    assert content["split"] == "test" and content["metrics"]["images"] == 2
    assert content["metrics"]["iou_type"] == "mask" and content["architecture"] == "maskrcnn_light"
    assert content["model_metadata"]["task"] == "detection"
    html = str(tmp_path / "report.html")
    run_algorithm("evaluatemodel", {"MODEL": checkpoint, "DATASET": dataset, "SPLIT": "val", "BASIN_RULE": True,
                                    "DEVICE": "cpu", "OUTPUT": "TEMPORARY_OUTPUT", "REPORT": html})
    assert "mAP" in open(html, encoding="utf-8").read()
    # Left empty, the score threshold is the checkpoint's own.
    stored = str(tmp_path / "stored.json")
    run_algorithm("evaluatemodel", {"MODEL": checkpoint, "DATASET": dataset, "SPLIT": "test", "DEVICE": "cpu",
                                    "MIRROR": True, "OUTPUT": "TEMPORARY_OUTPUT", "REPORT": stored})
    with open(stored, encoding="utf-8") as handle:
        stored_metrics = json.load(handle)["metrics"]
    assert stored_metrics["score_threshold"] == meta.get("score_threshold", 0.5) and stored_metrics["mirror"] is True
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="light.pt: TURNS is for segmenters"):
        run_algorithm("evaluatemodel", {"MODEL": checkpoint, "DATASET": dataset, "SPLIT": "test", "DEVICE": "cpu",
                                        "TURNS": True, "OUTPUT": "TEMPORARY_OUTPUT",
                                        "REPORT": str(tmp_path / "t.json")})


def test_cancelled_training_algorithm_still_writes_the_checkpoint(run_algorithm, dataset, tmp_path):
    from qgis.core import QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda _: feedback.cancel())  # Cancel as the first iteration ends
    checkpoint = str(tmp_path / "cancelled.pt")
    result, _ = run_algorithm("trainmodel", {"DATASET": dataset, "ARCHITECTURE": "maskrcnn_light", "EPOCHS": 30,
                                             "BATCH_SIZE": 2, "DEVICE": "cpu", "OUTPUT": checkpoint}, feedback)
    assert result["ITERATIONS"] == 2  # progress after iteration 1 sets the flag; iteration 2 sees it
    model, meta = load_detector(checkpoint)
    assert meta["training"]["cancelled"] is True and model.architecture == "maskrcnn_light"


def test_algorithms_explain_bad_inputs(run_algorithm, dataset, tmp_path):
    from qgis.core import QgsProcessingException

    common = {"DEVICE": "cpu", "OUTPUT": "TEMPORARY_OUTPUT", "REPORT": str(tmp_path / "r.json")}
    missing = str(tmp_path / "nowhere")
    with pytest.raises(QgsProcessingException, match="nowhere: dataset folder not found"):
        run_algorithm("trainmodel", {"DATASET": missing, "EPOCHS": 1, "OUTPUT": str(tmp_path / "m.pt")})
    with pytest.raises(QgsProcessingException, match="Unknown device 'gpu'"):
        run_algorithm("trainmodel", {"DATASET": dataset, "EPOCHS": 1, "DEVICE": "gpu",
                                     "OUTPUT": str(tmp_path / "m.pt")})
    assert not (tmp_path / "m.pt").exists()

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(QgsProcessingException, match="corrupt.pt: not a readable MineSAR checkpoint"):
        run_algorithm("evaluatemodel", {"MODEL": str(corrupt), "DATASET": dataset, **common})
    with pytest.raises(QgsProcessingException, match="absent.pt: checkpoint not found"):
        run_algorithm("evaluatemodel", {"MODEL": str(tmp_path / "absent.pt"), "DATASET": dataset, **common})
    # FCN-8s (537 MB) can never be shipped: its name must ask for a checkpoint.
    with pytest.raises(QgsProcessingException, match="no 'fcn8s' weights are shipped"):
        run_algorithm("evaluatemodel", {"MODEL": "fcn8s", "DATASET": dataset, **common})
    with pytest.raises(QgsProcessingException, match="nowhere: dataset folder not found"):
        run_algorithm("evaluatemodel", {"MODEL": str(corrupt), "DATASET": missing, **common})

    # A dataset whose images all went to train has no test split to evaluate.
    only_train = str(tmp_path / "only-train")
    simulate_dataset(only_train, SimulationRecipe(rows=32, cols=32), count=2, seed=1,
                     split_fractions={"train": 1.0, "val": 0.0, "test": 0.0})
    seed_everything(0)
    from minesar.models.checkpoint import save_checkpoint
    model_path = save_checkpoint(str(tmp_path / "untrained.pt"), build_detector("maskrcnn_light", tile_size=32), {})
    with pytest.raises(QgsProcessingException, match="no images in the 'test' split"):
        run_algorithm("evaluatemodel", {"MODEL": model_path, "DATASET": only_train, "SPLIT": "test", **common})


def test_images_without_basins_load_with_empty_targets(tmp_path):
    folder = tmp_path / "empty"
    recipe = SimulationRecipe(rows=SIZE, cols=SIZE, basin_count=(0, 0))
    simulate_dataset(str(folder), recipe, count=2, seed=1, split_fractions={"train": 0.0, "val": 0.0, "test": 1.0})
    for augment in (False, True):
        image, target = SubsidenceDataset(str(folder), "test", augment=augment)[0]
        assert image.shape == (2, SIZE, SIZE)
        assert target["boxes"].shape == (0, 4) and target["masks"].shape == (0, SIZE, SIZE)


def test_a_budget_is_planned_from_the_steps_after_warm_up(monkeypatch, tmp_path):
    """A probe whose first steps are slow (data loading, first allocations, a GPU starting) must
    not plan the run short: here 30 s of start-up, then 2 s a step, so 10 minutes hold 0.9 × 300."""
    from minesar.models import training

    clock = {"now": 0.0}
    calls = {}

    def scripted_train(model, folder, epochs, max_iterations, progress, **options):
        calls.update(epochs=epochs, max_iterations=max_iterations, calibrate=options["calibrate"])
        clock["now"] += 30.0  # start-up before the first step
        for step in range(1, max_iterations + 1):
            clock["now"] += 2.0 if step > 1 else 10.0  # the first step is slow too
            progress.update(step / max_iterations)

    monkeypatch.setattr(training, "train", scripted_train)
    monkeypatch.setattr(training.time, "perf_counter", lambda: clock["now"])
    steps = training.steps_within(10.0, torch.nn.Linear(1, 1), str(tmp_path), 4, 1e-3, str(tmp_path / "probe.pt"))
    assert steps == int(training.STEP_MARGIN * 600 / 2.0) == 270
    # Enough epochs that a split smaller than the probe still gives every step; no calibration.
    assert calls == {"epochs": 20, "max_iterations": 20, "calibrate": False}
    # Timing the whole probe, as before, would have planned 600 / ((30 + 10 + 19 × 2) / 20) = 153.


def test_the_maskrcnn_box_nms_iou_is_part_of_its_config(light_model, tmp_path):
    from minesar.models.checkpoint import save_checkpoint

    assert light_model.config()["nms_iou"] == 0.5 == light_model.net.roi_heads.nms_thresh  # torchvision's
    model = build_detector("maskrcnn", **{**light_model.config(), "nms_iou": 0.35})
    assert model.net.roi_heads.nms_thresh == 0.35
    model.set_nms_iou(0.4)
    path = str(tmp_path / "nms.pt")
    save_checkpoint(path, model, {"task": "detection"})
    loaded, _ = load_detector(path)
    assert loaded.net.roi_heads.nms_thresh == 0.4 and loaded.config()["nms_iou"] == 0.4
