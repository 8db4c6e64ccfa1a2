"""Parameters the mine-patch algorithms share: image bands and weights, segmentation settings,
and polygons from QGIS layers handed to core/ as shapely geometries in the image's CRS."""

from qgis.core import (
    QgsCoordinateTransform,
    QgsGeometry,
    QgsProcessingException,
    QgsProcessingParameterBand,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..core.reports import write_json_report
from ..core.segmentation.mrs import DEFAULT_TILE, MRSParameters
from .base import user_errors


def add_band_parameters(algorithm, parent="INPUT"):
    algorithm.addParameter(QgsProcessingParameterBand("BANDS", "Bands (default: all)", None, parent, optional=True,
                                                      allowMultiple=True))
    algorithm.addParameter(QgsProcessingParameterString("WEIGHTS", "Band weights, comma-separated (default: 1 each)",
                                                        optional=True))


def add_segmentation_parameters(algorithm, advanced=False, scale=79.0, shape=0.2, compactness=0.5):
    number = QgsProcessingParameterNumber
    parameters = [
        number("SCALE", "Scale parameter", number.Double, scale, minValue=0.01),
        number("SHAPE", "Shape (1 − colour weight)", number.Double, shape, minValue=0.0, maxValue=0.99),
        number("COMPACTNESS", "Compactness (weight of compactness in shape)", number.Double, compactness,
               minValue=0.0, maxValue=1.0),
    ]
    for parameter in parameters:
        if advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        algorithm.addParameter(parameter)
    add_tile_parameter(algorithm)


def add_tile_parameter(algorithm):
    tile = QgsProcessingParameterNumber("TILE_SIZE", "Tile size (pixels)", QgsProcessingParameterNumber.Integer,
                                        DEFAULT_TILE, minValue=64, maxValue=4096)
    tile.setFlags(tile.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    algorithm.addParameter(tile)


def numbers(text, name):
    """'0.1, 0.2' → [0.1, 0.2]; empty → None."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError as error:
        raise QgsProcessingException(f"{name}: '{text}' is not a comma-separated list of numbers.") from error


def bands_and_weights(algorithm, parameters, context):
    bands = algorithm.parameterAsInts(parameters, "BANDS", context) or None
    weights = numbers(algorithm.parameterAsString(parameters, "WEIGHTS", context), "WEIGHTS")
    return bands, weights


def segmentation_parameters(algorithm, parameters, context, weights):
    return MRSParameters(scale=algorithm.parameterAsDouble(parameters, "SCALE", context),
                         shape=algorithm.parameterAsDouble(parameters, "SHAPE", context),
                         compactness=algorithm.parameterAsDouble(parameters, "COMPACTNESS", context),
                         weights=weights)


def image_layer(algorithm, parameters, context, name="INPUT"):
    layer = algorithm.parameterAsRasterLayer(parameters, name, context)
    if layer is None:
        raise QgsProcessingException(f"{name}: the image could not be opened.")
    if not layer.crs().isValid():
        raise QgsProcessingException(f"{layer.source()}: the image has no coordinate reference system.")
    if layer.crs().isGeographic():
        raise QgsProcessingException(
            f"{layer.source()}: the image is in degrees ({layer.crs().authid()}); areas and the minimum patch area "
            "are in metres — warp it to a projected CRS (e.g. UTM) first.")
    return layer


def shapely_polygons(source, crs, context, name, required=True):
    """Features of a polygon source as shapely geometries in ``crs`` (None for an empty geometry)."""
    from shapely import wkb

    if source is None:
        if required:
            raise QgsProcessingException(f"{name}: the layer could not be opened.")
        return None
    if not source.sourceCrs().isValid():
        raise QgsProcessingException(f"{name}: the layer has no coordinate reference system, so it cannot be "
                                     f"laid over data in {crs.authid()}.")
    transform = QgsCoordinateTransform(source.sourceCrs(), crs, context.transformContext())
    geometries = []
    for feature in source.getFeatures():
        geometry = QgsGeometry(feature.geometry())
        if geometry.isEmpty():
            geometries.append(None)
            continue
        geometry.transform(transform)
        geometries.append(wkb.loads(bytes(geometry.asWkb())).buffer(0))
    if required and not any(g is not None for g in geometries):
        raise QgsProcessingException(f"{name}: the layer has no polygon with a geometry.")
    return geometries


def write_report(path, report):
    """JSON report, written under a temporary name and moved into place."""
    if not path:
        return None
    with user_errors():
        return write_json_report(path, report)


