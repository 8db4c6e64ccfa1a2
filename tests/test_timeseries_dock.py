"""The Time series dock, driven by clicks on the map canvas of pytest-qgis's iface."""
import csv
from datetime import date, timedelta

import numpy as np
import pytest
from conftest import write_geotiff
from osgeo import gdal
from test_timeseries import DATES, centre, decimal_year, truth_series, write_series

GRID = (500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0)  # conftest's UTM 50N grid, as write_geotiff writes
NODATA_PIXEL = (14, 19)
GAP_PIXEL = (2, 3)  # band 3 is nodata there


@pytest.fixture
def project(qgis_iface, qgis_new_project):
    from qgis.core import QgsCoordinateReferenceSystem, QgsProject

    qgis_iface.messageBar().clear_messages()
    qgis_iface._active_layer_id = None  # no current layer unless a test makes one
    canvas = qgis_iface.mapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32650"))
    return QgsProject.instance()


@pytest.fixture
def timeseries_layer(project, tmp_path, qgis_iface):
    from qgis.core import QgsRasterLayer

    series = truth_series()
    series[:, NODATA_PIXEL[0], NODATA_PIXEL[1]] = -9999
    series[2, GAP_PIXEL[0], GAP_PIXEL[1]] = -9999
    layer = QgsRasterLayer(write_series(tmp_path / "sbas_ts.tif", series, nodata=-9999), "ts")
    assert layer.isValid()
    project.addMapLayer(layer)
    qgis_iface.mapCanvas().setExtent(layer.extent())
    return layer


@pytest.fixture
def dock(qgis_iface):
    from minesar.ui.timeseries_dock import TimeSeriesDock

    widget = TimeSeriesDock(qgis_iface)
    yield widget
    widget.unload()
    widget.deleteLater()


def click(canvas, x, y):
    """A left click released at map point (x, y) of the canvas CRS, handled by the canvas's tool."""
    from qgis.core import QgsPointXY
    from qgis.gui import QgsMapMouseEvent
    from qgis.PyQt.QtCore import QEvent, QPoint, Qt

    event = QgsMapMouseEvent(canvas, QEvent.MouseButtonRelease, QPoint(0, 0), Qt.LeftButton, Qt.LeftButton)
    event.setMapPoint(QgsPointXY(x, y))
    canvas.mapTool().canvasReleaseEvent(event)


def warnings(iface):
    from qgis.core import Qgis

    return iface.messageBar().get_messages(Qgis.Warning)


def known(row, col):
    values = truth_series()[:, row, col].astype(np.float64)
    if (row, col) == GAP_PIXEL:
        values[2] = np.nan
    return values


def slope_of(line):
    """mm/yr of a drawn velocity line: its two ends over calendar decimal years."""
    from matplotlib.dates import num2date

    x, y = line.get_xdata(), line.get_ydata()
    years = [decimal_year(num2date(v).date()) for v in x]
    return (y[1] - y[0]) / (years[1] - years[0])


def least_squares_velocity(values, dates=DATES):
    ok = np.isfinite(values)
    years = np.array([decimal_year(d) for d in dates])
    return np.polyfit(years[ok], values[ok], 1)[0]


