"""Simulated GF-2 scenes: the four mine kinds look as seed 003 describes them, truth is consistent,
and the preliminary mask is imperfect in the ways the refinement step must fix."""
import json

import numpy as np
import pytest
from osgeo import gdal, ogr
from scipy import ndimage

from minesar.core.errors import MineSARError
from minesar.core.simulation.optical import MINE_CODES, WORLDCOVER, OpticalRecipe, _burn, simulate_optical_scene

RECIPE = OpticalRecipe(rows=512, cols=512, patch_count=(4, 6), patch_area_m2=(200.0, 40_000.0))


@pytest.fixture(scope="module")
def scenes():
    return [simulate_optical_scene(RECIPE, np.random.default_rng([21, i])) for i in range(10)]


def kind_pixels(scenes, kind):
    """(4, n) DN of all pixels of one mine kind, and their local texture (3×3 std of the red band)."""
    values, texture = [], []
    for scene in scenes:
        mask = ndimage.binary_erosion(scene.truth == MINE_CODES[kind], iterations=2)
        red = scene.image[2].astype(float)
        local = np.sqrt(np.clip(ndimage.uniform_filter(red**2, 3) - ndimage.uniform_filter(red, 3) ** 2, 0, None))
        values.append(scene.image[:, mask])
        texture.append(local[mask] / np.maximum(red[mask], 1))
    return np.concatenate(values, axis=1).astype(float), np.concatenate(texture)


def test_patches_are_irregular_polygons_of_the_requested_sizes(scenes):
    solidity = []
    for scene in scenes:
        assert 4 <= len(scene.patches) <= 6
        for patch in scene.patches:
            area = patch.area_m2(RECIPE.pixel_size_m)
            assert 200.0 <= area <= 40_000.0 * 1.001
            solidity.append(patch.polygon.area / patch.polygon.convex_hull.area)
        codes = set(np.unique(scene.truth)) - {0}
        assert codes == {MINE_CODES[p.kind] for p in scene.patches}
        for a in range(len(scene.patches)):
            for b in range(a + 1, len(scene.patches)):
                assert not scene.patches[a].polygon.intersects(scene.patches[b].polygon)
    # Irregular outlines: most patches are clearly not convex, as an ellipse would be.
    assert np.mean(np.array(solidity) < 0.95) > 0.7 and np.mean(solidity) < 0.92


def test_the_four_kinds_have_the_papers_colours_and_textures(scenes):
    stats = {}
    for kind in MINE_CODES:
        values, texture = kind_pixels(scenes, kind)
        assert values.shape[1] > 100, kind
        blue, green, red, nir = values.mean(axis=1)
        stats[kind] = {"brightness": (blue + green + red) / 3, "red_blue": red / blue, "texture": np.median(texture)}
    # Coal gangue is gray-black: the darkest. Clay and sandstone are the bright ones.
    assert stats["coal_gangue"]["brightness"] < min(stats[k]["brightness"] for k in ("iron_ore", "clay", "sandstone"))
    assert min(stats["clay"]["brightness"], stats["sandstone"]["brightness"]) > stats["iron_ore"]["brightness"]
    # Iron ore is yellow to reddish brown: the reddest.
    assert stats["iron_ore"]["red_blue"] > 1.3 * max(stats[k]["red_blue"] for k in ("coal_gangue", "clay", "sandstone"))
    # Clay is smooth; sandstone messy and terraced; iron ore clumpy.
    assert stats["clay"]["texture"] < 0.5 * min(stats["sandstone"]["texture"], stats["iron_ore"]["texture"])


