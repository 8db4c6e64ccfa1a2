"""MineSAR QGIS plugin: mining subsidence and mine activity from InSAR and optical imagery."""


def classFactory(iface):  # noqa: N802 (name fixed by QGIS)
    # Imported here so that QGIS only pays for the plugin's imports when it loads it.
    from .plugin import MineSARPlugin

    return MineSARPlugin(iface)
