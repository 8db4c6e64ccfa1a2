"""The training-data algorithms inside QGIS: processing.run, layers, reprojection, errors."""
import json

import numpy as np
import pytest
from conftest import SAMPLE_DIR
from osgeo import gdal
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)

from minesar.core.dataset.layout import DatasetIndex

REAL = sorted(SAMPLE_DIR.glob("*_utm.unw"))


@pytest.fixture
def processing_run(minesar_provider):
    import processing

    def _run(algorithm, parameters, context=None):
        return processing.run(f"minesar:{algorithm}", parameters, context=context, feedback=QgsProcessingFeedback())

    return _run


def test_simulate_interferograms_writes_a_dataset_folder(processing_run, tmp_path):
    result = processing_run("simulateinterferograms", {
        "COUNT": 8, "SIZE": 64, "SEED": 3, "BASINS": "2,3", "SUBSIDENCE": "10,100", "RGB": True,
        "VALIDATION_PERCENT": 25, "TEST_PERCENT": 25, "OUTPUT_FOLDER": str(tmp_path / "ds")})
    assert result["IMAGES"] == 8 and result["INSTANCES"] >= 8
    index = DatasetIndex.open(result["OUTPUT_FOLDER"])
    assert [len(index.split[s]) for s in ("train", "val", "test")] == [4, 2, 2]
    assert index.description["recipe"]["subsidence_mm"] == [10.0, 100.0]
    depths = [a["depth_mm"] for a in index.coco["annotations"]]
    assert min(depths) >= 10.0 and max(depths) <= 100.0
    assert len(list((tmp_path / "ds" / "rgb").glob("*.tif"))) == 8


def test_simulate_interferograms_refuses_a_split_with_nothing_to_train(processing_run, tmp_path):
    with pytest.raises(QgsProcessingException, match="nothing would be left to train on"):
        processing_run("simulateinterferograms", {"COUNT": 2, "SIZE": 32, "VALIDATION_PERCENT": 60,
                                                  "TEST_PERCENT": 40, "OUTPUT_FOLDER": str(tmp_path / "x")})
    assert not (tmp_path / "x").exists()


def test_scene_mode_writes_a_large_interferogram_and_its_truth_layer(processing_run, tmp_path, qgis_new_project):
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    result = processing_run("simulatescene", {
        "WIDTH": 400, "HEIGHT": 300, "SEED": 7, "BASINS": "3,3", "SUBSIDENCE": "30,120", "DISTRACTORS": 1.0,
        "OUTPUT": str(tmp_path / "scene.tif"), "OUTPUT_TRUTH": str(tmp_path / "truth.gpkg"),
        "OUTPUT_DEFORMATION": str(tmp_path / "deformation.tif")}, context)
    assert result["BASINS_WRITTEN"] == 3
    scene = gdal.Open(result["OUTPUT"])
    assert (scene.RasterXSize, scene.RasterYSize) == (400, 300)
    assert scene.GetGeoTransform()[:2] == (300000.0, 30.0)
    phase = scene.ReadAsArray()
    assert np.nanmax(np.abs(phase)) <= np.pi + 1e-6
    truth = QgsVectorLayer(result["OUTPUT_TRUTH"], "truth", "ogr")
    assert truth.crs().authid() == "EPSG:32649"
    features = list(truth.getFeatures())
    mining = [f for f in features if f["label"] == "mining"]
    assert len(mining) == 3 and len(features) > 3
    # Truth polygons sit on the true deformation: its deepest pixel inside each basin's polygon.
    deformation = gdal.Open(result["OUTPUT_DEFORMATION"]).ReadAsArray()
    assert deformation.min() <= -30.0
    rows, cols = np.unravel_index(np.argmin(deformation), deformation.shape)
    deepest = QgsGeometry.fromPointXY(QgsPointXY(300000.0 + (cols + 0.5) * 30, 4100000.0 - (rows + 0.5) * 30))
    assert any(f.geometry().contains(deepest) for f in mining)
    for feature in mining:
        assert feature["area_m2"] == pytest.approx(feature.geometry().area())