def test_click_on_a_pixel_plots_its_series_and_velocity(timeseries_layer, dock, qgis_iface):
    from matplotlib.dates import date2num

    canvas = qgis_iface.mapCanvas()
    assert "current layer" in dock.toolTip() and "topmost visible" in dock.toolTip()
    dock.pick_action.trigger()
    assert canvas.mapTool() is dock.map_tool and dock.pick_action.isChecked()
    # A real press and release of the mouse on the canvas's viewport, at the pixel's centre.
    from qgis.core import QgsPointXY
    from qgis.PyQt.QtCore import QEvent, QPointF, Qt
    from qgis.PyQt.QtGui import QMouseEvent
    from qgis.PyQt.QtWidgets import QApplication

    pixel = canvas.getCoordinateTransform().transform(QgsPointXY(*centre(4, 7)))
    for kind, curves in ((QEvent.MouseButtonPress, 0), (QEvent.MouseButtonRelease, 1)):
        QApplication.sendEvent(canvas.viewport(), QMouseEvent(kind, QPointF(pixel.x(), pixel.y()), Qt.LeftButton,
                                                               Qt.LeftButton, Qt.NoModifier))
        assert len(dock.curves) == curves  # read on release
    curve = dock.curves[0]
    assert curve.label == "ts (row 4, col 7)"
    np.testing.assert_array_equal(curve.line.get_xdata(), [date2num(d) for d in DATES])
    np.testing.assert_allclose(curve.line.get_ydata(), known(4, 7), atol=1e-6)
    expected = least_squares_velocity(known(4, 7))
    assert slope_of(curve.fit_line) == pytest.approx(expected, abs=1e-6)
    assert curve.fit.velocity == pytest.approx(expected, abs=1e-9)
    legend = [t.get_text() for t in dock.axes.get_legend().get_texts()]
    assert legend == ["ts (row 4, col 7)", f"velocity {expected:+.2f} mm/yr"]
    # A second click adds a curve; a pixel with a gap plots the gap and fits the rest.
    click(canvas, *centre(*GAP_PIXEL))
    assert [c.label for c in dock.curves] == ["ts (row 4, col 7)", "ts (row 2, col 3)"]
    gap = dock.curves[1]
    np.testing.assert_allclose(gap.line.get_ydata(), known(*GAP_PIXEL), atol=1e-6)
    assert np.isnan(gap.line.get_ydata()[2])
    assert slope_of(gap.fit_line) == pytest.approx(least_squares_velocity(known(*GAP_PIXEL)), abs=1e-6)
    # Another tool takes the canvas: the button is released.
    from qgis.gui import QgsMapToolPan

    pan = QgsMapToolPan(canvas)
    canvas.setMapTool(pan)
    assert not dock.pick_action.isChecked()


def test_click_in_another_crs_reads_the_pixel_under_it(timeseries_layer, dock, qgis_iface):
    from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject

    canvas = qgis_iface.mapCanvas()
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    canvas.setDestinationCrs(wgs84)
    to_canvas = QgsCoordinateTransform(timeseries_layer.crs(), wgs84, QgsProject.instance())
    dock.pick_action.trigger()
    here = to_canvas.transform(QgsPointXY(*centre(10, 15)))
    click(canvas, here.x(), here.y())
    assert dock.curves[0].label == "ts (row 10, col 15)"
    np.testing.assert_allclose(dock.curves[0].shown, known(10, 15), atol=1e-6)


def test_reference_shifts_existing_and_new_curves(timeseries_layer, dock, qgis_iface):
    canvas = qgis_iface.mapCanvas()
    dock.pick_action.trigger()
    click(canvas, *centre(4, 7))
    click(canvas, *centre(*GAP_PIXEL))
    dock.reference_button.click()
    click(canvas, *centre(12, 1))  # this click is the reference, no curve
    assert len(dock.curves) == 2 and not dock.reference_button.isChecked()
    reference = known(12, 1)
    for curve, pixel in zip(dock.curves, [(4, 7), GAP_PIXEL]):
        difference = known(*pixel) - reference
        np.testing.assert_allclose(curve.line.get_ydata(), difference, atol=1e-5)
        assert slope_of(curve.fit_line) == pytest.approx(least_squares_velocity(difference), abs=1e-5)
    click(canvas, *centre(0, 19))  # a new curve is shifted too
    np.testing.assert_allclose(dock.curves[2].line.get_ydata(), known(0, 19) - reference, atol=1e-5)
    assert "reference" in dock.axes.get_ylabel() and "row 12, col 1" in dock.axes.get_title()
    dock.clear_reference()
    np.testing.assert_allclose(dock.curves[0].line.get_ydata(), known(4, 7), atol=1e-6)
    # A reference click on nothing leaves no reference.
    dock.reference_button.click()
    click(canvas, *centre(40, 40))
    assert dock.reference is None and "Reference not set" in warnings(qgis_iface)[-1]


