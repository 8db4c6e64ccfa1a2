"""GAMMA binaries and parameter files, on the 17 real interferograms and on constructed cases."""
import shutil
from datetime import date

import numpy as np
import pytest
from conftest import SAMPLE_DIR, SAMPLE_LINES, SAMPLE_WIDTH, read_big_endian, sample_interferograms
from osgeo import gdal, osr

from minesar.core.errors import MineSARError
from minesar.core.importer import import_interferogram
from minesar.core.io import gamma
from minesar.core.io.interferogram import open_interferogram
from minesar.core.io.rasters import Window

DEM_PAR = SAMPLE_DIR / "20060619_utm_dem.par"
POST = 8.33333e-04


def whole(source):
    return source.read(Window(0, 0, source.width, source.height))


def test_sample_folder_has_the_17_interferograms():
    assert len(sample_interferograms()) == 17


def test_dem_par_is_parsed():
    par = gamma.read_par(str(DEM_PAR))
    assert par.grid() == (SAMPLE_WIDTH, SAMPLE_LINES)
    assert par.is_map
    assert par.number("corner_lat") == pytest.approx(-34.17)
    assert par.number("post_lon") == pytest.approx(POST)


def test_dem_par_georeference_is_pixel_centre_based():
    georef = gamma.dem_par_georeference(gamma.read_par(str(DEM_PAR)))
    # GAMMA's corner is the centre of the first pixel: the GDAL origin is half a post outside it.
    assert georef.geotransform == pytest.approx((150.91 - POST / 2, POST, 0.0, -34.17 + POST / 2, 0.0, -POST))
    srs = osr.SpatialReference(wkt=georef.crs_wkt)
    srs.AutoIdentifyEPSG()
    assert srs.GetAuthorityCode(None) == "4326"


@pytest.mark.parametrize("path", sample_interferograms(), ids=lambda p: p.name[:17])
def test_real_unwrapped_interferogram_reads_like_a_direct_big_endian_read(path):
    expected = read_big_endian(path)
    stamp1, stamp2 = path.name[:8], path.name[9:17]
    with open_interferogram(str(path)) as source:
        assert (source.width, source.height) == (SAMPLE_WIDTH, SAMPLE_LINES)
        values = whole(source)
        meta = source.metadata
        assert meta.kind == "unwrapped"
        assert meta.date1 == date(int(stamp1[:4]), int(stamp1[4:6]), int(stamp1[6:]))
        assert meta.date2 == date(int(stamp2[:4]), int(stamp2[4:6]), int(stamp2[6:]))
        frequency = gamma.read_par(str(SAMPLE_DIR / f"{stamp1}_slc.par")).number("radar_frequency")
        assert meta.radar_frequency_hz == frequency
        assert meta.wavelength_m == pytest.approx(299_792_458.0 / frequency, rel=1e-12)
        assert source.geotransform == pytest.approx(gamma.dem_par_georeference(gamma.read_par(str(DEM_PAR))).geotransform)
    # GAMMA writes 0 where it masked or did not unwrap: those become NaN, everything else is exact.
    np.testing.assert_array_equal(np.isnan(values), expected == 0)
    np.testing.assert_array_equal(values[expected != 0], expected[expected != 0])


def test_valid_share_matches_pyrate_statistics_of_the_same_file():
    # PyRate's .aux.xml of this pair says 97.37 % valid: zeros are its nodata as well.
    with open_interferogram(str(SAMPLE_DIR / "20060619-20061002_utm.unw")) as source:
        values = whole(source)
    assert 100 * np.isfinite(values).mean() == pytest.approx(97.37, abs=0.005)


def test_coherence_reads_as_coherence():
    path = SAMPLE_DIR / "20060619-20061002_utm.unw.cc"
    with open_interferogram(str(path)) as source:
        assert source.metadata.kind == "coherence"
        values = whole(source)
    np.testing.assert_array_equal(values, read_big_endian(path))
    assert 0 < np.nanmin(values) and np.nanmax(values) <= 1


def test_dates_in_names_agree_with_par_date_lines():
    for path in sample_interferograms():
        with open_interferogram(str(path)) as source:
            meta = source.metadata
        for which in (meta.date1, meta.date2):
            said = gamma.read_par(str(SAMPLE_DIR / f"{which:%Y%m%d}_slc.par")).acquisition_date()
            assert said == which


