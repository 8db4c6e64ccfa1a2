"""ui.temporal: MineSAR layers in the Temporal Controller, checked by what each frame shows.

QGIS 3.22 paths run everywhere; the per-band path of time series needs QGIS ≥ 3.38 and is
skipped, with the reason, where the API is missing (its 3.22 fallback is tested on any version)."""
from datetime import date, timedelta

import numpy as np
import pytest
from conftest import write_geotiff
from osgeo import gdal
from qgis.PyQt.QtCore import QDate
from qgis.core import (
    QgsFeature,
    QgsFeatureRequest,
    QgsGeometry,
    QgsProject,
    QgsRasterLayer,
    QgsRasterLayerTemporalProperties,
    QgsVectorLayer,
    QgsVectorLayerTemporalContext,
    QgsVectorLayerTemporalProperties,
)

from minesar.ui import temporal
from minesar.ui.temporal import date_range, frames, make_temporal, per_band_supported

FIRST = date(2021, 1, 4)
STEP = 48
DATES = [FIRST + timedelta(days=STEP * k) for k in range(5)]


def _layer(fields, rows):
    """A memory polygon layer; ``fields`` as 'name:type', ``rows`` the attribute lists."""
    uri = "Polygon?crs=EPSG:32649&" + "&".join(f"field={f}" for f in fields)
    layer = QgsVectorLayer(uri, "layer", "memory")
    for values in rows:
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromWkt("POLYGON((0 0, 10 0, 10 10, 0 0))"))
        feature.setAttributes(list(values))
        layer.dataProvider().addFeature(feature)
    return layer


def _shown(layer, span):
    context = QgsVectorLayerTemporalContext()
    context.setLayer(layer)
    expression = layer.temporalProperties().createFilterString(context, span)
    return [f.attributes() for f in layer.getFeatures(QgsFeatureRequest().setFilterExpression(expression))]


@pytest.mark.parametrize("style", ["iso", "compact", "date"])
def test_detections_show_in_the_frame_of_their_interferogram(qgis_app, style):
    def value(day):
        return {"iso": day.isoformat(), "compact": f"{day:%Y%m%d}", "date": QDate(day.year, day.month, day.day)}[style]

    kind = "date" if style == "date" else "string"
    rows = [[k, value(DATES[k]), value(DATES[k + 1])] for k in range(4)]
    layer = _layer(["id:integer", f"date1:{kind}", f"date2:{kind}"], rows)
    assert make_temporal(layer) == "features"
    properties = layer.temporalProperties()
    assert properties.isActive()
    assert properties.mode() == QgsVectorLayerTemporalProperties.ModeFeatureDateTimeStartAndEndFromExpressions
    for k, frame in enumerate(frames(DATES[0], DATES[-1], STEP)):
        assert [row[0] for row in _shown(layer, frame)] == [k]  # one interferogram per frame, not its neighbour
    # A frame inside an interval, and a range over the second and third intervals.
    assert [row[0] for row in _shown(layer, date_range(DATES[2] + timedelta(days=5), DATES[2] + timedelta(days=6)))] \
        == [2]
    assert [row[0] for row in _shown(layer, date_range(DATES[1] + timedelta(days=1), DATES[3]))] == [1, 2]
    assert _shown(layer, date_range(DATES[-1] + timedelta(days=1), DATES[-1] + timedelta(days=9))) == []


def test_sites_show_from_their_first_to_their_last_active_date(qgis_app):
    layer = _layer(["CODE:string", "FIRST:string", "LAST:string"],
                   [["k1", DATES[0].isoformat(), DATES[4].isoformat()],
                    ["k2", DATES[1].isoformat(), DATES[2].isoformat()]])
    assert make_temporal(layer) == "features"
    shown = [[row[0] for row in _shown(layer, frame)] for frame in frames(DATES[0], DATES[-1], STEP)]
    assert shown == [["k1"], ["k1", "k2"], ["k1"], ["k1"]]


