"""Categorized styles of class layers, checked on real algorithm outputs loaded as the toolbox
loads them: every class the algorithm can write has its own colour and legend text, and every
feature written falls in its own class (none in a catch-all)."""
import numpy as np
from conftest import write_geotiff
from osgeo import gdal
from test_activity import PATCHES, SITE_EXTENT, _memory_layer, _velocity_field, detection_layers
from test_styled_outputs import run_like_the_toolbox


def categories(layer):
    renderer = layer.renderer()
    assert renderer.type() == "categorizedSymbol"
    return renderer.classAttribute(), {c.value(): c for c in renderer.categories()}


def colour(category):
    """The colour a class is told by: its fill, or its outline when it has no fill."""
    from qgis.PyQt.QtCore import Qt

    layer = category.symbol().symbolLayer(0)
    return (layer.strokeColor() if layer.brushStyle() == Qt.NoBrush else category.symbol().color()).name()


def assert_distinct(classes):
    colours = [colour(c) for c in classes.values()]
    labels = [c.label() for c in classes.values()]
    assert len(set(colours)) == len(colours), colours
    assert len(set(labels)) == len(labels) and all(labels), labels


def test_mine_activity_classes_each_have_a_colour_and_label(minesar_provider, tmp_path, qgis_new_project):
    from minesar.core.activity import CLASSES

    velocity, coherence = _velocity_field()  # with these patches: every class once (test_activity)
    layers = run_like_the_toolbox("minesar:mineactivity", {
        "INPUT": _memory_layer("patches", list(PATCHES.values())),
        "VELOCITY": write_geotiff(tmp_path / "v.tif", velocity, gdal.GDT_Float32, nodata=float("nan")),
        "COHERENCE": write_geotiff(tmp_path / "c.tif", coherence, gdal.GDT_Float32),
        "OUTPUT": str(tmp_path / "m.gpkg")}, ["OUTPUT"])
    layer = layers["Mine activity"]
    field, classes = categories(layer)
    assert field == "ACTIVITY" and set(classes) == set(CLASSES)
    assert_distinct(classes)
    written = {f["ACTIVITY"] for f in layer.getFeatures()}
    assert written == set(CLASSES)
    assert classes["negative"].label().startswith("negative") and "subsidence" in classes["negative"].label()
    assert colour(classes["negative"]) == "#4575b4" and colour(classes["positive"]) == "#d73027"


def test_surface_activity_sites_are_labelled_with_the_shares_used(minesar_provider, tmp_path, qgis_new_project):
    inputs = detection_layers()
    layers = run_like_the_toolbox("minesar:surfaceactivity", {
        "INPUT": inputs, "EXTENT": SITE_EXTENT, "PIXEL_SIZE": 10,
        "STRONG_FROM": 50, "OUTPUT_ACTIVITY": str(tmp_path / "days.tif"), "OUTPUT_SITES": str(tmp_path / "s.gpkg")},
        ["OUTPUT_SITES"])
    layer = layers["Active sites"]
    field, classes = categories(layer)
    assert field == "CLASS" and set(classes) == {"weak", "moderate", "strong"}
    assert_distinct(classes)
    assert {f["CLASS"] for f in layer.getFeatures()} == {"weak", "moderate", "strong"}  # 10, 20, 60 %
    assert "15.3" in classes["weak"].label() and "50" in classes["strong"].label()


def test_simulated_patches_load_outlined_by_kind(minesar_provider, tmp_path, qgis_new_project):
    from qgis.PyQt.QtCore import Qt

    from minesar.core.simulation.optical import MINE_KINDS

    layers = run_like_the_toolbox("minesar:simulateopticalscenes", {
        "COUNT": 2, "SIZE": 256, "PIXEL_SIZE": 2.0, "PATCHES": "4,6", "PATCH_AREA": "2000,8000", "SEED": 4,
        "OUTPUT_FOLDER": str(tmp_path / "gf2")}, [])
    for name in ("simulated mine patches", "simulated confusers"):
        layer = layers[name]
        field, classes = categories(layer)
        assert field == "kind"
        kinds = {f["kind"] for f in layer.getFeatures()}
        assert kinds and kinds <= set(classes) - {""}  # every feature in a class of its own kind
        for category in classes.values():
            assert category.symbol().symbolLayer(0).brushStyle() == Qt.NoBrush  # outlined, the image shows
    _, classes = categories(layers["simulated mine patches"])
    assert set(MINE_KINDS) <= set(classes)
    assert_distinct({k: c for k, c in classes.items() if k})
    dashed = {k for k, c in classes.items() if c.symbol().symbolLayer(0).strokeStyle() == Qt.DashLine}
    assert not dashed & set(MINE_KINDS) and {f["kind"] for f in layers["simulated confusers"].getFeatures()} <= dashed
