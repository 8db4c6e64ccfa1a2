"""Segmentation networks (seed 000's subsidence maps, seed 003's mine patches): ECA, shapes at odd
tile sizes, losses, 16-bit normalisation, the optical scene loader, training, evaluation,
checkpoints and the two Processing algorithms. Tiny widths and tiles keep it quick on a CPU."""
import json

import numpy as np
import pytest
from conftest import write_geotiff
from osgeo import gdal

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from minesar.core.errors import MineSARError  # noqa: E402
from minesar.core.io.optical import Orthophoto, histogram_percentiles, pooled_percentile_limits  # noqa: E402
from minesar.core.simulation.generate import simulate_dataset  # noqa: E402
from minesar.core.simulation.interferograms import SimulationRecipe  # noqa: E402
from minesar.core.simulation.optical import OpticalRecipe  # noqa: E402
from minesar.core.simulation.optical_scenes import simulate_optical_scenes  # noqa: E402
from minesar.models.checkpoint import (  # noqa: E402
    checkpoint_for, load_detector, load_model, read_checkpoint, save_checkpoint)
from minesar.models.eca import ECA, eca_kernel_size  # noqa: E402
from minesar.models.evaluation import SegmentationEvaluator, evaluate_segmenter, metric_rows  # noqa: E402
from minesar.models.losses import segmentation_losses  # noqa: E402
from minesar.models.optical_data import OpticalSceneDataset, split_normalisation  # noqa: E402
from minesar.models.registry import build_detector, build_model, input_kind_of, names, task_of  # noqa: E402
from minesar.models.segmenters import optical_input, optical_normalise  # noqa: E402
from minesar.models.training import seed_everything, train  # noqa: E402

# The smallest configuration of each network that is still the same architecture.
TINY = {"ecaunet": {"base_width": 4}, "unet": {"base_width": 4},
        "fcn8s": {"base_width": 4, "fc_channels": 16}, "fcn16s": {"base_width": 4, "fc_channels": 16},
        "fcn32s": {"base_width": 4, "fc_channels": 16}}
SEGMENTERS = ("ecaunet", "unet", "fcn8s", "fcn16s", "fcn32s", "pspnet", "deeplabv3", "minepatch", "minepatch_light")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def phase_folder(tmp_path_factory):
    """4 tiles of 64² with deep basins, all in train; 2 more in test."""
    folder = tmp_path_factory.mktemp("segmentation") / "phase"
    recipe = SimulationRecipe(rows=64, cols=64, basin_count=(1, 2), subsidence_mm=(40.0, 120.0), distractor_share=0.0,
                              atmosphere_mm=1.0)
    simulate_dataset(str(folder), recipe, count=6, seed=3, split_fractions={"train": 0.67, "val": 0.0, "test": 0.33})
    return str(folder)


@pytest.fixture(scope="module")
def optical_folder(tmp_path_factory):
    """Three 96 × 80 GF-2 scenes: two train, one test."""
    folder = tmp_path_factory.mktemp("segmentation") / "optical"
    recipe = OpticalRecipe(rows=80, cols=96, patch_count=(2, 3), patch_area_m2=(300.0, 1500.0), relief_m=20.0)
    simulate_optical_scenes(str(folder), recipe, 3, seed=4, split_fractions={"train": 0.67, "val": 0.0, "test": 0.33})
    return str(folder)


# --- ECA --------------------------------------------------------------------------------------

def test_eca_kernel_size_is_the_odd_rounding_of_log2_c():
    expected = {1: 1, 2: 1, 4: 1, 8: 3, 16: 3, 32: 3, 64: 3, 128: 5, 256: 5, 512: 5, 1024: 5, 2048: 7, 100: 3, 960: 5}
    assert {c: eca_kernel_size(c) for c in expected} == expected
    assert eca_kernel_size(64, gamma=1, b=0) == 7  # t = 6, even: one up
    assert eca_kernel_size(512, gamma=3, b=0) == 3
    with pytest.raises(ValueError):
        eca_kernel_size(0)


