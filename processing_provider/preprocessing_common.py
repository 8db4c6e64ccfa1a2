"""QGIS glue shared by the preprocessing and hot-spot algorithms: inputs and styled outputs."""
import os

from qgis.core import QgsProcessingException, QgsProcessingLayerPostProcessorInterface

from ..core.io.interferogram import open_interferogram

# Processing keeps only a reference to a layer post-processor; Python must keep the object alive
# until QGIS has loaded the layer, which happens after the algorithm has returned.
_STYLERS = {}


class LayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Names and styles an output layer with a ``ui.styles`` function chosen by name."""

    def __init__(self, layer_name, style_name):
        super().__init__()
        self.layer_name = layer_name
        self.style_name = style_name

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API)
        from ..ui import styles

        if layer is not None and layer.isValid():
            layer.setName(self.layer_name)
            getattr(styles, self.style_name)(layer)


def style_when_loaded(context, output, layer_name, style_name) -> None:
    if output and context.willLoadLayerOnCompletion(output):
        styler = LayerStyler(layer_name, style_name)
        _STYLERS[output] = styler
        context.layerToLoadOnCompletionDetails(output).setPostProcessor(styler)


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
