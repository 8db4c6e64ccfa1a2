"""The interferogram simulator's physics, checked against what the formulas say."""
import json
import math

import numpy as np
import pytest
from conftest import write_geotiff
from osgeo import gdal

from minesar.core.errors import Cancelled, MineSARError
from minesar.core.io.colours import wrap
from minesar.core.io.products import SENTINEL1_WAVELENGTH_M
from minesar.core.progress import Progress
from minesar.core.simulation.auxiliary import load_auxiliary
from minesar.core.simulation.fields import (
    Basin,
    decorrelation_noise,
    grid_coordinates,
    phase_from_los_mm,
    power_law_screen,
    radial_power_spectrum,
)
from minesar.core.simulation.generate import simulate_dataset, simulate_one
from minesar.core.simulation.interferograms import SimulationRecipe, simulate_interferogram

HALF_WAVELENGTH_MM = SENTINEL1_WAVELENGTH_M * 1000 / 2


def quiet_recipe(**changes):
    """No atmosphere, no noise, no extras: the deformation alone."""
    values = dict(rows=512, cols=512, pixel_size_m=10.0, atmosphere_mm=0.0, stratified_mm_per_km=0.0,
                  coherence=(1.0, 1.0), uniform_noise_rad=0.0, ramp_share=0.0, distractor_share=0.0)
    values.update(changes)
    return SimulationRecipe(**values)


def count_wraps(profile):
    return int(np.sum(np.abs(np.diff(profile)) > np.pi))


@pytest.mark.parametrize("depth_mm", [20.0, 75.0, 140.0])
@pytest.mark.parametrize("kind", ["gaussian", "pim"])
def test_fringe_count_of_a_basin_is_its_depth_over_half_a_wavelength(kind, depth_mm):
    recipe = quiet_recipe()
    centre = 256 * 10.0
    if kind == "gaussian":
        basin = Basin("gaussian", centre, centre, depth_mm, 0.0, sigma_x_m=500.0, sigma_y_m=400.0)
    else:
        basin = Basin("pim", centre, centre, depth_mm, 0.0, half_length_m=600.0, half_width_m=150.0, radius_m=300.0)
    scene = simulate_interferogram(recipe, np.random.default_rng(0), basins=[basin], distractors=[])
    clean = wrap(phase_from_los_mm(scene.deformation_mm, recipe.wavelength_m))
    profile = clean[256, :257]  # from the western edge to the centre, along the panel's long axis
    expected = depth_mm / HALF_WAVELENGTH_MM
    assert count_wraps(profile) == math.floor(expected + 0.5)
    # The whole trough, unwrapped: 4π/λ·depth of phase from its rim to its deepest point.
    assert np.ptp(np.unwrap(profile)) / (2 * np.pi) == pytest.approx(expected, rel=0.01)
    assert scene.deformation_mm.min() == pytest.approx(-depth_mm, rel=1e-3)
    # Subsidence moves away from the radar: the phase rises towards the centre (φ = −4π/λ·d).
    assert np.unwrap(profile)[-1] > np.unwrap(profile)[0]
    # The simulated interferogram is that phase plus little noise at coherence ≈ 1.
    difference = np.angle(np.exp(1j * (scene.phase - clean)))
    assert np.std(difference) < 0.2


def test_pim_trough_is_flat_bottomed_and_rotated():
    basin = Basin("pim", 0.0, 0.0, 100.0, math.radians(30), half_length_m=800.0, half_width_m=300.0,
                  radius_m=150.0)
    along = np.array([[math.cos(math.radians(30)) * 500.0]]), np.array([[math.sin(math.radians(30)) * 500.0]])
    across = np.array([[-math.sin(math.radians(30)) * 500.0]]), np.array([[math.cos(math.radians(30)) * 500.0]])
    assert basin.los_mm(np.zeros((1, 1)), np.zeros((1, 1)))[0, 0] == pytest.approx(-100.0)
    assert basin.los_mm(*along)[0, 0] < -95.0  # still over the panel
    assert basin.los_mm(*across)[0, 0] > -5.0  # 200 m outside the panel, beyond most of r


@pytest.mark.parametrize("slope", [-8.0 / 3.0, -2.0])
def test_turbulent_screen_has_the_requested_spectral_slope(slope):
    screen = power_law_screen((512, 512), 30.0, np.random.default_rng(5), slope=slope)
    assert screen.std() == pytest.approx(1.0, rel=1e-3) and abs(screen.mean()) < 1e-3
    k, power = radial_power_spectrum(screen, 30.0)
    fitted = np.polyfit(np.log(k), np.log(power), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.25)