def test_eca_scales_each_channel_by_a_weight_in_0_1():
    module = ECA(64)
    assert module.kernel_size == 3 and module.conv.weight.shape == (1, 1, 3)
    x = torch.rand(2, 64, 5, 7) + 0.1
    with torch.no_grad():
        y = module(x)
    ratio = y / x
    assert y.shape == x.shape
    assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio), atol=1e-6)  # one weight per channel
    assert float(ratio.min()) > 0.0 and float(ratio.max()) < 1.0


def test_ecaunet_has_four_eca_modules_in_its_encoder():
    model = build_model("ecaunet")
    modules = [m for m in model.modules() if isinstance(m, ECA)]
    assert [m.kernel_size for m in modules] == [3, 3, 5, 5]  # 32, 64, 128, 256 channels
    assert not [m for m in build_model("unet").modules() if isinstance(m, ECA)]
    # The shipped size: base width 32 keeps the fp16 file under 25 MB.
    assert sum(p.numel() for p in model.parameters()) * 2 < 25e6


# --- Networks ---------------------------------------------------------------------------------

def test_registry_knows_each_task():
    assert names("segmentation") == list(SEGMENTERS)
    assert names("detection") == ["maskrcnn", "maskrcnn_light", "yolobasin"]
    assert task_of("ecaunet") == "segmentation" and task_of("yolobasin") == "detection"
    assert input_kind_of("minepatch") == "optical" and input_kind_of("deeplabv3") == "phase"
    assert build_model("yolobasin").architecture == "yolobasin"
    with pytest.raises(MineSARError, match="'ecaunet' is a segmentation network, not a detector"):
        build_detector("ecaunet")
    with pytest.raises(MineSARError, match="Unknown architecture 'segnet'"):
        build_model("segnet")
    with pytest.raises(MineSARError, match="Unknown task"):
        names("classification")
    for name in names():  # every registry name is a MODEL: shipped weights, or an error that says so
        try:
            assert checkpoint_for(name).endswith(f"{name}.pt")
        except MineSARError as error:
            assert f"no '{name}' weights are shipped" in str(error)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_each_segmenter_keeps_odd_tile_sizes_in_eval_and_train_mode(name):
    seed_everything(0)
    model = build_model(name, **TINY.get(name, {}))
    channels = 4 if name.startswith("minepatch") else 2
    assert model.task == "segmentation" and model.in_channels == channels
    assert model.input_kind == ("optical" if channels == 4 else "phase")
    config = model.config()
    assert json.loads(json.dumps(config)) == config
    assert set(build_model(name, **config).state_dict()) == set(model.state_dict())

    model.eval()
    probability = model.predict(torch.rand(1, channels, 65, 47))
    assert probability.shape == (1, 65, 47) and probability.dtype == torch.float32
    assert 0.0 <= float(probability.min()) and float(probability.max()) <= 1.0

    model.train()
    images = torch.rand(2, channels, 47, 65)
    masks = torch.zeros(1, 47, 65, dtype=torch.uint8)
    masks[0, 10:30, 20:50] = 1
    targets = [{"masks": masks}, {"semantic": torch.zeros(47, 65, dtype=torch.uint8)}]
    with torch.no_grad():
        assert model(images).shape == (2, 1, 47, 65)
        losses = model.losses(images, targets)
    assert set(losses) == {"loss_bce", "loss_dice"}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())


def test_a_wrong_channel_count_is_refused_by_the_network():
    model = build_model("minepatch_light").eval()
    with pytest.raises(MineSARError, match=r"minepatch_light takes \[N, 4, H, W\] \(blue, green, red, nir\), not a "
                                           r"tensor of shape \[1, 3, 32, 32\]"):
        model.predict(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="Phase input has 2 channels"):
        build_model("unet", bands=["a", "b", "c"])
    with pytest.raises(ValueError, match="Unknown input kind 'sar'"):
        build_model("unet", input_kind="sar", bands=["hh"])
    with pytest.raises(ValueError, match="Unknown FCN variant"):
        build_model("fcn8s", variant="4s")


