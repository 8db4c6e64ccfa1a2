"""What a click on the map reads for the Time series dock: which layer, and its series there.

Three kinds of layer hold a series or a timeline:

- ``raster``: a GDAL raster whose bands are epochs (descriptions ``DYYYYMMDD``, or a ``DATES``
  tag), as ``minesar:sbasinversion`` OUTPUT_TIMESERIES; the pixel under the click;
- ``points``: a point layer with ``DYYYYMMDD`` fields (MintPy ``save_qgis`` layout, as
  OUTPUT_POINTS); the point nearest the click within ``TOLERANCE_PX`` screen pixels;
- ``sites``: a polygon layer with a ``TIMELINE`` field (``minesar:surfaceactivity`` OUTPUT_SITES);
  the site under the click.

The layer: the current layer when it is one of these kinds (the user chose it, and a miss on it
is reported rather than silently read elsewhere); otherwise the topmost visible layer of a
suitable kind under the click, in the layer tree's drawing order.
"""
import os
from dataclasses import dataclass, field
from datetime import date
from typing import List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal
from qgis.core import (
    QgsCoordinateTransform,
    QgsCsException,
    QgsFeatureRequest,
    QgsGeometry,
    QgsMapLayerType,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsWkbTypes,
)

from ..core.errors import MineSARError
from ..core.timeseries import band_dates, epoch_fields, parse_timeline, read_pixel_series

RASTER, POINTS, SITES = "raster", "points", "sites"
SERIES_KINDS = (RASTER, POINTS)
ALL_KINDS = (RASTER, POINTS, SITES)
TOLERANCE_PX = 6  # a point is "under the click" within this many screen pixels

LAYER_CHOICE = (
    "Which layer a click reads: the current layer (selected in the Layers panel) when it is a "
    "time-series raster (bands DYYYYMMDD), a points layer with DYYYYMMDD fields or an active-sites "
    "layer (TIMELINE field); otherwise the topmost visible layer of those kinds under the click. "
    f"A point counts within {TOLERANCE_PX} screen pixels of the click; the nearest one is read."
)


class PickMessage(Exception):
    """Why a click gave no series, in words for the user."""


class Miss(PickMessage):
    """Nothing of the layer under the click (outside the raster, no point near, no site there)."""


@dataclass
class Pick:
    layer_id: str
    layer_name: str
    kind: str
    key: object  # (row, col) of a pixel, or the feature's CODE / id: what makes two picks the same
    label: str
    dates: List[date] = field(default_factory=list)
    values: Optional[np.ndarray] = None  # mm, NaN = gap (series kinds)
    intervals: List[Tuple[date, date]] = field(default_factory=list)  # sites


_RASTER_DATES = {}  # (source, modification time) -> dates or None: one GDAL open per file version


def raster_dates(layer) -> Optional[List[date]]:
    source = layer.source()
    try:
        stamp = os.path.getmtime(source)
    except OSError:
        return None
    key = (source, stamp)
    if key not in _RASTER_DATES:
        dataset = gdal.OpenEx(source, gdal.OF_RASTER | gdal.OF_READONLY)
        _RASTER_DATES[key] = band_dates(dataset) if dataset is not None else None
        dataset = None
    return _RASTER_DATES[key]


def layer_kind(layer) -> Optional[str]:
    """``raster``, ``points``, ``sites``, or None for a layer holding no series or timeline."""
    if layer is None or not layer.isValid():
        return None
    if layer.type() == QgsMapLayerType.RasterLayer:
        if layer.providerType() == "gdal" and raster_dates(layer):
            return RASTER
        return None
    if layer.type() != QgsMapLayerType.VectorLayer:
        return None
    names = layer.fields().names()
    geometry = layer.geometryType()
    if geometry == QgsWkbTypes.PointGeometry and epoch_fields(names):
        return POINTS
    if geometry == QgsWkbTypes.PolygonGeometry and "TIMELINE" in [n.upper() for n in names]:
        return SITES
    return None


def _visible_layers_top_down(project):
    root = project.layerTreeRoot()
    for layer in root.layerOrder():
        node = root.findLayer(layer.id())
        if node is not None and node.isVisible():
            yield layer


def _transform(point: QgsPointXY, source_crs, layer, project) -> QgsPointXY:
    if not source_crs.isValid() or not layer.crs().isValid() or source_crs == layer.crs():
        return QgsPointXY(point)
    return QgsCoordinateTransform(source_crs, layer.crs(), project.transformContext()).transform(point)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # NULL, empty text
        return float("nan")


def _code(feature, names) -> str:
    upper = [n.upper() for n in names]
    if "CODE" in upper:
        value = feature.attribute(upper.index("CODE"))
        if value is not None and str(value) not in ("", "NULL"):
            return str(value)
    return f"fid {feature.id()}"


