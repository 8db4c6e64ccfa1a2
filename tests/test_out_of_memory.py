"""Running out of (GPU) memory inside a real algorithm run reads as what to change, naming the
algorithm's own BATCH_SIZE / TILE_SIZE / DEVICE. The networks are real; their forward pass is
made to raise PyTorch's own out-of-memory errors (this machine has no GPU to fill)."""
import numpy as np
import pytest
from conftest import write_geotiff
from osgeo import gdal
from qgis.core import QgsProcessingException

CUDA_OOM = ("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity; 6.58 GiB already "
            "allocated; 1.02 GiB free; 6.60 GiB reserved in total by PyTorch)")
CPU_OOM = ("[enforce fail at alloc_cpu.cpp:83] data. DefaultCPUAllocator: not enough memory: you tried to allocate "
           "68719476736 bytes.")


@pytest.fixture
def networks_fail_with(monkeypatch):
    """Every network built from now on (for training, or loaded from a checkpoint) raises
    ``make_error()`` when it runs, as a GPU does when a batch does not fit."""
    from minesar.models import registry

    def arm(make_error):
        def fail(*args, **kwargs):
            raise make_error()

        real = registry.build_model

        def build_model(*args, **kwargs):
            model = real(*args, **kwargs)
            model.forward = fail
            model.predict = fail
            return model

        monkeypatch.setattr(registry, "build_model", build_model)  # build_detector builds through it

    return arm


@pytest.fixture
def wrapped(tmp_path):
    phase = np.random.default_rng(1).uniform(-np.pi, np.pi, (96, 96)).astype(np.float32)
    return write_geotiff(tmp_path / "20230301_20230313.tif", phase, gdal.GDT_Float32, metadata={"MINESAR_KIND": "wrapped"})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from minesar.core.simulation.generate import simulate_dataset
    from minesar.core.simulation.interferograms import SimulationRecipe

    folder = tmp_path_factory.mktemp("oom") / "dataset"
    simulate_dataset(str(folder), SimulationRecipe(rows=64, cols=64, basin_count=(1, 2)), count=6, seed=3)
    return str(folder)


def run_expecting_error(run_algorithm, name, parameters):
    with pytest.raises(QgsProcessingException) as raised:
        run_algorithm(name, parameters)
    return str(raised.value)


def test_detection_out_of_gpu_memory(run_algorithm, networks_fail_with, wrapped, tmp_path):
    import torch

    networks_fail_with(lambda: torch.cuda.OutOfMemoryError(CUDA_OOM))
    message = run_expecting_error(run_algorithm, "detectsubsidence", {
        "INPUT": wrapped, "DEVICE": "cpu", "TILE_SIZE": 64, "OVERLAP": 16, "OUTPUT": str(tmp_path / "b.gpkg")})
    assert message.startswith("Out of GPU memory (CUDA out of memory. Tried to allocate 2.00 GiB")
    assert message.endswith(": lower BATCH_SIZE or TILE_SIZE, or run on the CPU (DEVICE cpu).")
    assert not (tmp_path / "b.gpkg").exists()


def test_segmentation_out_of_gpu_memory_as_a_plain_runtime_error(run_algorithm, networks_fail_with, wrapped,
                                                                  tmp_path):
    """Older PyTorch (and other backends) raise a RuntimeError that only says so in its text."""
    networks_fail_with(lambda: RuntimeError("CUDA error: out of memory"))
    message = run_expecting_error(run_algorithm, "segmentsubsidence", {
        "INPUT": wrapped, "DEVICE": "cpu", "TILE_SIZE": 64, "OVERLAP": 16,
        "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"), "OUTPUT_MASK": str(tmp_path / "m.tif"),
        "OUTPUT_POLYGONS": str(tmp_path / "z.gpkg")})
    assert message == ("Out of GPU memory (CUDA error: out of memory): lower BATCH_SIZE or TILE_SIZE, or run on the "
                       "CPU (DEVICE cpu).")


