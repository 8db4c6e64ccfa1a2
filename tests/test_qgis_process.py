"""The plugin under QGIS's own qgis_process, through scripts/qgis-process, as users run it headless."""
import os
import subprocess

import numpy as np
import pytest
from conftest import ROOT, SAMPLE_DIR, read_big_endian
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