def read_layer(layer, kind: str, point: QgsPointXY, crs, tolerance: float, project=None) -> Pick:
    """The series (or timeline) of ``layer`` at ``point`` (in ``crs``; ``tolerance`` in its units).

    Raises PickMessage when there is nothing there: outside the raster, a nodata pixel, no point
    within the tolerance, no site under the click.
    """
    project = project or QgsProject.instance()
    name = layer.name()
    try:
        local = _transform(point, crs, layer, project)
    except QgsCsException:
        raise Miss(f"{name}: the click cannot be placed in the layer's CRS {layer.crs().authid()}.") from None
    if kind == RASTER:
        dataset = gdal.OpenEx(layer.source(), gdal.OF_RASTER | gdal.OF_READONLY)
        if dataset is None:
            raise PickMessage(f"{name}: GDAL cannot open {layer.source()}.")
        try:
            series = read_pixel_series(dataset, local.x(), local.y(), raster_dates(layer))
        except MineSARError as error:
            raise PickMessage(str(error)) from None
        finally:
            dataset = None
        if series is None:
            raise Miss(f"Outside {name}: the click is not on the raster.")
        if series.empty:
            raise PickMessage(f"{name}, row {series.row}, column {series.col}: no data at this pixel (nodata in every epoch).")
        return Pick(layer.id(), name, RASTER, (series.row, series.col),
                    f"{name} (row {series.row}, col {series.col})", series.dates, series.values)

    to_canvas = None
    if crs.isValid() and layer.crs().isValid() and crs != layer.crs():
        to_canvas = QgsCoordinateTransform(layer.crs(), crs, project.transformContext())
    names = layer.fields().names()
    if kind == POINTS:
        search = QgsRectangle(point.x() - tolerance, point.y() - tolerance, point.x() + tolerance, point.y() + tolerance)
        if to_canvas is not None:
            try:
                search = to_canvas.transformBoundingBox(search, QgsCoordinateTransform.ReverseTransform)
            except QgsCsException:
                raise Miss(f"{name}: the click cannot be placed in the layer's CRS.") from None
        clicked = QgsGeometry.fromPointXY(point)
        best = None
        for feature in layer.getFeatures(QgsFeatureRequest().setFilterRect(search)):
            geometry = QgsGeometry(feature.geometry())
            if geometry.isEmpty():
                continue
            if to_canvas is not None:
                geometry.transform(to_canvas)
            distance = geometry.distance(clicked)
            if distance <= tolerance and (best is None or distance < best[0]):
                best = (distance, feature)
        if best is None:
            raise Miss(f"{name}: no point within {TOLERANCE_PX} pixels of the click.")
        feature = best[1]
        epochs = epoch_fields(names)
        values = np.array([_number(feature[n]) for n, _ in epochs], dtype=np.float64)
        code = _code(feature, names)
        if not np.isfinite(values).any():
            raise PickMessage(f"{name}, point {code}: no values in its DYYYYMMDD fields.")
        return Pick(layer.id(), name, POINTS, code, f"{name} {code}", [d for _, d in epochs], values)

    if kind == SITES:
        here = QgsGeometry.fromPointXY(local)
        box = QgsRectangle(local.x(), local.y(), local.x(), local.y())
        for feature in layer.getFeatures(QgsFeatureRequest().setFilterRect(box)):
            if not feature.geometry().contains(here):
                continue
            upper = [n.upper() for n in names]
            timeline = feature.attribute(upper.index("TIMELINE"))
            code = _code(feature, names)
            try:
                intervals = parse_timeline("" if timeline is None or str(timeline) == "NULL" else str(timeline))
            except MineSARError as error:
                raise PickMessage(f"{name}, site {code}: {error}") from None
            if not intervals:
                raise PickMessage(f"{name}, site {code}: its TIMELINE is empty.")
            return Pick(layer.id(), name, SITES, code, f"{name} {code}", intervals=intervals)
        raise Miss(f"{name}: no site under the click.")
    raise ValueError(kind)


def pick(iface, point: QgsPointXY, kinds: Sequence[str] = ALL_KINDS, project=None) -> Pick:
    """Read the layer chosen by the rule of the module docstring at ``point`` (canvas CRS)."""
    project = project or QgsProject.instance()
    canvas = iface.mapCanvas()
    crs = canvas.mapSettings().destinationCrs()
    tolerance = TOLERANCE_PX * canvas.mapUnitsPerPixel()
    current = iface.activeLayer() if hasattr(iface, "activeLayer") else None
    kind = layer_kind(current)
    if kind in kinds:
        return read_layer(current, kind, point, crs, tolerance, project)
    for layer in _visible_layers_top_down(project):
        kind = layer_kind(layer)
        if kind not in kinds:
            continue
        try:
            return read_layer(layer, kind, point, crs, tolerance, project)
        except Miss:
            continue  # not under the click: the next layer down; anything else (nodata) is reported
    what = "a time-series raster or a points layer" if SITES not in kinds else (
        "a time-series raster (bands DYYYYMMDD), a points layer (DYYYYMMDD fields) or an active-sites layer")
    raise PickMessage(f"Nothing to read here: no visible {what} under the click.")
