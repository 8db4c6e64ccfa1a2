"""Run inside QGIS desktop (``qgis --code``; see scripts/desktop-screenshot): the plugin enabled as a
user enables it, the simulated mining area of `make demo` (``minesar:simulatesequence``): one wrapped
pair styled as phase under the mines' outlines, subsidence detected on it through the MineSAR dock
(the Processing algorithm in a background task, loaded and styled by its post-processor), the SBAS
time series of the simulated stack, and two mines' series plotted in the Time series dock by real
mouse clicks of its map tool on the canvas. Saves a grab of the main window and a JSON summary of
what was on screen, then quits.

Environment: MINESAR_SHOT (PNG path, required), MINESAR_SHOT_WORK (a scratch folder),
MINESAR_SHOT_TASK (the dock's task and model, default "minesar:detectsubsidence yolobasin"; e.g.
"minesar:segmentsubsidence ecaunet" maps the pair with the segmenter instead).
"""
import json
import os
import sys
import traceback

from qgis.core import QgsApplication, QgsPointXY, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtCore import QPoint, QSize, Qt, QTimer
from qgis.utils import iface, loadPlugin, plugins, startPlugin

SHOT = os.environ["MINESAR_SHOT"]
WORK = os.environ.get("MINESAR_SHOT_WORK", os.path.join(os.path.dirname(SHOT), "desktop-work"))
ROOT = os.environ["MINESAR_ROOT"]
TASK, MODEL = os.environ.get("MINESAR_SHOT_TASK", "minesar:detectsubsidence yolobasin").split()
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

    from minesar.ui.styles import style_deformation, style_mine_truth, style_wrapped_phase

    os.makedirs(WORK, exist_ok=True)
    # The simulated mining area of `make demo`: pairs, a stack and the mines, all on one grid.
    sequence = processing.run("minesar:simulatesequence", {
        "OUTPUT": os.path.join(WORK, "sequence"), "OUTPUT_MINES": os.path.join(WORK, "mines.gpkg")})
    pair_path = sequence["INTERFEROGRAMS"][2]  # M1 and M2 both subside in it
    pair_name = os.path.basename(pair_path)[:-4]
    phase = QgsRasterLayer(pair_path, f"wrapped phase {pair_name}")
    style_wrapped_phase(phase)
    mines = QgsVectorLayer(sequence["OUTPUT_MINES"], "mine patches (truth)", "ogr")
    style_mine_truth(mines)
    sbas = processing.run("minesar:sbasinversion", {
        "INPUT": sequence["UNWRAPPED"], "COHERENCE": sequence["COHERENCE_STACK"], "WEIGHTING": "coherence",
        "REFERENCE": sequence["REFERENCE"], "OUTPUT_TIMESERIES": os.path.join(WORK, "timeseries.tif"),
        "OUTPUT_VELOCITY": os.path.join(WORK, "velocity.tif"), "OUTPUT_COHERENCE": os.path.join(WORK, "tcoh.tif")})
    series = QgsRasterLayer(sbas["OUTPUT_TIMESERIES"], "SBAS time series (mm)")
    style_deformation(series, "mm")
    project = QgsProject.instance()
    for layer in (series, phase, mines):
        project.addMapLayer(layer)
    # The series is read by the dock, not drawn over the phase.
    project.layerTreeRoot().findLayer(series.id()).setItemVisibilityChecked(False)
    summary["mines"] = {f["name"]: f.geometry().centroid().asPoint() for f in mines.getFeatures()}
    summary["mines"] = {name: [point.x(), point.y()] for name, point in summary["mines"].items()}

    dock = plugin.run_dock
    dock.show()
    dock.set_task(TASK)
    dock.set_model(MODEL)
    dock.set_device("cpu")
    dock.set_checked(phase, True)
    dock.run_button.click()
    summary["run_started"] = dock.is_running()
    wait_for_detection(dock, series, phase, 0)


def wait_for_detection(dock, series, phase, waited):
    if dock.is_running():
        if waited > 300_000:
            raise RuntimeError("detection did not finish in 5 minutes")
        later(500, lambda: wait_for_detection(dock, series, phase, waited + 500))
        return
    summary["dock_status"] = dock.status_label.text()
    detections = [l for l in QgsProject.instance().mapLayers().values()
                  if l.name().endswith(("subsidence basins", "subsidence zones", "subsidence probability"))]
    summary["detections"] = {l.name(): {"features": l.featureCount() if isinstance(l, QgsVectorLayer) else None,
                                        "renderer": l.renderer().type()} for l in detections}
    summary["dock_log"] = dock.log.toPlainText().splitlines()[-12:]
    canvas = iface.mapCanvas()
    canvas.setDestinationCrs(phase.crs())
    canvas.setExtent(phase.extent())
    canvas.refresh()
    later(1500, lambda: plot_series(series))


def click(canvas, tool, map_point):
    """A left press and release on the canvas's viewport where ``map_point`` is drawn."""
    from qgis.PyQt.QtTest import QTest

    pixel = canvas.getCoordinateTransform().transform(map_point)
    canvas.setMapTool(tool)
    QTest.mouseClick(canvas.viewport(), Qt.LeftButton, Qt.NoModifier, QPoint(round(pixel.x()), round(pixel.y())))


def plot_series(series):
    """Real mouse clicks of the Time series tool on the two mines that subside (M1, M2)."""
    dock = plugins["minesar"].timeseries_dock
    dock.show()
    dock.pick_action.trigger()
    iface.setActiveLayer(series)  # the current layer is the one the tool reads, even hidden
    canvas = iface.mapCanvas()
    for name in ("M1", "M2"):
        click(canvas, dock.map_tool, QgsPointXY(*summary["mines"][name]))
    summary["curves"] = [curve.label for curve in dock.curves]
    summary["velocities"] = [round(curve.fit.velocity, 1) if curve.fit else None for curve in dock.curves]
    later(2000, grab)


def grab():
    iface.mapCanvas().refreshAllLayers()
    later(4000, save)


def save():
    image = iface.mainWindow().grab()
    summary["size"] = [image.width(), image.height()]
    summary["saved"] = image.save(SHOT, "PNG")
    finish()


later(2000, enable_plugin)