def test_confusers_and_land_cover(scenes):
    kinds = {kind for scene in scenes for kind, _ in scene.confusers}
    assert {"wind_pad", "building", "cropland"} <= kinds
    coal, _ = kind_pixels(scenes, "coal_gangue")
    coal_level = np.median(coal[:3].mean(axis=0))
    shadow_like = 0
    for scene in scenes:
        visible = scene.image[:3].astype(float).mean(axis=0)
        # Mountain shadows outside any mine are as dark as gangue: the paper's false alarm.
        shadow_like += int(np.sum((visible < 1.3 * coal_level) & (scene.truth == 0)))
        codes = set(np.unique(scene.landcover))
        assert codes <= set(WORLDCOVER.values())
        assert scene.landcover.shape == (52, 52) and scene.landcover_factor == 10  # the last 2 m included
        for kind, polygon in scene.confusers:
            if kind == "cropland" and polygon.area > 4000:
                x, y = polygon.centroid.x, polygon.centroid.y
                assert scene.landcover[int(y // 10), int(x // 10)] == WORLDCOVER["cropland"]
        big = [p for p in scene.patches if p.polygon.area > 2000]
        for patch in big:
            point = patch.polygon.representative_point()
            assert scene.landcover[int(point.y // 10), int(point.x // 10)] == WORLDCOVER["bare"]
    assert shadow_like > 500


def test_preliminary_mask_is_imperfect_in_the_expected_ways(scenes):
    holes = fragments = false_blobs = 0
    ious = []
    for scene in scenes:
        truth, first = scene.truth > 0, scene.preliminary.astype(bool)
        ious.append((truth & first).sum() / (truth | first).sum())
        labels, count = ndimage.label(first)
        false_blobs += sum(1 for i in range(1, count + 1) if not truth[labels == i].any())
        for patch in scene.patches:
            inside = _burn(patch.polygon, truth.shape)
            core = ndimage.binary_erosion(inside, iterations=6)
            holes += int(np.any(core & ~first))
            fragments += int(ndimage.label(first & inside)[1] >= 2)
    assert 0.5 < np.mean(ious) < 0.97
    assert holes >= 5 and fragments >= 3 and false_blobs >= 3


@pytest.mark.parametrize("seed", range(12))
def test_small_scenes_are_simulated_too(seed):
    scene = simulate_optical_scene(OpticalRecipe(rows=64, cols=96, patch_count=(1, 2), patch_area_m2=(200.0, 800.0)),
                                   np.random.default_rng(seed))
    assert scene.image.shape == (4, 64, 96) and scene.landcover.shape == (7, 10)


def test_same_seed_same_scene_and_bad_recipes_refused():
    a = simulate_optical_scene(OpticalRecipe(rows=128, cols=128), np.random.default_rng(3))
    b = simulate_optical_scene(OpticalRecipe(rows=128, cols=128), np.random.default_rng(3))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.preliminary, b.preliminary)
    assert a.image.dtype == np.uint16 and a.image.shape == (4, 128, 128) and a.image.max() > 1000
    with pytest.raises(MineSARError, match="patch area range"):
        simulate_optical_scene(OpticalRecipe(patch_area_m2=(500.0, 100.0)), np.random.default_rng(0))


def test_processing_writes_the_scene_folder(minesar_provider, tmp_path):
    import processing

    result = processing.run("minesar:simulateopticalscenes", {
        "COUNT": 3, "SIZE": 256, "SEED": 4, "PATCHES": "2,3", "PATCH_AREA": "300,6000",
        "OUTPUT_FOLDER": str(tmp_path / "gf2")})
    folder = tmp_path / "gf2"
    assert result["SCENES"] == 3 and result["PATCHES_WRITTEN"] >= 6
    description = json.loads((folder / "dataset.json").read_text())
    assert description["bands"] == ["blue", "green", "red", "nir"]
    image = gdal.Open(str(folder / "images" / "scene_000001.tif"))
    assert image.RasterCount == 4 and image.GetRasterBand(1).DataType == gdal.GDT_UInt16
    assert image.GetRasterBand(4).GetDescription() == "nir"
    from qgis.core import QgsRasterLayer

    from minesar.ui.styles import style_true_colour

    assert [image.GetRasterBand(b).GetColorInterpretation() for b in (1, 2, 3)] == [
        gdal.GCI_BlueBand, gdal.GCI_GreenBand, gdal.GCI_RedBand]
    scene = QgsRasterLayer(str(folder / "images" / "scene_000001.tif"), "scene")
    assert style_true_colour(scene)  # QGIS 3.22 itself shows bands 1-2-3
    shown = scene.renderer()
    assert (shown.redBand(), shown.greenBand(), shown.blueBand()) == (3, 2, 1)
    assert shown.redContrastEnhancement() is not None  # stretched, not raw 16-bit counts
    assert not style_true_colour(scene)  # already so
    landcover = gdal.Open(str(folder / "landcover" / "scene_000001.tif"))
    assert landcover.GetGeoTransform()[1] == 10.0 and landcover.RasterXSize == 26
    # The truth polygons, burnt on the scene grid, are the truth mask.
    vector = ogr.Open(str(folder / "patches.gpkg"))
    layer = vector.GetLayerByName("patches")
    layer.SetAttributeFilter("scene = 'scene_000001'")
    target = gdal.GetDriverByName("MEM").Create("", 256, 256, 1, gdal.GDT_Byte)
    target.SetGeoTransform(image.GetGeoTransform())
    target.SetProjection(image.GetProjection())
    gdal.RasterizeLayer(target, [1], layer, options=["ATTRIBUTE=kind_code"])
    truth = gdal.Open(str(folder / "masks" / "scene_000001.tif")).ReadAsArray()
    assert np.array_equal(target.ReadAsArray(), truth) and truth.max() >= 1
    assert vector.GetLayerByName("confusers") is not None
    # The DEM and the sun in dataset.json are the ones that lit the scene: its shadowed slopes are dark.
    from minesar.core.segmentation.terrain import illumination

    dem = gdal.Open(str(folder / "dem" / "scene_000001.tif"))
    assert dem.GetGeoTransform() == image.GetGeoTransform() and dem.GetRasterBand(1).DataType == gdal.GDT_Float32
    sun = description["scenes"][1]
    assert 120 <= sun["sun_azimuth_deg"] <= 240 and 18 <= sun["sun_elevation_deg"] <= 35
    lit = illumination(dem.ReadAsArray(), dem.GetGeoTransform(), sun["sun_azimuth_deg"], sun["sun_elevation_deg"])
    ground = truth == 0
    brightness = image.ReadAsArray().astype(float).sum(axis=0)
    assert brightness[ground & (lit < 0.4)].mean() < 0.7 * brightness[ground & (lit > 1.0)].mean()
    split = json.loads((folder / "split.json").read_text())
    assert sorted(split["train"] + split["val"] + split["test"]) == [f"images/scene_00000{i}.tif" for i in range(3)]
