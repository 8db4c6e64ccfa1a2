"""The mine-patch algorithms inside QGIS on a simulated GF-2 scene with known truth."""
import json

import numpy as np
import pytest
from conftest import write_geotiff
from osgeo import gdal
from scipy import ndimage
from qgis.core import (
    QgsFeature,
    QgsGeometry,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsVectorLayer,
)

from minesar.core.segmentation.grid import Grid, polygons
from minesar.core.segmentation.scores import evaluate
from minesar.core.simulation.optical import OpticalRecipe
from minesar.core.simulation.optical_scenes import simulate_optical_scenes

SCENE = "scene_000000"


@pytest.fixture(scope="module")
def gf2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gf2") / "scenes"
    # Gentle relief: few mountain shadows, whose false blobs no boundary refinement can remove.
    recipe = OpticalRecipe(rows=256, cols=256, patch_count=(3, 4), patch_area_m2=(400.0, 6000.0), relief_m=40.0)
    simulate_optical_scenes(str(folder), recipe, 1, seed=14)
    return folder


@pytest.fixture
def run(minesar_provider):
    import processing

    def _run(algorithm, parameters):
        return processing.run(f"minesar:{algorithm}", parameters, feedback=QgsProcessingFeedback())

    return _run


def truth_layer(gf2):
    return QgsVectorLayer(f"{gf2 / 'patches.gpkg'}|layername=patches", "truth", "ogr")


def mask_of(layer_path, grid):
    from minesar.core.segmentation.grid import burn
    from shapely import wkb

    layer = QgsVectorLayer(layer_path, "x", "ogr") if isinstance(layer_path, str) else layer_path
    return burn([wkb.loads(bytes(f.geometry().asWkb())) for f in layer.getFeatures()], grid) > 0


def memory_polygons(geometries, crs="EPSG:32648"):
    layer = QgsVectorLayer(f"MultiPolygon?crs={crs}", "polygons", "memory")
    features = []
    for geometry in geometries:
        feature = QgsFeature()
        converted = QgsGeometry()
        converted.fromWkb(geometry.wkb)
        feature.setGeometry(converted)
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    return layer


def test_segmentation_covers_the_image_once(run, gf2, tmp_path):
    image = str(gf2 / "images" / f"{SCENE}.tif")
    result = run("multiresolutionsegmentation", {"INPUT": image, "SCALE": 60.0, "SHAPE": 0.3, "COMPACTNESS": 0.5,
                                                 "TILE_SIZE": 128, "OUTPUT": str(tmp_path / "segments.gpkg")})
    layer = QgsVectorLayer(result["OUTPUT"], "segments", "ogr")
    assert layer.featureCount() == result["SEGMENTS"] > 10
    names = layer.fields().names()
    assert {"SEG_ID", "MEAN_BLUE", "MEAN_GREEN", "MEAN_RED", "MEAN_NIR", "AREA", "PERIMETER", "COMPACT"} <= set(names)
    areas = [f["AREA"] for f in layer.getFeatures()]
    assert sum(areas) == pytest.approx(256 * 256)  # 1 m pixels, every pixel in exactly one segment
    assert sum(f.geometry().area() for f in layer.getFeatures()) == pytest.approx(256 * 256)
    red = gdal.Open(image).ReadAsArray()[2].astype(float)
    weighted = sum(f["MEAN_RED"] * f["AREA"] for f in layer.getFeatures()) / sum(areas)
    assert weighted == pytest.approx(red.mean(), rel=1e-4)
    assert min(f["COMPACT"] for f in layer.getFeatures()) >= 3.5  # l/√n ≥ 4 for pixel shapes (≥ 3.54 in general)