def test_gradients_reach_the_first_layer():
    model = build_model("ecaunet", base_width=4).train()
    masks = torch.zeros(1, 33, 33, dtype=torch.uint8)
    masks[0, 5:20, 5:20] = 1
    loss = sum(model.losses(torch.rand(1, 2, 33, 33), [{"masks": masks}]).values())
    loss.backward()
    first = model.encoder[0][0].weight.grad
    assert first is not None and float(first.abs().sum()) > 0


def test_segmentation_losses_reward_the_right_map():
    truth = torch.zeros(2, 16, 16)
    truth[0, 4:10, 4:10] = 1
    right = segmentation_losses(torch.where(truth > 0, 8.0, -8.0), truth)
    wrong = segmentation_losses(torch.where(truth > 0, -8.0, 8.0), truth)
    assert float(right["loss_bce"]) < 1e-3 and float(right["loss_dice"]) < 1e-2
    assert float(wrong["loss_dice"]) > 0.99 and float(wrong["loss_bce"]) > 7
    empty = segmentation_losses(torch.full((1, 8, 8), -8.0), torch.zeros(1, 8, 8))
    assert float(empty["loss_dice"]) < 0.05  # no positives anywhere, none predicted: nothing to learn


# --- 16-bit normalisation and the optical loader ----------------------------------------------

def test_percentiles_from_histograms_equal_numpy():
    values = np.random.default_rng(3).gamma(4.0, 300.0, 10_001).astype(np.uint16)
    histogram = np.bincount(values, minlength=65536)
    for q in (0.0, 2.0, 50.0, 98.0, 100.0):
        assert histogram_percentiles(histogram, [q])[0] == np.percentile(values, q, method="inverted_cdf")


def test_pooled_percentiles_of_two_16_bit_scenes_equal_numpy_and_normalise_to_0_and_1(tmp_path):
    rng = np.random.default_rng(5)
    scenes = [np.clip(rng.gamma(k, 200.0, (4, rows, 50)), 1, 65535).astype(np.uint16) for k, rows in ((5, 40), (9, 70))]
    scenes[0][:, :5, :7] = 0  # fill: left out
    paths = [write_geotiff(tmp_path / f"s{i}.tif", scene, gdal.GDT_UInt16) for i, scene in enumerate(scenes)]
    images = [Orthophoto(path) for path in paths]
    limits = pooled_percentile_limits(images, 2.0, 98.0)
    pooled = np.concatenate([scene[:, np.any(scene != 0, axis=0)] for scene in scenes], axis=1)
    expected = np.percentile(pooled, [2.0, 98.0], axis=1, method="inverted_cdf")
    np.testing.assert_array_equal(limits.low, expected[0])
    np.testing.assert_array_equal(limits.high, expected[1])
    assert limits.high.max() > 255  # 16-bit values, never squeezed into 8 bits

    block = np.stack([np.array([[limits.low[b], limits.high[b], 0]]) for b in range(4)]).astype(np.uint16)
    scaled = optical_normalise(block, limits.low, limits.high)
    np.testing.assert_allclose(scaled[:, 0, :2], [[0.0, 1.0]] * 4, atol=1e-6)
    normalisation = {"kind": "percentile", "percentiles": [2, 98], "low": limits.low.tolist(),
                     "high": limits.high.tolist(), "bands": ["blue", "green", "red", "nir"]}
    network_input = optical_input(block, normalisation)
    assert network_input.dtype == np.float32
    np.testing.assert_allclose(network_input[:, 0], [[0.0, 1.0, 0.0]] * 4, atol=1e-6)  # fill -> 0, not -low/span
    with pytest.raises(MineSARError, match="2 low and 2 high value\\(s\\) for 4 band\\(s\\)"):
        optical_input(block, {**normalisation, "low": [1, 2], "high": [3, 4]})


