"""The shipped workflow models (processing_provider/workflows/*.model3), run headless by
qgis_process as users run them: by their id in the MineSAR provider and from the file."""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import GEOTRANSFORM, ROOT, SAMPLE_DIR, SAMPLE_LINES, SAMPLE_WIDTH, write_geotiff
from osgeo import gdal, ogr, osr
from shapely import wkb
from test_sbas import MM_TO_PHASE, WAVELENGTH, _network

SCRIPT = ROOT / "scripts" / "qgis-process"
WORKFLOWS = ROOT / "processing_provider" / "workflows"


@pytest.fixture(scope="module")
def qgis_process(tmp_path_factory):
    config = tmp_path_factory.mktemp("qgis-config")

    def _call(*args):
        env = dict(os.environ, MINESAR_QGIS_CONFIG=str(config), OMP_NUM_THREADS="1")
        completed = subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                                   timeout=300)
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
        return completed

    return _call


def features(path):
    """(attributes, shapely geometry or None) of every feature of a one-layer vector file."""
    dataset = ogr.Open(str(path))
    layer = dataset.GetLayer()
    found = []
    for feature in layer:
        geometry = feature.GetGeometryRef()
        found.append((feature.items(), wkb.loads(bytes(geometry.ExportToWkb())) if geometry else None))
    return found


def raster(path):
    dataset = gdal.Open(str(path))
    return dataset.ReadAsArray(), dataset.GetGeoTransform()


def test_the_committed_models_are_those_the_build_script_writes():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    completed = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_models.py"), "--check"],
                               capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_list_offers_the_workflows(qgis_process):
    listing = qgis_process("list").stdout
    assert "minesar:detectsurfaceactivity\tDetect subsidence and surface activity" in listing
    assert "minesar:sbasmineactivity\tSBAS and mine activity" in listing


def test_detection_and_surface_activity_find_the_simulated_basins(qgis_process, tmp_path):
    """A simulated 512² scene of three separate basins (dates 2021-01-01 – 2021-01-13 in its
    metadata) through the model by its id: each basin detected, one 12-day site per basin, the
    activity raster 12 days on the basins and 0 away from them."""
    scene, truth_path = tmp_path / "scene.tif", tmp_path / "truth.gpkg"
    qgis_process("run", "minesar:simulatescene", "--", "WIDTH=512", "HEIGHT=512", "BASINS=3,3", "SUBSIDENCE=40,120",
                 "COHERENCE=0.7,0.95", "ATMOSPHERE=2", "DISTRACTORS=0", "RAMPS=0", "SEED=2", f"OUTPUT={scene}",
                 f"OUTPUT_TRUTH={truth_path}")
    out = tmp_path / "out"
    completed = qgis_process(
        "run", "minesar:detectsurfaceactivity", "--", f"INTERFEROGRAM={scene}", "DEVICE=cpu", "TILE_SIZE=256",
        f"detect:BASINS={out / 'basins.gpkg'}", f"activity:SITES={out / 'sites.gpkg'}",
        f"activity:ACTIVITY={out / 'days.tif'}")
    assert "Executed 3 algorithms" in completed.stdout
    truth = [geometry for attributes, geometry in features(truth_path) if attributes["label"] == "mining"]
    basins = features(out / "basins.gpkg")
    sites = features(out / "sites.gpkg")
    assert len(truth) == 3

    def iou(a, b):
        return a.intersection(b).area / a.union(b).area

    found = [geometry for _, geometry in basins]
    assert sum(max(iou(t, f) for f in found) >= 0.3 for t in truth) >= 2
    assert all(max(iou(f, t) for t in truth) >= 0.1 for f in found)  # no false alarm
    assert {(a["date1"], a["date2"]) for a, _ in basins} == {("2021-01-01", "2021-01-13")}
    # One site per basin found (they are kilometres apart), active for the whole 12-day pair.
    assert len(sites) == len(found)
    for attributes, geometry in sites:
        assert sum(geometry.intersects(t) for t in truth) == 1
        assert (attributes["ACTIVE_DAYS"], attributes["SHARE_PCT"], attributes["CLASS"]) == (12, 100.0, "strong")
        assert attributes["TIMELINE"] == "20210101_20210113"
    days, geotransform = raster(out / "days.tif")
    scene_pixels, scene_geotransform = raster(scene)
    assert days.shape == scene_pixels.shape and geotransform == scene_geotransform  # the template's grid
    assert set(np.unique(days)) == {0.0, 12.0}
    rows, cols = np.mgrid[0:512, 0:512]
    x = geotransform[0] + (cols + 0.5) * geotransform[1]
    y = geotransform[3] + (rows + 0.5) * geotransform[5]
    import shapely

    for basin in truth:
        inside = shapely.contains_xy(basin, x, y)
        if max(iou(basin, f) for f in found) >= 0.3:
            assert (days[inside] == 12).mean() > 0.8
    far = ~shapely.contains_xy(shapely.union_all(truth).buffer(600.0), x, y)
    assert (days[far] == 0).all()


