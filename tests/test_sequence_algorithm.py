"""minesar:simulatesequence through the whole chain, as the demo runs it: detection with the
shipped weights on each interferogram → surface activity; SBAS on the stack → mine activity; each
checked against the simulated truth. A small scene (336 × 224 px of 30 m: the detector's pixel
size, the least the six mines fit in), so the chain runs in seconds."""
from datetime import date, timedelta

import pytest
from qgis.core import (
    QgsFeature,
    QgsFeatureRequest,
    QgsGeometry,
    QgsVectorLayer,
    QgsVectorLayerTemporalContext,
    QgsVectorLayerTemporalProperties,
)
from shapely import wkb

from minesar.ui.temporal import date_range


def _features(path):
    layer = QgsVectorLayer(path, "layer", "ogr")
    assert layer.isValid(), path
    rows = [({f.name(): feature[f.name()] for f in layer.fields()}, wkb.loads(bytes(feature.geometry().asWkb())))
            for feature in layer.getFeatures()]
    del layer
    return rows


def _day(text):
    return date.fromisoformat(str(text)[:10])


@pytest.fixture(scope="module")
def chain(tmp_path_factory, one_torch_thread, minesar_provider_module):
    import processing

    folder = tmp_path_factory.mktemp("chain")
    run = processing.run
    sequence = run("minesar:simulatesequence", {
        "WIDTH": 336, "HEIGHT": 224, "SEED": 2, "OUTPUT": str(folder / "sequence"),
        "OUTPUT_MINES": str(folder / "mines.gpkg")})
    detections = []
    for path in sequence["INTERFEROGRAMS"]:
        name = path.replace("\\", "/").rsplit("/", 1)[-1][:-4]
        detections.append(run("minesar:detectsubsidence", {
            "INPUT": path, "DEVICE": "cpu", "TILE_SIZE": 256, "OVERLAP": 96,
            "OUTPUT": str(folder / f"detections_{name}.gpkg")})["OUTPUT"])
    surface = run("minesar:surfaceactivity", {
        "INPUT": detections, "TEMPLATE": sequence["INTERFEROGRAMS"][0],
        "OUTPUT_ACTIVITY": str(folder / "activity.tif"), "OUTPUT_SITES": str(folder / "sites.gpkg")})
    sbas = run("minesar:sbasinversion", {
        "INPUT": sequence["UNWRAPPED"], "COHERENCE": sequence["COHERENCE_STACK"], "WEIGHTING": "coherence",
        "REFERENCE": sequence["REFERENCE"],
        "OUTPUT_TIMESERIES": str(folder / "ts.tif"), "OUTPUT_VELOCITY": str(folder / "v.tif"),
        "OUTPUT_COHERENCE": str(folder / "tc.tif")})
    activity = run("minesar:mineactivity", {
        "INPUT": sequence["OUTPUT_MINES"], "VELOCITY": sbas["OUTPUT_VELOCITY"], "COHERENCE": sbas["OUTPUT_COHERENCE"],
        "OUTPUT": str(folder / "mine_activity.gpkg")})
    return {"sequence": sequence, "detections": detections, "surface": surface, "sbas": sbas, "activity": activity}


@pytest.fixture(scope="module")
def minesar_provider_module(qgis_processing):
    """The minesar provider for the module's chain (conftest's fixture is per test)."""
    from conftest import _PROVIDERS
    from qgis.core import QgsApplication

    from minesar.processing_provider.provider import MineSARProvider

    registry = QgsApplication.processingRegistry()
    if registry.providerById("minesar") is None:
        provider = MineSARProvider()
        assert registry.addProvider(provider)
        _PROVIDERS.append(provider)
    return registry.providerById("minesar")


def test_the_sequence_outputs_and_the_mines_truth(chain):
    sequence = chain["sequence"]
    first, last = _day(sequence["FIRST"]), _day(sequence["LAST"])
    assert len(sequence["INTERFEROGRAMS"]) == 11 and sequence["PAIRS"] == len(sequence["UNWRAPPED"]) == 21
    assert (last - first).days == 11 * 48
    mines = _features(sequence["OUTPUT_MINES"])
    assert [m["name"] for m, _ in mines] == ["M1", "M2", "M3", "M4", "M5", "M6"]
    for mine, _ in mines:
        if mine["active_from"]:
            assert (_day(mine["active_to"]) - _day(mine["active_from"])).days == mine["active_days"]
            assert len(mine["timeline"].split(";")) * 48 == mine["active_days"]


def test_detections_carry_their_pair_and_lie_on_the_mines_active_then(chain):
    mines = _features(chain["sequence"]["OUTPUT_MINES"])
    for path in chain["detections"]:
        found = _features(path)
        for attributes, polygon in found:
            d1, d2 = _day(attributes["date1"]), _day(attributes["date2"])
            assert (d2 - d1).days == 48 and path.endswith(f"detections_{d1:%Y%m%d}_{d2:%Y%m%d}.gpkg")
            under = [m for m, footprint in mines if footprint.intersects(polygon)]
            assert len(under) == 1, (path, under)
            mine = under[0]
            assert mine["active_from"], (path, mine["name"])
            assert _day(mine["active_from"]) <= d1 and d2 <= _day(mine["active_to"]), (path, mine["name"])