def test_builddataset_reprojects_labels_onto_the_rasters(processing_run, tmp_path):
    imported = processing_run("importinterferogram", {"INPUT": str(REAL[0]), "OUTPUT": str(tmp_path / "ifg.tif")})
    raster = QgsRasterLayer(imported["OUTPUT"], "ifg")
    assert raster.isValid()
    # Labels drawn in Web Mercator over a raster in geographic coordinates.
    labels = QgsVectorLayer("Polygon?crs=EPSG:3857", "labels", "memory")
    extent = raster.extent()
    centre = QgsGeometry.fromPointXY(QgsPointXY(extent.xMinimum() + 20.5 * raster.rasterUnitsPerPixelX(),
                                                extent.yMaximum() - 30.5 * raster.rasterUnitsPerPixelY()))
    footprint = centre.buffer(8 * raster.rasterUnitsPerPixelX(), 32)
    footprint.transform(QgsCoordinateTransform(raster.crs(), QgsCoordinateReferenceSystem("EPSG:3857"),
                                               QgsProject.instance()))
    feature = QgsFeature()
    feature.setGeometry(footprint)
    labels.dataProvider().addFeatures([feature])
    result = processing_run("builddataset", {"INPUT": [raster], "LABELS": labels, "PRESET": "custom",
                                             "TILE_SIZE": 48, "OVERLAP": 0, "MIN_VALID_PERCENT": 0,
                                             "FLIPS": True, "OUTPUT_FOLDER": str(tmp_path / "ds")})
    assert result["IMAGES"] == 2 * 2  # one row of two tiles (72 rows → 0, 24), each with a mirror
    index = DatasetIndex.open(result["OUTPUT_FOLDER"])
    first = next(i for i in index.images() if i["source_row"] == 0 and not i["flipped"])
    mask = gdal.Open(str(tmp_path / "ds" / "masks" / f"{index.stem(first)}.tif")).ReadAsArray()
    rows, cols = np.nonzero(mask)
    assert abs(rows.mean() - 30.0) < 1.0 and abs(cols.mean() - 20.0) < 1.0
    assert 150 < mask.sum() < 250  # π·8² ≈ 201 pixels


def test_builddataset_presets_are_named_and_reported(processing_run, tmp_path):
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().algorithmById("minesar:builddataset")
    preset = algorithm.parameterDefinition("PRESET")
    assert preset.options() == ["seed001", "seed002", "seed003", "custom"]
    raster = QgsRasterLayer(str(tmp_path / "missing.tif"), "missing")
    labels = QgsVectorLayer("Polygon?crs=EPSG:4326", "labels", "memory")
    with pytest.raises(QgsProcessingException):
        processing_run("builddataset", {"INPUT": [raster], "LABELS": labels, "OUTPUT_FOLDER": str(tmp_path / "d")})
    imported = processing_run("importinterferogram", {"INPUT": str(REAL[1]), "OUTPUT": str(tmp_path / "i.tif")})
    result = processing_run("builddataset", {"INPUT": [imported["OUTPUT"]], "LABELS": labels, "PRESET": "seed003",
                                             "MIN_VALID_PERCENT": 0, "OUTPUT_FOLDER": str(tmp_path / "p")})
    described = json.loads((tmp_path / "p" / "dataset.json").read_text())
    assert (described["tile_size"], described["step"], described["rotations"]) == (256, 128, True)
    assert result["IMAGES"] == 4 and result["INSTANCES"] == 0


def test_builddataset_takes_only_mining_features_of_a_truth_layer(processing_run, tmp_path):
    scene = processing_run("simulatescene", {
        "WIDTH": 256, "HEIGHT": 256, "SEED": 2, "BASINS": "3,3", "SUBSIDENCE": "30,100", "DISTRACTORS": 1.0,
        "OUTPUT": str(tmp_path / "scene.tif"), "OUTPUT_TRUTH": str(tmp_path / "truth.gpkg")})
    truth = QgsVectorLayer(scene["OUTPUT_TRUTH"], "truth", "ogr")
    labels = [f["label"] for f in truth.getFeatures()]
    assert labels.count("mining") == 3 and "background" in labels
    result = processing_run("builddataset", {"INPUT": [scene["OUTPUT"]], "LABELS": truth, "PRESET": "custom",
                                             "TILE_SIZE": 256, "OVERLAP": 0, "OUTPUT_FOLDER": str(tmp_path / "ds")})
    assert result["IMAGES"] == 1 and result["INSTANCES"] == 3


def test_scene_in_a_crs_without_an_epsg_code(processing_run, tmp_path):
    proj = "+proj=tmerc +lat_0=0 +lon_0=111 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs"
    result = processing_run("simulatescene", {
        "WIDTH": 64, "HEIGHT": 64, "CRS": QgsCoordinateReferenceSystem.fromProj(proj),
        "OUTPUT": str(tmp_path / "s.tif"), "OUTPUT_TRUTH": str(tmp_path / "t.gpkg")})
    for layer in (QgsRasterLayer(result["OUTPUT"], "s"), QgsVectorLayer(result["OUTPUT_TRUTH"], "t", "ogr")):
        assert "+proj=tmerc" in layer.crs().toProj() and "+lon_0=111" in layer.crs().toProj()
    with pytest.raises(QgsProcessingException, match="projected CRS in metres"):
        processing_run("simulatescene", {"WIDTH": 64, "HEIGHT": 64, "CRS": "EPSG:4326",
                                         "OUTPUT": str(tmp_path / "g.tif"), "OUTPUT_TRUTH": str(tmp_path / "g.gpkg")})