def test_optical_dataset_tiles_and_owned_pixels(optical_folder):
    normalisation = split_normalisation(optical_folder)
    assert normalisation["kind"] == "percentile" and normalisation["percentiles"] == [2.0, 98.0]
    assert normalisation["bands"] == ["blue", "green", "red", "nir"] and len(normalisation["low"]) == 4
    train_set = OpticalSceneDataset(optical_folder, "train", tile_size=64)
    assert train_set.step == 32 and train_set.augment and train_set.scene_count == 2
    assert len(train_set) == 2 * 2 * 2  # columns 0, 32 (96 px); rows 0, 16 (80 px, the last pulled back)
    assert train_set.normalisation == normalisation
    image, target = train_set[0]
    assert image.shape == (4, 64, 64) and image.dtype == torch.float32
    assert target["semantic"].shape == (64, 64) and set(target["semantic"].unique().tolist()) <= {0, 1}

    test_set = OpticalSceneDataset(optical_folder, "test", normalisation=normalisation, tile_size=64)
    assert test_set.step == 64 and not test_set.augment and len(test_set) == 4
    owned = np.zeros((80, 96), dtype=int)
    truth = np.zeros((80, 96), dtype=int)
    for item, (_, window, _) in enumerate(test_set.tiles):
        _, target = test_set[item]
        owned[window.slices] += target["owned"].numpy()
        truth[window.slices] = np.maximum(truth[window.slices], target["semantic"].numpy())
    assert (owned == 1).all()  # each pixel scored exactly once
    scene = test_set.names[0]
    expected = gdal.Open(f"{optical_folder}/masks/{scene}.tif").ReadAsArray() > 0
    np.testing.assert_array_equal(truth, expected)


def test_wrong_band_counts_are_named(optical_folder, tmp_path):
    import shutil

    folder = tmp_path / "three-bands"
    shutil.copytree(optical_folder, folder)
    scene = json.loads((folder / "split.json").read_text())["train"][0]
    write_geotiff(folder / scene, np.ones((3, 80, 96), np.uint16), gdal.GDT_UInt16)
    with pytest.raises(MineSARError, match=r"three-bands/images/scene_\d+\.tif: 3 band\(s\), expected 4 "
                                           r"\(blue, green, red, nir\)"):
        OpticalSceneDataset(str(folder), "train", tile_size=64)
    normalisation = split_normalisation(optical_folder)
    with pytest.raises(MineSARError, match="the normalisation has 4 low and 4 high value\\(s\\) for 5 band\\(s\\)"):
        OpticalSceneDataset(optical_folder, "test", bands=("b", "g", "r", "n", "x"), normalisation=normalisation)
    with pytest.raises(MineSARError, match="needs a per-band percentile normalisation"):
        OpticalSceneDataset(optical_folder, "test", normalisation={"kind": "zscore"})
    simulate_dataset(str(tmp_path / "phase"), SimulationRecipe(rows=32, cols=32), count=1, seed=0)
    with pytest.raises(MineSARError, match="this is a dataset of interferograms"):
        OpticalSceneDataset(str(tmp_path / "phase"), "train")


# --- Evaluation -------------------------------------------------------------------------------

