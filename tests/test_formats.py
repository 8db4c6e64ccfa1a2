"""GeoTIFF phase/complex/colour rasters, LiCSAR and HyP3 conventions, names and dates."""
import math
from datetime import date

import numpy as np
import pytest
from osgeo import gdal

from conftest import write_geotiff

from minesar.core.errors import MineSARError
from minesar.core.importer import import_interferogram
from minesar.core.io.colours import brightness_from, phase_to_rgb, rgb_to_phase, wrap
from minesar.core.io.interferogram import open_interferogram
from minesar.core.io.products import SENTINEL1_WAVELENGTH_M, dates_from_name
from minesar.core.io.rasters import Window

def circular_error(a, b):
    return np.abs(np.angle(np.exp(1j * (np.asarray(a, np.float64) - np.asarray(b, np.float64)))))


def read_all(path, **kwargs):
    with open_interferogram(str(path), **kwargs) as source:
        return source.read(Window(0, 0, source.width, source.height)), source


def fringes(rows=40, cols=50):
    y, x = np.mgrid[0:rows, 0:cols]
    return wrap(0.37 * x + 0.11 * y - 3.0).astype(np.float32)


# --- rasmph colours ------------------------------------------------------------------------------


def test_phase_colour_phase_round_trip_is_within_hue_quantisation():
    phase = np.random.default_rng(0).uniform(-math.pi, math.pi, 200_000)
    recovered = rgb_to_phase(phase_to_rgb(phase))
    # 8-bit channels resolve 1/1530 of a cycle: half of that is the worst case.
    assert circular_error(recovered, phase).max() <= math.pi / 1530 + 1e-6


def test_hue_survives_rasmph_brightness():
    phase = np.random.default_rng(1).uniform(-math.pi, math.pi, (60, 60))
    amplitude = np.random.default_rng(2).gamma(2.0, 1.0, (60, 60))
    brightness = brightness_from(amplitude, float(amplitude.mean()))
    recovered = rgb_to_phase(phase_to_rgb(phase, brightness))
    lit = brightness > 0.5  # dim pixels keep fewer hue levels: compare where there is light
    assert circular_error(recovered[lit], phase[lit]).max() < 0.01


def test_colourless_pixels_have_no_phase():
    rgb = np.array([[[0, 0, 0], [128, 128, 128], [255, 255, 255], [255, 0, 0]]], dtype=np.uint8)
    phase = rgb_to_phase(rgb)
    assert np.isnan(phase[0, :3]).all()
    assert phase[0, 3] == pytest.approx(0.0)


def test_wrap_keeps_pi_and_folds_the_rest():
    np.testing.assert_allclose(wrap(np.array([math.pi, -math.pi, 3 * math.pi, 7.0])), [math.pi, math.pi, math.pi, 7.0 - 2 * math.pi])


def test_rasmph_colour_geotiff_imports_as_phase(tmp_path):
    phase = fringes()
    rgb = phase_to_rgb(phase)
    path = write_geotiff(tmp_path / "pair_rasmph.tif", np.moveaxis(rgb, -1, 0), gdal.GDT_Byte)
    values, source = read_all(path)
    assert source.metadata.kind == "wrapped"
    assert source.metadata.kind_reason == "rasmph colour image"
    assert circular_error(values, phase).max() <= math.pi / 1530 + 1e-6


def test_rgba_alpha_zero_is_nodata(tmp_path):
    rgb = np.moveaxis(phase_to_rgb(fringes()), -1, 0)
    alpha = np.full(rgb.shape[1:], 255, np.uint8)
    alpha[:5] = 0
    path = write_geotiff(tmp_path / "rgba.tif", list(rgb) + [alpha], gdal.GDT_Byte)
    values, _ = read_all(path)
    assert np.isnan(values[:5]).all() and np.isfinite(values[5:]).all()


# --- GeoTIFF phase, complex, kinds ------------------------------------------------------------------


def test_complex_geotiff_phase_is_its_angle(tmp_path):
    rng = np.random.default_rng(3)
    z = (rng.normal(size=(30, 40)) + 1j * rng.normal(size=(30, 40))).astype(np.complex64)
    values, source = read_all(write_geotiff(tmp_path / "z.tif", z, gdal.GDT_CFloat32))
    assert source.metadata.kind == "wrapped"
    np.testing.assert_allclose(values, np.angle(z), atol=1e-6)


def test_float_geotiff_keeps_zero_phase_and_uses_band_nodata(tmp_path):
    phase = fringes()
    phase[0, 0] = 0.0
    phase[1, 1] = -9999.0
    values, source = read_all(write_geotiff(tmp_path / "ifg.tif", phase, gdal.GDT_Float32, nodata=-9999.0))
    assert values[0, 0] == 0.0  # a plain GeoTIFF has no zero-is-nodata convention
    assert np.isnan(values[1, 1])
    assert source.metadata.kind == "wrapped"