def test_decorrelation_noise_follows_coherence():
    rng = np.random.default_rng(1)
    shape = (200, 200)
    assert np.all(decorrelation_noise(np.ones(shape), 10, rng) == 0)
    spreads = [np.std(decorrelation_noise(np.full(shape, g), 10, rng)) for g in (0.0, 0.4, 0.8, 0.95)]
    assert spreads[0] == pytest.approx(np.pi / math.sqrt(3), rel=0.03)  # uniform phase
    assert spreads[0] > spreads[1] > spreads[2] > spreads[3] > 0.05


def analytic_footprint(basin, rows, cols, pixel, fraction):
    """The basin's label written out from SPEC §2 again, independently of core.simulation."""
    from scipy.special import erf

    y, x = (np.mgrid[0:rows, 0:cols] + 0.5) * pixel
    c, s = math.cos(basin.angle_rad), math.sin(basin.angle_rad)
    u = (x - basin.x_m) * c + (y - basin.y_m) * s
    v = -(x - basin.x_m) * s + (y - basin.y_m) * c
    if basin.kind == "gaussian":
        shape = np.exp(-((u / basin.sigma_x_m) ** 2 + (v / basin.sigma_y_m) ** 2) / 2)
    else:
        k = math.sqrt(math.pi) / basin.radius_m
        half_l, half_w = basin.half_length_m, basin.half_width_m
        shape = (0.25 * (erf(k * (half_l - u)) + erf(k * (half_l + u))) * (erf(k * (half_w - v)) + erf(k * (half_w + v)))
                 / (math.erf(k * half_l) * math.erf(k * half_w)))
    return shape >= fraction


def test_written_labels_are_the_analytic_footprints_and_distractors_stay_background(tmp_path):
    recipe = SimulationRecipe(rows=128, cols=128, distractor_share=1.0, basin_count=(2, 4))
    simulate_dataset(str(tmp_path / "ds"), recipe, count=10, seed=3)
    annotations = json.loads((tmp_path / "ds" / "annotations.json").read_text())["annotations"]
    unlabelled_distractor_pixels = 0
    for index in range(10):
        scene = simulate_one(recipe, seed=3, index=index).scene  # the same draws as the written image
        written = gdal.Open(str(tmp_path / "ds" / "masks" / f"sim_{index:06d}.tif")).ReadAsArray().astype(bool)
        expected = np.zeros_like(written)
        for basin in scene.basins:
            expected |= analytic_footprint(basin, 128, 128, recipe.pixel_size_m, recipe.label_fraction)
        assert np.array_equal(written, expected)
        depths = sorted(a["depth_mm"] for a in annotations if a["image_id"] == index + 1)
        assert depths == pytest.approx(sorted(b.depth_mm for b in scene.basins), abs=1e-3)
        # Ground moved by a groundwater bowl or an atmospheric blob alone is background.
        unlabelled_distractor_pixels += int(np.sum((np.abs(scene.distractors_mm) > 5.0) & ~expected))
    assert unlabelled_distractor_pixels > 1000


