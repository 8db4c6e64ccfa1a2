"""The plugin object: what QGIS desktop and qgis_process call."""
import minesar
import pytest
import numpy as np
from conftest import write_geotiff
from osgeo import gdal
from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtWidgets import QDockWidget


def test_headless_plugin_registers_the_provider_without_iface(without_minesar_provider):
    registry = without_minesar_provider
    plugin = minesar.classFactory(None)  # qgis_process passes no iface
    plugin.initProcessing()
    assert registry.providerById("minesar") is plugin.provider
    assert registry.algorithmById("minesar:importinterferogram") is not None
    plugin.initGui()  # must not touch the missing iface
    assert plugin.actions == []
    plugin.unload()
    assert registry.providerById("minesar") is None


def test_desktop_plugin_adds_menu_and_toolbar_and_removes_them(without_minesar_provider, qgis_iface):
    registry = without_minesar_provider
    for mock in (qgis_iface.addPluginToRasterMenu, qgis_iface.removePluginRasterMenu, qgis_iface.addRasterToolBarIcon):
        mock.reset_mock()
    plugin = minesar.classFactory(qgis_iface)
    plugin.initGui()
    assert registry.providerById("minesar") is plugin.provider
    titles = [call.args[1].text() for call in qgis_iface.addPluginToRasterMenu.call_args_list]
    assert titles == ["MineSAR dock (detect, segment, refine)", "Time series",
                      "Import interferogram…", "Import interferograms (batch)…"]
    assert qgis_iface.addRasterToolBarIcon.call_count == 2
    window = qgis_iface.mainWindow()
    run_dock, series_dock = plugin.run_dock, plugin.timeseries_dock
    assert window.findChild(QDockWidget, "MineSARDock") is run_dock
    assert window.findChild(QDockWidget, "MineSARTimeSeriesDock") is series_dock
    assert run_dock.isHidden() and series_dock.isHidden()
    show_run, show_series = (call.args[1] for call in qgis_iface.addPluginToRasterMenu.call_args_list[:2])
    show_series.setChecked(True)  # the menu entry shows the dock ...
    assert not series_dock.isHidden()
    series_dock.pick_action.trigger()
    assert qgis_iface.mapCanvas().mapTool() is series_dock.map_tool
    plugin.unload()  # ... and unloading removes it and gives the canvas back
    assert qgis_iface.mapCanvas().mapTool() is not series_dock.map_tool
    removed = [call.args[1] for call in qgis_iface.removePluginRasterMenu.call_args_list]
    assert [a.text() for a in removed] == titles
    assert registry.providerById("minesar") is None
    assert plugin.actions == [] and plugin.docks == []
    late = QgsProject.instance().addMapLayer(QgsVectorLayer("Point?crs=EPSG:4326", "after unload", "memory"))
    QgsProject.instance().removeMapLayer(late)  # no slot of the removed dock fires


def test_triton_is_kept_out_unless_already_imported():
    from minesar.core.environment import keep_triton_out

    modules = {}
    assert keep_triton_out(modules) and modules == {"triton": None}
    loaded = {"triton": object()}  # imported before the plugin loaded: left as it is
    assert not keep_triton_out(loaded) and loaded["triton"] is not None
    import sys

    before = sys.modules.get("triton", "absent")
    minesar.classFactory(None)  # as QGIS loads the plugin
    if before == "absent":  # the suite's earlier tests may have imported torchvision, hence triton
        with pytest.raises(ImportError):
            import triton  # noqa: F401
        assert sys.modules["triton"] is None
    else:
        assert sys.modules["triton"] is before


def test_a_tabbed_dock_stays_open_when_its_neighbour_tab_is_chosen(without_minesar_provider, qgis_iface):
    from qgis.gui import QgsDockWidget
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtWidgets import QApplication, QLabel, QMainWindow

    window = QMainWindow()
    window.setCentralWidget(QLabel("map"))
    ours, other = QgsDockWidget("Time series"), QgsDockWidget("Log messages")
    for dock in (ours, other):
        window.addDockWidget(Qt.BottomDockWidgetArea, dock)
    window.tabifyDockWidget(other, ours)
    plugin = minesar.classFactory(qgis_iface)
    action = plugin._dock_action(ours, "Time series")
    window.show()
    action.setChecked(True)
    ours.raise_()
    QApplication.processEvents()
    other.raise_()  # the user clicks the neighbouring tab: ours goes behind it, it is not closed
    QApplication.processEvents()
    assert not ours.isHidden() and not action.isChecked()  # QGIS's own docks' rule: checked = in front
    action.setChecked(True)  # the menu entry brings it back to the front
    QApplication.processEvents()
    assert ours.isVisible() and ours.isUserVisible()
    action.setChecked(False)  # and closes it
    QApplication.processEvents()
    assert not ours.isVisible()
    window.close()


def test_minesar_products_added_by_hand_play_in_time(without_minesar_provider, qgis_iface, qgis_new_project,
                                                     tmp_path):
    from qgis.core import QgsVectorLayer

    plugin = minesar.classFactory(qgis_iface)
    plugin.initGui()
    try:
        detections = QgsVectorLayer("Polygon?crs=EPSG:32649&field=score:double&field=date1:string&field=date2:string",
                                    "detections of last week", "memory")
        plain = QgsVectorLayer("Polygon?crs=EPSG:32649&field=name:string", "roads", "memory")
        QgsProject.instance().addMapLayers([detections, plain])
        assert detections.temporalProperties().isActive()
        assert not plain.temporalProperties().isActive()
        scene = write_geotiff(tmp_path / "gf2.tif", [np.full((8, 8), v, np.uint16) for v in (100, 200, 300, 400)],
                              gdal.GDT_UInt16)
        dataset = gdal.Open(scene, gdal.GA_Update)
        for band, interpretation in ((1, gdal.GCI_BlueBand), (2, gdal.GCI_GreenBand), (3, gdal.GCI_RedBand)):
            dataset.GetRasterBand(band).SetColorInterpretation(interpretation)
        dataset = None
        layer = QgsProject.instance().addMapLayer(QgsRasterLayer(scene, "GF-2 scene"))
        renderer = layer.renderer()
        assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (3, 2, 1)
    finally:
        plugin.unload()
    later = QgsVectorLayer("Polygon?crs=EPSG:32649&field=date1:string&field=date2:string", "after unload", "memory")
    QgsProject.instance().addMapLayer(later)
    assert not later.temporalProperties().isActive()  # the hook left with the plugin