def test_a_layer_without_dates_is_left_as_it_was(qgis_app):
    layer = _layer(["name:string"], [["M1"]])
    assert make_temporal(layer) == ""
    assert not layer.temporalProperties().isActive()


def _pair_raster(path, date1, date2):
    return write_geotiff(path, np.zeros((8, 8), np.float32), gdal.GDT_Float32,
                         metadata={"MINESAR_KIND": "wrapped", "DATE1": date1.isoformat(), "DATE2": date2.isoformat()})


def test_pair_rasters_step_from_interferogram_to_interferogram(qgis_app, tmp_path):
    layers = [QgsRasterLayer(_pair_raster(tmp_path / f"p{k}.tif", DATES[k], DATES[k + 1]), f"p{k}") for k in range(4)]
    assert [make_temporal(layer) for layer in layers] == ["pair"] * 4
    for k, frame in enumerate(frames(DATES[0], DATES[-1], STEP)):
        visible = [n for n, layer in enumerate(layers) if layer.temporalProperties().isVisibleInTemporalRange(frame)]
        assert visible == [k]
    plain = QgsRasterLayer(write_geotiff(tmp_path / "plain.tif", np.zeros((8, 8), np.float32), gdal.GDT_Float32), "p")
    assert make_temporal(plain) == "" and not plain.temporalProperties().isActive()


def _series(tmp_path):
    bands = [np.full((6, 7), -2.0 * k, np.float32) for k in range(len(DATES))]
    path = write_geotiff(tmp_path / "ts.tif", bands, gdal.GDT_Float32,
                         metadata={"MINESAR_KIND": "timeseries", "DATES": " ".join(f"{d:%Y%m%d}" for d in DATES)})
    dataset = gdal.Open(path, gdal.GA_Update)
    for k, day in enumerate(DATES):
        dataset.GetRasterBand(k + 1).SetDescription(f"D{day:%Y%m%d}")
    dataset = None
    return QgsRasterLayer(path, "series")


def test_a_time_series_spans_its_dates_where_bands_cannot_have_ranges(qgis_app, tmp_path, monkeypatch):
    """The QGIS 3.22 path (forced on later versions): the whole series' range, one styled band."""
    monkeypatch.setattr(temporal, "per_band_supported", lambda: False)
    layer = _series(tmp_path)
    assert make_temporal(layer) == "series"
    properties = layer.temporalProperties()
    assert properties.mode() == QgsRasterLayerTemporalProperties.ModeFixedTemporalRange
    assert properties.isVisibleInTemporalRange(date_range(DATES[2], DATES[3]))
    assert not properties.isVisibleInTemporalRange(date_range(DATES[-1] + timedelta(days=1),
                                                              DATES[-1] + timedelta(days=40)))


def test_band_ranges_meet_one_frame_each(qgis_app):
    """The ranges the ≥ 3.38 path gives each band, checked on any version with QGIS's own overlap
    test: the frame over interval k meets band k + 2 (epoch k + 1) alone."""
    ranges = temporal.band_ranges(DATES)
    assert sorted(ranges) == list(range(2, len(DATES) + 1))
    for k, frame in enumerate(frames(DATES[0], DATES[-1], STEP)):
        assert [band for band, span in ranges.items() if span.overlaps(frame)] == [k + 2]


@pytest.mark.skipif(not per_band_supported(),
                    reason="QgsRasterLayerTemporalProperties.setFixedRangePerBand needs QGIS >= 3.38")
def test_a_time_series_plays_band_by_band(qgis_app, tmp_path):
    from qgis.core import Qgis

    layer = _series(tmp_path)
    assert make_temporal(layer) == "per band"
    properties = layer.temporalProperties()
    assert properties.mode() == Qgis.RasterTemporalMode.FixedRangePerBand
    # The frame over interval k shows the displacement at its end: epoch k + 1, band k + 2.
    for k, frame in enumerate(frames(DATES[0], DATES[-1], STEP)):
        assert properties.bandForTemporalRange(layer, frame) == k + 2