def test_a_gamma_interferogram_keeps_its_dates_and_grid(qgis_process, tmp_path):
    """The real GAMMA sample (.unw + par files) through the model file itself: whatever is
    detected, the pair's 140 days and the GAMMA grid carry through to the activity."""
    source = SAMPLE_DIR / "20061106-20070326_utm.unw"
    qgis_process("run", WORKFLOWS / "detect_surface_activity.model3", "--", f"INTERFEROGRAM={source}",
                 "DEVICE=cpu", "TILE_SIZE=256", f"detect:BASINS={tmp_path / 'b.gpkg'}",
                 f"activity:SITES={tmp_path / 's.gpkg'}", f"activity:ACTIVITY={tmp_path / 'd.tif'}")
    days, _ = raster(tmp_path / "d.tif")
    assert days.shape == (SAMPLE_LINES, SAMPLE_WIDTH)
    assert set(np.unique(days)) <= {0.0, 140.0}
    assert {(a["date1"], a["date2"]) for a, _ in features(tmp_path / "b.gpkg")} == {("2006-11-06", "2007-03-26")}
    assert all(a["ACTIVE_DAYS"] == 140 for a, _ in features(tmp_path / "s.gpkg"))


def test_an_interferogram_without_basins_still_completes(qgis_process, tmp_path):
    """Nothing to find (flat phase): the chain does not stop at an empty layer; the basins layer
    records the pair's dates without a geometry, and there are no sites and no active pixels."""
    flat = write_geotiff(tmp_path / "flat.tif", np.zeros((256, 256), np.float32), gdal.GDT_Float32,
                         metadata={"MINESAR_KIND": "wrapped", "DATE1": "2021-03-01", "DATE2": "2021-03-13"})
    qgis_process("run", "minesar:detectsurfaceactivity", "--", f"INTERFEROGRAM={flat}", "DEVICE=cpu",
                 "TILE_SIZE=256", f"detect:BASINS={tmp_path / 'b.gpkg'}", f"activity:SITES={tmp_path / 's.gpkg'}",
                 f"activity:ACTIVITY={tmp_path / 'd.tif'}")
    basins = features(tmp_path / "b.gpkg")
    assert [(a["date1"], a["date2"], g is None or g.is_empty) for a, g in basins] == [("2021-03-01", "2021-03-13", True)]
    assert features(tmp_path / "s.gpkg") == []
    assert not raster(tmp_path / "d.tif")[0].any()


# --------------------------------------------------------------------------------------------
# SBAS and mine activity
# --------------------------------------------------------------------------------------------
SIZE = 60  # pixels of 30 m
CENTRES = {"bowl": (12, 12), "uplift": (12, 47), "stable": (47, 12), "noisy": (47, 47)}


