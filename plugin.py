"""The plugin object QGIS loads: registers the Processing provider and, on the desktop, menus.

``iface`` is None under ``qgis_process``, which only calls ``initProcessing``; nothing here may
touch it before ``initGui``.
"""
from qgis.core import QgsApplication
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .processing_provider.base import ICON_PATH
from .processing_provider.provider import MineSARProvider

MENU = "&MineSAR"


class MineSARPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.actions = []

    def initProcessing(self):  # noqa: N802 (QGIS API)
        if self.provider is None:
            self.provider = MineSARProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS API)
        self.initProcessing()
        if self.iface is None:
            return
        window = self.iface.mainWindow()
        single = QAction(QIcon(ICON_PATH), "Import interferogram…", window)
        single.triggered.connect(lambda: self.open_algorithm("minesar:importinterferogram"))
        batch = QAction(QIcon(ICON_PATH), "Import interferograms (batch)…", window)
        batch.triggered.connect(lambda: self.open_batch("minesar:importinterferogram"))
        for action in (single, batch):
            self.iface.addPluginToRasterMenu(MENU, action)
            self.actions.append(action)
        self.iface.addRasterToolBarIcon(single)

    def unload(self):
        for action in self.actions:
            if self.iface is not None:
                self.iface.removePluginRasterMenu(MENU, action)
                self.iface.removeRasterToolBarIcon(action)
        self.actions = []
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