def test_csv_and_png_exports(timeseries_layer, dock, qgis_iface, tmp_path):
    from qgis.PyQt.QtGui import QImage

    canvas = qgis_iface.mapCanvas()
    dock.pick_action.trigger()
    click(canvas, *centre(4, 7))
    click(canvas, *centre(*GAP_PIXEL))
    dock.reference_button.click()
    click(canvas, *centre(12, 1))
    path = tmp_path / "curves.csv"
    dock.export_csv(str(path))
    with open(path, newline="", encoding="utf-8") as stream:
        table = list(csv.reader(stream))
    assert table[0] == ["date", "ts (row 4, col 7)", "ts (row 2, col 3)"]
    assert [row[0] for row in table[1:]] == [d.isoformat() for d in DATES]
    for column, pixel in ((1, (4, 7)), (2, GAP_PIXEL)):
        cells = [row[column] for row in table[1:]]
        expected = known(*pixel) - known(12, 1)  # what is plotted: shifted to the reference
        assert [c == "" for c in cells] == list(np.isnan(expected))
        np.testing.assert_allclose([float(c) if c else np.nan for c in cells], expected, atol=1e-5)

    png = tmp_path / "plot.png"
    dock.export_png(str(png))
    image = QImage(str(png))
    assert not image.isNull() and image.width() >= 600 and png.stat().st_size > 10_000
    small = image.scaled(60, 40)
    colours = {small.pixel(x, y) for x in range(60) for y in range(40)}
    assert len(colours) > 20  # a drawn plot, not a blank page


def test_keep_last_clear_and_duplicates(timeseries_layer, dock, qgis_iface):
    canvas = qgis_iface.mapCanvas()
    dock.pick_action.trigger()
    click(canvas, *centre(4, 7))
    click(canvas, *centre(4, 7))
    assert len(dock.curves) == 1 and "already" in dock.status.text()
    dock.keep_last.setChecked(True)
    click(canvas, *centre(5, 5))
    click(canvas, *centre(6, 6))
    assert [c.label for c in dock.curves] == ["ts (row 6, col 6)"]
    assert len(dock.axes.get_lines()) == 3  # series, velocity line, zero line
    dock.clear_button.click()
    assert dock.curves == [] and dock.axes.get_legend() is None


def test_outside_nodata_and_nothing_suitable_give_messages(timeseries_layer, dock, qgis_iface, project):
    from qgis.core import QgsRasterLayer

    canvas = qgis_iface.mapCanvas()
    dock.pick_action.trigger()
    click(canvas, *centre(20, 5))
    assert dock.curves == [] and "Nothing to read here" in warnings(qgis_iface)[-1]
    qgis_iface.setActiveLayer(timeseries_layer)  # the current layer: its own miss is reported
    click(canvas, *centre(20, 5))
    assert "Outside ts" in warnings(qgis_iface)[-1] and "Outside ts" in dock.status.text()
    click(canvas, *centre(*NODATA_PIXEL))
    assert "no data" in warnings(qgis_iface)[-1] and "row 14, column 19" in warnings(qgis_iface)[-1]
    assert dock.curves == []
    # A raster whose bands are not epochs is no time series.
    plain = QgsRasterLayer(write_geotiff(dock_tmp(timeseries_layer) / "plain.tif", truth_series()[0], gdal.GDT_Float32),
                           "plain")
    project.removeMapLayer(timeseries_layer.id())
    project.addMapLayer(plain)
    qgis_iface.setActiveLayer(plain)
    click(canvas, *centre(4, 7))
    assert dock.curves == [] and "Nothing to read here" in warnings(qgis_iface)[-1]


def dock_tmp(layer):
    from pathlib import Path

    return Path(layer.source()).parent


POINT_DATES = [date(2021, 1, 5) + timedelta(days=24 * k) for k in range(5)]
POINT_SERIES = {  # CODE: (row, col) of the point's pixel, series in mm (one gap)
    "0000042": ((1, 2), [0.0, -2.5, -4.0, -7.25, -9.0]),
    "0000107": ((5, 7), [0.0, 1.0, None, 2.5, 3.0]),
    "0000108": ((5, 8), [0.0, 1.5, 2.0, 2.5, 3.5]),
    "0000300": ((15, 0), [0.0, -0.5, -1.0, -1.5, -2.0]),  # just below the raster
}


