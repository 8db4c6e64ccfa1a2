"""minesar:detectsubsidence inside QGIS: inputs refused with the file and the problem named."""
import numpy as np
import pytest
from conftest import write_geotiff
from osgeo import gdal
from qgis.core import QgsProcessingException, QgsProcessingFeedback


@pytest.fixture
def detect(minesar_provider):
    import processing

    def _run(parameters):
        return processing.run("minesar:detectsubsidence", parameters, feedback=QgsProcessingFeedback())

    return _run


@pytest.fixture
def wrapped(tmp_path):
    phase = np.random.default_rng(1).uniform(-np.pi, np.pi, (96, 96)).astype(np.float32)
    return write_geotiff(tmp_path / "20230301_20230313.tif", phase, gdal.GDT_Float32,
                         metadata={"MINESAR_KIND": "wrapped"})


def test_a_missing_checkpoint_is_named(detect, wrapped, tmp_path):
    missing = str(tmp_path / "nowhere.pt")
    with pytest.raises(QgsProcessingException, match="nowhere.pt: checkpoint not found"):
        detect({"INPUT": wrapped, "MODEL": missing, "OUTPUT": str(tmp_path / "b.gpkg")})


def test_a_file_that_is_not_a_checkpoint_is_refused(detect, wrapped, tmp_path):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a model")
    with pytest.raises(QgsProcessingException, match="bogus.pt: not a readable MineSAR checkpoint"):
        detect({"INPUT": wrapped, "MODEL": str(bogus), "OUTPUT": str(tmp_path / "b.gpkg")})


def test_wrong_band_count_and_coherence_are_refused(detect, tmp_path):
    two_bands = write_geotiff(tmp_path / "two.tif", [np.zeros((64, 64), np.float32)] * 2, gdal.GDT_Float32)
    with pytest.raises(QgsProcessingException, match="two.tif: 2 bands of Float32"):
        detect({"INPUT": two_bands, "MODEL": str(tmp_path / "any.pt"), "DEVICE": "cpu",
                "OUTPUT": str(tmp_path / "b.gpkg")})