def test_refinement_beats_the_preliminary_mask_and_honours_its_options(run, gf2, tmp_path):
    image = str(gf2 / "images" / f"{SCENE}.tif")
    grid = Grid.of_raster(image)
    truth = gdal.Open(str(gf2 / "masks" / f"{SCENE}.tif")).ReadAsArray()
    truth_ids = ndimage.label(truth > 0)[0]
    preliminary = str(gf2 / "preliminary" / f"{SCENE}.tif")
    landcover = str(gf2 / "landcover" / f"{SCENE}.tif")
    common = {"INPUT": image, "SCALE": 30.0, "SHAPE": 0.5, "COMPACTNESS": 0.5, "LANDCOVER": landcover,
              "P_INTSCT": 0.4}
    result = run("refineminepatches", dict(common, PRELIMINARY=preliminary, OUTPUT=str(tmp_path / "refined.gpkg"),
                                           REPORT=str(tmp_path / "report.json")))
    refined = mask_of(result["OUTPUT"], grid)
    before = evaluate(gdal.Open(preliminary).ReadAsArray() > 0, truth_ids)
    after = evaluate(refined, truth_ids)
    assert after.f1 > before.f1 + 0.1 and after.mean_area_similarity > 0.8
    # Holes and fragments are gone: every refined patch over a truth patch is one piece without holes.
    labels, count = ndimage.label(refined)
    assert count == result["PATCHES"]
    assert np.array_equal(ndimage.binary_fill_holes(refined), refined)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["p_intsct"] == pytest.approx(0.4) and report["calibrated"] is False
    assert result["P_INTSCT_USED"] == pytest.approx(0.4)

    # The same patches given as polygons instead of a raster give the same answer.
    preliminary_polygons = memory_polygons([g for _, g in polygons(gdal.Open(preliminary).ReadAsArray(), grid)])
    as_polygons = run("refineminepatches", dict(common, PRELIMINARY=preliminary_polygons,
                                                OUTPUT=str(tmp_path / "refined2.gpkg")))
    assert np.array_equal(mask_of(as_polygons["OUTPUT"], grid), refined)

    # Reference patches calibrate p_intsct (the rule of the paper), and the report says so.
    calibrated = run("refineminepatches", dict(common, PRELIMINARY=preliminary, REFERENCE=truth_layer(gf2),
                                               OUTPUT=str(tmp_path / "refined3.gpkg")))
    assert 0.0 < calibrated["P_INTSCT_USED"] < 1.0 and calibrated["P_INTSCT_USED"] != pytest.approx(0.4)

    # Minimum area: nothing below it survives.
    large = run("refineminepatches", dict(common, PRELIMINARY=preliminary, MIN_AREA=2000.0,
                                          OUTPUT=str(tmp_path / "refined4.gpkg")))
    areas = [f["AREA"] for f in QgsVectorLayer(large["OUTPUT"], "x", "ogr").getFeatures()]
    assert min(areas) >= 2000.0 and large["DROPPED_SMALL"] >= 1

    # Land cover: built-up everywhere drops every segment.
    built = tmp_path / "built_up.tif"
    source = gdal.Open(landcover)
    gdal.Translate(str(built), source, scaleParams=[[0, 255, 50, 50]])
    everywhere = run("refineminepatches", dict(common, PRELIMINARY=preliminary, LANDCOVER=str(built),
                                               OUTPUT=str(tmp_path / "refined5.gpkg")))
    assert everywhere["PATCHES"] == 0 and everywhere["DROPPED_LANDCOVER"] > 0


def test_evaluation_reports_the_papers_figures(run, gf2, tmp_path):
    image = str(gf2 / "images" / f"{SCENE}.tif")
    grid = Grid.of_raster(image)
    preliminary = gdal.Open(str(gf2 / "preliminary" / f"{SCENE}.tif")).ReadAsArray()
    extracted = memory_polygons([g for _, g in polygons(preliminary, grid)])
    result = run("evaluatepatches", {"INPUT": extracted, "REFERENCE": truth_layer(gf2), "GRID": image,
                                     "OUTPUT": str(tmp_path / "scores.gpkg"), "REPORT": str(tmp_path / "s.json")})
    truth = mask_of(truth_layer(gf2), grid)
    tp = int(np.sum(truth & (preliminary > 0)))
    assert result["TP"] == tp and result["TP"] + result["FP"] + result["FN"] + result["TN"] == 256 * 256
    assert result["F1"] == pytest.approx(2 * tp / (2 * tp + result["FP"] + result["FN"]))
    assert 0 < result["KAPPA"] < result["OA"] <= 1 and 0 < result["MEAN_AREA_SIMILARITY"] <= 1
    layer = QgsVectorLayer(result["OUTPUT"], "scores", "ogr")
    assert layer.featureCount() == truth_layer(gf2).featureCount()
    identified = [f["IDENTIFIED"] for f in layer.getFeatures()]
    assert result["IDENTIFICATION_RATE"] == pytest.approx(np.mean(identified))
    assert json.loads((tmp_path / "s.json").read_text())["f1"] == pytest.approx(result["F1"])
    # Without a grid, both layers' extent at PIXEL_SIZE: the same TP (pixels of 1 m on the same lattice).
    alone = run("evaluatepatches", {"INPUT": extracted, "REFERENCE": truth_layer(gf2), "PIXEL_SIZE": 1.0,
                                    "OUTPUT": "memory:"})
    assert alone["TP"] == pytest.approx(tp, rel=0.02)