def test_the_same_seed_gives_the_same_dataset_whatever_the_threads(tmp_path):
    recipe = SimulationRecipe(rows=64, cols=64)
    first = simulate_dataset(str(tmp_path / "a"), recipe, count=6, seed=11, workers=1)
    second = simulate_dataset(str(tmp_path / "b"), recipe, count=6, seed=11, workers=2)
    other = simulate_dataset(str(tmp_path / "c"), recipe, count=6, seed=12, workers=2)
    assert first["instances"] == second["instances"]
    for name in ("annotations.json", "split.json"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    differs = False
    for index in range(6):
        for sub in ("images", "masks"):
            a = gdal.Open(str(tmp_path / "a" / sub / f"sim_{index:06d}.tif")).ReadAsArray()
            b = gdal.Open(str(tmp_path / "b" / sub / f"sim_{index:06d}.tif")).ReadAsArray()
            c = gdal.Open(str(tmp_path / "c" / sub / f"sim_{index:06d}.tif")).ReadAsArray()
            assert np.array_equal(a, b)
            differs |= not np.array_equal(a, c)
    assert differs
    assert other["seed"] == 12


def _ztd_geotiff(path, values):
    """A GACOS-like zenith delay (metres) on the 30 m UTM grid of conftest."""
    return write_geotiff(path, values.astype(np.float32), gdal.GDT_Float32)


def test_gacos_atmosphere_is_the_difference_of_two_given_rasters(tmp_path):
    # Three delay maps that differ only by an east-west gradient: each pair has its own slope.
    rows, cols = 120, 120
    x = np.arange(cols)[None, :] * 30.0 * np.ones((rows, 1))
    gradients = {"spring.tif": 1e-5, "summer.tif": 3e-5, "winter.tif": 7e-5}
    paths = {}
    for name, gradient in gradients.items():
        paths[name] = _ztd_geotiff(tmp_path / name, 2.3 + gradient * x)
    recipe = quiet_recipe(rows=64, cols=64, pixel_size_m=30.0, basin_count=(0, 0), incidence_deg=35.0)
    simulate_dataset(str(tmp_path / "ds"), recipe, count=8, seed=2, gacos_paths=list(paths.values()))
    images = json.loads((tmp_path / "ds" / "annotations.json").read_text())["images"]
    cos_incidence = math.cos(math.radians(35.0))
    pairs = set()
    for index, entry in enumerate(images):
        first, second = entry["gacos_pair"]
        pairs.add((first, second))
        phase = gdal.Open(str(tmp_path / "ds" / entry["file_name"])).ReadAsArray()
        # Noise-free: the phase is the slant delay difference; a plane whose slope names the pair.
        unwrapped = np.unwrap(np.unwrap(phase.astype(np.float64), axis=1), axis=0)
        los_mm = unwrapped / (-4 * np.pi / (SENTINEL1_WAVELENGTH_M * 1000))
        slope_mm_per_m = np.polyfit(np.arange(64) * 30.0, los_mm.mean(axis=0), 1)[0]
        expected = -(gradients[first] - gradients[second]) * 1000 / cos_incidence
        assert slope_mm_per_m == pytest.approx(expected, rel=0.02)
        assert entry["atmosphere"] == "GACOS"
    assert len(pairs) >= 3


def test_gacos_ztd_binary_with_rsc_is_read_as_gacos_writes_it(tmp_path):
    values = np.arange(12, dtype="<f4").reshape(3, 4) + 2.0
    values[0, 0] = 0.0  # GACOS's "outside the model"
    (tmp_path / "20210101.ztd").write_bytes(values.tobytes())
    (tmp_path / "20210101.ztd.rsc").write_text(
        "WIDTH 4\nFILE_LENGTH 3\nX_FIRST 112.0\nY_FIRST 36.0\nX_STEP 0.000833333\nY_STEP -0.000833333\n")
    raster = load_auxiliary(str(tmp_path / "20210101.ztd"), "GACOS")
    assert np.isnan(raster.values[0, 0]) and raster.values[2, 3] == pytest.approx(13.0)
    assert raster.geotransform[0] == 112.0 and raster.geotransform[3] == 36.0
    assert raster.pixel_size_m[1] == pytest.approx(92.8, abs=0.1)
    assert raster.pixel_size_m[0] == pytest.approx(92.8 * math.cos(math.radians(36.0)), abs=0.1)
    (tmp_path / "bad.ztd").write_bytes(values.tobytes()[:-4])
    (tmp_path / "bad.ztd.rsc").write_text((tmp_path / "20210101.ztd.rsc").read_text())
    with pytest.raises(MineSARError, match="bad.ztd: 44 bytes"):
        load_auxiliary(str(tmp_path / "bad.ztd"), "GACOS")


def test_gacos_errors_name_the_file(tmp_path):
    small = _ztd_geotiff(tmp_path / "small.tif", np.full((10, 10), 2.0))
    other = write_geotiff(tmp_path / "other.tif", np.full((12, 10), 2.0, dtype=np.float32), gdal.GDT_Float32)
    recipe = quiet_recipe(rows=64, cols=64, pixel_size_m=30.0)
    with pytest.raises(MineSARError, match="at least two"):
        simulate_dataset(str(tmp_path / "a"), recipe, 1, 0, gacos_paths=[small])
    with pytest.raises(MineSARError, match="other.tif: its grid differs"):
        simulate_dataset(str(tmp_path / "b"), recipe, 1, 0, gacos_paths=[small, other])
    twin = _ztd_geotiff(tmp_path / "twin.tif", np.full((10, 10), 2.1))
    with pytest.raises(MineSARError, match="small.tif: the GACOS raster covers 0.3 × 0.3 km"):
        simulate_dataset(str(tmp_path / "c"), recipe, 1, 0, gacos_paths=[small, twin])
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_stratified_delay_follows_the_given_dem(tmp_path):
    heights = np.add.outer(np.linspace(0, 400, 100), np.linspace(0, 200, 100)) + 50 * np.sin(
        np.arange(100) / 7.0)[None, :]
    dem = write_geotiff(tmp_path / "dem.tif", heights.astype(np.float32), gdal.GDT_Float32)
    recipe = quiet_recipe(rows=50, cols=50, pixel_size_m=30.0, basin_count=(0, 0), stratified_mm_per_km=20.0)
    from minesar.core.simulation.auxiliary import DemPool

    pool = DemPool(dem)
    rng = np.random.default_rng(4)
    block = pool.heights(np.random.default_rng(9), 50, 50, 30.0)
    scene = simulate_interferogram(recipe, rng, dem_m=block)
    correlation = np.corrcoef(block.ravel(), scene.atmosphere_mm.ravel())[0, 1]
    assert abs(correlation) > 0.999
    assert np.ptp(scene.atmosphere_mm) <= 20.0 * np.ptp(block) / 1000 + 1e-3


def test_scene_truth_polygons_are_the_labels_on_the_map(tmp_path):
    from osgeo import ogr

    from minesar.core.simulation.generate import simulate_scene

    recipe = SimulationRecipe(rows=200, cols=300, basin_count=(4, 4), distractor_share=1.0)
    scene, truth, geotransform, crs_wkt = simulate_scene(str(tmp_path / "scene.tif"), recipe, seed=5,
                                                         origin=(400000.0, 3900000.0))
    assert gdal.Open(str(tmp_path / "scene.tif")).GetGeoTransform() == geotransform
    target = gdal.GetDriverByName("MEM").Create("", 300, 200, 1, gdal.GDT_Byte)
    target.SetGeoTransform(geotransform)
    vector = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = vector.CreateLayer("truth", geom_type=ogr.wkbMultiPolygon)
    for item in (t for t in truth if t.label == "mining"):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkb(item.geometry.wkb))
        layer.CreateFeature(feature)
    gdal.RasterizeLayer(target, [1], layer, burn_values=[1])
    # Burnt back at pixel centres, the map polygons give exactly the label pixels: no half-pixel shift.
    assert np.array_equal(target.ReadAsArray().astype(bool), scene.semantic_mask().astype(bool))
    assert sum(t.label == "mining" for t in truth) == 4 and any(t.label == "background" for t in truth)


