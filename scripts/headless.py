"""QGIS without a window, with Processing and the MineSAR provider, for the standalone scripts
(demo.py, build_models.py); they run from scripts/, so ``import headless`` finds this file."""
import os
import sys


def start_qgis(**provider_options):
    """(QgsApplication, provider). Keep both: the registry does not keep the provider's Python side
    alive. ``provider_options`` go to MineSARProvider (e.g. with_workflows=False)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))
    from processing.core.Processing import Processing

    Processing.initialize()
    from minesar.processing_provider.provider import MineSARProvider

    provider = MineSARProvider(**provider_options)
    QgsApplication.processingRegistry().addProvider(provider)
    return app, provider