def test_sbas_points_span_the_series(qgis_app):
    fields = ["CODE:string", "VEL:double"] + [f"D{d:%Y%m%d}:double" for d in DATES]
    layer = _layer(fields, [["0000001", -3.0] + [0.0] * len(DATES)])
    assert make_temporal(layer) == "points"
    properties = layer.temporalProperties()
    assert properties.mode() == QgsVectorLayerTemporalProperties.ModeFixedTemporalRange
    assert properties.fixedTemporalRange() == date_range(DATES[0], DATES[-1], include_end=True)


def test_the_project_time_range_and_step(qgis_app):
    project = QgsProject()
    temporal.set_project_time(project, DATES[0], DATES[-1], STEP)
    settings = project.timeSettings()
    assert settings.temporalRange() == date_range(DATES[0], DATES[-1], include_end=True)
    assert settings.timeStep() == STEP


# ---------------------------------------------------------------------------------------------
# Outputs the toolbox loads are temporal through the algorithms' post-processors
# ---------------------------------------------------------------------------------------------
def test_loaded_detections_are_temporal(minesar_provider, tmp_path, qgis_new_project, one_torch_thread):
    from test_styled_outputs import run_like_the_toolbox

    phase = np.random.default_rng(1).uniform(-np.pi, np.pi, (96, 96)).astype(np.float32)
    path = write_geotiff(tmp_path / "20230301_20230313.tif", phase, gdal.GDT_Float32,
                         metadata={"MINESAR_KIND": "wrapped"})
    layers = run_like_the_toolbox("minesar:detectsubsidence", {
        "INPUT": path, "DEVICE": "cpu", "TILE_SIZE": 96, "OVERLAP": 0, "OUTPUT": str(tmp_path / "d.gpkg")},
        ["OUTPUT"])
    properties = layers["subsidence basins"].temporalProperties()
    assert properties.isActive()
    assert properties.mode() == QgsVectorLayerTemporalProperties.ModeFeatureDateTimeStartAndEndFromExpressions
    assert "date1" in properties.startExpression() and "date2" in properties.endExpression()


def test_loaded_sbas_series_and_points_are_temporal(minesar_provider, tmp_path, qgis_new_project):
    from test_sbas import _network, _write_stack
    from test_styled_outputs import run_like_the_toolbox

    network, _ = _network(n_dates=5)
    truth = np.arange(5)[:, None, None] * np.full((1, 6, 7), -2.0)
    paths, _ = _write_stack(tmp_path, network, truth, (6, 7))
    layers = run_like_the_toolbox("minesar:sbasinversion", {
        "INPUT": paths, "OUTPUT_TIMESERIES": str(tmp_path / "ts.tif"), "OUTPUT_VELOCITY": str(tmp_path / "v.tif"),
        "OUTPUT_COHERENCE": str(tmp_path / "c.tif"), "OUTPUT_POINTS": str(tmp_path / "p.gpkg"),
        "POINTS_MIN_COHERENCE": 0.0},
        ["OUTPUT_TIMESERIES", "OUTPUT_VELOCITY", "OUTPUT_COHERENCE", "OUTPUT_POINTS"])
    series = layers["SBAS time series (mm)"].temporalProperties()
    assert series.isActive()
    span = date_range(network.dates[1], network.dates[2])
    assert series.isVisibleInTemporalRange(span)
    if not per_band_supported():
        assert series.fixedTemporalRange() == date_range(network.dates[0], network.dates[-1], include_end=True)
    points = layers["SBAS points"].temporalProperties()
    assert points.isActive() and points.isVisibleInTemporalRange(span)
    assert not layers["SBAS velocity (mm/yr)"].temporalProperties().isActive()