def test_gacos_gaps_are_avoided_or_refused(tmp_path):
    rows, cols = 120, 120
    values = [np.full((rows, cols), 2.3 + 0.01 * k) for k in range(2)]
    for v in values:
        v[:, :60] = 0.0  # GACOS's value outside its model: half of the map
    paths = [_ztd_geotiff(tmp_path / f"z{k}.tif", v) for k, v in enumerate(values)]
    recipe = quiet_recipe(rows=32, cols=32, pixel_size_m=30.0, basin_count=(0, 0))
    simulate_dataset(str(tmp_path / "ok"), recipe, count=6, seed=1, gacos_paths=paths)
    for path in (tmp_path / "ok" / "images").glob("*.tif"):
        assert np.isfinite(gdal.Open(str(path)).ReadAsArray()).all()
    wide = quiet_recipe(rows=64, cols=64, pixel_size_m=30.0, basin_count=(0, 0))
    with pytest.raises(MineSARError, match=r"z[01].tif: no window of 65 × 65 pixels"):
        simulate_dataset(str(tmp_path / "gaps"), wide, count=1, seed=1, gacos_paths=paths)


def test_cancel_leaves_no_dataset(tmp_path):
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        simulate_dataset(str(tmp_path / "ds"), SimulationRecipe(rows=32, cols=32), 100, 0,
                         progress=Progress(is_cancelled=cancelled), workers=1)
    assert list(tmp_path.iterdir()) == []


def test_bad_recipes_and_folders_are_refused(tmp_path):
    with pytest.raises(MineSARError, match="subsidence range 5.0–1.0 mm"):
        simulate_dataset(str(tmp_path / "a"), SimulationRecipe(subsidence_mm=(5.0, 1.0)), 1, 0)
    with pytest.raises(MineSARError, match="coherence range"):
        simulate_dataset(str(tmp_path / "a"), SimulationRecipe(coherence=(0.2, 1.4)), 1, 0)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(MineSARError, match="not empty"):
        simulate_dataset(str(tmp_path / "full"), SimulationRecipe(rows=32, cols=32), 1, 0)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