def test_segmentation_evaluator_counts_pixels_and_basins_by_the_rule():
    truth = np.zeros((3, 20, 20), dtype=np.uint8)
    truth[0, 2:8, 2:8] = 1      # found
    truth[1, 12:18, 12:18] = 1  # missed
    truth[2, 2:5, 14:17] = 1    # 5 mm: ignored, and found (not a false alarm)
    probability = np.zeros((20, 20), dtype=np.float32)
    probability[2:8, 2:7] = 0.9
    probability[2:5, 14:17] = 0.8
    probability[10, 0] = 0.7    # a false alarm
    evaluator = SegmentationEvaluator()
    evaluator.add(probability, truth_masks=truth, depth_mm=np.array([30.0, 50.0, 5.0]))
    result = evaluator.result()
    assert (result["TP"], result["FP"], result["FN"], result["ignored_matches"]) == (1, 1, 1, 1)
    assert result["truths"] == 2 and result["ignored_truths"] == 1 and result["predictions"] == 3
    assert result["precision"] == 0.5 and result["recall"] == 0.5 and result["F1"] == 0.5
    predicted, positive = probability >= 0.5, truth.any(axis=0)
    tp, fp, fn = np.sum(predicted & positive), np.sum(predicted & ~positive), np.sum(~predicted & positive)
    tn = 400 - tp - fp - fn
    assert result["PA"] == pytest.approx((tp + tn) / 400)
    assert result["IoU_subsidence"] == pytest.approx(tp / (tp + fp + fn))
    assert result["IoU_background"] == pytest.approx(tn / (tn + fp + fn))
    assert result["MIoU"] == pytest.approx((result["IoU_subsidence"] + result["IoU_background"]) / 2)
    assert result["pixel_precision"] == pytest.approx(tp / (tp + fp))
    assert result["pixel_recall"] == pytest.approx(tp / (tp + fn))
    # A prediction overlapping a basin at IoU < 0.25 is a false alarm and the basin a miss.
    small = SegmentationEvaluator()
    sliver = np.zeros((20, 20), dtype=np.float32)
    sliver[2:8, 2:3] = 1.0
    small.add(sliver, truth_masks=truth[:1], depth_mm=np.array([30.0]))
    assert (small.result()["TP"], small.result()["FP"], small.result()["FN"]) == (0, 1, 1)
    # Semantic truth with owned pixels: pixels only, the rest not counted.
    owned = np.zeros((20, 20), dtype=bool)
    owned[:10] = True
    pixels = SegmentationEvaluator()
    pixels.add(probability, semantic=positive, owned=owned)
    assert pixels.result()["pixels"] == 200 and "F1" not in pixels.result()
    assert "IoU_subsidence_counted" not in pixels.result()


def test_counted_pixel_scores_leave_out_what_only_shallow_basins_cover():
    truth = np.zeros((3, 20, 20), dtype=np.uint8)
    truth[0, 2:10, 2:10] = 1    # 40 mm
    truth[1, 6:14, 6:14] = 1    # 3 mm, partly under the deep one: the shared pixels stay counted
    truth[2, 15:20, 0:5] = 1    # 5 mm, alone: neither truth nor background
    probability = np.zeros((20, 20), dtype=np.float32)
    probability[2:10, 2:10] = 0.9   # exactly the deep basin
    probability[15:20, 0:2] = 0.9   # on the lone shallow one: no false alarm either
    evaluator = SegmentationEvaluator()
    evaluator.add(probability, truth_masks=truth, depth_mm=np.array([40.0, 3.0, 5.0]))
    result = evaluator.result()
    # Every pixel: the shallow basins' 48 + 25 pixels outside the deep one, less the 10 found, are misses.
    assert result["IoU_subsidence"] == pytest.approx(74 / (74 + 48 + 15))
    # Counted: the 64 deep pixels found, nothing else; the 48 + 25 shallow-only pixels are out.
    assert result["IoU_subsidence_counted"] == 1.0
    assert result["IoU_background_counted"] == 1.0 and result["MIoU_counted"] == 1.0
    assert result["PA_counted"] == 1.0 and result["PA"] < 1.0
    rows = dict(metric_rows({"task": "segmentation", **result}))
    assert rows["IoU_subsidence_counted"] == 1.0
    # Without the rule there is nothing to leave out, and no counted scores.
    every = SegmentationEvaluator(ignore_below_mm=None)
    every.add(probability, truth_masks=truth, depth_mm=np.array([40.0, 3.0, 5.0]))
    assert "IoU_subsidence_counted" not in every.result()


# --- Training, checkpoints, evaluation --------------------------------------------------------

def test_ecaunet_overfits_a_tiny_phase_dataset(phase_folder, tmp_path):
    seed_everything(0)
    model = build_model("ecaunet", base_width=8)
    result = train(model, phase_folder, epochs=60, batch_size=4, learning_rate=1e-2,
                   checkpoint_path=str(tmp_path / "eca.pt"), device="cpu", augment=False)
    assert result.iterations == 60
    metrics = evaluate_segmenter(model, phase_folder, "train")
    assert metrics["IoU_subsidence"] > 0.8 and metrics["MIoU"] > 0.85, metrics
    assert metrics["precision"] == 1.0 and metrics["TP"] >= 3  # touching basins merge into one region

    meta = read_checkpoint(result.checkpoint_path)["metadata"]
    assert meta["task"] == "segmentation" and meta["input_kind"] == "phase"
    assert meta["input_bands"] == ["cos_phase", "sin_phase"] and meta["tile_size"] == 64
    assert meta["classes"] == ["background", "mining subsidence"] and "encoding" in meta["normalisation"]
    assert meta["training"]["wall_time_s"] > 0


