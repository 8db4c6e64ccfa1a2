"""QGIS glue shared by the preprocessing and hot-spot algorithms: inputs and styled outputs."""
import os

from qgis.core import QgsProcessingException

from ..core.io.interferogram import open_interferogram
from ..ui import styles
from . import base


def style_when_loaded(context, output, layer_name, style_name) -> None:
    """``base.style_when_loaded`` with a ``ui.styles`` function chosen by name."""
    base.style_when_loaded(context, output, layer_name, getattr(styles, style_name))


def raster_path(algorithm, parameters, name, context, optional=False):
    layer = algorithm.parameterAsRasterLayer(parameters, name, context)
    if layer is None:
        if optional:
            return None
        raise QgsProcessingException(f"{name}: no raster layer given.")
    return layer.source().split("|")[0]


def open_input(algorithm, parameters, name, context, optional=False):
    """The raster of parameter ``name`` as an interferogram source (radar coordinates allowed)."""
    path = raster_path(algorithm, parameters, name, context, optional)
    return None if path is None else open_interferogram(path, "auto", allow_pixel_coordinates=True)


def geotiff_output(algorithm, parameters, name, context, extensions=(".tif", ".tiff")):
    output = algorithm.parameterAsOutputLayer(parameters, name, context)
    if output and os.path.splitext(output)[1].lower() not in extensions:
        raise QgsProcessingException(
            f"{name} {output}: MineSAR writes {' or '.join(e.lstrip('.').upper() for e in extensions)}; use such a name."
        )
    return output


def date_label(source, fallback):
    meta = source.metadata
    if meta.date1 and meta.date2:
        return f"{fallback} {meta.date1:%Y%m%d}–{meta.date2:%Y%m%d}"
    return f"{fallback} {os.path.splitext(os.path.basename(source.path))[0]}"
