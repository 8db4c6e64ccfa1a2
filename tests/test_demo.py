"""`make demo` end to end: imports, SBAS and hot spots, a simulated scene filtered, the whole
pipeline on a simulated mining area in time (detection → surface activity, SBAS → mine activity),
a project holding the styled layers, temporal where they have dates, rendered maps."""
import subprocess
import sys
from datetime import date

import numpy as np
import pytest
from conftest import ROOT
from osgeo import gdal
from qgis.core import QgsProject, QgsRasterLayer, QgsRenderContext, QgsVectorLayer, QgsVectorLayerTemporalProperties
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QImage
from minesar.ui.temporal import per_band_supported

SEQUENCE_PAIRS = 11  # the demo's sequence: simulatesequence's default 12 epochs


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo")
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--output", str(output)],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert str(output / "minesar_demo.qgz") in completed.stdout
    assert str(output / "sequence") in completed.stdout and str(output / "minesar_demo.png") in completed.stdout
    return output


def test_demo_imports_every_pair_and_its_coherence(demo_output):
    assert len(list((demo_output / "interferograms").glob("*.tif"))) == 17
    assert len(list((demo_output / "coherence").glob("*.tif"))) == 17


def test_demo_project_holds_styled_layers(demo_output):
    project = QgsProject()
    assert project.read(str(demo_output / "minesar_demo.qgz"))
    layers = list(project.mapLayers().values())
    # On QGIS < 3.38 the simulated series also plays as one band view per epoch after the first.
    epoch_views = [layer for layer in layers if layer.source().startswith("vrt://")]
    assert len(epoch_views) == (0 if per_band_supported() else SEQUENCE_PAIRS)
    assert len(layers) == 34 + 4 + 3 + 9 + SEQUENCE_PAIRS + len(epoch_views)
    assert all(layer.isValid() for layer in layers)
    assert all(layer.temporalProperties().isActive() and layer.renderer().type() == "singlebandpseudocolor"
               for layer in epoch_views)
    pairs = [layer for layer in layers if layer.name().split()[0] in ("unwrapped", "coherence")]
    renderers = {layer.name().split()[0]: layer.renderer().type() for layer in pairs}
    assert len(pairs) == 34 and all(isinstance(layer, QgsRasterLayer) for layer in pairs)
    assert renderers == {"unwrapped": "singlebandpseudocolor", "coherence": "singlebandgray"}
    by_name = {layer.name(): layer for layer in layers}
    assert by_name["SBAS velocity (mm/yr)"].renderer().type() == "singlebandpseudocolor"
    assert by_name["SBAS time series (mm)"].renderer().band() == by_name["SBAS time series (mm)"].bandCount()
    assert by_name["Gi* hot and cold spots"].renderer().type() == "paletted"
    assert by_name["simulation truth"].renderer().type() == "categorizedSymbol"
    for name in ("All pairs", "Deformation and simulation", "Mining area in time"):
        assert project.layoutManager().layoutByName(name) is not None