def test_minepatch_light_learns_a_tiny_optical_folder(optical_folder, tmp_path):
    seed_everything(0)
    model = build_model("minepatch_light")
    train_set = OpticalSceneDataset(optical_folder, "train", tile_size=64, augment=False)
    images = torch.stack([train_set[i][0] for i in range(0, len(train_set), 2)])
    targets = [train_set[i][1] for i in range(0, len(train_set), 2)]

    def loss():
        model.eval()  # no dropout: the same number for the same weights
        with torch.no_grad():
            return float(sum(model.losses(images, targets).values()))

    before = loss()
    path = str(tmp_path / "light.pt")
    result = train(model, optical_folder, epochs=10, batch_size=4, learning_rate=1e-3, checkpoint_path=path,
                   device="cpu", augment=False, tile_size=64)
    assert result.iterations == 20
    assert loss() < 0.5 * before, (before, loss())

    loaded, meta = load_model(path)
    assert meta["task"] == "segmentation" and meta["input_kind"] == "optical"
    assert meta["normalisation"] == split_normalisation(optical_folder)
    assert meta["input_bands"] == ["blue", "green", "red", "nir"] and meta["classes"] == ["background", "mine patch"]
    assert (meta["tile_size"], meta["tile_step"]) == (64, 32) and meta["training"]["scenes"] == 2
    metrics = evaluate_segmenter(loaded, optical_folder, "test", normalisation=meta["normalisation"], tile_size=64)
    assert metrics["pixels"] == 80 * 96 and metrics["scenes"] == 1 and 0.0 <= metrics["MIoU"] <= 1.0
    assert "F1" not in metrics and metrics["task"] == "segmentation"
    with pytest.raises(MineSARError, match="normalisation it was trained with"):
        evaluate_segmenter(loaded, optical_folder, "test")


def test_segmenter_checkpoint_round_trip(tmp_path):
    seed_everything(1)
    model = build_model("ecaunet", base_width=4)
    normalisation = {"kind": "percentile", "percentiles": [2, 98], "low": [1.0, 2.0], "high": [900.0, 1000.0],
                     "bands": ["cos_phase", "sin_phase"]}
    path = save_checkpoint(str(tmp_path / "m.pt"), model, {"task": "segmentation", "normalisation": normalisation},
                           half=True)
    loaded, meta = load_model(path, "cpu")
    assert meta["normalisation"] == normalisation and meta["task"] == "segmentation"
    assert loaded.architecture == "ecaunet" and loaded.config() == model.config() and not loaded.training
    x = torch.rand(1, 2, 21, 19)
    model.eval()
    np.testing.assert_allclose(loaded.predict(x).numpy(), model.predict(x).numpy(), atol=2e-2)  # fp16 weights
    with pytest.raises(MineSARError, match="m.pt: 'ecaunet' is a segmentation network, not a detector"):
        load_detector(path)


# --- Processing -------------------------------------------------------------------------------