def test_an_unavailable_device_is_refused(detect, wrapped, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(QgsProcessingException, match="sees no CUDA GPU"):
        detect({"INPUT": wrapped, "DEVICE": "cuda", "OUTPUT": str(tmp_path / "b.gpkg")})


def test_a_coherence_raster_is_refused(detect, tmp_path):
    coherence = write_geotiff(tmp_path / "20230301_20230313.cc.tif", np.full((64, 64), 0.6, np.float32),
                              gdal.GDT_Float32, metadata={"MINESAR_KIND": "coherence"})
    with pytest.raises(QgsProcessingException, match="cc.tif: this is a coherence raster"):
        detect({"INPUT": coherence, "OUTPUT": str(tmp_path / "b.gpkg")})


def test_a_checkpoint_runs_end_to_end_into_a_layer_in_the_raster_crs(detect, wrapped, tmp_path):
    """Wiring only (an untrained network, every box kept): fields, CRS, dates, model name."""
    from qgis.core import QgsVectorLayer

    from minesar.models.checkpoint import save_checkpoint
    from minesar.models.registry import build_detector

    checkpoint = save_checkpoint(str(tmp_path / "untrained.pt"), build_detector("yolobasin"), {"task": "detection"})
    result = detect({"INPUT": wrapped, "MODEL": checkpoint, "DEVICE": "cpu", "TILE_SIZE": 64, "OVERLAP": 16,
                     "SCORE_THRESHOLD": 0.0, "OUTPUT": str(tmp_path / "basins.gpkg")})
    layer = QgsVectorLayer(result["OUTPUT"], "basins", "ogr")
    assert layer.isValid() and layer.featureCount() == result["BASINS"] > 0
    assert layer.crs().authid() == "EPSG:32650"
    assert [f.name() for f in layer.fields()][1:] == ["score", "model", "area_m2", "date1", "date2"]
    feature = next(layer.getFeatures())
    assert feature["model"] == "untrained.pt"
    assert (feature["date1"], feature["date2"]) == ("2023-03-01", "2023-03-13")
    assert abs(feature["area_m2"] - feature.geometry().area()) < 1e-6 * feature["area_m2"]
    extent = layer.extent()
    assert 500000 <= extent.xMinimum() and extent.xMaximum() <= 500000 + 96 * 30
    del feature, layer


@pytest.mark.parametrize("model", ["yolobasin", "maskrcnn"])
def test_the_shipped_detectors_find_clear_basins_across_tiles(detect, tmp_path, model):
    """The default run of a fresh clone: shipped weights, a 768² simulated scene of six separate
    deep basins (30–120 mm, coherent, mild atmosphere) cut into overlapping 256² tiles. The
    held-out accuracy on hard scenes is measured by bench/detection_accuracy.py, not here."""
    from qgis.core import QgsVectorLayer
    from shapely import wkb

    from minesar.core.simulation.generate import simulate_scene
    from minesar.core.simulation.interferograms import SimulationRecipe
    from minesar.models.checkpoint import shipped_checkpoint

    if shipped_checkpoint(model) is None:
        pytest.fail(f"models/weights/{model}.pt is missing: the default detection run needs it")
    recipe = SimulationRecipe(rows=768, cols=768, basin_count=(6, 6), subsidence_mm=(30.0, 120.0),
                              coherence=(0.7, 0.95), atmosphere_mm=2.0, distractor_share=0.0, ramp_share=0.0,
                              adjacent_share=0.0)
    scene = str(tmp_path / "20230301_20230313_scene.tif")
    _, truth, _, _ = simulate_scene(scene, recipe, seed=11)
    basins = [item.geometry for item in truth if item.label == "mining"]
    result = detect({"INPUT": scene, "MODEL": model, "DEVICE": "cpu", "TILE_SIZE": 256, "OVERLAP": 96,
                     "OUTPUT": str(tmp_path / "basins.gpkg")})
    layer = QgsVectorLayer(result["OUTPUT"], "basins", "ogr")
    found = [wkb.loads(bytes(f.geometry().asWkb())) for f in layer.getFeatures()]
    del layer

    def best_iou(polygon, others):
        return max((polygon.intersection(o).area / polygon.union(o).area for o in others), default=0.0)

    matched = sum(best_iou(basin, found) >= 0.25 for basin in basins)
    false_alarms = sum(best_iou(polygon, basins) < 0.1 for polygon in found)
    assert matched >= len(basins) - 1, (matched, len(basins))
    # At their own score thresholds (0.45 and 0.8, chosen on validation data) both raise none here;
    # at 0.5 the shipped Mask R-CNN raised 5.
    assert false_alarms <= 1, false_alarms


def test_without_pytorch_the_deep_learning_steps_say_what_to_install(monkeypatch):
    import sys

    from minesar.processing_provider.base import require_torch

    monkeypatch.setitem(sys.modules, "torchvision", None)  # an import of it now fails
    with pytest.raises(QgsProcessingException, match=r"Detection needs PyTorch and torchvision .*install them"):
        require_torch("Detection")


def test_an_empty_score_threshold_is_the_checkpoints_own(detect, wrapped, tmp_path):
    """Left empty, SCORE_THRESHOLD is the one stored in the checkpoint (chosen on validation data by
    training), else 0.5; given, it wins. A network whose objectness is 0 scores every box 0.5, so
    each run's count is known."""
    import torch

    from minesar.models.checkpoint import save_checkpoint
    from minesar.models.registry import build_detector

    network = build_detector("yolobasin")
    with torch.no_grad():
        for layer in network.head.obj_preds:
            layer.weight.zero_()
            layer.bias.zero_()
    settings = {"INPUT": wrapped, "DEVICE": "cpu", "TILE_SIZE": 64, "OVERLAP": 16}

    def basins(stored=None, **given):
        metadata = {"task": "detection", **({"score_threshold": stored} if stored is not None else {})}
        checkpoint = save_checkpoint(str(tmp_path / f"{stored}.pt"), network, metadata)
        return detect({**settings, "MODEL": checkpoint, **given, "OUTPUT": "TEMPORARY_OUTPUT"})["BASINS"]

    every = basins(SCORE_THRESHOLD=0.0)
    assert every > 1
    assert basins(0.6) == 0 and basins(0.4) == every
    assert basins() == every  # no stored threshold: 0.5, and 0.5 passes
    assert basins(0.6, SCORE_THRESHOLD=0.3) == every and basins(0.4, SCORE_THRESHOLD=0.7) == 0
