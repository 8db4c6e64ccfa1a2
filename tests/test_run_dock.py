"""The MineSAR dock: batch runs in background tasks, Cancel, results loaded and styled as the
toolbox loads them, and what it says when PyTorch is missing."""
import os
import sys
import time

import pytest
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsProcessingException,
    QgsProject,
    QgsRasterLayer,
    QgsTask,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from minesar.core import environment
from minesar.core.environment import PythonInstall

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DETECT, SEGMENT, REFINE = "minesar:detectsubsidence", "minesar:segmentsubsidence", "minesar:refineminepatches"


@pytest.fixture
def scenes(minesar_provider, run_algorithm, qgis_new_project, tmp_path):
    """Three small simulated interferograms in the project, with their truth polygons."""
    folder = tmp_path / "scenes"
    found = []
    for seed in (1, 2, 3):
        result = run_algorithm("simulatescene", {
            "WIDTH": 256, "HEIGHT": 256, "SEED": seed, "BASINS": "2,2", "SUBSIDENCE": "40,120",
            "OUTPUT": str(folder / f"ifg{seed}.tif"), "OUTPUT_TRUTH": str(folder / f"truth{seed}.gpkg")})
        layer = QgsRasterLayer(result["OUTPUT"], f"ifg{seed}")
        assert layer.isValid()
        QgsProject.instance().addMapLayer(layer)
        truth = QgsVectorLayer(result["OUTPUT_TRUTH"], f"truth{seed}", "ogr")
        found.append((layer, [f.geometry() for f in truth.getFeatures() if f["label"] == "mining"]))
    return found


@pytest.fixture
def make_dock(qgis_iface):
    from minesar.ui.run_dock import MineSARDock

    docks = []

    def _make():
        docks.append(MineSARDock(qgis_iface))
        return docks[-1]

    yield _make
    for dock in docks:
        assert not dock.is_running()
        dock.deleteLater()
    QCoreApplication.processEvents()


def wait_until_idle(dock, timeout=60.0):
    """Process events until the batch ends; the most tasks the task manager held at once."""
    deadline, most = time.monotonic() + timeout, 0
    while dock.is_running():
        assert time.monotonic() < deadline, f"the batch did not finish in {timeout} s: {dock.status_label.text()}"
        most = max(most, QgsApplication.taskManager().countActiveTasks())
        QCoreApplication.processEvents()
        time.sleep(0.005)
    QCoreApplication.processEvents()
    return most


def added_layers(before):
    return [layer for layer in QgsProject.instance().mapLayers().values() if layer.id() not in before]


def detection_dock(make_dock):
    dock = make_dock()
    dock.set_task(DETECT)
    dock.set_model("yolobasin")
    dock.set_device("cpu")
    dock.tuning_widget("TILE_SIZE").setValue(256)
    dock.tuning_widget("OVERLAP").setValue(0)
    return dock


def test_batch_detection_over_three_rasters(scenes, make_dock):
    dock = detection_dock(make_dock)
    assert dock.layer_list.count() == 3 and not dock.run_button.isEnabled()  # nothing checked yet
    dock.select_all_button.click()
    assert [layer.name() for layer in dock.checked_layers()] == ["ifg1", "ifg2", "ifg3"]
    before = set(QgsProject.instance().mapLayers())
    progress = []
    dock.progress_bar.valueChanged.connect(progress.append)

    dock.run_button.click()
    assert dock.is_running() and not dock.run_button.isEnabled() and dock.cancel_button.isEnabled()
    dock.run()  # a second batch while one runs is refused
    assert dock._counts["total"] == 3
    assert wait_until_idle(dock) == 1  # one layer after the other

    assert dock.progress_bar.value() == 100 and progress == sorted(progress)
    assert "3 of 3 layer(s) done" in dock.status_label.text()
    # Temporary outputs: every layer Processing was told to load is one the algorithm made.
    assert "could not be loaded" not in dock.log.toPlainText(), dock.log.toPlainText()
    assert dock.run_button.isEnabled() and not dock.cancel_button.isEnabled()
    layers = {layer.name(): layer for layer in added_layers(before)}
    assert sorted(layers) == [f"ifg{seed}: subsidence basins" for seed in (1, 2, 3)]
    for scene, truth in scenes:
        basins = layers[f"{scene.name()}: subsidence basins"]
        renderer = basins.renderer()  # the algorithm's post-processor styled it
        assert renderer.type() == "graduatedSymbol" and renderer.classAttribute() == "score"
        found = [f.geometry() for f in basins.getFeatures()]
        assert found and all(f["model"] == "yolobasin" for f in basins.getFeatures())
        # The simulated basins were found: every truth basin lies under a detection.
        assert all(any(g.intersects(t) for g in found) for t in truth)