def test_train_and_evaluate_ecaunet_through_processing(run_algorithm, phase_folder, tmp_path):
    from qgis.core import QgsApplication, QgsVectorLayer

    algorithm = QgsApplication.processingRegistry().algorithmById("minesar:trainmodel")
    assert algorithm.displayName() == "Train model"
    assert algorithm.parameterDefinition("ARCHITECTURE").options() == names()
    checkpoint = str(tmp_path / "eca.pt")
    result = run_algorithm("trainmodel", {"DATASET": phase_folder, "ARCHITECTURE": "ecaunet", "EPOCHS": 1,
                                          "BATCH_SIZE": 2, "LEARNING_RATE": 1e-3, "DEVICE": "cpu",
                                          "OUTPUT": checkpoint})
    assert result["ITERATIONS"] == 2 and np.isfinite(result["FINAL_LOSS"]) and result["TRAINING_TIME"] > 0
    content = read_checkpoint(checkpoint)
    meta = content["metadata"]
    assert meta["task"] == "segmentation" and "minesar:trainmodel" in meta["command"]
    assert content["config"]["cores"] is True  # CORES is on by default for ecaunet
    without = str(tmp_path / "eca-plain.pt")
    run_algorithm("trainmodel", {"DATASET": phase_folder, "ARCHITECTURE": "ecaunet", "EPOCHS": 1, "BATCH_SIZE": 2,
                                 "DEVICE": "cpu", "CORES": False, "CALIBRATE": False, "OUTPUT": without})
    assert "cores" not in read_checkpoint(without)["config"]

    report = str(tmp_path / "report.json")
    result = run_algorithm("evaluatemodel", {"MODEL": checkpoint, "DATASET": phase_folder, "SPLIT": "test",
                                             "DEVICE": "cpu", "OUTPUT": str(tmp_path / "m.gpkg"), "REPORT": report})
    rows = {f["metric"]: f["value"] for f in QgsVectorLayer(result["OUTPUT"], "m", "ogr").getFeatures()}
    for name in ("PA", "MIoU", "IoU_background", "IoU_subsidence", "pixel_F1", "precision", "recall", "F1"):
        assert name in rows
    assert rows["training_time_s"] == pytest.approx(meta["training"]["wall_time_s"]) and rows["images"] == 2
    content = json.load(open(report, encoding="utf-8"))
    assert content["task"] == "segmentation" and content["metrics"]["ignore_below_mm"] == 8.0
    assert content["metrics"]["iou_threshold"] == 0.25 and result["MIOU"] == content["metrics"]["MIoU"]
    assert rows["IoU_subsidence_counted"] == pytest.approx(content["metrics"]["IoU_subsidence_counted"])
    assert content["metrics"]["mirror"] is False
    mirrored = str(tmp_path / "mirrored.json")
    run_algorithm("evaluatemodel", {"MODEL": checkpoint, "DATASET": phase_folder, "SPLIT": "test", "DEVICE": "cpu",
                                    "MIRROR": True, "OUTPUT": str(tmp_path / "m2.gpkg"), "REPORT": mirrored})
    assert json.load(open(mirrored, encoding="utf-8"))["metrics"]["mirror"] is True
    eight = str(tmp_path / "eight.json")
    run_algorithm("evaluatemodel", {"MODEL": checkpoint, "DATASET": phase_folder, "SPLIT": "test", "DEVICE": "cpu",
                                    "MIRROR": True, "TURNS": True, "OUTPUT": str(tmp_path / "m3.gpkg"),
                                    "REPORT": eight})
    assert json.load(open(eight, encoding="utf-8"))["metrics"]["turns"] is True


def test_train_and_evaluate_a_mine_patch_network_through_processing(run_algorithm, optical_folder, phase_folder,
                                                                    tmp_path):
    other_optical_folder = str(tmp_path / "other-scenes")
    simulate_optical_scenes(other_optical_folder, OpticalRecipe(rows=80, cols=96, patch_count=(2, 3),
                            patch_area_m2=(300.0, 1500.0), relief_m=160.0), 2, seed=77,
                            split_fractions={"train": 1.0, "val": 0.0, "test": 0.0})
    from qgis.core import QgsProcessingException

    checkpoint = str(tmp_path / "patches.pt")
    result = run_algorithm("trainmodel", {"DATASET": optical_folder, "ARCHITECTURE": "minepatch_light", "EPOCHS": 1,
                                          "BATCH_SIZE": 4, "DEVICE": "cpu", "TILE_SIZE": 64, "OUTPUT": checkpoint})
    assert result["ITERATIONS"] == 2  # 8 tiles of 64² every 32 px in two scenes
    meta = read_checkpoint(checkpoint)["metadata"]
    assert meta["normalisation"]["kind"] == "percentile" and meta["tile_step"] == 32
    # Fine-tuned on other scenes (their own percentiles differ), it keeps the band scaling it learnt with.
    tuned = str(tmp_path / "tuned.pt")
    run_algorithm("trainmodel", {"DATASET": other_optical_folder, "ARCHITECTURE": "minepatch_light",
                                 "START_FROM": checkpoint, "EPOCHS": 1, "BATCH_SIZE": 4, "DEVICE": "cpu",
                                 "TILE_SIZE": 64, "OUTPUT": tuned})
    assert read_checkpoint(tuned)["metadata"]["normalisation"] == meta["normalisation"]
    result = run_algorithm("evaluatemodel", {"MODEL": checkpoint, "DATASET": optical_folder, "DEVICE": "cpu",
                                             "OUTPUT": "TEMPORARY_OUTPUT", "REPORT": str(tmp_path / "r.html")})
    assert 0.0 <= result["MIOU"] <= 1.0 and np.isnan(result["MAP"])
    with pytest.raises(QgsProcessingException, match="this is a dataset of interferograms"):
        run_algorithm("evaluatemodel", {"MODEL": checkpoint, "DATASET": phase_folder, "DEVICE": "cpu",
                                        "OUTPUT": "TEMPORARY_OUTPUT", "REPORT": str(tmp_path / "x.json")})
    with pytest.raises(QgsProcessingException, match="not a MineSAR dataset"):
        run_algorithm("trainmodel", {"DATASET": optical_folder, "ARCHITECTURE": "unet", "EPOCHS": 1, "DEVICE": "cpu",
                                     "OUTPUT": str(tmp_path / "u.pt")})


