"""The Time series dock: click the map, see the displacement history there.

A map tool reads, at each click, the series of a pixel of a time-series raster, of the nearest
point of a points layer, or the detection timeline of an active site (see ui.timeseries_pick for
which layer). Curves accumulate (or only the last is kept), each with its least-squares velocity
line; a reference pixel shifts every curve to series − series(reference) of the same layer; the
plot exports as CSV and PNG. Nothing is computed here that the algorithms compute: the series are
read from their outputs and the velocity line is core.sbas's fit.
"""
import os
import tempfile
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
from matplotlib.backends.backend_qt5agg import FigureCanvasQTAgg
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from qgis.core import Qgis, QgsPointXY, QgsProject
from qgis.gui import QgsDockWidget, QgsMapToolEmitPoint
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QAction,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.timeseries import LineFit, fit_line, subtract_reference, write_csv
from .timeseries_pick import LAYER_CHOICE, SERIES_KINDS, SITES, TOLERANCE_PX, Pick, PickMessage, layer_kind, pick, read_layer

TITLE = "MineSAR time series"


class TimeSeriesMapTool(QgsMapToolEmitPoint):
    """Emits ``picked`` with the map point (canvas CRS) of each left click, on release."""

    picked = pyqtSignal(QgsPointXY)

    def canvasPressEvent(self, event):  # noqa: N802 (QGIS API)
        pass  # acts on release, as QGIS's identify tool does; the base class would emit on press

    def canvasReleaseEvent(self, event):  # noqa: N802 (QGIS API)
        if event.button() == Qt.LeftButton:
            self.picked.emit(QgsPointXY(event.mapPoint()))


@dataclass
class Curve:
    pick: Pick
    shown: np.ndarray = None  # the values drawn: the series, or series − reference
    referenced: bool = False
    fit: Optional[LineFit] = None
    line: object = None  # matplotlib Line2D of the series
    fit_line: object = None  # matplotlib Line2D of the velocity line

    @property
    def label(self) -> str:
        return self.pick.label


@dataclass
class SiteTimeline:
    pick: Pick
    bars: object = None  # matplotlib BarContainer, one bar per interval

    @property
    def intervals(self):
        return self.pick.intervals


@dataclass
class Reference:
    point: QgsPointXY  # in ``crs``
    crs: object
    tolerance: float  # map units of ``crs``: the points' tolerance when it was picked
    label: str
    series: dict = field(default_factory=dict)  # layer id -> (dates, values) or None (none there)