def test_parameter_estimation_searches_the_given_grid(run, gf2, tmp_path):
    image = str(gf2 / "images" / f"{SCENE}.tif")
    result = run("estimatesegmentationparameters", {
        "INPUT": image, "REFERENCE": truth_layer(gf2), "SHAPES": "0.2,0.6", "COMPACTNESSES": "0.5",
        "SCALES": "10,20,30,40,50,60", "REPORT": str(tmp_path / "estimate.json")})
    assert result["SHAPE"] in (0.2, 0.6) and result["COMPACTNESS"] == 0.5
    report = json.loads((tmp_path / "estimate.json").read_text())
    assert len(report["grid_search"]) == 2 and [row["scale"] for row in report["esp2"]] == [10, 20, 30, 40, 50, 60]
    assert result["SCALE"] in report["scale_candidates"]
    variances = [row["local_variance"] for row in report["esp2"]]
    assert variances == sorted(variances)  # coarser levels: larger objects, larger local variance


def test_bad_inputs_name_the_file_and_the_problem(run, gf2, tmp_path):
    image = str(gf2 / "images" / f"{SCENE}.tif")
    elsewhere = write_geotiff(tmp_path / "elsewhere.tif", np.ones((20, 20), np.uint8), gdal.GDT_Byte)  # UTM 50N
    with pytest.raises(QgsProcessingException, match="elsewhere.tif.*no preliminary mine patch covers"):
        run("refineminepatches", {"INPUT": image, "PRELIMINARY": elsewhere, "OUTPUT": "memory:"})
    empty = write_geotiff(tmp_path / "empty.tif", np.zeros((256, 256), np.uint8), gdal.GDT_Byte)
    with pytest.raises(QgsProcessingException, match="no preliminary mine patch"):
        run("refineminepatches", {"INPUT": image, "PRELIMINARY": empty, "OUTPUT": "memory:"})
    no_crs = write_geotiff(tmp_path / "plain.tif", np.ones((3, 40, 40), np.uint16), gdal.GDT_UInt16,
                           georeferenced=False)
    with pytest.raises(QgsProcessingException, match="plain.tif"):
        run("multiresolutionsegmentation", {"INPUT": no_crs, "OUTPUT": "memory:"})
    south_up = write_geotiff(tmp_path / "south_up.tif", np.ones((3, 40, 40), np.uint16), gdal.GDT_UInt16)
    dataset = gdal.Open(south_up, gdal.GA_Update)
    dataset.SetGeoTransform((500000.0, 1.0, 0.0, 4200000.0, 0.0, 1.0))
    dataset = None
    with pytest.raises(QgsProcessingException, match="south_up.tif: rotated or south-up grids are not supported"):
        run("multiresolutionsegmentation", {"INPUT": south_up, "OUTPUT": "memory:"})
    with pytest.raises(QgsProcessingException, match="band weights"):
        run("multiresolutionsegmentation", {"INPUT": image, "WEIGHTS": "1,1", "OUTPUT": "memory:"})
    from shapely.geometry import box
    far = memory_polygons([box(0, 0, 10, 10)])
    with pytest.raises(QgsProcessingException, match="scene_000000.tif: the reference patches do not overlap"):
        run("estimatesegmentationparameters", {"INPUT": image, "REFERENCE": far})
    # Reference patches in another CRS are reprojected, not refused: the truth in WGS 84 still calibrates.
    import processing
    wgs84 = processing.run("native:reprojectlayer", {"INPUT": truth_layer(gf2), "TARGET_CRS": "EPSG:4326",
                                                     "OUTPUT": "memory:"})["OUTPUT"]
    result = run("refineminepatches", {"INPUT": image, "PRELIMINARY": str(gf2 / "preliminary" / f"{SCENE}.tif"),
                                       "REFERENCE": wgs84, "SCALE": 30.0, "OUTPUT": "memory:"})
    assert 0 < result["P_INTSCT_USED"] < 1 and result["PATCHES"] >= 3