def test_incidence_heading_and_baseline_come_from_the_pars():
    with open_interferogram(str(SAMPLE_DIR / "20060619-20061002_utm.unw")) as source:
        meta = source.metadata
    assert meta.incidence_deg == pytest.approx(22.9671)
    assert meta.heading_deg == pytest.approx(193.1522256)
    assert meta.baseline_tcn_m == pytest.approx((0.1585592, 15.3525463, 9.7718029))


def test_import_of_all_17_writes_exact_georeferenced_geotiffs(tmp_path):
    for path in sample_interferograms():
        target = tmp_path / (path.stem + ".tif")
        with open_interferogram(str(path)) as source:
            summary = import_interferogram(source, str(target))
        expected = read_big_endian(path)
        dataset = gdal.Open(str(target))
        written = dataset.GetRasterBand(1).ReadAsArray()
        assert dataset.GetRasterBand(1).DataType == gdal.GDT_Float32
        np.testing.assert_array_equal(written[expected != 0], expected[expected != 0])
        assert np.isnan(written[expected == 0]).all()
        assert dataset.GetGeoTransform() == pytest.approx((150.91 - POST / 2, POST, 0, -34.17 + POST / 2, 0, -POST))
        tags = dataset.GetMetadata()
        assert tags["DATE1"] == f"{path.name[:4]}-{path.name[4:6]}-{path.name[6:8]}"
        assert tags["MINESAR_KIND"] == "unwrapped"
        assert float(tags["WAVELENGTH_M"]) == pytest.approx(0.0561967, abs=1e-6)
        assert summary.minimum == pytest.approx(float(expected[expected != 0].min()))


# --- width discovery and bad inputs -------------------------------------------------------------


def _only(folder, *names):
    for path in folder.iterdir():
        if path.name not in names:
            path.unlink()


def test_single_look_slc_par_is_never_used_for_the_width(gamma_dir):
    _only(gamma_dir, "20060619-20061002_utm.unw", "20060619_slc.par", "20061002_slc.par")
    with pytest.raises(MineSARError, match="cannot tell the width.*slc.par is never used"):
        open_interferogram(str(gamma_dir / "20060619-20061002_utm.unw"))


def test_width_override_imports_in_pixel_coordinates_only_when_allowed(gamma_dir):
    _only(gamma_dir, "20060619-20061002_utm.unw")
    path = gamma_dir / "20060619-20061002_utm.unw"
    with pytest.raises(MineSARError, match="no georeference"):
        open_interferogram(str(path), width=SAMPLE_WIDTH)
    with open_interferogram(str(path), width=SAMPLE_WIDTH, allow_pixel_coordinates=True) as source:
        assert not source.is_georeferenced
        assert source.height == SAMPLE_LINES


def test_width_that_does_not_divide_the_file_size_is_refused(gamma_dir):
    with pytest.raises(MineSARError, match="not a multiple of WIDTH=50"):
        open_interferogram(str(gamma_dir / "20060619-20061002_utm.unw"), width=50)


def test_width_contradicting_the_par_is_refused(gamma_dir):
    with pytest.raises(MineSARError, match="WIDTH=72 contradicts"):
        open_interferogram(str(gamma_dir / "20060619-20061002_utm.unw"), width=72, par=str(gamma_dir / "20060619_utm_dem.par"))


@pytest.mark.parametrize(
    "line, edited, message",
    [
        ("width:                47", "width:                40", "not a multiple of the width 40"),
        ("nlines:               72", "nlines:               70", "says 70 lines .* holds 72 lines"),
        ("width:                47", "width:                forty-seven", "'width' should be a number"),
    ],
)
def test_par_that_does_not_describe_the_file_is_refused(gamma_dir, line, edited, message):
    par = gamma_dir / "other.dem_par"
    par.write_text(DEM_PAR.read_text().replace(line, edited))
    with pytest.raises(MineSARError, match=message):
        open_interferogram(str(gamma_dir / "20060619-20061002_utm.unw"), par=str(par))


def test_two_pars_that_both_fit_but_disagree_are_contradictory(gamma_dir):
    # 72 × 47 holds the same number of pixels as 47 × 72: only a human can say which is right.
    (gamma_dir / "transposed.dem_par").write_text(
        DEM_PAR.read_text().replace("width:                47", "width:                72")
        .replace("nlines:               72", "nlines:               47")
    )
    path = gamma_dir / "20060619-20061002_utm.unw"
    with pytest.raises(MineSARError, match="contradictory parameter files"):
        open_interferogram(str(path))
    with open_interferogram(str(path), par=str(gamma_dir / "20060619_utm_dem.par")) as source:
        assert source.width == SAMPLE_WIDTH