def test_demo_project_holds_the_mining_area_styled_and_temporal(demo_output):
    project = QgsProject()
    assert project.read(str(demo_output / "minesar_demo.qgz"))
    by_name = {layer.name(): layer for layer in project.mapLayers().values()}
    renderers = {
        "detected basins": ("graduatedSymbol", "score"), "active sites": ("categorizedSymbol", "CLASS"),
        "mine activity": ("categorizedSymbol", "ACTIVITY"),
        "mine patches, true class": ("categorizedSymbol", "true_class"),
    }
    for name, (kind, field) in renderers.items():
        renderer = by_name[name].renderer()
        assert (renderer.type(), renderer.classAttribute()) == (kind, field), name
    outlines = by_name["mine patches, true class"].renderer().symbols(QgsRenderContext())
    assert outlines and all(symbol.symbolLayer(0).brushStyle() == Qt.NoBrush for symbol in outlines)
    for name in ("surface activity (days)", "SBAS velocity (mm/yr), simulated stack"):
        assert by_name[name].renderer().type() == "singlebandpseudocolor", name
    pairs = [layer for name, layer in by_name.items() if name.startswith("interferogram ")]
    assert len(pairs) == SEQUENCE_PAIRS
    for layer in pairs:
        assert layer.renderer().type() == "singlebandpseudocolor"
        properties = layer.temporalProperties()
        first, second = (date.fromisoformat(d) for d in layer.name().split()[1::2])
        assert properties.isActive()
        assert properties.fixedTemporalRange().begin().date().toPyDate() == first
        assert properties.fixedTemporalRange().end().date().toPyDate() == second
    for name in ("detected basins", "active sites"):
        properties = by_name[name].temporalProperties()
        assert properties.isActive(), name
        assert properties.mode() == QgsVectorLayerTemporalProperties.ModeFeatureDateTimeStartAndEndFromExpressions
    assert by_name["SBAS time series (mm), simulated stack"].temporalProperties().isActive()
    assert not by_name["mine patches, true class"].temporalProperties().isActive()
    span = project.timeSettings().temporalRange()
    dates = sorted(d for layer in pairs for d in layer.name().split()[1::2])
    assert (span.begin().date().toPyDate(), span.end().date().toPyDate()) == \
        (date.fromisoformat(dates[0]), date.fromisoformat(dates[-1]))


def test_demo_runs_the_pipeline_on_the_mining_area_and_finds_its_truth(demo_output):
    sequence = demo_output / "sequence"
    assert len(list((sequence / "interferograms").glob("*_*.tif"))) == SEQUENCE_PAIRS
    assert len(list((sequence / "detections").glob("2*_2*.gpkg"))) == SEQUENCE_PAIRS
    stack = list((sequence / "stack").glob("*_unw.tif"))
    assert len(stack) == len(list((sequence / "stack").glob("*_coh.tif"))) > SEQUENCE_PAIRS
    assert gdal.Open(str(sequence / "sbas" / "timeseries.tif")).RasterCount == SEQUENCE_PAIRS + 1
    mines = QgsVectorLayer(str(sequence / "activity" / "mine_activity.gpkg"), "mines", "ogr")
    rows = [(f["name"], f["ACTIVITY"], f["true_class"]) for f in mines.getFeatures()]
    del mines
    assert len(rows) == 6 and all(found == truth for _, found, truth in rows), rows
    sites = QgsVectorLayer(str(sequence / "activity" / "sites.gpkg"), "sites", "ogr")
    truth = QgsVectorLayer(str(sequence / "mines.gpkg"), "truth", "ogr")
    active = [f for f in truth.getFeatures() if f["active_from"]]
    for mine in active:  # one site per active mine, over its period within one interval
        on = [s for s in sites.getFeatures() if s.geometry().intersects(mine.geometry())]
        assert len(on) == 1, mine["name"]
        assert abs(on[0]["ACTIVE_DAYS"] - mine["active_days"]) <= 48
    del sites, truth


def test_demo_inverts_the_real_pairs_and_filters_the_simulation(demo_output):
    velocity = gdal.Open(str(demo_output / "sbas" / "velocity.tif")).ReadAsArray()
    series = gdal.Open(str(demo_output / "sbas" / "timeseries.tif"))
    assert series.RasterCount == 13 and series.GetRasterBand(1).GetDescription() == "D20060619"
    assert np.isfinite(velocity).mean() > 0.9 and np.nanmin(velocity) < -5  # the subsidence bowl
    raw = gdal.Open(str(demo_output / "simulation" / "residues_raw.tif")).ReadAsArray()
    filtered = gdal.Open(str(demo_output / "simulation" / "residues_filtered.tif")).ReadAsArray()
    assert np.count_nonzero(filtered) < 0.3 * np.count_nonzero(raw)


@pytest.mark.parametrize("name", ["minesar_demo.png", "minesar_pairs.png", "minesar_overview.png"])
def test_demo_maps_are_real_pictures(demo_output, name):
    image = QImage(str(demo_output / name))
    assert not image.isNull() and image.width() > 1000
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 200  # map panels, not a blank page
