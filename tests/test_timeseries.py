"""core.timeseries: epochs, one pixel's series through a 1 × 1 read, velocity line, reference, CSV, timelines."""
import csv
import math
from datetime import date, timedelta

import numpy as np
import pytest
from conftest import write_geotiff
from osgeo import gdal

from minesar.core.errors import MineSARError
from minesar.core.timeseries import (
    band_dates, epoch_fields, fit_line, parse_epoch, parse_timeline, pixel_of, read_pixel_series, series_table,
    subtract_reference, write_csv,
)

DATES = [date(2020, 11, 3) + timedelta(days=36 * k) for k in range(6)]  # crosses a new year


def decimal_year(d):
    """MintPy's yyyymmdd2years, written out here as the independent truth."""
    return d.year + (d.timetuple().tm_yday - 1) / 365.25


def truth_series(rows=15, cols=20):
    t = np.array([(d - DATES[0]).days / 365.25 for d in DATES])
    velocity = -30 + 2.0 * np.arange(rows)[:, None] + 1.5 * np.arange(cols)[None, :]
    series = t[:, None, None] * velocity[None] + 4.0 * np.sin(2 * np.pi * t)[:, None, None]
    return (series - series[0]).astype(np.float32)


def write_series(path, series, nodata=None, descriptions=True, metadata=None):
    write_geotiff(path, series, gdal.GDT_Float32, nodata=nodata, metadata=metadata)
    dataset = gdal.Open(str(path), gdal.GA_Update)
    if descriptions:
        for k, d in enumerate(DATES):
            dataset.GetRasterBand(k + 1).SetDescription(f"D{d:%Y%m%d}")
    dataset = None
    return str(path)


def centre(row, col, geotransform=(500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0)):
    g = geotransform
    return (g[0] + (col + 0.5) * g[1] + (row + 0.5) * g[2], g[3] + (col + 0.5) * g[4] + (row + 0.5) * g[5])


def test_epoch_names():
    assert parse_epoch("D20210105") == date(2021, 1, 5)
    assert parse_epoch(" D20210105 ") == date(2021, 1, 5)
    for name in ("VELOCITY", "D2021010", "20210105", "D20211305", "d20210105x", "", None):
        assert parse_epoch(name) is None, name
    fields = ["CODE", "VEL", "D20210301", "COHERENCE", "D20210105", "D20219999"]
    assert epoch_fields(fields) == [("D20210105", date(2021, 1, 5)), ("D20210301", date(2021, 3, 1))]


def test_band_dates_from_descriptions_or_dates_tag(tmp_path):
    series = truth_series()
    named = gdal.Open(write_series(tmp_path / "named.tif", series))
    assert band_dates(named) == DATES
    tagged = gdal.Open(write_series(tmp_path / "tagged.tif", series, descriptions=False,
                                    metadata={"DATES": " ".join(f"{d:%Y%m%d}" for d in DATES)}))
    assert band_dates(tagged) == DATES
    plain = gdal.Open(write_series(tmp_path / "plain.tif", series, descriptions=False))
    assert band_dates(plain) is None
    wrong_count = gdal.Open(write_series(tmp_path / "short.tif", series, descriptions=False,
                                         metadata={"DATES": "20201103 20201209"}))
    assert band_dates(wrong_count) is None


def test_pixel_of_agrees_with_gdal_inverse_geotransform():
    rng = np.random.default_rng(3)
    for g in [(500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0), (1000.0, 20.0, 5.0, 3000.0, -4.0, -25.0)]:
        inverse = gdal.InvGeoTransform(g)
        for x, y in rng.uniform([g[0] - 100, g[3] - 600], [g[0] + 600, g[3] + 100], (200, 2)):
            col, row = gdal.ApplyGeoTransform(inverse, x, y)
            assert pixel_of(g, x, y) == (math.floor(row), math.floor(col))
    with pytest.raises(MineSARError, match="Degenerate"):
        pixel_of((0, 0, 0, 0, 0, 0), 1, 1)


def test_read_pixel_series_reads_the_pixel_with_gaps_and_nodata(tmp_path):
    series = truth_series()
    series[2, 4, 7] = np.nan  # a gap
    series[4, 4, 7] = -9999  # nodata
    series[:, 14, 19] = -9999  # a nodata pixel
    dataset = gdal.Open(write_series(tmp_path / "ts.tif", series, nodata=-9999))
    truth = truth_series()
    for row, col in [(0, 0), (3, 11), (14, 0), (0, 19), (9, 5)]:
        x, y = centre(row, col)
        read = read_pixel_series(dataset, x, y)
        assert (read.row, read.col) == (row, col) and read.dates == DATES
        np.testing.assert_array_equal(read.values, truth[:, row, col].astype(np.float64))
    # Anywhere inside the pixel, not only its centre.
    read = read_pixel_series(dataset, 500000.0 + 7 * 30 + 29.9, 4200000.0 - 4 * 30 - 0.1)
    assert (read.row, read.col) == (4, 7)
    expected = truth[:, 4, 7].astype(np.float64)
    expected[[2, 4]] = np.nan
    np.testing.assert_array_equal(read.values, expected)
    assert not read.empty
    assert read_pixel_series(dataset, *centre(14, 19)).empty
    for outside in [centre(-1, 3), centre(15, 3), centre(2, -1), centre(2, 20)]:
        assert read_pixel_series(dataset, *outside) is None
    with pytest.raises(MineSARError, match="not a time series"):
        read_pixel_series(gdal.Open(write_series(tmp_path / "plain.tif", series, descriptions=False)), *centre(1, 1))