def test_loaded_sites_are_temporal(minesar_provider, tmp_path, qgis_new_project):
    from test_activity import SITE_EXTENT, detection_layers
    from test_styled_outputs import run_like_the_toolbox

    inputs = detection_layers()
    layers = run_like_the_toolbox("minesar:surfaceactivity", {
        "INPUT": inputs, "EXTENT": SITE_EXTENT, "PIXEL_SIZE": 10,
        "OUTPUT_ACTIVITY": str(tmp_path / "days.tif"), "OUTPUT_SITES": str(tmp_path / "sites.gpkg")},
        ["OUTPUT_SITES"])
    sites = layers["Active sites"]
    assert sites.temporalProperties().isActive()
    code = sites.fields().indexOf("CODE")
    features = list(sites.getFeatures())
    assert features
    for feature in features:
        first, last = date.fromisoformat(feature["FIRST"]), date.fromisoformat(feature["LAST"])
        during = [row[code] for row in _shown(sites, date_range(first, first + timedelta(days=1)))]
        after = [row[code] for row in _shown(sites, date_range(last + timedelta(days=1), last + timedelta(days=2)))]
        assert feature["CODE"] in during and feature["CODE"] not in after


def test_a_simulated_sequence_loads_styled_and_playing_in_time(minesar_provider, tmp_path, qgis_new_project):
    from qgis.PyQt.QtCore import Qt
    from qgis.core import QgsRenderContext
    from test_styled_outputs import run_like_the_toolbox

    layers = run_like_the_toolbox("minesar:simulatesequence", {
        "WIDTH": 336, "HEIGHT": 224, "EPOCHS": 4, "PAIR_SPAN": 1, "OUTPUT": str(tmp_path / "s"),
        "OUTPUT_MINES": str(tmp_path / "mines.gpkg")}, ["OUTPUT_MINES"])
    mines = layers["mine patches (truth)"].renderer()
    assert mines.classAttribute() == "true_class"
    assert all(symbol.symbolLayer(0).brushStyle() == Qt.NoBrush for symbol in mines.symbols(QgsRenderContext()))
    pairs = sorted(name for name in layers if name.startswith("simulated 2"))
    assert len(pairs) == 3 and "true LOS velocity (mm/yr)" in layers
    epochs = [FIRST + timedelta(days=48 * k) for k in range(4)]
    for k, frame in enumerate(frames(epochs[0], epochs[-1], 48)):
        visible = [name for name in pairs if layers[name].temporalProperties().isVisibleInTemporalRange(frame)]
        assert visible == [f"simulated {epochs[k]:%Y%m%d}_{epochs[k + 1]:%Y%m%d}"]
        assert layers[visible[0]].renderer().type() == "singlebandpseudocolor"


def test_epoch_layers_play_a_series_band_by_band_on_any_version(qgis_app, tmp_path):
    """QGIS 3.22's way to animate a series: one band view per epoch, each over its interval; the
    frame over interval k shows epoch k + 1's displacement and nothing else."""
    from minesar.ui.styles import style_diverging

    series = _series(tmp_path)
    layers = temporal.epoch_layers(series, lambda layer: style_diverging(layer, -10.0, 10.0, "mm"))
    assert [layer.name() for layer in layers] == [f"series {day:%Y-%m-%d}" for day in DATES[1:]]
    for k, frame in enumerate(frames(DATES[0], DATES[-1], STEP)):
        shown = [layer for layer in layers if layer.temporalProperties().isVisibleInTemporalRange(frame)]
        assert len(shown) == 1
        block = shown[0].dataProvider().block(1, shown[0].extent(), 7, 6)
        assert block.value(0, 0) == pytest.approx(-2.0 * (k + 1))  # band k + 2 of the series
        assert shown[0].renderer().type() == "singlebandpseudocolor"
    velocity = QgsRasterLayer(write_geotiff(tmp_path / "v.tif", [np.zeros((6, 7), np.float32)], gdal.GDT_Float32),
                              "velocity")
    assert temporal.epoch_layers(velocity, lambda layer: None) == []  # not a dated series
