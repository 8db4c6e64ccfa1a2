"""The plugin under QGIS's own qgis_process, through scripts/qgis-process, as users run it headless."""
import os
import subprocess

import numpy as np
import pytest
from conftest import ROOT, SAMPLE_DIR, read_big_endian, write_geotiff
from osgeo import gdal

SCRIPT = ROOT / "scripts" / "qgis-process"


@pytest.fixture(scope="module")
def qgis_process(tmp_path_factory):
    config = tmp_path_factory.mktemp("qgis-config")  # a fresh profile: the plugin starts disabled

    def _call(*args):
        env = dict(os.environ, MINESAR_QGIS_CONFIG=str(config))
        return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)

    return _call


def test_list_shows_every_minesar_algorithm(qgis_process):
    from minesar.processing_provider.provider import MineSARProvider

    completed = qgis_process("list")
    assert completed.returncode == 0, completed.stderr
    expected = MineSARProvider()
    expected.loadAlgorithms()
    for algorithm in expected.algorithms():
        assert f"minesar:{algorithm.name()}" in completed.stdout


def test_run_import_headless(qgis_process, tmp_path):
    source = SAMPLE_DIR / "20061106-20070326_utm.unw"
    output = tmp_path / "out.tif"
    completed = qgis_process("run", "minesar:importinterferogram", "--", f"INPUT={source}", "KIND=unwrapped", f"OUTPUT={output}")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "DATE1:\t2006-11-06" in completed.stdout
    expected = read_big_endian(source)
    written = gdal.Open(str(output)).ReadAsArray()
    np.testing.assert_array_equal(written[expected != 0], expected[expected != 0])


def test_bad_input_fails_with_the_message(qgis_process, tmp_path):
    completed = qgis_process(
        "run", "minesar:importinterferogram", "--", f"INPUT={SAMPLE_DIR / '20061106-20070326_utm.unw'}",
        "WIDTH=50", f"OUTPUT={tmp_path / 'out.tif'}",
    )
    assert completed.returncode != 0
    assert "not a multiple of WIDTH=50" in completed.stdout + completed.stderr
    assert not (tmp_path / "out.tif").exists()


def test_simulate_a_dataset_headless(qgis_process, tmp_path):
    folder = tmp_path / "ds"
    completed = qgis_process("run", "minesar:simulateinterferograms", "--", "COUNT=3", "SIZE=48", "SEED=5",
                             "BASINS=1,2", f"OUTPUT_FOLDER={folder}")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "IMAGES:\t3" in completed.stdout
    assert len(list((folder / "labels").glob("*.txt"))) == 3
    assert sum(len(p.read_text().splitlines()) for p in (folder / "labels").glob("*.txt")) >= 3


def _bare_qgis_process(tmp_path, extra_site=None):
    """qgis_process with QGIS's own Python only (no .venv), as a desktop user who has not installed our
    packages: ``extra_site`` may add some of them back."""
    import sysconfig

    config = tmp_path / "bare-config"
    config.mkdir(exist_ok=True)
    paths = [str(ROOT / ".build" / "plugins")] + ([str(extra_site)] if extra_site else [])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(QGIS_PLUGINPATH=str(ROOT / ".build" / "plugins"), PYTHONPATH=os.pathsep.join(paths),
               QGIS_CUSTOM_CONFIG_PATH=str(config), QT_QPA_PLATFORM="offscreen")
    binary = "qgis_process.bin"

    def _call(*args):
        return subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=300)

    enabled = _call("plugins", "enable", "minesar")
    assert enabled.returncode == 0 or "already enabled" in enabled.stderr, enabled.stderr
    return _call, sysconfig.get_paths()["purelib"]


def test_plugin_without_our_python_packages_says_what_to_install(tmp_path):
    run, _ = _bare_qgis_process(tmp_path)
    completed = subprocess.run(["/usr/bin/python3", "-c", "import shapely"], capture_output=True)
    if completed.returncode == 0:
        pytest.skip("QGIS's Python has shapely here")
    listed = run("list")
    assert listed.returncode == 0
    text = listed.stdout + listed.stderr
    assert "Traceback" not in text and "error starting plugin" not in text
    assert "MineSAR needs the Python package shapely" in text and "-m pip install" in text


def test_deep_learning_without_pytorch_says_what_to_install(tmp_path):
    if subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True).returncode == 0:
        pytest.skip("QGIS's Python has PyTorch here")
    site = tmp_path / "site"  # shapely only, from the venv: the plugin loads, PyTorch is missing
    site.mkdir()
    _, venv_site = _bare_qgis_process(tmp_path)
    for name in ("shapely", "shapely.libs"):
        if os.path.exists(os.path.join(venv_site, name)):
            os.symlink(os.path.join(venv_site, name), site / name)
    run, _ = _bare_qgis_process(tmp_path, site)
    assert "minesar:detectsubsidence" in run("list").stdout
    output, phase = tmp_path / "basins.gpkg", tmp_path / "20200101_20200113.tif"
    write_geotiff(phase, [np.zeros((64, 64), np.float32)], gdal.GDT_Float32)
    completed = run("run", "minesar:detectsubsidence", "--", f"INPUT={phase}", f"OUTPUT={output}")
    text = completed.stdout + completed.stderr
    assert completed.returncode != 0 and "Traceback" not in text, text
    assert "PyTorch" in text and "-m pip install" in text and "torch torchvision" in text
    assert not output.exists()