def _pixel_xy(row, col):
    return GEOTRANSFORM[0] + (col + 0.5) * GEOTRANSFORM[1], GEOTRANSFORM[3] + (row + 0.5) * GEOTRANSFORM[5]


def _deformation_stack(folder):
    """12 epochs 12 days apart, 3 pairs per epoch: a subsiding bowl (−40 mm/yr at its centre), an
    uplifting one (+25 mm/yr), still ground, and a corner whose phase is noise in every pair (so
    it has no consistent time series: low temporal coherence). Coherence 0.9, 0.3 in the corner."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]

    def bowl(centre, peak, sigma=3.0):
        return peak * np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * sigma ** 2))

    velocity = bowl(CENTRES["bowl"], -40.0) + bowl(CENTRES["uplift"], 25.0)
    noisy = (rows >= 38) & (cols >= 38)
    network, _ = _network(n_dates=12, step=12, span=3)
    displacement = network.years[:, None, None] * velocity[None]
    coherence = np.where(noisy, 0.3, 0.9).astype(np.float32)
    rng = np.random.default_rng(3)
    interferograms, coherences = [], []
    for i, j in network.pairs:
        phase = (displacement[j] - displacement[i]) * MM_TO_PHASE
        phase[noisy] += rng.uniform(-np.pi, np.pi, noisy.sum())
        name = f"{network.dates[i]:%Y%m%d}-{network.dates[j]:%Y%m%d}"
        interferograms.append(write_geotiff(folder / f"{name}_unw.tif", phase.astype(np.float32), gdal.GDT_Float32,
                                            metadata={"MINESAR_KIND": "unwrapped", "WAVELENGTH_M": str(WAVELENGTH)}))
        coherences.append(write_geotiff(folder / f"{name}_cc.tif", coherence, gdal.GDT_Float32,
                                        metadata={"MINESAR_KIND": "coherence"}))
    return interferograms, coherences, velocity, noisy


def _patches(path):
    """120 m squares on each feature, and one 1.4 km east of the grid."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32650)
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = dataset.CreateLayer("patches", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    centres = {name: _pixel_xy(*centre) for name, centre in CENTRES.items()}
    centres["off_grid"] = (GEOTRANSFORM[0] + SIZE * 30 + 1400, GEOTRANSFORM[3] - 900)
    for name, (x, y) in centres.items():
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("name", name)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(
            f"POLYGON(({x - 60} {y - 60},{x + 60} {y - 60},{x + 60} {y + 60},{x - 60} {y + 60},{x - 60} {y - 60}))"))
        layer.CreateFeature(feature)
    dataset = None
    return str(path)


def test_sbas_and_mine_activity_classify_the_constructed_patches(qgis_process, tmp_path):
    """The model by its id, in qgis_process's other form: lists as repeated --KEY=VALUE, no "--".
    MIN_COHERENCE is left to the model's 0.7: the noisy corner's temporal coherence (≈0.3) is
    below it, so its patch is decorrelated, where the step's own 0.3 would call it deforming."""
    interferograms, coherences, velocity, noisy = _deformation_stack(tmp_path)
    patches = _patches(tmp_path / "patches.gpkg")
    out = tmp_path / "out"
    completed = qgis_process(
        "run", "minesar:sbasmineactivity", *(f"--INTERFEROGRAMS={p}" for p in interferograms),
        *(f"--COHERENCE={p}" for p in coherences), f"--PATCHES={patches}", "--BUFFER=150", "--WEIGHTING=coherence",
        f"--sbas:TIMESERIES={out / 'ts.tif'}", f"--sbas:VELOCITY={out / 'v.tif'}",
        f"--sbas:TEMPORAL_COHERENCE={out / 'tc.tif'}", f"--activity:MINE_ACTIVITY={out / 'activity.gpkg'}")
    assert "Executed 2 algorithms" in completed.stdout
    solved, _ = raster(out / "v.tif")
    np.testing.assert_allclose(solved[~noisy], velocity[~noisy], atol=0.05)
    temporal_coherence = raster(out / "tc.tif")[0][0]
    assert temporal_coherence[~noisy].min() > 0.99 and np.median(temporal_coherence[noisy]) < 0.5
    classes = {a["name"]: a["ACTIVITY"] for a, _ in features(out / "activity.gpkg")}
    assert classes == {"bowl": "negative", "uplift": "positive", "stable": "none", "noisy": "decorrelated",
                       "off_grid": "no_data"}


