"""`make demo` end to end: imports, a project holding the styled layers, a rendered map."""
import subprocess
import sys

import pytest
from conftest import ROOT
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
    assert len(layers) == 34
    assert all(isinstance(layer, QgsRasterLayer) and layer.isValid() for layer in layers)
    renderers = {layer.name().split()[0]: layer.renderer().type() for layer in layers}
    assert renderers == {"unwrapped": "singlebandpseudocolor", "coherence": "singlebandgray"}
    assert project.layoutManager().layoutByName("All pairs") is not None


def test_demo_map_is_a_real_picture(demo_output):
    image = QImage(str(demo_output / "minesar_demo.png"))
    assert not image.isNull() and image.width() > 1000
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 200  # phase panels, not a blank page
