"""The plugin object QGIS loads: registers the Processing provider and, on the desktop, the docks and
menus.

``iface`` is None under ``qgis_process``, which only calls ``initProcessing``; nothing here may
touch it before ``initGui``. The docks import PyTorch lazily, so the plugin loads without it.
"""
from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsProject
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .core.environment import install_advice, keep_triton_out
from .processing_provider.base import ICON_PATH

MENU = "&MineSAR"
# Imported by the algorithms at load time, beyond what QGIS brings (module -> pip requirement).
REQUIRED_PACKAGES = {"shapely": "shapely>=2,<2.1"}


class MineSARPlugin:
    def __init__(self, iface):
        # Before anything can import torch: triton's LLVM aborts a QGIS that holds Mesa's.
        keep_triton_out()
        self.iface = iface
        self.provider = None
        self.missing = ""  # why the provider could not load, if it could not
        self.actions = []
        self.docks = []
        self.run_dock = None
        self.timeseries_dock = None
        self._hooked = False  # following QgsProject.layersAdded

    def initProcessing(self):  # noqa: N802 (QGIS API)
        if self.provider is not None or self.missing:
            return
        try:
            from .processing_provider.provider import MineSARProvider
        except ModuleNotFoundError as error:
            if error.name not in REQUIRED_PACKAGES:
                raise
            # QGIS's own Python (not our venv) may lack it: say what to install instead of a traceback.
            self.missing = (f"MineSAR needs the Python package {error.name}, which the Python of this QGIS lacks; "
                            f"{install_advice([REQUIRED_PACKAGES[error.name]])}")
            QgsMessageLog.logMessage(self.missing, "MineSAR", Qgis.Critical)
            return
        self.provider = MineSARProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS API)
        self.initProcessing()
        if self.iface is None:
            return
        if self.missing:
            self.iface.messageBar().pushMessage("MineSAR", self.missing, Qgis.Critical, 0)
            return
        from .ui.run_dock import MineSARDock
        from .ui.timeseries_dock import TimeSeriesDock

        QgsProject.instance().layersAdded.connect(self._layers_added)
        self._hooked = True

        window = self.iface.mainWindow()
        self.run_dock = MineSARDock(self.iface, window)
        self.timeseries_dock = TimeSeriesDock(self.iface, window)
        for dock, area in ((self.run_dock, Qt.RightDockWidgetArea), (self.timeseries_dock, Qt.BottomDockWidgetArea)):
            self.iface.addDockWidget(area, dock)
            dock.hide()
            self.docks.append(dock)

        single = QAction(QIcon(ICON_PATH), "Import interferogram…", window)
        single.triggered.connect(lambda: self.open_algorithm("minesar:importinterferogram"))
        batch = QAction(QIcon(ICON_PATH), "Import interferograms (batch)…", window)
        batch.triggered.connect(lambda: self.open_batch("minesar:importinterferogram"))
        show_run = self._dock_action(self.run_dock, "MineSAR dock (detect, segment, refine)")
        show_series = self._dock_action(self.timeseries_dock, "Time series")
        for action in (show_run, show_series, single, batch):
            self.iface.addPluginToRasterMenu(MENU, action)
            self.actions.append(action)
        self.iface.addRasterToolBarIcon(show_run)
        self.iface.addRasterToolBarIcon(single)
        self.toolbar_actions = [show_run, single]

    @staticmethod
    def _layers_added(layers):
        """MineSAR products opened by hand get what the algorithms give the layers they load: their
        time in the Temporal Controller, and GF-2 scenes their true colours."""
        from .ui.styles import style_added_scenes
        from .ui.temporal import make_added_layers_temporal

        make_added_layers_temporal(layers)
        style_added_scenes(layers)

    def _dock_action(self, dock, text):
        """A checkable action that opens and closes the dock. QgsDockWidget follows the user's intent:
        a dock tabbed behind another is still open (Qt's visibilityChanged would say hidden and
        close it as soon as its neighbour's tab is clicked)."""
        action = QAction(QIcon(ICON_PATH), text, self.iface.mainWindow())
        action.setCheckable(True)
        dock.setToggleVisibilityAction(action)
        return action

    def unload(self):
        batch_dialog = getattr(self, "_batch_dialog", None)
        if batch_dialog is not None:
            batch_dialog.close()
            self._batch_dialog = None
        for action in self.actions:
            if self.iface is not None:
                self.iface.removePluginRasterMenu(MENU, action)
                self.iface.removeRasterToolBarIcon(action)
        self.actions = []
        if self._hooked:
            QgsProject.instance().layersAdded.disconnect(self._layers_added)
            self._hooked = False
        for dock in self.docks:
            dock.unload()  # cancels running tasks, releases the map tool, drops project signals
            self.iface.removeDockWidget(dock)
            dock.deleteLater()
        self.docks = []
        self.run_dock = self.timeseries_dock = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def open_algorithm(self, algorithm_id):
        import processing

        processing.execAlgorithmDialog(algorithm_id)

    def open_batch(self, algorithm_id):
        from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog

        algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
        dialog = BatchAlgorithmDialog(algorithm, parent=self.iface.mainWindow())
        dialog.show()
        self._batch_dialog = dialog  # keep it alive while it is open
