"""Displacement time series of one pixel, point or site, for the Time series dock.

What the dock shows, without Qt: the epochs of a MineSAR time-series GeoTIFF (one band per epoch,
descriptions ``DYYYYMMDD``, as ``minesar:sbasinversion`` writes them and InSAR Explorer reads
them), one pixel's series read through a 1 × 1 window of every band (never the whole raster), the
epochs of a point layer in MintPy's ``save_qgis`` layout (``DYYYYMMDD`` fields), the timeline of an
active site (``TIMELINE`` = ``YYYYMMDD_YYYYMMDD;…`` from ``minesar:surfaceactivity``), the
velocity line (the fit of core.sbas, so the dock and the velocity raster agree), the shift to a
reference pixel and the CSV table of the plotted curves.
"""
import csv
import math
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import MineSARError
from .sbas import decimal_years, velocity_fit

_EPOCH = re.compile(r"^D(\d{4})(\d{2})(\d{2})$")
_DAY = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def parse_epoch(name: str) -> Optional[date]:
    """The date of a band description or field name ``DYYYYMMDD``; None for anything else."""
    match = _EPOCH.match((name or "").strip())
    if not match:
        return None
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:  # D20211345: digits, but no calendar day
        return None


def epoch_fields(names: Sequence[str]) -> List[Tuple[str, date]]:
    """The ``DYYYYMMDD`` names among ``names`` (e.g. a layer's fields) with their dates, by date."""
    found = [(name, parse_epoch(name)) for name in names]
    return sorted(((n, d) for n, d in found if d is not None), key=lambda item: item[1])


def band_dates(dataset) -> Optional[List[date]]:
    """The epoch of every band of a GDAL dataset, or None if it is not a time-series raster.

    Band descriptions ``DYYYYMMDD`` first (MineSAR, MintPy exports); failing that the dataset's
    ``DATES`` tag (``YYYYMMDD YYYYMMDD …``, one per band, which MineSAR writes too).
    """
    count = dataset.RasterCount
    if count < 1:
        return None
    dates = [parse_epoch(dataset.GetRasterBand(b + 1).GetDescription()) for b in range(count)]
    if all(d is not None for d in dates):
        return dates
    tagged = (dataset.GetMetadataItem("DATES") or "").split()
    if len(tagged) == count and all(_DAY.match(t) for t in tagged):
        try:
            return [date(int(t[:4]), int(t[4:6]), int(t[6:8])) for t in tagged]
        except ValueError:
            return None
    return None


@dataclass
class PixelSeries:
    row: int
    col: int
    dates: List[date]
    values: np.ndarray  # float64, NaN where a band is nodata or NaN

    @property
    def empty(self) -> bool:
        return not np.isfinite(self.values).any()


def pixel_of(geotransform: Sequence[float], x: float, y: float) -> Tuple[int, int]:
    """(row, col) of the pixel holding map point (x, y); rotated geotransforms included."""
    g = geotransform
    det = g[1] * g[5] - g[2] * g[4]
    if det == 0:
        raise MineSARError(f"Degenerate geotransform {tuple(g)}: cannot locate a map point.")
    dx, dy = x - g[0], y - g[3]
    col = (g[5] * dx - g[2] * dy) / det
    row = (g[1] * dy - g[4] * dx) / det
    return int(math.floor(row)), int(math.floor(col))


def read_pixel_series(dataset, x: float, y: float, dates: Optional[List[date]] = None) -> Optional[PixelSeries]:
    """The series of the pixel under map point (x, y) (in the raster's CRS); None outside the raster.

    Reads a 1 × 1 window of every band, however big the raster. A band's nodata value and NaN
    become NaN (a gap); a band's scale and offset, when set, are applied.
    """
    if dates is None:
        dates = band_dates(dataset)
        if dates is None:
            raise MineSARError(f"{dataset.GetDescription()}: not a time series (bands are not named DYYYYMMDD).")
    row, col = pixel_of(dataset.GetGeoTransform(), x, y)
    if not (0 <= row < dataset.RasterYSize and 0 <= col < dataset.RasterXSize):
        return None
    block = dataset.ReadAsArray(col, row, 1, 1)
    if block is None:
        raise MineSARError(f"{dataset.GetDescription()}: could not read row {row}, column {col}.")
    values = np.asarray(block, dtype=np.float64).reshape(dataset.RasterCount)
    for index in range(dataset.RasterCount):
        band = dataset.GetRasterBand(index + 1)
        nodata = band.GetNoDataValue()
        if nodata is not None and values[index] == nodata:  # a NaN nodata: the value is NaN already
            values[index] = np.nan
            continue
        scale, offset = band.GetScale(), band.GetOffset()
        if scale not in (None, 1.0) or offset not in (None, 0.0):
            values[index] = values[index] * (1.0 if scale is None else scale) + (offset or 0.0)
    return PixelSeries(row, col, list(dates), values)