def test_read_pixel_series_applies_scale_and_offset(tmp_path):
    stored = np.round(truth_series() * 100).astype(np.int16)
    path = write_geotiff(tmp_path / "int.tif", stored, gdal.GDT_Int16, nodata=-32768)
    dataset = gdal.Open(path, gdal.GA_Update)
    for k, d in enumerate(DATES):
        band = dataset.GetRasterBand(k + 1)
        band.SetDescription(f"D{d:%Y%m%d}")
        band.SetScale(0.01)
        band.SetOffset(0.5)
    dataset = None
    read = read_pixel_series(gdal.Open(path), *centre(6, 6))
    np.testing.assert_allclose(read.values, stored[:, 6, 6] * 0.01 + 0.5)


def test_fit_line_is_least_squares_over_calendar_decimal_years():
    values = truth_series()[:, 5, 9].astype(np.float64)
    years = np.array([decimal_year(d) for d in DATES])
    slope, intercept = np.polyfit(years, values, 1)
    fit = fit_line(DATES, values)
    assert fit.velocity == pytest.approx(slope, abs=1e-9)
    assert fit.dates == [DATES[0], DATES[-1]]
    np.testing.assert_allclose(fit.values, intercept + slope * years[[0, -1]], atol=1e-9)
    residual = values - (intercept + slope * years)
    expected_std = math.sqrt((residual ** 2).sum() / (len(years) - 2) / ((years - years.mean()) ** 2).sum())
    assert fit.std == pytest.approx(expected_std, rel=1e-9)
    # Gaps are left out of the fit; the line spans the epochs with data.
    gappy = values.copy()
    gappy[[0, 3]] = np.nan
    keep = np.isfinite(gappy)
    fit = fit_line(DATES, gappy)
    assert fit.velocity == pytest.approx(np.polyfit(years[keep], gappy[keep], 1)[0], abs=1e-9)
    assert fit.dates == [DATES[1], DATES[-1]]
    one = np.full(6, np.nan)
    one[2] = 3.0
    assert fit_line(DATES, one) is None


def test_subtract_reference_matches_dates():
    values = np.array([0.0, -2.0, -5.0, np.nan, -9.0])
    dates = DATES[:5]
    reference = np.array([0.0, 1.0, 2.0, 3.0])
    ref_dates = [DATES[0], DATES[2], DATES[1], DATES[4]]  # another order, one epoch missing
    np.testing.assert_array_equal(subtract_reference(dates, values, ref_dates, reference),
                                  [0.0, -4.0, -6.0, np.nan, -12.0])


def test_csv_round_trip_on_the_union_of_dates(tmp_path):
    a = ("ts (row 1, col 2)", DATES, np.array([0.0, -1.25, np.nan, -3.5, -4.0, -5.125]))
    b = ("points 0000042", [DATES[1], DATES[3], DATES[0] - timedelta(days=12)], np.array([1 / 3, 2.0, -0.5]))
    header, rows = series_table([a, b])
    assert header == ["date", a[0], b[0]]
    assert [r[0] for r in rows] == sorted(set(DATES) | set(b[1]))
    path = tmp_path / "series.csv"
    write_csv(str(path), [a, b])
    with open(path, newline="", encoding="utf-8") as stream:
        table = list(csv.reader(stream))
    assert table[0] == header
    by_date = {date.fromisoformat(r[0]): r[1:] for r in table[1:]}
    assert len(by_date) == 7
    for d, v in zip(a[1], a[2]):
        assert by_date[d][0] == ("" if np.isnan(v) else repr(float(v)))
    for d, v in zip(b[1], b[2]):
        assert float(by_date[d][1]) == v  # repr round-trips a float exactly
    assert by_date[DATES[2]][1] == ""
    assert not list(tmp_path.glob(".minesar-*"))  # the temporary file was moved into place


def test_parse_timeline():
    assert parse_timeline("20210105_20210117;20210129_20210210") == [
        (date(2021, 1, 5), date(2021, 1, 17)), (date(2021, 1, 29), date(2021, 2, 10))]
    assert parse_timeline("") == [] and parse_timeline(None) == [] and parse_timeline(" ; ") == []
    with pytest.raises(MineSARError, match="'20210105-20210117'"):
        parse_timeline("20210105-20210117")
    with pytest.raises(MineSARError, match="20211305_20211317"):
        parse_timeline("20210105_20210117;20211305_20211317")
    with pytest.raises(MineSARError, match="ends before"):
        parse_timeline("20210117_20210105")
