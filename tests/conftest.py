"""Shared fixtures. The plugin is imported as the package ``minesar``, which `make setup` links
(.build/plugins/minesar -> this checkout); the link is made here too so pytest alone works."""
import gc
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "sample_data" / "pyrate_small_gamma"
PLUGINS_DIR = ROOT / ".build" / "plugins"

if not (PLUGINS_DIR / "minesar").exists():
    PLUGINS_DIR.mkdir(parents=True, exist_ok=True)
    os.symlink("../..", PLUGINS_DIR / "minesar")
if str(PLUGINS_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGINS_DIR))

SAMPLE_WIDTH, SAMPLE_LINES = 47, 72
GEOTRANSFORM = (500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0)  # a 30 m UTM grid


def sample_interferograms():
    return sorted(SAMPLE_DIR.glob("*_utm.unw"))


def read_big_endian(path, dtype=">f4", width=SAMPLE_WIDTH):
    """The reference read the importer must agree with: numpy straight from the bytes."""
    data = np.fromfile(path, dtype=dtype)
    return data.reshape(-1, width).astype(np.dtype(dtype).newbyteorder("="))


def write_geotiff(path, arrays, gdal_type, nodata=None, metadata=None, georeferenced=True):
    """A GeoTIFF of one 2-D array or a stack of bands, on a UTM 50N grid unless told otherwise."""
    arrays = [arrays] if np.ndim(arrays) == 2 else list(arrays)
    rows, cols = arrays[0].shape
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, len(arrays), gdal_type)
    if georeferenced:
        dataset.SetGeoTransform(GEOTRANSFORM)
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(32650)
        dataset.SetProjection(srs.ExportToWkt())
    if metadata:
        dataset.SetMetadata(metadata)
    for index, array in enumerate(arrays):
        band = dataset.GetRasterBand(index + 1)
        band.WriteArray(array)
        if nodata is not None:
            band.SetNoDataValue(nodata)
    dataset = None
    return str(path)


@pytest.fixture
def gamma_dir(tmp_path):
    """A writable copy of the sample GAMMA folder, for tests that add or break neighbours."""
    target = tmp_path / "gamma"
    shutil.copytree(SAMPLE_DIR, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


@pytest.fixture(autouse=True, scope="session")
def delete_leftover_layers_before_exit(qgis_app):
    """Deletes Python-owned layers still alive at the end, while QGIS is still up.

    QGIS 3.22 keeps the traceback of an exception raised inside a Python algorithm, so a test that
    made layers and then expected processing.run to fail keeps those layers alive to interpreter
    exit, where destroying them after exitQgis() segfaults. Requesting qgis_app makes this teardown
    run before pytest-qgis exits QGIS."""
    yield
    from qgis.core import QgsMapLayer
    from qgis.PyQt import sip

    gc.collect()
    for obj in gc.get_objects():
        if issubclass(type(obj), QgsMapLayer) and not sip.isdeleted(obj) and sip.ispyowned(obj):
            sip.delete(obj)


_PROVIDERS = []  # the registry does not keep the Python side of a provider alive: we do


@pytest.fixture(scope="module")
def one_torch_thread():
    """PyTorch on one thread for a module: two OpenMP threads on a busy 2-core machine spin-wait
    and run 5–20 times slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def run_algorithm(minesar_provider):
    """processing.run of a minesar algorithm with a fresh context and feedback."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    def _run(name, parameters):
        return processing.run(f"minesar:{name}", parameters, context=QgsProcessingContext(),
                              feedback=QgsProcessingFeedback())

    return _run


@pytest.fixture
def minesar_provider(qgis_processing):
    """The registered minesar provider (registered now if a plugin test removed it)."""
    from qgis.core import QgsApplication

    from minesar.processing_provider.provider import MineSARProvider

    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("minesar")
    if provider is None:
        provider = MineSARProvider()
        assert registry.addProvider(provider)
        _PROVIDERS.append(provider)
    return provider


@pytest.fixture
def without_minesar_provider(qgis_processing):
    """No minesar provider registered, as when QGIS starts: for tests of the plugin object."""
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("minesar")
    if existing is not None:
        registry.removeProvider(existing)
    yield registry
