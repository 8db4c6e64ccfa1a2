"""Temporal Controller support: MineSAR layers that know their dates play in time.

What QGIS 3.22 can do, and what MineSAR sets:

- a vector layer whose features carry a time span: detections (``date1``/``date2`` of their
  interferogram) and surface-activity sites (``FIRST``/``LAST`` active date) get their start and
  end from expressions on those fields (``to_datetime`` of the field's digits, so ISO text, text
  YYYYMMDD and date fields all work; the plain field modes would compare text with datetimes). A
  feature shows in the frames its span overlaps; consecutive interferograms share a date and show
  one per frame, since QGIS compares the span's end exclusively;
- a raster of one pair (DATE1/DATE2 in its metadata: MineSAR's imports and simulations) gets the
  fixed range (date1, date2): the Temporal Controller steps from interferogram to interferogram
  (open at both ends: see ``open_range``);
- a time series (bands DYYYYMMDD, dates in its DATES metadata): from QGIS 3.38 each band gets the
  interval that ends at its epoch (FixedRangePerBand), so a frame shows the cumulative
  displacement reached at its end (QGIS keeps the renderer and swaps its band). QGIS 3.22 has
  no per-band ranges: the layer gets the fixed range of the whole series, visible while the
  controller is within it, always showing its styled band (the last epoch); ``epoch_layers``
  gives 3.22 the same animation as one ``vrt://`` band view per epoch, each with its range;
- SBAS points (fields DYYYYMMDD, one per epoch): every point exists over the whole series, and
  3.22 cannot drive a symbol by "the field of the current date", so they get the series' range.

Mine patches have no time span (a parcel exists all the time) and are left as they are.
"""
import re
from datetime import date, timedelta
from typing import Iterable, List, Optional, Sequence, Tuple

from qgis.core import (
    Qgis,
    QgsDateTimeRange,
    QgsProject,
    QgsRasterLayer,
    QgsRasterLayerTemporalProperties,
    QgsUnitTypes,
    QgsVectorLayer,
    QgsVectorLayerTemporalProperties,
)
from qgis.PyQt.QtCore import QDate, QDateTime, QTime

from ..core.errors import MineSARError
from ..core.io.rasters import read_tags
from ..core.timeseries import epoch_fields

# Per-band temporal ranges of rasters (QgsRasterLayerTemporalProperties.setFixedRangePerBand).
PER_BAND_VERSION = 33800
# (start field, end field) pairs, first match wins; matched case-insensitively.
SPAN_FIELDS = (("date1", "date2"), ("FIRST", "LAST"))


def qdatetime(day: date) -> QDateTime:
    return QDateTime(QDate(day.year, day.month, day.day), QTime(0, 0))


def date_range(first: date, last: date, include_end: bool = False) -> QgsDateTimeRange:
    return QgsDateTimeRange(qdatetime(first), qdatetime(last), True, include_end)


def per_band_supported() -> bool:
    return Qgis.QGIS_VERSION_INT >= PER_BAND_VERSION and hasattr(QgsRasterLayerTemporalProperties,
                                                                 "setFixedRangePerBand")


def _field_expression(name: str) -> str:
    # The first eight digits of whatever the field holds: ISO text, YYYYMMDD text, a date.
    quoted = '"' + name.replace('"', '""') + '"'
    return f"to_datetime(left(regexp_replace({quoted}, '[^0-9]', ''), 8), 'yyyyMMdd')"


def span_fields(layer: QgsVectorLayer) -> Optional[Tuple[str, str]]:
    names = {field.name().lower(): field.name() for field in layer.fields()}
    for start, end in SPAN_FIELDS:
        if start.lower() in names and end.lower() in names:
            return names[start.lower()], names[end.lower()]
    return None


def make_features_temporal(layer: QgsVectorLayer) -> bool:
    """Each feature shows over its own span (date1→date2 or FIRST→LAST); False if the layer has
    no such fields (it is left as it was)."""
    fields = span_fields(layer)
    if fields is None:
        return False
    properties = layer.temporalProperties()
    properties.setMode(QgsVectorLayerTemporalProperties.ModeFeatureDateTimeStartAndEndFromExpressions)
    properties.setStartExpression(_field_expression(fields[0]))
    properties.setEndExpression(_field_expression(fields[1]))
    properties.setIsActive(True)
    return True


def _set_fixed_range(layer, span: QgsDateTimeRange) -> None:
    properties = layer.temporalProperties()
    if isinstance(layer, QgsRasterLayer):
        properties.setMode(QgsRasterLayerTemporalProperties.ModeFixedTemporalRange)
    else:
        properties.setMode(QgsVectorLayerTemporalProperties.ModeFixedTemporalRange)
    properties.setFixedTemporalRange(span)
    properties.setIsActive(True)


def _parse(stamp: str) -> Optional[date]:
    stamp = re.sub(r"[^0-9]", "", stamp or "")[:8]
    if len(stamp) != 8:
        return None
    try:
        return date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]))
    except ValueError:
        return None


def raster_dates(layer: QgsRasterLayer) -> Tuple[Optional[date], Optional[date], List[date]]:
    """(date1, date2, epochs) from a raster's MineSAR metadata; missing parts are None / []."""
    try:
        tags, _ = read_tags(layer.source())
    except MineSARError:  # not a file GDAL opens (a WMS, a memory raster): no dates
        return None, None, []
    epochs = [d for d in (_parse(s) for s in tags.get("DATES", "").split()) if d is not None]
    return _parse(tags.get("DATE1", "")), _parse(tags.get("DATE2", "")), epochs