def test_cancel_stops_the_batch_and_leaves_no_files(scenes, make_dock, tmp_path):
    dock = detection_dock(make_dock)
    dock.tuning_widget("TILE_SIZE").setValue(64)  # many small tiles: a run long enough to cancel
    dock.tuning_widget("OVERLAP").setValue(32)
    dock.tuning_widget("BATCH_SIZE").setValue(1)
    folder = tmp_path / "out"
    folder.mkdir()
    dock.folder_widget.setFilePath(str(folder))
    dock.select_all_button.click()
    before = set(QgsProject.instance().mapLayers())

    dock.run_button.click()
    deadline = time.monotonic() + 30
    while dock.current_task() is None or dock.current_task().status() != QgsTask.Running:
        assert time.monotonic() < deadline and dock.is_running()
        QCoreApplication.processEvents()
    dock.cancel_button.click()
    assert not dock.cancel_button.isEnabled()
    wait_until_idle(dock)

    assert added_layers(before) == []
    assert dock.status_label.text() == "Cancelled after 0 of 3 layer(s)."
    assert dock.run_button.isEnabled() and not dock.cancel_button.isEnabled() and dock.current_task() is None
    assert sorted(os.listdir(folder)) == []
    # Cancel before the task manager has even started the first task.
    dock.run_button.click()
    dock.cancel_button.click()
    wait_until_idle(dock)
    assert added_layers(before) == [] and sorted(os.listdir(folder)) == []
    assert dock.status_label.text() == "Cancelled after 0 of 3 layer(s)." and dock.run_button.isEnabled()


def test_segmentation_into_a_folder_adds_styled_layers(scenes, make_dock, tmp_path):
    layer, truth = scenes[0]
    dock = make_dock()
    dock.set_task(SEGMENT)
    assert [dock.model_combo.itemData(i) for i in range(dock.model_combo.count() - 1)] == ["ecaunet"]
    assert dock.model() == "ecaunet"  # the algorithm's default
    dock.set_device("cpu")
    dock.tuning_widget("TILE_SIZE").setValue(256)
    dock.tuning_widget("OVERLAP").setValue(0)
    dock.set_checked(layer)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "ifg1_subsidence_mask.tif").write_bytes(b"an earlier result")  # is not overwritten
    dock.folder_widget.setFilePath(str(tmp_path / "out"))
    before = set(QgsProject.instance().mapLayers())

    dock.run_button.click()
    wait_until_idle(dock)

    assert dock.progress_bar.value() == 100, dock.log.toPlainText()
    layers = {layer.name(): layer for layer in added_layers(before)}
    assert sorted(layers) == ["ifg1: subsidence mask", "ifg1: subsidence probability", "ifg1: subsidence zones"]
    assert layers["ifg1: subsidence probability"].renderer().type() == "singlebandpseudocolor"
    assert layers["ifg1: subsidence mask"].renderer().type() == "paletted"
    zones = layers["ifg1: subsidence zones"]
    assert zones.renderer().type() == "graduatedSymbol" and zones.renderer().classAttribute() == "mean_prob"
    assert any(f.geometry().intersects(t) for f in zones.getFeatures() for t in truth)
    sources = {os.path.basename(layer.source().split("|")[0]) for layer in layers.values()}
    assert sources == {"ifg1_2_subsidence_probability.tif", "ifg1_2_subsidence_mask.tif",
                       "ifg1_2_subsidence_polygons.gpkg"}
    assert (tmp_path / "out" / "ifg1_subsidence_mask.tif").read_bytes() == b"an earlier result"