def test_corrupt_par_is_reported(gamma_dir):
    par = gamma_dir / "broken.dem_par"
    par.write_bytes(b"\x00\x01\x02binary junk")
    with pytest.raises(MineSARError, match="broken.dem_par: corrupt GAMMA parameter file"):
        open_interferogram(str(gamma_dir / "20060619-20061002_utm.unw"), par=str(par))
    par.write_text("this is not a parameter file\n")
    with pytest.raises(MineSARError, match="corrupt GAMMA parameter file"):
        open_interferogram(str(gamma_dir / "20060619-20061002_utm.unw"), par=str(par))


def test_par_without_a_size_is_reported(gamma_dir):
    with pytest.raises(MineSARError, match="no raster size"):
        open_interferogram(str(gamma_dir / "20060619-20061002_utm.unw"), par=str(gamma_dir / "20060619-20061002_base.par"))


def test_date_line_contradicting_the_name_is_reported(gamma_dir):
    slc = gamma_dir / "20060619_slc.par"
    slc.write_text(slc.read_text().replace("date: 2006 06 19", "date: 2006 06 20"))
    with pytest.raises(MineSARError, match="contradictory par: its date is 2006-06-20 but the name says 2006-06-19"):
        open_interferogram(str(gamma_dir / "20060619-20061002_utm.unw"))


def test_truncated_file_is_reported(gamma_dir):
    path = gamma_dir / "20060619-20061002_utm.unw"
    path.write_bytes(path.read_bytes()[:-4 * 10])
    with pytest.raises(MineSARError, match="cannot tell the width"):
        open_interferogram(str(path))


def test_empty_and_missing_files_are_reported(gamma_dir):
    (gamma_dir / "empty.unw").write_bytes(b"")
    with pytest.raises(MineSARError, match="empty.unw: file is empty"):
        open_interferogram(str(gamma_dir / "empty.unw"))
    with pytest.raises(MineSARError, match="nothere.unw: file not found"):
        open_interferogram(str(gamma_dir / "nothere.unw"))


def test_non_interferogram_gamma_file_needs_a_kind(gamma_dir):
    with pytest.raises(MineSARError, match="holds height"):
        open_interferogram(str(gamma_dir / "20060619_utm.dem"))


# --- complex interferograms in radar coordinates ------------------------------------------------


def _write_complex_interferogram(folder, width=61, lines=37, seed=0):
    rng = np.random.default_rng(seed)
    z = (rng.normal(size=(lines, width)) + 1j * rng.normal(size=(lines, width))).astype(np.complex64)
    z[0, :5] = 0  # no signal: no phase
    z.astype(">c8").tofile(folder / "20200101_20200113.diff")
    (folder / "20200101_20200113.off").write_text(
        "Gamma Interferometric SAR Processor (ISP) - Offset Parameters\n"
        f"interferogram_width:          {width}\ninterferogram_azimuth_lines:  {lines}\n"
        "image_format:                 FCOMPLEX\n"
    )
    (folder / "20200101.mli.par").write_text(
        "date:  2020 01 01 10 00 00\nradar_frequency:  5.405e9 Hz\nincidence_angle: 39.1 degrees\n"
        f"range_samples: {width}\nazimuth_lines: {lines}\n"
    )
    return z


def test_complex_diff_with_off_par_gives_its_angle(tmp_path):
    z = _write_complex_interferogram(tmp_path)
    with pytest.raises(MineSARError, match="no georeference .*radar coordinates"):
        open_interferogram(str(tmp_path / "20200101_20200113.diff"))
    with open_interferogram(str(tmp_path / "20200101_20200113.diff"), allow_pixel_coordinates=True) as source:
        meta = source.metadata
        phase = whole(source)
    assert meta.kind == "wrapped"
    assert meta.date1 == date(2020, 1, 1) and meta.date2 == date(2020, 1, 13)
    assert meta.wavelength_m == pytest.approx(299_792_458.0 / 5.405e9)
    assert meta.incidence_deg == pytest.approx(39.1)
    assert np.isnan(phase[0, :5]).all()
    np.testing.assert_allclose(phase[1:], np.angle(z[1:]), atol=1e-6)


def test_complex_file_cannot_be_called_unwrapped(tmp_path):
    _write_complex_interferogram(tmp_path)
    with pytest.raises(MineSARError, match="complex, i.e. wrapped phase; KIND=unwrapped contradicts"):
        open_interferogram(str(tmp_path / "20200101_20200113.diff"), kind="unwrapped", allow_pixel_coordinates=True)


