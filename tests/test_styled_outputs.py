"""Outputs loaded the way the toolbox loads them come in named and styled, for every algorithm
family that styles its results (one post-processing path in processing_provider/base.py)."""
import numpy as np
import pytest
from conftest import write_geotiff
from osgeo import gdal
from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
)
from test_activity import PATCHES, SITE_EXTENT, _memory_layer, detection_layers
from test_sbas import _network, _write_stack


def run_like_the_toolbox(algorithm_id, parameters, outputs):
    """Run, then load the outputs marked for loading and post-process them, as the dialog does."""
    from processing.gui.Postprocessing import handleAlgorithmResults

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    for name in outputs:
        context.addLayerToLoadOnCompletion(parameters[name],
                                           QgsProcessingContext.LayerDetails(name, QgsProject.instance(), name))
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    results, ok = algorithm.run(parameters, context, QgsProcessingFeedback())
    assert ok
    assert handleAlgorithmResults(algorithm, context, QgsProcessingFeedback(), False, results)
    return {layer.name(): layer for layer in QgsProject.instance().mapLayers().values()}


def test_simulated_scene_layers(minesar_provider, tmp_path, qgis_new_project):
    layers = run_like_the_toolbox("minesar:simulatescene", {
        "WIDTH": 128, "HEIGHT": 128, "BASINS": "2,2", "OUTPUT": str(tmp_path / "s.tif"),
        "OUTPUT_TRUTH": str(tmp_path / "t.gpkg"), "OUTPUT_COHERENCE": str(tmp_path / "c.tif")},
        ["OUTPUT", "OUTPUT_TRUTH", "OUTPUT_COHERENCE"])
    assert layers["simulated interferogram"].renderer().type() == "singlebandpseudocolor"
    assert layers["simulated coherence"].renderer().type() == "singlebandgray"
    truth = layers["simulation truth"].renderer()
    assert truth.type() == "categorizedSymbol" and truth.classAttribute() == "label"
    assert {c.value() for c in truth.categories()} == {"mining", "background"}


def test_sbas_layers(minesar_provider, tmp_path, qgis_new_project):
    network, _ = _network(n_dates=5)
    truth = np.arange(5)[:, None, None] * np.full((1, 6, 7), -2.0)
    paths, _ = _write_stack(tmp_path, network, truth, (6, 7))
    layers = run_like_the_toolbox("minesar:sbasinversion", {
        "INPUT": paths, "OUTPUT_TIMESERIES": str(tmp_path / "ts.tif"), "OUTPUT_VELOCITY": str(tmp_path / "v.tif"),
        "OUTPUT_COHERENCE": str(tmp_path / "c.tif")},
        ["OUTPUT_TIMESERIES", "OUTPUT_VELOCITY", "OUTPUT_COHERENCE"])
    velocity = layers["SBAS velocity (mm/yr)"].renderer()
    assert velocity.type() == "singlebandpseudocolor"
    items = velocity.shader().rasterShaderFunction().colorRampItemList()
    # Diverging and centred on zero: as far below zero as above.
    assert items[0].value == pytest.approx(-items[-1].value)
    assert "SBAS time series (mm)" in layers and "SBAS temporal coherence" in layers


def test_activity_layers(minesar_provider, tmp_path, qgis_new_project):
    velocity = np.full((40, 40), -12.0, dtype=np.float32)
    path = write_geotiff(tmp_path / "v.tif", velocity, gdal.GDT_Float32)
    layers = run_like_the_toolbox("minesar:mineactivity", {
        "INPUT": _memory_layer("patches", list(PATCHES.values())), "VELOCITY": path,
        "OUTPUT": str(tmp_path / "new" / "folder" / "m.gpkg")}, ["OUTPUT"])  # sinks make their folder too
    renderer = layers["Mine activity"].renderer()
    assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "ACTIVITY"


def test_surface_activity_layers(minesar_provider, tmp_path, qgis_new_project):
    inputs = detection_layers()
    layers = run_like_the_toolbox("minesar:surfaceactivity", {
        "INPUT": inputs, "EXTENT": SITE_EXTENT, "PIXEL_SIZE": 10,
        "OUTPUT_ACTIVITY": str(tmp_path / "days.tif"), "OUTPUT_SITES": str(tmp_path / "sites.gpkg")},
        ["OUTPUT_ACTIVITY", "OUTPUT_SITES"])
    renderer = layers["Surface activity (days)"].renderer()
    assert renderer.type() == "singlebandpseudocolor"
    # Never-detected ground (0 days) is transparent; a detected pixel is opaque.
    assert renderer.rasterTransparency().alphaValue(0.0) == 0
    assert renderer.rasterTransparency().alphaValue(12.0) == 255
    assert layers["Active sites"].renderer().classAttribute() == "CLASS"


def test_probability_zero_leaves_the_image_visible(tmp_path):
    from qgis.core import QgsRasterLayer
    from qgis.PyQt.QtGui import QColor

    from minesar.ui.styles import style_probability

    values = np.array([[0.0, 0.1, 0.5, 1.0]], np.float32)
    layer = QgsRasterLayer(write_geotiff(tmp_path / "p.tif", [values], gdal.GDT_Float32), "probability")
    style_probability(layer)
    block = layer.renderer().block(1, layer.extent(), 4, 1)
    alpha = [QColor.fromRgba(block.color(0, col)).alpha() for col in range(4)]
    opaque = round(255 * layer.opacity())  # the layer keeps 0.8 opacity over the ramp
    assert alpha[0] == 0 and 0 < alpha[1] < opaque and alpha[2] == alpha[3] == opaque