def open_range(first: date, last: date) -> QgsDateTimeRange:
    """(first, last), both ends excluded. QGIS compares a layer's range with a frame by the
    layer's own end flags only (QgsTemporalRange::overlaps), so [d1, d2) would still meet the
    frame [d0, d1) that ends where it begins; an open range meets the frames inside it only."""
    return QgsDateTimeRange(qdatetime(first), qdatetime(last), False, False)


def band_ranges(epochs: Sequence[date]) -> dict:
    """Band k + 1 (epoch k, 1-based bands) → (epoch k − 1, epoch k): a frame over an interval
    shows the displacement reached at its end, as the interferogram of that interval shows the
    motion within it. Band 1, the first epoch, is the series' zero and gets no range."""
    return {k + 1: open_range(epochs[k - 1], epochs[k]) for k in range(1, len(epochs))}


def make_raster_temporal(layer: QgsRasterLayer) -> str:
    """Set a raster's temporal range from its metadata. Returns what was set: "per band",
    "series" (3.22: the whole series), "pair", or "" (no dates, left as it was)."""
    date1, date2, epochs = raster_dates(layer)
    if len(epochs) > 1 and layer.bandCount() == len(epochs):
        if per_band_supported():
            properties = layer.temporalProperties()
            properties.setMode(Qgis.RasterTemporalMode.FixedRangePerBand)
            properties.setFixedRangePerBand(band_ranges(epochs))
            properties.setIsActive(True)
            return "per band"
        _set_fixed_range(layer, date_range(epochs[0], epochs[-1], include_end=True))
        return "series"
    if len(epochs) > 1:  # velocity, temporal coherence: one band for the whole series
        _set_fixed_range(layer, date_range(epochs[0], epochs[-1], include_end=True))
        return "series"
    if date1 and date2 and date1 != date2:
        first, last = sorted((date1, date2))
        _set_fixed_range(layer, open_range(first, last))
        return "pair"
    return ""


def epoch_layers(series: QgsRasterLayer, style) -> List[QgsRasterLayer]:
    """Where bands cannot have their own ranges (QGIS < 3.38): one layer per epoch after the first,
    each a GDAL ``vrt://…?bands=k`` view of the series' band k (no file is written) with that
    band's range, styled by ``style(layer)``: put in a group, they play the cumulative displacement
    frame by frame as the per-band mode would. [] for a layer that is not a dated time series."""
    _, _, epochs = raster_dates(series)
    if len(epochs) < 2 or series.bandCount() != len(epochs) or series.providerType() != "gdal":
        return []
    path = series.source().split("|")[0]
    layers = []
    for band, span in band_ranges(epochs).items():
        layer = QgsRasterLayer(f"vrt://{path}?bands={band}", f"{series.name()} {epochs[band - 1]:%Y-%m-%d}")
        if not layer.isValid():
            raise MineSARError(f"{path}: GDAL cannot open band {band} as a layer of its own (vrt://).")
        style(layer)
        _set_fixed_range(layer, span)
        layers.append(layer)
    return layers


def point_epochs(layer: QgsVectorLayer) -> List[date]:
    """The dates of a points layer's ``DYYYYMMDD`` fields (MintPy's save_qgis layout), in order."""
    return [day for _, day in epoch_fields([field.name() for field in layer.fields()])]


def make_points_temporal(layer: QgsVectorLayer) -> bool:
    """SBAS points (MintPy save_qgis layout): the range of their series (see the module note)."""
    epochs = point_epochs(layer)
    if len(epochs) < 2:
        return False
    _set_fixed_range(layer, date_range(epochs[0], epochs[-1], include_end=True))
    return True


def make_temporal(layer) -> str:
    """Whatever applies to ``layer``: "features", "points", a raster's mode, or ""."""
    if isinstance(layer, QgsRasterLayer):
        return make_raster_temporal(layer)
    if isinstance(layer, QgsVectorLayer):
        if make_features_temporal(layer):
            return "features"
        if make_points_temporal(layer):
            return "points"
    return ""


def make_added_layers_temporal(layers) -> List[str]:
    """For QgsProject.layersAdded: MineSAR products opened by hand (last week's detections, a
    time series, an imported pair) play in the Temporal Controller as those the algorithms load do.
    Layers whose time the user or the project already set are left alone. Returns the names set."""
    done = []
    for layer in layers:
        properties = layer.temporalProperties() if hasattr(layer, "temporalProperties") else None
        if properties is None or properties.isActive():
            continue
        if isinstance(layer, QgsRasterLayer) and layer.providerType() != "gdal":
            continue
        if make_temporal(layer):
            done.append(layer.name())
    return done


def with_temporal(style):
    """A layer post-processor's style function that also makes the layer temporal."""
    def apply(layer):
        style(layer)
        make_temporal(layer)

    return apply


def set_project_time(project: QgsProject, first: date, last: date, step_days: Optional[int] = None) -> None:
    """The project's time range (what the Temporal Controller starts from) and its step."""
    settings = project.timeSettings()
    settings.setTemporalRange(date_range(first, last, include_end=True))
    if step_days:
        settings.setTimeStep(float(step_days))
        settings.setTimeStepUnit(QgsUnitTypes.TemporalDays)


def frames(first: date, last: date, step_days: int) -> Iterable[QgsDateTimeRange]:
    """The Temporal Controller's frames over [first, last] by ``step_days``: [t, t + step)."""
    day = first
    while day < last:
        yield date_range(day, day + timedelta(days=step_days))
        day += timedelta(days=step_days)
