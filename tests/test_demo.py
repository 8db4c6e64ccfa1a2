"""`make demo` end to end: imports, SBAS and hot spots, a simulated scene filtered, a project
holding the styled layers, rendered maps."""
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from osgeo import gdal
from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtGui import QImage


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo")
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--output", str(output)],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert str(output / "minesar_demo.qgz") in completed.stdout
    return output


def test_demo_imports_every_pair_and_its_coherence(demo_output):
    assert len(list((demo_output / "interferograms").glob("*.tif"))) == 17
    assert len(list((demo_output / "coherence").glob("*.tif"))) == 17


def test_demo_project_holds_styled_layers(demo_output):
    project = QgsProject()
    assert project.read(str(demo_output / "minesar_demo.qgz"))
    layers = list(project.mapLayers().values())
    assert len(layers) == 34 + 4 + 3
    assert all(layer.isValid() for layer in layers)
    pairs = [layer for layer in layers if layer.name().split()[0] in ("unwrapped", "coherence")]
    renderers = {layer.name().split()[0]: layer.renderer().type() for layer in pairs}
    assert len(pairs) == 34 and all(isinstance(layer, QgsRasterLayer) for layer in pairs)
    assert renderers == {"unwrapped": "singlebandpseudocolor", "coherence": "singlebandgray"}
    by_name = {layer.name(): layer for layer in layers}
    assert by_name["SBAS velocity (mm/yr)"].renderer().type() == "singlebandpseudocolor"
    assert by_name["SBAS time series (mm)"].renderer().band() == by_name["SBAS time series (mm)"].bandCount()
    assert by_name["Gi* hot and cold spots"].renderer().type() == "paletted"
    assert by_name["simulation truth"].renderer().type() == "categorizedSymbol"
    for name in ("All pairs", "Deformation and simulation"):
        assert project.layoutManager().layoutByName(name) is not None


def test_demo_inverts_the_real_pairs_and_filters_the_simulation(demo_output):
    velocity = gdal.Open(str(demo_output / "sbas" / "velocity.tif")).ReadAsArray()
    series = gdal.Open(str(demo_output / "sbas" / "timeseries.tif"))
    assert series.RasterCount == 13 and series.GetRasterBand(1).GetDescription() == "D20060619"
    assert np.isfinite(velocity).mean() > 0.9 and np.nanmin(velocity) < -5  # the subsidence bowl
    raw = gdal.Open(str(demo_output / "simulation" / "residues_raw.tif")).ReadAsArray()
    filtered = gdal.Open(str(demo_output / "simulation" / "residues_filtered.tif")).ReadAsArray()
    assert np.count_nonzero(filtered) < 0.3 * np.count_nonzero(raw)


@pytest.mark.parametrize("name", ["minesar_demo.png", "minesar_overview.png"])
def test_demo_maps_are_real_pictures(demo_output, name):
    image = QImage(str(demo_output / name))
    assert not image.isNull() and image.width() > 1000
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 200  # map panels, not a blank page