def test_utm_dem_par_gives_a_utm_crs(tmp_path):
    par = tmp_path / "scene.dem_par"
    par.write_text(
        "DEM_projection: UTM\nwidth: 10\nnlines: 8\ncorner_north: 6215000.0 m\ncorner_east: 300000.0 m\n"
        "post_north: -20.0 m\npost_east: 20.0 m\nellipsoid_name: WGS 84\nprojection_zone: 56\n"
        "false_northing: 10000000.0 m\n"
    )
    georef = gamma.dem_par_georeference(gamma.read_par(str(par)))
    srs = osr.SpatialReference(wkt=georef.crs_wkt)
    srs.AutoIdentifyEPSG()
    assert srs.GetAuthorityCode(None) == "32756"
    assert georef.geotransform == pytest.approx((299990.0, 20.0, 0.0, 6215010.0, 0.0, -20.0))


def test_unsupported_projection_is_named(tmp_path):
    par = tmp_path / "scene.dem_par"
    par.write_text("DEM_projection: LCC\nwidth: 10\nnlines: 8\n")
    with pytest.raises(MineSARError, match="map projection 'LCC' is not supported"):
        gamma.dem_par_georeference(gamma.read_par(str(par)))


def test_geocoded_name_picks_the_dem_par_copy(gamma_dir):
    shutil.copy(gamma_dir / "20060619-20061002_utm.unw", gamma_dir / "20060619-20061002.geo.unw")
    with open_interferogram(str(gamma_dir / "20060619-20061002.geo.unw")) as source:
        assert source.is_georeferenced


def test_date_and_frequency_from_the_given_par_when_the_name_has_none(tmp_path):
    _write_complex_interferogram(tmp_path)
    (tmp_path / "20200101_20200113.diff").rename(tmp_path / "filtered.diff")
    with open_interferogram(str(tmp_path / "filtered.diff"), par=str(tmp_path / "20200101.mli.par"),
                            allow_pixel_coordinates=True) as source:
        meta = source.metadata
    assert (meta.date1, meta.date2) == (date(2020, 1, 1), None)
    assert meta.radar_frequency_hz == 5.405e9


def test_slc_par_is_ignored_even_when_its_size_fits(gamma_dir):
    # A product whose size happens to equal the single-look grid still must not take it.
    _only(gamma_dir, "20060619_slc.par")
    width, lines = 8630, 8571
    with open(gamma_dir / "20060619-20061002.unw", "wb") as handle:
        handle.truncate(width * lines * 4)  # sparse: no disk is spent
    with pytest.raises(MineSARError, match="cannot tell the width") as raised:
        open_interferogram(str(gamma_dir / "20060619-20061002.unw"))
    assert "8630" not in str(raised.value)


def test_width_contradicting_a_fitting_neighbour_par_is_named(gamma_dir):
    with pytest.raises(MineSARError, match="WIDTH=72 contradicts 20060619_utm_dem.par next to it, whose 47 × 72"):
        open_interferogram(str(gamma_dir / "20060619-20061002_utm.unw"), width=72)


def test_contradictory_radar_frequencies_are_reported(tmp_path):
    _write_complex_interferogram(tmp_path)
    (tmp_path / "20200113.mli.par").write_text("date:  2020 01 13\nradar_frequency:  1.2575e9 Hz\n")
    with pytest.raises(MineSARError, match="20200113.mli.par: contradictory par: radar_frequency 1.2575e\\+09 Hz"):
        open_interferogram(str(tmp_path / "20200101_20200113.diff"), allow_pixel_coordinates=True)


def test_wavelength_source_names_the_par_that_gave_the_frequency(tmp_path):
    _write_complex_interferogram(tmp_path)
    first = tmp_path / "20200101.mli.par"
    first.write_text(first.read_text().replace("radar_frequency:  5.405e9 Hz\n", ""))
    (tmp_path / "20200113.mli.par").write_text("date:  2020 01 13\nradar_frequency:  5.405e9 Hz\n")
    with open_interferogram(str(tmp_path / "20200101_20200113.diff"), allow_pixel_coordinates=True) as source:
        assert source.metadata.wavelength_source == "radar_frequency in 20200113.mli.par"


def test_tile_outside_the_raster_is_refused_with_the_file_name(tmp_path):
    _write_complex_interferogram(tmp_path)
    with open_interferogram(str(tmp_path / "20200101_20200113.diff"), allow_pixel_coordinates=True) as source:
        with pytest.raises(MineSARError, match="20200101_20200113.diff: window .* outside the 61 × 37 raster"):
            source.read(Window(50, 30, 20, 20))