@dataclass
class LineFit:
    velocity: float  # per year (mm/yr for a series in mm)
    std: float  # standard deviation of the velocity, NaN with two epochs
    dates: List[date]  # first and last epoch with data
    values: np.ndarray  # the line at those two dates


def fit_line(dates: Sequence[date], values: np.ndarray) -> Optional[LineFit]:
    """The least-squares velocity of a series over calendar decimal years (as the velocity raster),
    over the epochs with data; None with fewer than two."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    if ok.sum() < 2:
        return None
    kept = [d for d, good in zip(dates, ok) if good]
    years = decimal_years(kept)
    slope, std, mean = velocity_fit(years, values[ok][:, None])
    ends = np.array([years[0], years[-1]])
    line = mean[0] + slope[0] * (ends - years.mean())
    return LineFit(float(slope[0]), float(std[0]), [kept[0], kept[-1]], line)


def subtract_reference(dates: Sequence[date], values: np.ndarray,
                       ref_dates: Sequence[date], ref_values: np.ndarray) -> np.ndarray:
    """``values − reference`` epoch by epoch (matched by date); NaN where either has no value."""
    lookup = {d: float(v) for d, v in zip(ref_dates, np.asarray(ref_values, dtype=np.float64))}
    reference = np.array([lookup.get(d, np.nan) for d in dates], dtype=np.float64)
    return np.asarray(values, dtype=np.float64) - reference


def series_table(curves: Sequence[Tuple[str, Sequence[date], np.ndarray]]) -> Tuple[List[str], List[list]]:
    """Header and rows of the curves ``(label, dates, values)`` on the union of their dates.

    One row per date (ascending), one column per curve; None where a curve has no value.
    """
    all_dates = sorted({d for _, dates, _ in curves for d in dates})
    columns = []
    for _, dates, values in curves:
        lookup = {d: float(v) for d, v in zip(dates, np.asarray(values, dtype=np.float64)) if math.isfinite(v)}
        columns.append([lookup.get(d) for d in all_dates])
    header = ["date"] + [label for label, _, _ in curves]
    rows = [[d] + [column[i] for column in columns] for i, d in enumerate(all_dates)]
    return header, rows


def write_csv(path: str, curves: Sequence[Tuple[str, Sequence[date], np.ndarray]]) -> None:
    """CSV of ``series_table``: ISO dates, values in the curves' unit, empty cells for gaps.

    Written to a temporary file beside ``path`` and moved into place.
    """
    header, rows = series_table(curves)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".minesar-", suffix=".csv", dir=folder)
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            for row in rows:
                writer.writerow([row[0].isoformat()] + ["" if v is None else repr(v) for v in row[1:]])
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def parse_timeline(text: str) -> List[Tuple[date, date]]:
    """Intervals of a site's ``TIMELINE`` (``YYYYMMDD_YYYYMMDD;…``), in the order given.

    An empty or NULL timeline is an empty list; a malformed piece raises an error quoting it.
    """
    intervals = []
    for piece in (text or "").split(";"):
        piece = piece.strip()
        if not piece:
            continue
        parts = piece.split("_")
        try:
            if len(parts) != 2 or not all(_DAY.match(p) for p in parts):
                raise ValueError
            first, last = (date(int(p[:4]), int(p[4:6]), int(p[6:8])) for p in parts)
        except ValueError:
            raise MineSARError(f"TIMELINE '{text}': '{piece}' is not YYYYMMDD_YYYYMMDD.") from None
        if last < first:
            raise MineSARError(f"TIMELINE '{text}': '{piece}' ends before it starts.")
        intervals.append((first, last))
    return intervals