def test_outputs_come_in_named_and_styled(minesar_provider, gf2, tmp_path, qgis_new_project):
    from test_styled_outputs import run_like_the_toolbox

    image = str(gf2 / "images" / f"{SCENE}.tif")
    layers = run_like_the_toolbox("minesar:refineminepatches", {
        "INPUT": image, "PRELIMINARY": str(gf2 / "preliminary" / f"{SCENE}.tif"), "SCALE": 30.0,
        "OUTPUT": str(tmp_path / "refined.gpkg")}, ["OUTPUT"])
    renderer = layers["Refined mine patches"].renderer()
    assert renderer.type() == "singleSymbol" and renderer.symbol().color().name() == "#fdae61"
    layers = run_like_the_toolbox("minesar:evaluatepatches", {
        "INPUT": str(tmp_path / "refined.gpkg"), "REFERENCE": f"{gf2 / 'patches.gpkg'}|layername=patches",
        "GRID": image, "OUTPUT": str(tmp_path / "scores.gpkg")}, ["OUTPUT"])
    assert layers["Patch scores"].renderer().classAttribute() == "IDENTIFIED"
    layers = run_like_the_toolbox("minesar:multiresolutionsegmentation", {
        "INPUT": image, "SCALE": 80.0, "OUTPUT": str(tmp_path / "segments.gpkg")}, ["OUTPUT"])
    assert layers["Segments"].renderer().symbol().symbolLayer(0).strokeColor().name() == "#ffff00"


@pytest.fixture(scope="module")
def mountains(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gf2") / "mountains"
    # Steep relief and a low sun: the first mask calls a mountain shadow a mine (seed 2).
    recipe = OpticalRecipe(rows=256, cols=256, patch_count=(3, 4), patch_area_m2=(400.0, 6000.0), relief_m=120.0)
    simulate_optical_scenes(str(folder), recipe, 1, seed=2)
    return folder


def test_a_dem_and_the_sun_remove_mountain_shadows(run, mountains, tmp_path):
    from minesar.core.segmentation.terrain import illumination

    image = str(mountains / "images" / f"{SCENE}.tif")
    dem = str(mountains / "dem" / f"{SCENE}.tif")
    grid = Grid.of_raster(image)
    truth_ids = ndimage.label(gdal.Open(str(mountains / "masks" / f"{SCENE}.tif")).ReadAsArray() > 0)[0]
    sun = json.loads((mountains / "dataset.json").read_text())["scenes"][0]
    common = {"INPUT": image, "PRELIMINARY": str(mountains / "preliminary" / f"{SCENE}.tif"), "SCALE": 30.0,
              "SHAPE": 0.5, "COMPACTNESS": 0.5, "P_INTSCT": 0.4,
              "LANDCOVER": str(mountains / "landcover" / f"{SCENE}.tif")}
    plain = run("refineminepatches", dict(common, OUTPUT=str(tmp_path / "plain.gpkg")))
    shaded = run("refineminepatches", dict(common, DEM=dem, SUN_AZIMUTH=sun["sun_azimuth_deg"],
                                           SUN_ELEVATION=sun["sun_elevation_deg"], OUTPUT=str(tmp_path / "dem.gpkg")))
    assert plain["DROPPED_SHADOW"] == 0 and shaded["DROPPED_SHADOW"] >= 1
    before, after = evaluate(mask_of(plain["OUTPUT"], grid), truth_ids), evaluate(mask_of(shaded["OUTPUT"], grid), truth_ids)
    assert after.users_accuracy > before.users_accuracy + 0.2 and after.f1 > before.f1 + 0.1
    assert after.producers_accuracy > before.producers_accuracy - 0.02  # the mines on dark slopes stay
    lit = illumination(gdal.Open(dem).ReadAsArray(), grid.geotransform, sun["sun_azimuth_deg"], sun["sun_elevation_deg"])
    patches = ndimage.label(mask_of(shaded["OUTPUT"], grid))[0]
    share_dark = ndimage.mean(lit < 0.4, patches, index=np.arange(1, patches.max() + 1))
    assert np.all(share_dark <= 0.5)

    with pytest.raises(QgsProcessingException, match="SUN_AZIMUTH and SUN_ELEVATION"):
        run("refineminepatches", dict(common, DEM=dem, OUTPUT=str(tmp_path / "x.gpkg")))
    far = tmp_path / "far_dem.tif"
    write_geotiff(far, np.zeros((10, 10), np.float32), gdal.GDT_Float32)  # UTM 50N, far from the scene
    with pytest.raises(QgsProcessingException, match="far_dem.tif: the DEM has no height on the image"):
        run("refineminepatches", dict(common, DEM=str(far), SUN_AZIMUTH=180.0, SUN_ELEVATION=30.0,
                                      OUTPUT=str(tmp_path / "y.gpkg")))
    assert not (tmp_path / "x.gpkg").exists() and not (tmp_path / "y.gpkg").exists()
