"""Run inside QGIS desktop (``qgis --code``; see scripts/desktop-screenshot): the plugin enabled as a
user enables it, a simulated interferogram styled as wrapped phase, subsidence detected on it through
the MineSAR dock (the Processing algorithm in a background task, loaded and styled by its
post-processor), an SBAS time series of the sample pairs, and a pixel of it plotted in the Time series
dock by a click of its map tool. Saves a grab of the main window and a JSON summary of what was on
screen, then quits.

Environment: MINESAR_SHOT (PNG path, required), MINESAR_SHOT_WORK (a scratch folder).
"""
import json
import os
import sys
import traceback

from qgis.core import QgsApplication, QgsCoordinateTransform, QgsPointXY, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QPoint, QSize, Qt, QTimer
from qgis.PyQt.QtGui import QMouseEvent
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent
from qgis.utils import iface, loadPlugin, plugins, startPlugin

SHOT = os.environ["MINESAR_SHOT"]
WORK = os.environ.get("MINESAR_SHOT_WORK", os.path.join(os.path.dirname(SHOT), "desktop-work"))
ROOT = os.environ["MINESAR_ROOT"]
summary = {"errors": []}
_timers = []  # QTimers must outlive this module's execution


def later(ms, step):
    def guarded():
        try:
            step()
        except Exception:  # noqa: BLE001 - the summary must say what failed, then QGIS must exit
            summary["errors"].append(traceback.format_exc())
            finish()

    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(guarded)
    timer.start(ms)
    _timers.append(timer)


def finish():
    summary["layers"] = [layer.name() for layer in QgsProject.instance().mapLayers().values()]
    with open(os.path.splitext(SHOT)[0] + ".json", "w") as stream:
        json.dump(summary, stream, indent=1)
    QgsProject.instance().setDirty(False)  # no "save changes?" question on exit
    QgsApplication.exit(0 if not summary["errors"] else 1)


def enable_plugin():
    if "minesar" not in plugins:
        if not loadPlugin("minesar") or not startPlugin("minesar"):
            raise RuntimeError("QGIS could not load or start the MineSAR plugin")
    plugin = plugins["minesar"]
    summary["plugin"] = "started"
    iface.mainWindow().resize(QSize(1600, 1000))
    iface.mainWindow().showNormal()
    import processing

    os.makedirs(WORK, exist_ok=True)
    scene = processing.run("minesar:simulatescene", {
        "WIDTH": 768, "HEIGHT": 768, "SEED": 7, "BASINS": "4,5", "SUBSIDENCE": "40,120",
        "OUTPUT": os.path.join(WORK, "20200101_20200113.tif"), "OUTPUT_TRUTH": os.path.join(WORK, "truth.gpkg")})
    from minesar.ui.styles import style_deformation, style_wrapped_phase

    phase = QgsRasterLayer(scene["OUTPUT"], "wrapped phase 20200101_20200113")
    style_wrapped_phase(phase)
    QgsProject.instance().addMapLayer(phase)
    iface.mapCanvas().setDestinationCrs(phase.crs())
    iface.mapCanvas().setExtent(phase.extent())

    data = os.path.join(ROOT, "sample_data", "pyrate_small_gamma")
    unwrapped = sorted(os.path.join(data, n) for n in os.listdir(data) if n.endswith("_utm.unw"))
    sbas = processing.run("minesar:sbasinversion", {
        "INPUT": unwrapped, "OUTPUT_TIMESERIES": os.path.join(WORK, "timeseries.tif"),
        "OUTPUT_VELOCITY": os.path.join(WORK, "velocity.tif"), "OUTPUT_COHERENCE": os.path.join(WORK, "tcoh.tif")})
    series = QgsRasterLayer(sbas["OUTPUT_TIMESERIES"], "SBAS time series (mm), sample pairs")
    style_deformation(series, "mm")
    QgsProject.instance().addMapLayer(series)
    # Read by the dock as the current layer, not drawn over the scene (it lies elsewhere).
    QgsProject.instance().layerTreeRoot().findLayer(series.id()).setItemVisibilityChecked(False)
    summary["series"] = series.source()

    dock = plugin.run_dock
    dock.show()
    dock.set_task("minesar:detectsubsidence")
    dock.set_model("yolobasin")
    dock.set_device("cpu")
    dock.set_checked(phase, True)
    dock.run_button.click()
    summary["run_started"] = dock.is_running()
    wait_for_detection(dock, series, 0)


def wait_for_detection(dock, series, waited):
    if dock.is_running():
        if waited > 300_000:
            raise RuntimeError("detection did not finish in 5 minutes")
        later(500, lambda: wait_for_detection(dock, series, waited + 500))
        return
    summary["dock_status"] = dock.status_label.text()
    detections = [l for l in QgsProject.instance().mapLayers().values() if l.name().endswith("subsidence basins")]
    summary["detections"] = {l.name(): {"features": l.featureCount(), "renderer": l.renderer().type()}
                             for l in detections}
    plot_series(series)


def plot_series(series):
    """A real mouse click of the Time series map tool, on the most subsiding pixel of the series."""
    import numpy as np
    from osgeo import gdal

    plugin = plugins["minesar"]
    dock = plugin.timeseries_dock
    dock.show()
    dock.pick_action.trigger()
    canvas = iface.mapCanvas()
    dataset = gdal.Open(series.source())
    last = dataset.GetRasterBand(dataset.RasterCount).ReadAsArray()
    row, col = np.unravel_index(np.nanargmin(np.where(np.isfinite(last), last, np.inf)), last.shape)
    x0, dx, _, y0, _, dy = dataset.GetGeoTransform()
    point = QgsPointXY(x0 + (col + 0.5) * dx, y0 + (row + 0.5) * dy)
    to_canvas = QgsCoordinateTransform(series.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance())
    iface.setActiveLayer(series)  # the current layer is the one the tool reads
    # The pixel lies outside the view (the scene and the sample pairs are far apart): the tool reads
    # what is under a click, so centre the click's map point by sending it through the tool directly.
    canvas_point = to_canvas.transform(point)
    event = QgsMapMouseEvent(canvas, QEvent.MouseButtonRelease, QPoint(10, 10), Qt.LeftButton)
    event.setMapPoint(canvas_point)
    dock.map_tool.canvasReleaseEvent(event)
    summary["curves"] = [curve.label for curve in dock.curves]
    summary["pixel"] = [int(row), int(col)]
    later(3000, grab)


def grab():
    phase = QgsProject.instance().mapLayersByName("wrapped phase 20200101_20200113")[0]
    iface.setActiveLayer(phase)
    iface.mapCanvas().setExtent(phase.extent())
    iface.mapCanvas().refreshAllLayers()
    later(4000, save)


def save():
    image = iface.mainWindow().grab()
    summary["size"] = [image.width(), image.height()]
    summary["saved"] = image.save(SHOT, "PNG")
    finish()


later(2000, enable_plugin)