@pytest.fixture
def points_layer(project):
    from qgis.core import QgsFeature, QgsField, QgsGeometry, QgsPointXY, QgsVectorLayer
    from qgis.PyQt.QtCore import QVariant

    layer = QgsVectorLayer("Point?crs=EPSG:32650", "points", "memory")
    # Fields in MintPy's order but the epochs shuffled: the dock sorts them by date.
    names = ["CODE", "VEL", "V_STDEV", "COHERENCE"] + [f"D{d:%Y%m%d}" for d in POINT_DATES[::-1]]
    layer.dataProvider().addAttributes(
        [QgsField("CODE", QVariant.String)] + [QgsField(n, QVariant.Double) for n in names[1:]])
    layer.updateFields()
    for code, ((row, col), series) in POINT_SERIES.items():
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(*centre(row, col))))
        feature.setAttributes([code, -12.0, 0.5, 0.9] + series[::-1])
        layer.dataProvider().addFeature(feature)
    project.addMapLayer(layer)
    return layer


def test_points_layer_nearest_point_within_tolerance(timeseries_layer, points_layer, dock, qgis_iface, project):
    canvas = qgis_iface.mapCanvas()
    tolerance = 6 * canvas.mapUnitsPerPixel()
    dock.pick_action.trigger()
    x, y = centre(5, 7)
    # The points layer is above the raster (added last) and no layer is current: the topmost
    # suitable layer with something under the click is read.
    click(canvas, x - 0.4 * tolerance, y - 0.4 * tolerance)
    curve = dock.curves[-1]
    assert curve.label == "points 0000107"
    np.testing.assert_array_equal(curve.line.get_ydata(), [0.0, 1.0, np.nan, 2.5, 3.0])
    assert curve.pick.dates == POINT_DATES
    assert curve.fit.velocity == pytest.approx(least_squares_velocity(np.array([0.0, 1.0, np.nan, 2.5, 3.0]),
                                                                     POINT_DATES), abs=1e-9)
    # Far from every point: the raster underneath is read instead.
    click(canvas, *centre(10, 15))
    assert dock.curves[-1].label == "ts (row 10, col 15)"
    # With the points layer current, a miss is reported, not read elsewhere.
    qgis_iface.setActiveLayer(points_layer)
    click(canvas, *centre(10, 15))
    assert "no point within 6 pixels" in warnings(qgis_iface)[-1] and len(dock.curves) == 2
    # Two points within the tolerance: the nearer wins.
    a, b = np.array(centre(5, 7)), np.array(centre(5, 8))
    assert np.hypot(*(b - a)) < tolerance / 2
    click(canvas, *(a + 0.7 * (b - a)))
    assert dock.curves[-1].label == "points 0000108"
    click(canvas, *(a + 0.3 * (b - a)))
    assert "already" in dock.status.text() and len(dock.curves) == 3  # 0000107 is plotted
    # Hidden and not current: not read (the raster is); current even when hidden: read.
    project.layerTreeRoot().findLayer(points_layer.id()).setItemVisibilityChecked(False)
    qgis_iface._active_layer_id = None
    click(canvas, *centre(1, 2))
    assert dock.curves[-1].label == "ts (row 1, col 2)"
    qgis_iface.setActiveLayer(points_layer)
    click(canvas, *centre(1, 2))
    assert dock.curves[-1].label == "points 0000042"
    # Reference on a point: point curves become differences with that point's series; the raster
    # has no pixel under the reference (it lies just below the raster) and stays unshifted, saying so.
    dock.reference_button.click()
    click(canvas, *centre(15, 0))
    reference = np.array([0.0, -0.5, -1.0, -1.5, -2.0])
    by_label = {c.label: c for c in dock.curves}
    np.testing.assert_allclose(by_label["points 0000107"].line.get_ydata(),
                               np.array([0.0, 1.0, np.nan, 2.5, 3.0]) - reference)
    np.testing.assert_allclose(by_label["points 0000042"].line.get_ydata(),
                               np.array([0.0, -2.5, -4.0, -7.25, -9.0]) - reference)
    raster = by_label["ts (row 10, col 15)"]
    np.testing.assert_allclose(raster.line.get_ydata(), known(10, 15), atol=1e-6)
    assert not raster.referenced and "not shifted" in raster.line.get_label()