def test_an_algorithm_error_is_shown_without_a_traceback(scenes, make_dock, qgis_iface, tmp_path, monkeypatch):
    from minesar.ui import run_dock

    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a model")
    chosen = []

    class FileDialog:
        @staticmethod
        def getOpenFileName(*args):  # noqa: N802
            return chosen.pop(0), ""

    monkeypatch.setattr(run_dock, "QFileDialog", FileDialog)
    dock = detection_dock(make_dock)
    browse = dock.model_combo.findData(run_dock.BROWSE)
    chosen.append("")  # the file dialog cancelled: the model stays
    dock.model_combo.setCurrentIndex(browse)
    assert dock.model() == "yolobasin"
    chosen.append(str(bogus))
    dock.model_combo.setCurrentIndex(browse)
    assert dock.model() == str(bogus) and dock.model_combo.currentText() == "bogus.pt"
    dock.set_checked(scenes[0][0])
    qgis_iface.messageBar().clear_messages()
    before = set(QgsProject.instance().mapLayers())

    dock.run_button.click()
    wait_until_idle(dock)

    assert added_layers(before) == []
    status = dock.status_label.text()
    assert "0 of 1 layer(s) done, 1 failed" in status and "bogus.pt: not a readable MineSAR checkpoint" in status
    assert "Traceback" not in dock.log.toPlainText()
    assert any("bogus.pt" in m for m in qgis_iface.messageBar().get_messages(Qgis.Critical))
    assert dock.run_button.isEnabled()


def test_without_pytorch_the_dock_opens_and_says_what_to_install(scenes, make_dock, monkeypatch):
    from minesar.processing_provider.base import require_torch

    monkeypatch.setattr(environment, "torch_import_error", lambda: "No module named 'torch'")
    command = environment.torch_install_command()
    dock = make_dock()
    dock.set_checked(scenes[0][0])
    dock.set_task(DETECT)
    assert not dock.run_button.isEnabled() and not dock.model_box.isEnabled()
    assert not dock.torch_label.isHidden() and command in dock.torch_label.text()
    assert "No module named 'torch'" in dock.torch_label.text()
    assert [dock.device_combo.itemData(i) for i in range(dock.device_combo.count())] == ["auto", "cpu"]
    # Refining mine patches needs no network: it stays available.
    dock.set_task(REFINE)
    assert dock.model_box.isHidden() and not dock.refine_box.isHidden()
    assert dock.preliminary_combo.currentLayer() is not None and dock.run_button.isEnabled()
    with pytest.raises(QgsProcessingException, match="Detection needs PyTorch and torchvision") as raised:
        require_torch("Detection")
    assert command in str(raised.value)


def test_refine_alone_shows_the_patch_pickers_and_its_own_tuning(scenes, make_dock):
    dock = make_dock()
    dock.set_task(DETECT)
    assert dock.refine_box.isHidden() and not dock.model_box.isHidden() and dock.torch_label.isHidden()
    assert dock.advanced_box.isCollapsed()
    tile = dock.tuning_widget("TILE_SIZE")
    definition = dock.algorithm().parameterDefinition("TILE_SIZE")
    assert (tile.minimum(), tile.maximum(), tile.clearValue()) == (definition.minimum(), definition.maximum(),
                                                                   definition.defaultValue())
    dock.set_task(REFINE)
    assert not dock.refine_box.isHidden() and dock.model_box.isHidden()
    assert set(dock.tuning()) == {"TILE_SIZE", "P_INTSCT", "MIN_AREA"}
    # The layer list follows the project.
    QgsProject.instance().removeMapLayer(scenes[2][0])
    assert dock.layer_list.count() == 2
    QgsProject.instance().addMapLayer(QgsRasterLayer(scenes[0][0].source(), "again"))
    assert [dock.layer_list.item(i).text() for i in range(3)] == ["ifg1", "ifg2", "again"]


def test_the_device_list_shows_cuda_only_when_torch_sees_it(make_dock, qgis_new_project, minesar_provider,
                                                            monkeypatch):
    import torch

    dock = make_dock()
    devices = [dock.device_combo.itemData(i) for i in range(dock.device_combo.count())]
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert devices == ["auto", "cpu"] + [f"cuda:{i}" for i in range(gpus)]
    assert dock.cuda_label.text() == (f"CUDA available: {torch.cuda.get_device_name(0)}" if gpus == 1
                                      else "CUDA not available — running on CPU" if gpus == 0
                                      else dock.cuda_label.text())
    # A machine with two GPUs, as torch reports it.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: f"GPU {index}")
    dock = make_dock()
    assert [dock.device_combo.itemData(i) for i in range(dock.device_combo.count())] == [
        "auto", "cpu", "cuda:0", "cuda:1"]
    assert dock.cuda_label.text() == "CUDA available: GPU 0, GPU 1"