def test_mine_patch_segmentation_out_of_host_memory(run_algorithm, networks_fail_with, tmp_path):
    """The CPU allocator's failure: smaller batches and tiles help, the CPU is no way out."""
    networks_fail_with(lambda: RuntimeError(CPU_OOM))
    image = write_geotiff(tmp_path / "gf2.tif", list(np.random.default_rng(2).integers(200, 900, (4, 96, 96))),
                          gdal.GDT_UInt16)
    message = run_expecting_error(run_algorithm, "segmentminepatches", {
        "INPUT": image, "DEVICE": "cpu", "TILE_SIZE": 64, "OVERLAP": 16,
        "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"), "OUTPUT_MASK": str(tmp_path / "m.tif"),
        "OUTPUT_POLYGONS": str(tmp_path / "z.gpkg")})
    assert message.startswith("Out of memory ([enforce fail at alloc_cpu.cpp:83] data. DefaultCPUAllocator")
    assert message.endswith(": lower BATCH_SIZE or TILE_SIZE.")


def test_training_and_evaluation_out_of_gpu_memory(run_algorithm, networks_fail_with, dataset, tmp_path):
    import torch

    networks_fail_with(lambda: torch.cuda.OutOfMemoryError(CUDA_OOM))
    message = run_expecting_error(run_algorithm, "trainmodel", {
        "DATASET": dataset, "ARCHITECTURE": "yolobasin", "EPOCHS": 1, "BATCH_SIZE": 2, "DEVICE": "cpu",
        "OUTPUT": str(tmp_path / "model.pt")})
    assert message.endswith(": lower BATCH_SIZE or TILE_SIZE, or run on the CPU (DEVICE cpu).")
    assert not (tmp_path / "model.pt").exists()
    # Evaluation has no TILE_SIZE (it scores whole dataset images): the message does not name one.
    message = run_expecting_error(run_algorithm, "evaluatemodel", {
        "MODEL": "yolobasin", "DATASET": dataset, "SPLIT": "train", "DEVICE": "cpu",
        "OUTPUT": str(tmp_path / "metrics.gpkg"), "REPORT": str(tmp_path / "report.json")})
    assert message.startswith("Out of GPU memory (CUDA out of memory.")
    assert message.endswith(": lower BATCH_SIZE, or run on the CPU (DEVICE cpu).")


def test_sbas_out_of_gpu_memory_names_only_the_device(run_algorithm, monkeypatch, tmp_path):
    from test_sbas import _network, _write_stack

    import minesar.core.sbas as sbas

    def fail(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 512.00 MiB")

    monkeypatch.setattr(sbas, "invert_block", fail)
    network, _ = _network(n_dates=5)
    paths, _ = _write_stack(tmp_path, network, np.zeros((5, 6, 7)), (6, 7))
    message = run_expecting_error(run_algorithm, "sbasinversion", {
        "INPUT": paths, "OUTPUT_TIMESERIES": str(tmp_path / "ts.tif"), "OUTPUT_VELOCITY": str(tmp_path / "v.tif"),
        "OUTPUT_COHERENCE": str(tmp_path / "c.tif")})
    assert message == ("Out of GPU memory (CUDA out of memory. Tried to allocate 512.00 MiB): run on the CPU "
                       "(DEVICE cpu).")


def test_other_runtime_errors_are_not_called_memory(run_algorithm, networks_fail_with, wrapped, tmp_path):
    networks_fail_with(lambda: RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x6)"))
    message = run_expecting_error(run_algorithm, "detectsubsidence", {
        "INPUT": wrapped, "DEVICE": "cpu", "TILE_SIZE": 64, "OVERLAP": 16, "OUTPUT": str(tmp_path / "b.gpkg")})
    assert "mat1 and mat2 shapes" in message and "Out of" not in message and "BATCH_SIZE" not in message