def test_kind_from_value_range_when_nothing_else_says(tmp_path):
    unwrapped = (fringes() * 4).astype(np.float32)
    _, source = read_all(write_geotiff(tmp_path / "anonymous.tif", unwrapped, gdal.GDT_Float32))
    assert source.metadata.kind == "unwrapped" and "beyond ±π" in source.metadata.kind_reason
    _, source = read_all(write_geotiff(tmp_path / "anonymous2.tif", fringes(), gdal.GDT_Float32))
    assert source.metadata.kind == "wrapped"


def test_wrapped_kind_wraps_0_to_2pi_phase(tmp_path):
    phase = fringes()
    values, _ = read_all(write_geotiff(tmp_path / "x.tif", np.mod(phase, 2 * math.pi), gdal.GDT_Float32), kind="wrapped")
    assert circular_error(values, phase).max() < 1e-5 and values.max() <= math.pi


def test_coherence_outside_0_1_is_refused(tmp_path):
    path = write_geotiff(tmp_path / "x_coh.tif", np.full((10, 10), 3.0, np.float32), gdal.GDT_Float32)
    with pytest.raises(MineSARError, match="not a coherence"):
        read_all(path)


def test_geotiff_without_georeference_needs_permission(tmp_path):
    path = write_geotiff(tmp_path / "plain.tif", fringes(), gdal.GDT_Float32, georeferenced=False)
    with pytest.raises(MineSARError, match="plain.tif: no georeference"):
        read_all(path)
    values, source = read_all(path, allow_pixel_coordinates=True)
    assert not source.is_georeferenced and values.shape == (40, 50)


def test_wrong_band_layout_is_refused(tmp_path):
    path = write_geotiff(tmp_path / "two.tif", [fringes(), fringes()], gdal.GDT_Float32)
    with pytest.raises(MineSARError, match="2 bands of Float32: not an interferogram layout"):
        read_all(path)


def test_unknown_format_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a raster")
    with pytest.raises(MineSARError, match="notes.txt: not a raster this plugin can read"):
        read_all(path)


def test_minesar_geotiff_round_trips_its_metadata(tmp_path):
    rng = np.random.default_rng(4)
    z = (rng.normal(size=(30, 40)) + 1j * rng.normal(size=(30, 40))).astype(np.complex64)
    source_path = write_geotiff(tmp_path / "20210105_20210117_ifg.tif", z, gdal.GDT_CFloat32)
    with open_interferogram(source_path) as source:
        import_interferogram(source, str(tmp_path / "imported.tif"))
    values, again = read_all(tmp_path / "imported.tif")
    assert again.metadata.kind == "wrapped" and again.metadata.kind_reason == "MineSAR metadata"
    assert again.metadata.date1 == date(2021, 1, 5) and again.metadata.date2 == date(2021, 1, 17)
    assert again.metadata.wavelength_m == pytest.approx(SENTINEL1_WAVELENGTH_M)
    np.testing.assert_allclose(values, np.angle(z), atol=1e-6)


def test_pyrate_geotiff_metadata_is_understood(tmp_path):
    metadata = {"DATA_TYPE": "ORIGINAL_IFG", "FIRST_DATE": "2006-06-19", "SECOND_DATE": "2006-10-02",
                "WAVELENGTH_METRES": "0.0562356", "INCIDENCE_DEGREES": "22.9671"}
    _, source = read_all(write_geotiff(tmp_path / "a.tif", fringes() * 3, gdal.GDT_Float32, metadata=metadata))
    meta = source.metadata
    assert (meta.kind, meta.date1, meta.date2) == ("unwrapped", date(2006, 6, 19), date(2006, 10, 2))
    assert meta.wavelength_m == pytest.approx(0.0562356) and meta.incidence_deg == pytest.approx(22.9671)


# --- LiCSAR and HyP3 ------------------------------------------------------------------------------


def test_licsar_unwrapped_zero_is_nodata_and_metadata_is_read(tmp_path):
    frame = tmp_path / "frame"
    pair = frame / "interferograms" / "20200101_20200113"
    pair.mkdir(parents=True)
    (frame / "metadata.txt").write_text("master=20200101\nheading=-169.8\navg_incidence_angle=38.9\n")
    unwrapped = fringes() * 5
    unwrapped[:3] = 0.0
    values, source = read_all(write_geotiff(pair / "20200101_20200113.geo.unw.tif", unwrapped, gdal.GDT_Float32))
    meta = source.metadata
    assert meta.kind == "unwrapped" and meta.source_format == "LiCSAR"
    assert np.isnan(values[:3]).all() and np.isfinite(values[3:]).all()
    assert (meta.heading_deg, meta.incidence_deg) == (-169.8, 38.9)
    assert meta.wavelength_m == pytest.approx(SENTINEL1_WAVELENGTH_M)