def _install(**changes):
    values = dict(executable="/usr/bin/qgis", exec_prefix="/usr", base_prefix="/usr", platform="linux",
                  version=sys.version_info[:2], externally_managed=False, numpy_major=1)
    values.update(changes)
    return PythonInstall(**values)


@pytest.mark.skipif(not os.path.isfile("/usr/bin/python{}.{}".format(*sys.version_info[:2])),
                    reason="needs a Debian-like /usr/bin/python3.X")
def test_install_command_for_qgis_desktop_on_debian():
    # QGIS's sys.executable is the qgis binary; the system Python is found under the prefix.
    install = _install(externally_managed=True)
    assert environment.torch_install_command(install) == (
        "/usr/bin/python3 -m pip install --user --break-system-packages 'numpy<2' torch torchvision")
    assert "in a terminal" in environment.torch_install_advice(install)


def test_install_command_on_windows_macos_and_in_a_virtual_environment():
    windows = _install(executable=r"C:\OSGeo4W\bin\qgis-bin.exe", exec_prefix=r"C:\OSGeo4W\apps\Python39",
                       base_prefix=r"C:\OSGeo4W\apps\Python39", platform="win32", version=(3, 9))
    assert environment.torch_install_command(windows) == 'python -m pip install "numpy<2" torch torchvision'
    assert "OSGeo4W Shell" in environment.torch_install_advice(windows)
    app = "/Applications/QGIS 3.22.app/Contents/MacOS"
    macos = _install(executable=f"{app}/QGIS", exec_prefix=app, base_prefix=app, platform="darwin", version=(3, 9),
                     numpy_major=2)
    assert environment.torch_install_command(macos, isfile=lambda path: path == f"{app}/bin/python3.9") == (
        f"'{app}/bin/python3.9' -m pip install torch torchvision")
    venv = _install(executable="/home/me/.venv/bin/python", exec_prefix="/home/me/.venv")
    assert environment.torch_install_command(venv).startswith("/home/me/.venv/bin/python -m pip install 'numpy<2'")
    # qgis_process guessed its sys.executable from PATH: a Python, but not the one running.
    shim = _install(executable="/root/.pyenv/shims/python3")
    assert environment.torch_install_command(shim, isfile=lambda path: path == "/usr/bin/python3").startswith(
        "/usr/bin/python3 -m pip install")
    # Here: the running interpreter (pytest's) is a Python, so it is the one named.
    assert environment.torch_install_command().startswith(sys.executable)


def test_advanced_offers_the_mirror_switch_with_each_algorithms_default(minesar_provider, make_dock):
    dock = make_dock()
    dock.set_task(DETECT)
    mirror = dock.tuning_widget("MIRROR")
    assert mirror.isChecked() and dock.tuning()["MIRROR"] is True  # the algorithm's default
    mirror.setChecked(False)
    assert dock.tuning()["MIRROR"] is False
    dock.set_task(SEGMENT)
    assert dock.tuning_widget("MIRROR").isChecked() and dock.tuning()["MIRROR"] is True
    dock.set_task("minesar:segmentminepatches")
    assert not dock.tuning_widget("MIRROR").isChecked() and dock.tuning()["MIRROR"] is False
    dock.set_task(REFINE)
    assert "MIRROR" not in dock.tuning()  # refinement runs no network


def test_advanced_offers_the_turns_switch_to_segmenters_only(minesar_provider, make_dock):
    dock = make_dock()
    dock.set_task(SEGMENT)
    turns = dock.tuning_widget("TURNS")
    assert turns.isChecked() and dock.tuning()["TURNS"] is True  # eight views by default
    turns.setChecked(False)
    assert dock.tuning()["TURNS"] is False
    dock.set_task("minesar:segmentminepatches")
    assert not dock.tuning_widget("TURNS").isChecked() and dock.tuning()["TURNS"] is False
    dock.set_task(DETECT)
    assert "TURNS" not in dock.tuning()


def test_thresholds_start_at_the_models_own_and_are_passed_only_when_set(minesar_provider, make_dock):
    dock = make_dock()
    for task, name in ((DETECT, "SCORE_THRESHOLD"), (SEGMENT, "THRESHOLD")):
        dock.set_task(task)
        widget = dock.tuning_widget(name)
        assert widget.text() == "model's own" and name not in dock.tuning()
        widget.setValue(0.8)
        assert dock.tuning()[name] == pytest.approx(0.8)
        widget.clear()  # the clear button goes back to the model's own
        assert name not in dock.tuning()