def test_metric_rows_of_a_segmenter_lead_with_seed_000s_metrics():
    rows = metric_rows({"task": "segmentation", "PA": 0.9, "MIoU": 0.8, "IoU_background": 0.95,
                        "IoU_subsidence": 0.65, "training_time_s": 12.0})
    assert [name for name, _ in rows] == ["PA", "MIoU", "IoU_background", "IoU_subsidence", "training_time_s"]


def test_trainmodel_fine_tunes_from_given_or_shipped_weights(run_algorithm, phase_folder, tmp_path):
    from qgis.core import QgsProcessingException

    from minesar.models.checkpoint import load_model

    first = str(tmp_path / "first.pt")
    run_algorithm("trainmodel", {"DATASET": phase_folder, "ARCHITECTURE": "ecaunet", "EPOCHS": 1, "BATCH_SIZE": 2,
                                 "DEVICE": "cpu", "CORES": False, "CALIBRATE": False, "OUTPUT": first})
    tuned = str(tmp_path / "tuned.pt")
    # A learning rate too small to move anything: the start is what comes out, now with cores.
    run_algorithm("trainmodel", {"DATASET": phase_folder, "ARCHITECTURE": "ecaunet", "START_FROM": first,
                                 "EPOCHS": 1, "BATCH_SIZE": 2, "LEARNING_RATE": 1e-8, "DEVICE": "cpu",
                                 "CALIBRATE": False, "OUTPUT": tuned})
    (before, _), (after, metadata) = load_model(first), load_model(tuned)
    images = torch.rand(1, 2, 64, 64) * 2 - 1
    assert after.cores and not before.cores
    assert torch.allclose(after.predict(images), before.predict(images), atol=1e-4)
    assert metadata["started_from"]["checkpoint"] == "first.pt"
    # A shipped model by its name.
    shipped = str(tmp_path / "shipped.pt")
    run_algorithm("trainmodel", {"DATASET": phase_folder, "ARCHITECTURE": "ecaunet", "START_FROM": "ecaunet",
                                 "EPOCHS": 1, "BATCH_SIZE": 2, "LEARNING_RATE": 1e-8, "DEVICE": "cpu",
                                 "CALIBRATE": False, "OUTPUT": shipped})
    assert load_model(shipped)[1]["started_from"]["checkpoint"] == "ecaunet.pt"
    with pytest.raises(QgsProcessingException, match="START_FROM .* is ecaunet, not the ARCHITECTURE unet"):
        run_algorithm("trainmodel", {"DATASET": phase_folder, "ARCHITECTURE": "unet", "START_FROM": first,
                                     "EPOCHS": 1, "DEVICE": "cpu", "OUTPUT": str(tmp_path / "x.pt")})