SITE_TIMELINES = {
    "k1": "20210105_20210117;20210129_20210210",
    "k2": "20210117_20210129;20210210_20210222;20210306_20210318",
}


@pytest.fixture
def sites_layer(project):
    from qgis.core import QgsFeature, QgsField, QgsGeometry, QgsVectorLayer
    from qgis.PyQt.QtCore import QVariant

    layer = QgsVectorLayer("MultiPolygon?crs=EPSG:32650", "Active sites", "memory")
    kinds = {"CODE": QVariant.String, "FIRST": QVariant.String, "LAST": QVariant.String, "ACTIVE_DAYS": QVariant.Int,
             "SHARE_PCT": QVariant.Double, "CLASS": QVariant.String, "N_IFG": QVariant.Int, "TIMELINE": QVariant.String}
    layer.dataProvider().addAttributes([QgsField(n, k) for n, k in kinds.items()])
    layer.updateFields()
    x0, y0 = GRID[0], GRID[3]
    rings = {"k1": [(0, 0), (200, 0), (200, -200), (0, -200)],  # a square
             "k2": [(300, -150), (500, -150), (300, -350)]}  # a triangle: its bounding box is not the site
    for code, ring in rings.items():
        feature = QgsFeature(layer.fields())
        points = ",".join(f"{x0 + dx} {y0 + dy}" for dx, dy in ring + ring[:1])
        feature.setGeometry(QgsGeometry.fromWkt(f"MULTIPOLYGON((({points})))"))
        pieces = SITE_TIMELINES[code].split(";")
        feature.setAttributes([code, pieces[0][:8], pieces[-1][9:], 0, 0.0, "moderate", len(pieces), SITE_TIMELINES[code]])
        layer.dataProvider().addFeature(feature)
    project.addMapLayer(layer)
    return layer


def test_site_timeline_bars(timeseries_layer, sites_layer, dock, qgis_iface):
    from matplotlib.dates import num2date

    canvas = qgis_iface.mapCanvas()
    dock.pick_action.trigger()
    qgis_iface.setActiveLayer(sites_layer)
    click(canvas, GRID[0] + 460, GRID[3] - 310)  # in k2's bounding box, outside the triangle
    assert dock.sites == [] and "no site under the click" in warnings(qgis_iface)[-1]
    qgis_iface._active_layer_id = None
    click(canvas, GRID[0] + 350, GRID[3] - 200)  # inside k2
    assert [s.pick.label for s in dock.sites] == ["Active sites k2"] and dock.curves == []
    bars = [(num2date(r.get_x()).date(), num2date(r.get_x() + r.get_width()).date()) for r in dock.sites[0].bars]
    expected = [tuple(date(int(p[:4]), int(p[4:6]), int(p[6:8])) for p in piece.split("_"))
                for piece in SITE_TIMELINES["k2"].split(";")]
    assert bars == expected
    click(canvas, *centre(4, 7))  # the raster beside the sites: a curve above the timelines
    click(canvas, GRID[0] + 50, GRID[3] - 50)  # inside k1
    assert [s.pick.label for s in dock.sites] == ["Active sites k2", "Active sites k1"] and len(dock.curves) == 1
    assert dock.timeline_axes is not None and dock.axes is not None
    assert [t.get_text() for t in dock.timeline_axes.get_yticklabels()] == ["Active sites k2", "Active sites k1"]
    k1 = [(num2date(r.get_x()).date(), num2date(r.get_x() + r.get_width()).date()) for r in dock.sites[1].bars]
    assert k1 == [(date(2021, 1, 5), date(2021, 1, 17)), (date(2021, 1, 29), date(2021, 2, 10))]
    qgis_iface.setActiveLayer(sites_layer)
    click(canvas, GRID[0] + 250, GRID[3] - 50)  # between the sites
    assert "no site under the click" in warnings(qgis_iface)[-1]