def test_the_provider_offers_the_workflows_with_their_outputs(minesar_provider):
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    for algorithm_id, outputs in (("minesar:detectsurfaceactivity", {"detect:BASINS", "activity:SITES", "activity:ACTIVITY"}),
                                  ("minesar:sbasmineactivity", {"sbas:TIMESERIES", "sbas:VELOCITY",
                                                                "sbas:TEMPORAL_COHERENCE", "activity:MINE_ACTIVITY"})):
        algorithm = registry.algorithmById(algorithm_id)
        assert (algorithm.group(), algorithm.groupId()) == ("Workflows", "workflows")
        # The steps were found when the provider loaded, so the registered model has its outputs.
        assert {o.name() for o in algorithm.outputDefinitions()} == outputs
        assert {d.name() for d in algorithm.destinationParameterDefinitions()} == outputs


def test_model_outputs_load_styled_like_the_steps_own(minesar_provider, tmp_path, qgis_new_project):
    """Run from the toolbox, a model's outputs come in with the styles their steps give them."""
    from test_styled_outputs import run_like_the_toolbox

    from minesar.core.activity import CLASSES

    interferograms, coherences, _, _ = _deformation_stack(tmp_path)
    layers = run_like_the_toolbox("minesar:sbasmineactivity", {
        "INTERFEROGRAMS": interferograms, "COHERENCE": coherences, "PATCHES": _patches(tmp_path / "p.gpkg"),
        "BUFFER": 150, "sbas:TIMESERIES": str(tmp_path / "ts.tif"), "sbas:VELOCITY": str(tmp_path / "v.tif"),
        "sbas:TEMPORAL_COHERENCE": str(tmp_path / "tc.tif"), "activity:MINE_ACTIVITY": str(tmp_path / "a.gpkg")},
        ["sbas:VELOCITY", "activity:MINE_ACTIVITY"])
    velocity = layers["SBAS velocity (mm/yr)"].renderer()
    items = velocity.shader().rasterShaderFunction().colorRampItemList()
    assert velocity.type() == "singlebandpseudocolor" and items[0].value == -items[-1].value
    activity = layers["Mine activity"].renderer()
    assert activity.classAttribute() == "ACTIVITY" and {c.value() for c in activity.categories()} == set(CLASSES)
    # In-process too, the model's MIN_COHERENCE 0.7 reached the step: the noisy patch is decorrelated.
    assert {f["name"]: f["ACTIVITY"] for f in layers["Mine activity"].getFeatures()}["noisy"] == "decorrelated"


def test_the_toolbox_dialog_opens_for_each_workflow(minesar_provider, qgis_iface, monkeypatch):
    import processing

    monkeypatch.setattr(qgis_iface, "browserModel", lambda: None, raising=False)  # the mock has none
    for algorithm_id, first_input in (("minesar:detectsurfaceactivity", "INTERFEROGRAM"),
                                      ("minesar:sbasmineactivity", "INTERFEROGRAMS")):
        dialog = processing.createAlgorithmDialog(algorithm_id)
        assert dialog.algorithm().id() == algorithm_id
        wrappers = dialog.mainWidget().wrappers
        assert first_input in wrappers and all(d.name() in wrappers for d in dialog.algorithm().parameterDefinitions()
                                               if not d.isDestination())
        dialog.close()