def test_surface_activity_finds_each_active_mine_over_its_period(chain):
    mines = _features(chain["sequence"]["OUTPUT_MINES"])
    sites = _features(chain["surface"]["OUTPUT_SITES"])
    active = [(m, footprint) for m, footprint in mines if m["active_from"]]
    assert len(active) == 3 and chain["surface"]["SITES"] == len(sites)
    for mine, footprint in active:
        on = [site for site, polygon in sites if polygon.intersects(footprint)]
        assert len(on) == 1, mine["name"]
        site = on[0]
        assert abs((_day(site["FIRST"]) - _day(mine["active_from"])).days) <= 48
        assert abs((_day(site["LAST"]) - _day(mine["active_to"])).days) <= 48
        assert abs(site["ACTIVE_DAYS"] - mine["active_days"]) <= 48
        assert site["CLASS"] == mine["surf_class"]
    # Every site lies on a mine that was active: no mine was detected while it stood still.
    for site, polygon in sites:
        assert any(polygon.intersects(footprint) for _, footprint in active), site["CODE"]


def test_mine_activity_on_the_sbas_velocity_gives_the_true_classes(chain):
    assert chain["sbas"]["EPOCHS"] == 12 and chain["sbas"]["COMPONENTS"] == 1
    rows = _features(chain["activity"]["OUTPUT"])
    assert {row["true_class"] for row, _ in rows} == {"negative", "positive", "none", "decorrelated"}
    assert [row["ACTIVITY"] for row, _ in rows] == [row["true_class"] for row, _ in rows]


def test_the_detections_play_in_time_one_interval_per_frame(chain):
    """The detection layers merged into one, made temporal: each 48-day frame of the Temporal
    Controller shows the detections of the interferogram of that interval, and only those."""
    from minesar.ui.temporal import frames, make_temporal

    sequence = chain["sequence"]
    layer = QgsVectorLayer("Polygon?crs=EPSG:32649&field=date1:string&field=date2:string", "all", "memory")
    for path in chain["detections"]:
        for attributes, polygon in _features(path):
            feature = QgsFeature(layer.fields())
            feature.setGeometry(QgsGeometry.fromWkt(polygon.wkt))
            feature.setAttributes([attributes["date1"], attributes["date2"]])
            layer.dataProvider().addFeature(feature)
    assert make_temporal(layer) == "features"
    assert layer.temporalProperties().mode() == \
        QgsVectorLayerTemporalProperties.ModeFeatureDateTimeStartAndEndFromExpressions
    context = QgsVectorLayerTemporalContext()
    context.setLayer(layer)
    first, last = _day(sequence["FIRST"]), _day(sequence["LAST"])
    shown = 0
    for k, frame in enumerate(frames(first, last, 48)):
        request = QgsFeatureRequest().setFilterExpression(layer.temporalProperties().createFilterString(context, frame))
        pairs = {(f["date1"], f["date2"]) for f in layer.getFeatures(request)}
        d1 = first + timedelta(days=48 * k)
        expected = {(d1.isoformat(), (d1 + timedelta(days=48)).isoformat())}
        assert pairs <= expected
        shown += len(pairs)
    assert shown == len({(f["date1"], f["date2"]) for f in layer.getFeatures()})
    # A range that covers the whole period shows every detection.
    everything = layer.temporalProperties().createFilterString(context, date_range(first, last, True))
    assert len(list(layer.getFeatures(QgsFeatureRequest().setFilterExpression(everything)))) == layer.featureCount()


def test_the_first_date_and_the_interval_name_the_pairs(minesar_provider, tmp_path):
    import processing

    result = processing.run("minesar:simulatesequence", {
        "WIDTH": 336, "HEIGHT": 224, "EPOCHS": 4, "INTERVAL": 12, "PAIR_SPAN": 1, "FIRST_DATE": "2022-03-01",
        "OUTPUT": str(tmp_path / "s"), "OUTPUT_MINES": str(tmp_path / "m.gpkg")})
    assert (result["FIRST"], result["LAST"]) == ("2022-03-01", "2022-04-06")
    assert [p.replace("\\", "/").rsplit("/", 1)[-1] for p in result["INTERFEROGRAMS"]] == \
        ["20220301_20220313.tif", "20220313_20220325.tif", "20220325_20220406.tif"]
    assert result["PAIRS"] == 3 and result["REFERENCE"].endswith("[EPSG:32649]")


def test_a_scene_too_small_for_the_mines_is_refused(minesar_provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match=r"needs? at least 9\.6 × 6\.4 km"):
        processing.run("minesar:simulatesequence", {"WIDTH": 128, "HEIGHT": 128, "OUTPUT": str(tmp_path / "s"),
                                                    "OUTPUT_MINES": str(tmp_path / "m.gpkg")})
    assert not (tmp_path / "m.gpkg").exists()