def test_licsar_byte_coherence_is_scaled(tmp_path):
    stored = np.arange(0, 250, dtype=np.uint8).reshape(10, 25)
    values, source = read_all(write_geotiff(tmp_path / "20200101_20200113.geo.cc.tif", stored, gdal.GDT_Byte))
    assert source.metadata.kind == "coherence"
    assert np.isnan(values[0, 0])
    np.testing.assert_allclose(values.ravel()[1:], stored.ravel()[1:] / 255.0, rtol=1e-6)


def test_hyp3_products_and_their_metadata_file(tmp_path):
    product = "S1AA_20190610T135156_20190622T135157_VVP012_INT80_G_ueF_F8BF"
    (tmp_path / f"{product}.txt").write_text(
        "Reference Granule: S1A_IW_SLC__1SDV_20190610T135156\nBaseline: -46.3\nHeading: -167.05\n"
    )
    unwrapped = fringes() * 3
    unwrapped[-1] = 0
    values, source = read_all(write_geotiff(tmp_path / f"{product}_unw_phase.tif", unwrapped, gdal.GDT_Float32))
    meta = source.metadata
    assert (meta.kind, meta.source_format) == ("unwrapped", "HyP3")
    assert (meta.date1, meta.date2) == (date(2019, 6, 10), date(2019, 6, 22))
    assert meta.heading_deg == -167.05 and meta.extra["BPERP_M"] == "-46.3"
    assert np.isnan(values[-1]).all()
    _, coherence = read_all(write_geotiff(tmp_path / f"{product}_corr.tif", np.full((5, 5), 0.5, np.float32), gdal.GDT_Float32))
    assert coherence.metadata.kind == "coherence"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("20060619-20061002_utm.unw", (date(2006, 6, 19), date(2006, 10, 2))),
        ("20200101_20200113.geo.unw.tif", (date(2020, 1, 1), date(2020, 1, 13))),
        ("S1AA_20190610T135156_20190622T135157_VVP012_INT80_G_ueF_F8BF_corr.tif", (date(2019, 6, 10), date(2019, 6, 22))),
        ("S1_213524_IW1_20170411_20170517_VV_INT80_8E81_unw_phase.tif", (date(2017, 4, 11), date(2017, 5, 17))),
        ("diff_filt_HDR_130118-130129_4rlks.unw", (date(2013, 1, 18), date(2013, 1, 29))),
        ("961231-970105.int", (date(1996, 12, 31), date(1997, 1, 5))),
        ("no_dates_here.tif", (None, None)),
    ],
)
def test_dates_from_names(name, expected):
    assert dates_from_name(name) == expected


def test_impossible_date_in_a_name_is_reported():
    with pytest.raises(MineSARError, match="'20061340' in the name looks like a date but is not"):
        dates_from_name("20060619-20061340_utm.unw")


def test_paletted_colour_interferogram_imports_as_phase(tmp_path):
    # rasmph colours stored as a 256-entry colour table, as PNG/GIF exports do
    levels = np.linspace(-math.pi, math.pi, 256, endpoint=False)
    table = gdal.ColorTable()
    for index, rgb in enumerate(phase_to_rgb(levels)):
        table.SetColorEntry(index, (int(rgb[0]), int(rgb[1]), int(rgb[2]), 255))
    index = np.round((fringes() + math.pi) / (2 * math.pi) * 256).astype(np.int64) % 256
    path = write_geotiff(tmp_path / "ifg_palette.tif", index.astype(np.uint8), gdal.GDT_Byte)
    dataset = gdal.Open(path, gdal.GA_Update)
    dataset.GetRasterBand(1).SetColorTable(table)
    dataset.GetRasterBand(1).SetColorInterpretation(gdal.GCI_PaletteIndex)
    dataset = None
    values, source = read_all(path)
    assert source.metadata.kind == "wrapped"
    assert circular_error(values, levels[index]).max() <= math.pi / 1530 + 1e-6


def test_last_word_of_the_name_decides_the_kind(tmp_path):
    _, source = read_all(write_geotiff(tmp_path / "20060619-20061002_utm.unw.cc.tif",
                                       np.full((5, 5), 0.5, np.float32), gdal.GDT_Float32))
    assert source.metadata.kind == "coherence"


def test_reimport_keeps_the_original_format_and_extra_tags(tmp_path):
    product = "S1AA_20190610T135156_20190622T135157_VVP012_INT80_G_ueF_F8BF"
    (tmp_path / f"{product}.txt").write_text("Baseline: -46.3\nHeading: -167.05\n")
    path = write_geotiff(tmp_path / f"{product}_unw_phase.tif", fringes() * 3 + 10, gdal.GDT_Float32)
    with open_interferogram(path) as source:
        import_interferogram(source, str(tmp_path / "once.tif"))
    with open_interferogram(str(tmp_path / "once.tif")) as source:
        import_interferogram(source, str(tmp_path / "twice.tif"))
    tags = gdal.Open(str(tmp_path / "twice.tif")).GetMetadata()
    assert tags["SOURCE_FORMAT"] == "HyP3" and tags["BPERP_M"] == "-46.3" and tags["HEADING_DEG"] == "-167.05"
