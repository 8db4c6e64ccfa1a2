"""The plugin object: what QGIS desktop and qgis_process call."""
import minesar


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
    assert titles == ["Import interferogram…", "Import interferograms (batch)…"]
    assert qgis_iface.addRasterToolBarIcon.call_count == 1
    plugin.unload()
    removed = [call.args[1] for call in qgis_iface.removePluginRasterMenu.call_args_list]
    assert [a.text() for a in removed] == titles
    assert registry.providerById("minesar") is None
    assert plugin.actions == []