class TimeSeriesDock(QgsDockWidget):
    """Dock with a map tool (``map_tool``, toggled by ``pick_action``), a plot and exports.

    ``curves`` and ``sites`` hold what is plotted (with their matplotlib artists), ``axes`` and
    ``timeline_axes`` the two plots; call ``unload()`` before removing the dock.
    """

    def __init__(self, iface, parent=None):
        super().__init__(TITLE, parent)
        self.setObjectName("MineSARTimeSeriesDock")
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.curves: List[Curve] = []
        self.sites: List[SiteTimeline] = []
        self.reference: Optional[Reference] = None
        self.axes = self.timeline_axes = None
        self._picking_reference = False

        self.map_tool = TimeSeriesMapTool(self.canvas)
        self.map_tool.picked.connect(self.pick_at)
        self.pick_action = QAction("Pick on map", self)
        self.pick_action.setCheckable(True)
        self.pick_action.setToolTip("Click the map to plot the series there.\n\n" + LAYER_CHOICE)
        self.pick_action.triggered.connect(self._pick_toggled)
        self.map_tool.setAction(self.pick_action)  # the tool checks and unchecks it as it comes and goes
        # Another tool taking the canvas ends a pending "Set reference": a later pick must plot, not
        # silently move the reference.
        self.map_tool.deactivated.connect(self._end_reference_mode)
        # Closed, hidden by the menu entry (3.22's setUserVisible hides, it does not close) or behind
        # another tab: clicks must not go to a plot nobody sees.
        self.visibilityChanged.connect(lambda visible: visible or self.unload())

        widget = QWidget(self)
        layout = QVBoxLayout(widget)
        row = QHBoxLayout()
        pick_button = QToolButton(widget)
        pick_button.setDefaultAction(self.pick_action)
        pick_button.setToolButtonStyle(Qt.ToolButtonTextOnly)
        self.reference_button = QPushButton("Set reference", widget)
        self.reference_button.setCheckable(True)
        self.reference_button.setToolTip(
            "The next click picks a reference pixel (or point): every curve is then drawn as its series "
            "minus the series at the reference in the same layer.")
        self.reference_button.clicked.connect(self._reference_toggled)
        self.clear_reference_button = QPushButton("Clear reference", widget)
        self.clear_reference_button.clicked.connect(self.clear_reference)
        for button in (pick_button, self.reference_button, self.clear_reference_button):
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)

        row = QHBoxLayout()
        self.clear_button = QPushButton("Clear", widget)
        self.clear_button.setToolTip("Remove every curve and timeline from the plot.")
        self.clear_button.clicked.connect(self.clear)
        self.keep_last = QCheckBox("Keep only the last curve", widget)
        self.csv_button = QPushButton("Export CSV…", widget)
        self.csv_button.clicked.connect(self._ask_csv)
        self.png_button = QPushButton("Export PNG…", widget)
        self.png_button.clicked.connect(self._ask_png)
        for item in (self.clear_button, self.keep_last, self.csv_button, self.png_button):
            row.addWidget(item)
        row.addStretch(1)
        layout.addLayout(row)

        self.figure = Figure(figsize=(6, 4), dpi=100, tight_layout=True)
        self.plot = FigureCanvasQTAgg(self.figure)
        self.plot.setParent(widget)
        layout.addWidget(self.plot, 1)
        self.status = QLabel("Press “Pick on map”, then click a time-series layer.", widget)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        widget.setToolTip(LAYER_CHOICE)
        self.setToolTip(LAYER_CHOICE)
        self.setWidget(widget)
        self.redraw()

    # --- map tool -----------------------------------------------------------------------------
    def _end_reference_mode(self):
        self._picking_reference = False
        self.reference_button.setChecked(False)

    def _pick_toggled(self, checked):
        self._end_reference_mode()
        if checked:
            self.canvas.setMapTool(self.map_tool)
        elif self.canvas.mapTool() is self.map_tool:
            self.canvas.unsetMapTool(self.map_tool)

    def _reference_toggled(self, checked):
        if checked and self.canvas.mapTool() is not self.map_tool:
            self.canvas.setMapTool(self.map_tool)  # (setting it again would deactivate it first)
        self._picking_reference = bool(checked)
        if checked:
            self.status.setText("Click the reference pixel or point.")

    def unload(self):
        """Releases the canvas (the plugin calls this before removing the dock)."""
        if self.canvas.mapTool() is self.map_tool:
            self.canvas.unsetMapTool(self.map_tool)

    def closeEvent(self, event):  # noqa: N802 (Qt API)
        self.unload()
        super().closeEvent(event)

    # --- clicks -------------------------------------------------------------------------------
    def pick_at(self, point: QgsPointXY):
        """Handle a click at ``point`` (canvas CRS): a new curve or timeline, or the reference."""
        if self._picking_reference:
            self._set_reference(point)
            return
        try:
            picked = pick(self.iface, point)
        except PickMessage as message:
            self.tell(str(message))
            return
        same = [c for c in self.curves + self.sites if (c.pick.layer_id, c.pick.key) == (picked.layer_id, picked.key)]
        if same:
            self.tell(f"{picked.label} is plotted already.", Qgis.Info)
            return
        if self.keep_last.isChecked():
            self.curves, self.sites = [], []
        if picked.kind == SITES:
            self.sites.append(SiteTimeline(picked))
        else:
            self.curves.append(Curve(picked))
        self.tell(f"Plotted {picked.label}.", Qgis.Info)
        self.redraw()

    def _set_reference(self, point):
        self._picking_reference = False
        self.reference_button.setChecked(False)
        try:
            picked = pick(self.iface, point, SERIES_KINDS)
        except PickMessage as message:
            self.tell(f"Reference not set. {message}")
            return
        self.reference = Reference(QgsPointXY(point), self.canvas.mapSettings().destinationCrs(),
                                   TOLERANCE_PX * self.canvas.mapUnitsPerPixel(), picked.label)
        self.reference.series[picked.layer_id] = (picked.dates, picked.values)
        self.tell(f"Reference: {picked.label}.", Qgis.Info)
        self.redraw()

    def clear_reference(self):
        self.reference = None
        self._picking_reference = False
        self.reference_button.setChecked(False)
        self.redraw()

    def clear(self):
        self.curves, self.sites = [], []
        self.redraw()

    def _reference_series(self, layer_id):
        """The reference's series in one layer (read once per layer), or None if it has none there."""
        reference = self.reference
        if layer_id not in reference.series:
            layer = QgsProject.instance().mapLayer(layer_id)
            kind = layer_kind(layer)
            found = None
            if kind in SERIES_KINDS:
                try:
                    picked = read_layer(layer, kind, reference.point, reference.crs, reference.tolerance)
                    found = (picked.dates, picked.values)
                except PickMessage:
                    pass
            reference.series[layer_id] = found
        return reference.series[layer_id]

    def tell(self, text, level=Qgis.Warning):
        """A message in the dock, and in QGIS's message bar when it is a warning."""
        self.status.setText(text)
        bar = getattr(self.iface, "messageBar", None)
        if level != Qgis.Info and callable(bar):
            bar().pushMessage("Time series", text, level, 5)

    # --- plot ---------------------------------------------------------------------------------
    def _update_curve(self, curve):
        values, curve.referenced = curve.pick.values, False
        if self.reference is not None:
            found = self._reference_series(curve.pick.layer_id)
            if found is not None:
                values, curve.referenced = subtract_reference(curve.pick.dates, values, *found), True
        curve.shown = values
        curve.fit = fit_line(curve.pick.dates, values)

    def redraw(self):
        self.figure.clear()
        self.axes = self.timeline_axes = None
        for curve in self.curves:
            self._update_curve(curve)
        if self.curves or not self.sites:
            rows = 2 if self.sites else 1
            ratios = [3, max(1, len(self.sites))] if self.sites else [1]
            grid = self.figure.add_gridspec(rows, 1, height_ratios=ratios)
            self.axes = self.figure.add_subplot(grid[0])
            if self.sites:
                self.timeline_axes = self.figure.add_subplot(grid[1], sharex=self.axes)
        else:
            self.timeline_axes = self.figure.add_subplot(1, 1, 1)
        if self.axes is not None:
            self._draw_curves(self.axes)
        if self.timeline_axes is not None:
            self._draw_timelines(self.timeline_axes)
        self.plot.draw_idle()

    def _draw_curves(self, axes):
        for index, curve in enumerate(self.curves):
            colour = f"C{index % 10}"
            label = curve.label
            if self.reference is not None and not curve.referenced:
                label += " (no reference in this layer: not shifted)"
            dates = [date2num(d) for d in curve.pick.dates]
            curve.line, = axes.plot(dates, curve.shown, "o-", color=colour, markersize=3, label=label)
            curve.fit_line = None
            if curve.fit is not None:
                curve.fit_line, = axes.plot([date2num(d) for d in curve.fit.dates], curve.fit.values, "--",
                                            color=colour, linewidth=1, label=f"velocity {curve.fit.velocity:+.2f} mm/yr")
        axes.xaxis_date()
        axes.axhline(0, color="0.6", linewidth=0.5)
        axes.set_ylabel("Displacement (mm)" if self.reference is None else "Displacement − reference (mm)")
        if self.reference is not None:
            axes.set_title(f"Reference: {self.reference.label}", fontsize=9)
        if self.curves:
            axes.legend(fontsize=7, loc="best")
        else:
            axes.text(0.5, 0.5, "Pick on map to plot a series", ha="center", va="center",
                      transform=axes.transAxes, color="0.5")
            axes.set_xticks([])  # no made-up dates (matplotlib's default 1970 axis) before a pick
            axes.set_yticks([])
        axes.grid(True, linewidth=0.3)

    def _draw_timelines(self, axes):
        for index, site in enumerate(self.sites):
            left = [date2num(a) for a, _ in site.intervals]
            width = [date2num(b) - date2num(a) for a, b in site.intervals]
            site.bars = axes.barh([index] * len(left), width, left=left, height=0.6, color="#d73027",
                                  edgecolor="black", linewidth=0.5, label=site.pick.label)
        axes.set_yticks(range(len(self.sites)))
        axes.set_yticklabels([s.pick.label for s in self.sites], fontsize=7)
        axes.set_ylim(-0.5, len(self.sites) - 0.5)
        axes.xaxis_date()
        axes.set_xlabel("Detected (interferogram intervals)")
        axes.grid(True, axis="x", linewidth=0.3)

    # --- exports ------------------------------------------------------------------------------
    def export_csv(self, path):
        """The plotted curves (as shown, so shifted when a reference is set) as CSV: ISO dates, mm."""
        if not self.curves:
            raise PickMessage("No curve to export.")
        write_csv(path, [(c.label, c.pick.dates, c.shown) for c in self.curves])

    def export_png(self, path, dpi=150):
        """The figure as PNG, written to a temporary file beside ``path`` and moved into place."""
        handle, temporary = tempfile.mkstemp(prefix=".minesar-", suffix=".png", dir=os.path.dirname(os.path.abspath(path)))
        os.close(handle)
        try:
            self.figure.savefig(temporary, format="png", dpi=dpi)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise

    def _ask_csv(self):
        path, _ = QFileDialog.getSaveFileName(self, "Export time series", "", "CSV (*.csv)")
        if path:
            self._export(self.export_csv, path if path.lower().endswith(".csv") else path + ".csv")

    def _ask_png(self):
        path, _ = QFileDialog.getSaveFileName(self, "Export plot", "", "PNG image (*.png)")
        if path:
            self._export(self.export_png, path if path.lower().endswith(".png") else path + ".png")

    def _export(self, export, path):
        try:
            export(path)
        except (PickMessage, OSError) as error:
            self.tell(f"Export failed: {error}")
            return
        self.tell(f"Saved {path}.", Qgis.Info)