def test_outputs_of_the_sbas_algorithm(minesar_provider, project, dock, qgis_iface, tmp_path):
    """Clicks on what minesar:sbasinversion wrote: the dock's velocity line is the velocity raster's."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsRasterLayer, QgsVectorLayer
    from test_sbas import _network, _write_stack, _xy

    network, _ = _network(n_dates=6, span=2)
    rows, cols = 5, 6
    years = network.years
    truth = years[:, None, None] * np.linspace(-30, 20, rows * cols).reshape(rows, cols)[None]
    truth += 2.0 * np.sin(2 * np.pi * years)[:, None, None]
    paths, _ = _write_stack(tmp_path, network, truth - truth[0], (rows, cols))
    result = processing.run("minesar:sbasinversion", {
        "INPUT": paths, "REFERENCE": "{},{}".format(*_xy(0, 0)), "POINTS_MIN_COHERENCE": 0.0,
        "OUTPUT_TIMESERIES": str(tmp_path / "ts.tif"), "OUTPUT_VELOCITY": str(tmp_path / "vel.tif"),
        "OUTPUT_COHERENCE": str(tmp_path / "coh.tif"), "OUTPUT_POINTS": str(tmp_path / "points.gpkg"),
    }, context=QgsProcessingContext(), feedback=QgsProcessingFeedback())
    raster = QgsRasterLayer(result["OUTPUT_TIMESERIES"], "SBAS ts")
    points = QgsVectorLayer(result["OUTPUT_POINTS"], "SBAS points", "ogr")
    project.addMapLayers([raster, points])
    series = gdal.Open(result["OUTPUT_TIMESERIES"]).ReadAsArray().astype(np.float64)
    velocity = gdal.Open(result["OUTPUT_VELOCITY"]).ReadAsArray()
    canvas = qgis_iface.mapCanvas()
    canvas.setExtent(raster.extent())
    dock.pick_action.trigger()
    qgis_iface.setActiveLayer(raster)
    click(canvas, *_xy(3, 4))
    curve = dock.curves[-1]
    assert curve.label == "SBAS ts (row 3, col 4)" and curve.pick.dates == list(network.dates)
    np.testing.assert_array_equal(curve.shown, series[:, 3, 4])
    assert curve.fit.velocity == pytest.approx(float(velocity[3, 4]), abs=1e-4)
    qgis_iface.setActiveLayer(points)
    click(canvas, *_xy(2, 1))
    curve = dock.curves[-1]
    assert curve.label == f"SBAS points {2 * cols + 1:07d}"
    np.testing.assert_allclose(curve.shown, series[:, 2, 1], atol=1e-6)
    assert curve.fit.velocity == pytest.approx(float(velocity[2, 1]), abs=1e-4)


def test_another_tool_ends_a_pending_reference_pick(timeseries_layer, dock, qgis_iface):
    from qgis.gui import QgsMapToolPan

    canvas = qgis_iface.mapCanvas()
    dock.reference_button.click()  # "Set reference" armed ...
    pan = QgsMapToolPan(canvas)
    canvas.setMapTool(pan)  # ... then the user pans instead
    assert not dock.reference_button.isChecked()
    dock.pick_action.trigger()
    click(canvas, *centre(3, 4))  # a pick now plots: it does not silently move the reference
    assert dock.reference is None and len(dock.curves) == 1


def test_closing_the_dock_gives_the_canvas_back(timeseries_layer, dock, qgis_iface):
    from qgis.PyQt.QtWidgets import QApplication

    canvas = qgis_iface.mapCanvas()
    dock.show()
    QApplication.processEvents()
    dock.pick_action.trigger()
    assert canvas.mapTool() is dock.map_tool
    dock.setUserVisible(False)  # what the menu entry does; the dock's × closes it the same way
    assert canvas.mapTool() is not dock.map_tool
