"""Surface activity and mine activity on constructed inputs with known answers."""
from datetime import date

import numpy as np
import pytest
from conftest import GEOTRANSFORM, write_geotiff
from osgeo import gdal
from shapely.geometry import Point, box

from minesar.core.activity import Detections, activity_class, mine_activity, surface_activity
from minesar.core.errors import MineSARError
from minesar.core.io.rasters import epsg_wkt

GRID = (0.0, 10.0, 0.0, 100.0, 0.0, -10.0)  # 10 × 10 px of 10 m
D = date


def _detections():
    """I1…I5 sequential with a gap (Jan 25 – Feb 6 not covered); 120 monitored days."""
    a1 = box(0, 70, 30, 100)          # site A in I1…
    a3 = box(10, 70, 40, 100)         # …and again in I3, shifted east (overlapping detections)
    c1 = box(40, 40, 50, 50)          # site C, once
    b = box(70, 10, 90, 30)           # site B in I2 and I5
    return [
        Detections("I1", D(2021, 1, 1), D(2021, 1, 13), [a1, c1]),
        Detections("I2", D(2021, 1, 13), D(2021, 1, 25), [b]),
        Detections("I3", D(2021, 2, 6), D(2021, 2, 18), [a3]),
        Detections("I4", D(2021, 2, 18), D(2021, 3, 14), []),
        Detections("I5", D(2021, 3, 14), D(2021, 5, 13), [b]),
    ]


def test_surface_activity_days_per_pixel_and_sites(tmp_path):
    out = tmp_path / "activity.tif"
    report = surface_activity(_detections(), GRID, 10, 10, epsg_wkt(32650), str(out))
    assert report.monitored_days == 12 + 12 + 12 + 24 + 60
    days = gdal.Open(str(out)).ReadAsArray()
    assert days[1, 0] == 12       # x = 5: A in I1 only
    assert days[1, 1] == 24       # x = 15: A in I1 and I3
    assert days[1, 3] == 12       # x = 35: A in I3 only
    assert days[8, 7] == 72       # B: I2 (12) + I5 (60)
    assert days[5, 4] == 12       # C
    assert days[5, 8] == 0
    assert days.sum() == 3 * 12 + 6 * 24 + 3 * 12 + 4 * 72 + 1 * 12
    sites = {s.code: s for s in report.sites}
    assert [sites[k].active_days for k in ("k1", "k2", "k3")] == [24, 12, 72]
    a, c, b = sites["k1"], sites["k2"], sites["k3"]
    assert a.footprint.equals(box(0, 70, 40, 100))  # overlapping detections merged into one site
    assert a.timeline == [(D(2021, 1, 1), D(2021, 1, 13)), (D(2021, 2, 6), D(2021, 2, 18))]
    assert (a.first_date, a.last_date) == (D(2021, 1, 1), D(2021, 2, 18))
    assert (a.share_percent, a.activity_class) == (pytest.approx(20.0), "moderate")
    assert (c.share_percent, c.activity_class) == (pytest.approx(10.0), "weak")
    assert (b.share_percent, b.activity_class) == (pytest.approx(60.0), "strong")


def test_one_interferogram_in_parts_and_overlapping_polygons_count_once(tmp_path):
    """Two overlapping polygons of one interferogram add its span once per pixel, and the same
    interferogram given as two parts (per-tile layers) is merged, not refused as overlapping."""
    whole = surface_activity(_detections(), GRID, 10, 10, None, str(tmp_path / "a.tif"))
    items = _detections()
    first = items.pop(0)  # I1 = a1 + c1 → three parts, two of them overlapping a1
    items += [Detections("I1 tile west", first.date1, first.date2, [first.geometries[0], box(5, 75, 25, 95)]),
              Detections("I1 tile east", first.date1, first.date2, [first.geometries[1], box(0, 80, 20, 100)])]
    split = surface_activity(items, GRID, 10, 10, None, str(tmp_path / "b.tif"))
    assert split.interferograms == 5 and split.monitored_days == whole.monitored_days == 120
    np.testing.assert_array_equal(gdal.Open(str(tmp_path / "b.tif")).ReadAsArray(),
                                  gdal.Open(str(tmp_path / "a.tif")).ReadAsArray())
    assert gdal.Open(str(tmp_path / "b.tif")).ReadAsArray()[1, 0] == 12  # I1 once, not three times
    assert [s.active_days for s in split.sites] == [s.active_days for s in whole.sites]


def test_classes_follow_the_paper_boundary():
    assert activity_class(15.2) == "weak" and activity_class(15.3) == "moderate"
    assert activity_class(61.1) == "strong"
    assert activity_class(20, strong_from=18) == "strong"


def test_overlapping_interferograms_are_refused(tmp_path):
    items = _detections() + [Detections("long", D(2021, 1, 1), D(2021, 2, 1), [])]
    with pytest.raises(MineSARError, match="overlaps .* in time"):
        surface_activity(items, GRID, 10, 10, None, str(tmp_path / "x.tif"))
    assert not (tmp_path / "x.tif").exists()


# --- mine activity: a 40 × 40 grid of 30 m (conftest GEOTRANSFORM) ---------------------------
def _xy(row, col):
    return GEOTRANSFORM[0] + (col + 0.5) * 30, GEOTRANSFORM[3] - (row + 0.5) * 30


BOWL = (slice(0, 12), slice(0, 7))     # 84 px subsiding at 20 mm/yr, centres 205–385 m west of near_bowl
DUMP = (slice(30, 40), slice(30, 40))  # 100 px rising at 12 mm/yr


def _velocity_field():
    rng = np.random.default_rng(3)
    velocity = rng.uniform(-4, 4, (40, 40)).astype(np.float32)
    velocity[BOWL] = -20.0
    velocity[DUMP] = 12.0
    coherence = np.full((40, 40), 0.9, np.float32)
    coherence[12:40, 0:21] = 0.1   # decorrelated south-west
    return velocity, coherence


@pytest.fixture
def deformation(tmp_path):
    velocity, coherence = _velocity_field()
    return (write_geotiff(tmp_path / "vel.tif", velocity, gdal.GDT_Float32, nodata=float("nan")),
            write_geotiff(tmp_path / "coh.tif", coherence, gdal.GDT_Float32))


X0, Y0 = GEOTRANSFORM[0], GEOTRANSFORM[3]
PATCHES = {
    "near_bowl": box(X0 + 400, Y0 - 200, X0 + 500, Y0 - 100),       # every bowl pixel within 400 m
    "far": box(X0 + 900, Y0 - 200, X0 + 1000, Y0 - 100),            # ≥ 700 m from any deformation
    "decorrelated": box(X0 + 150, Y0 - 1100, X0 + 250, Y0 - 1000),
    "dump": box(X0 + 1000, Y0 - 1100, X0 + 1050, Y0 - 1050),
    "outside": box(X0 + 2000, Y0 - 600, X0 + 2100, Y0 - 500),      # 800 m east of the raster's edge
}


def _buffer_pixels(patch, buffer_m=500.0):
    """(rows, cols) of the 40 × 40 grid whose centres lie within the buffer: the truth to count."""
    rows, cols = np.mgrid[0:40, 0:40]
    centres = [Point(_xy(r, c)) for r, c in zip(rows.ravel(), cols.ravel())]
    inside = np.array([patch.distance(p) <= buffer_m for p in centres]).reshape(40, 40)
    return inside


def test_mine_activity_classes_by_distance_and_coherence(deformation):
    velocity, coherence = deformation
    results = dict(zip(PATCHES, mine_activity(list(PATCHES.values()), velocity, coherence)))
    assert {k: r.activity_class for k, r in results.items()} == {
        "near_bowl": "negative", "far": "none", "decorrelated": "decorrelated", "dump": "positive",
        "outside": "no_data"}
    bowl = np.zeros((40, 40), bool)
    bowl[BOWL] = True
    near = _buffer_pixels(PATCHES["near_bowl"])
    assert near[bowl].all() and results["near_bowl"].pixels == near.sum()
    assert results["near_bowl"].counts["negative"] == 84 and results["near_bowl"].v_min == -20.0
    assert 84 >= 0.1 * near.sum()  # the bowl is over the default 10 % of the buffer…
    assert results["dump"].counts["positive"] == 100
    assert results["far"].counts["negative"] == results["far"].counts["positive"] == 0
    assert results["outside"].pixels == 0
    for result in results.values():
        assert sum(result.counts.values()) == result.pixels


def test_a_few_noisy_pixels_do_not_make_a_patch_deform(tmp_path):
    """Noise above the threshold on a few pixels (here 5 of 560) leaves a quiet patch "none";
    a tie in counts goes to the side moving more."""
    velocity, coherence = _velocity_field()
    velocity[2:4, 28:30] = 7.5   # 4 px north of "far"
    velocity[6, 31] = -6.0
    path = write_geotiff(tmp_path / "noisy.tif", velocity, gdal.GDT_Float32)
    far = mine_activity([PATCHES["far"]], path)[0]
    assert (far.counts["positive"], far.counts["negative"]) == (4, 1) and far.activity_class == "none"
    assert mine_activity([PATCHES["far"]], path, min_share=0.004)[0].activity_class == "positive"
    # Tie: as many pixels each way over a small buffer → the larger mean |v| wins.
    velocity[:] = 0.0
    velocity[5, 32], velocity[5, 33] = 9.0, -30.0
    tie = write_geotiff(tmp_path / "tie.tif", velocity, gdal.GDT_Float32)
    result = mine_activity([PATCHES["far"]], tie, min_share=0.001)[0]
    assert (result.counts["positive"], result.counts["negative"]) == (1, 1) and result.activity_class == "negative"


def test_south_up_grid_gives_the_same_classes(deformation, tmp_path):
    """A raster stored bottom row first (geotransform[5] > 0) covers the same ground."""
    velocity, coherence = _velocity_field()
    flipped = []
    for name, array in (("vel_s.tif", velocity), ("coh_s.tif", coherence)):
        dataset = gdal.GetDriverByName("GTiff").Create(str(tmp_path / name), 40, 40, 1, gdal.GDT_Float32)
        dataset.SetGeoTransform((X0, 30.0, 0.0, Y0 - 40 * 30.0, 0.0, 30.0))
        dataset.SetProjection(epsg_wkt(32650))
        dataset.GetRasterBand(1).WriteArray(array[::-1])
        dataset = None
        flipped.append(str(tmp_path / name))
    north = mine_activity(list(PATCHES.values()), *deformation)
    south = mine_activity(list(PATCHES.values()), *flipped)
    assert [(r.activity_class, r.counts, r.pixels) for r in south] == [(r.activity_class, r.counts, r.pixels) for r in north]


def test_buffer_decides_whether_the_bowl_belongs_to_a_patch(deformation):
    velocity, coherence = deformation
    patch = [PATCHES["near_bowl"]]
    # The bowl's nearest pixels are 205 m away; a low share isolates the distance rule.
    assert mine_activity(patch, velocity, coherence, buffer_m=150, min_share=0.01)[0].activity_class == "none"
    assert mine_activity(patch, velocity, coherence, buffer_m=250, min_share=0.01)[0].activity_class == "negative"
    # Without coherence the south-west is measured: the decorrelated patch becomes "none".
    assert mine_activity([PATCHES["decorrelated"]], velocity)[0].activity_class == "none"


def test_mismatched_coherence_grid_or_crs_is_refused(deformation, tmp_path):
    velocity, _ = deformation
    small = write_geotiff(tmp_path / "small.tif", np.ones((5, 5), np.float32), gdal.GDT_Float32)
    with pytest.raises(MineSARError, match="small.tif: not on the grid"):
        mine_activity([PATCHES["far"]], velocity, small)
    other = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "utm51.tif"), 40, 40, 1, gdal.GDT_Float32)
    other.SetGeoTransform(GEOTRANSFORM)
    other.SetProjection(epsg_wkt(32651))
    other = None
    with pytest.raises(MineSARError, match="utm51.tif: coordinate reference system .* differs"):
        mine_activity([PATCHES["far"]], velocity, str(tmp_path / "utm51.tif"))


# --- QGIS ------------------------------------------------------------------------------------
def _memory_layer(name, geometries, crs="EPSG:32650"):
    from qgis.core import QgsFeature, QgsGeometry, QgsVectorLayer

    layer = QgsVectorLayer(f"Polygon?crs={crs}&field=name:string", name, "memory")
    features = []
    for index, geometry in enumerate(geometries):
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromWkt(geometry.wkt))
        feature.setAttributes([str(index)])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    return layer


# The constructed case of the core test, moved onto UTM coordinates: its grid for the algorithm.
SITE_EXTENT = f"{X0},{X0 + 100},{Y0 - 300},{Y0 - 200} [EPSG:32650]"


def on_utm(geometry):
    """A core-test geometry (pixel units) moved into SITE_EXTENT."""
    return box(*(np.array(geometry.bounds) + [X0, Y0 - 300, X0, Y0 - 300]))


def detection_layers():
    """The core test's detections as memory layers, one per interferogram, dates in their names."""
    return [_memory_layer(f"{d.date1:%Y%m%d}_{d.date2:%Y%m%d}", [on_utm(g) for g in d.geometries])
            for d in _detections()]


def test_processing_surface_activity_from_layer_names(minesar_provider, tmp_path):
    import processing

    result = processing.run("minesar:surfaceactivity", {
        "INPUT": detection_layers(), "EXTENT": SITE_EXTENT, "PIXEL_SIZE": 10,
        "OUTPUT_ACTIVITY": str(tmp_path / "days.tif"), "OUTPUT_SITES": str(tmp_path / "sites.gpkg"),
    })
    assert result["SITES"] == 3 and result["MONITORED_DAYS"] == 120
    days = gdal.Open(result["OUTPUT_ACTIVITY"]).ReadAsArray()
    assert days[1, 1] == 24 and days[8, 7] == 72
    from qgis.core import QgsVectorLayer

    sites = {f["CODE"]: f for f in QgsVectorLayer(result["OUTPUT_SITES"], "s", "ogr").getFeatures()}
    assert sites["k3"]["CLASS"] == "strong" and sites["k3"]["TIMELINE"] == "20210113_20210125;20210314_20210513"


def _dated_layer(name, kind, rows, crs="EPSG:32650"):
    """A memory layer with date1/date2 fields of ``kind`` (date, datetime, string); rows are
    (geometry or None, date1 value, date2 value)."""
    from qgis.core import QgsFeature, QgsGeometry, QgsVectorLayer

    layer = QgsVectorLayer(f"Polygon?crs={crs}&field=date1:{kind}&field=date2:{kind}", name, "memory")
    features = []
    for geometry, d1, d2 in rows:
        feature = QgsFeature(layer.fields())
        if geometry is not None:
            feature.setGeometry(QgsGeometry.fromWkt(geometry.wkt))
        feature.setAttributes([d1, d2])
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)
    return layer


def test_processing_surface_activity_dates_from_fields_files_and_tiles(minesar_provider, tmp_path):
    """The constructed case again, its dates given every supported way: date, datetime and text
    fields, I1 split over two tile layers, I4 (no detection) by a feature with no geometry, I5
    by the file name of a layer whose own name has no date."""
    import processing
    from osgeo import ogr, osr
    from qgis.core import QgsVectorLayer
    from qgis.PyQt.QtCore import QDate, QDateTime, QTime

    i1, i2, i3, i4, i5 = _detections()
    qdate = lambda d: QDate(d.year, d.month, d.day)  # noqa: E731
    qdatetime = lambda d: QDateTime(qdate(d), QTime(13, 30))  # noqa: E731
    layers = [
        _dated_layer("tile west", "date", [(on_utm(i1.geometries[0]), qdate(i1.date1), qdate(i1.date2))]),
        _dated_layer("tile east", "datetime", [(on_utm(i1.geometries[1]), qdatetime(i1.date1), qdatetime(i1.date2))]),
        _dated_layer("iso text", "string", [(on_utm(g), i2.date1.isoformat(), i2.date2.isoformat()) for g in i2.geometries]),
        _dated_layer("compact text", "string", [(on_utm(g), f"{i3.date1:%Y%m%d}", f"{i3.date2:%Y%m%d}") for g in i3.geometries]),
        _dated_layer("quiet", "string", [(None, f"{i4.date1:%Y%m%d}", f"{i4.date2:%Y%m%d}")]),
    ]
    path = str(tmp_path / f"{i5.date1:%Y%m%d}_{i5.date2:%Y%m%d}.gpkg")
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32650)
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    out = dataset.CreateLayer("detections", srs, ogr.wkbPolygon)
    for g in i5.geometries:
        feature = ogr.Feature(out.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(on_utm(g).wkt))
        out.CreateFeature(feature)
    dataset = None
    layers.append(QgsVectorLayer(path, "detections", "ogr"))
    assert layers[-1].isValid()
    result = processing.run("minesar:surfaceactivity", {
        "INPUT": layers, "EXTENT": SITE_EXTENT, "PIXEL_SIZE": 10,
        "OUTPUT_ACTIVITY": str(tmp_path / "days.tif"), "OUTPUT_SITES": str(tmp_path / "sites.gpkg"),
    })
    # 120 days only if I4, with no detection at all, registered; I1 in two layers is one interferogram.
    assert result["SITES"] == 3 and result["MONITORED_DAYS"] == 120
    days = gdal.Open(result["OUTPUT_ACTIVITY"]).ReadAsArray()
    expected = str(tmp_path / "expected.tif")
    surface_activity(_detections(), GRID, 10, 10, None, expected)
    np.testing.assert_array_equal(days, gdal.Open(expected).ReadAsArray())
    sites = {f["CODE"]: f for f in QgsVectorLayer(result["OUTPUT_SITES"], "s", "ogr").getFeatures()}
    assert sites["k1"]["TIMELINE"] == "20210101_20210113;20210206_20210218"
    assert sites["k3"]["TIMELINE"] == "20210113_20210125;20210314_20210513"


def test_processing_surface_activity_refuses_a_field_that_is_no_date(minesar_provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    layer = _dated_layer("bad", "string", [(box(X0, Y0 - 300, X0 + 50, Y0 - 250), "last spring", "20210113")])
    with pytest.raises(QgsProcessingException, match="bad .* date1 = 'last spring', not a date"):
        processing.run("minesar:surfaceactivity", {
            "INPUT": [layer], "EXTENT": SITE_EXTENT, "PIXEL_SIZE": 10,
            "OUTPUT_ACTIVITY": str(tmp_path / "days.tif"), "OUTPUT_SITES": "TEMPORARY_OUTPUT"})


def test_processing_mine_activity_counts_classes(minesar_provider, deformation, tmp_path):
    import processing

    velocity, coherence = deformation
    layer = _memory_layer("patches", list(PATCHES.values()))
    result = processing.run("minesar:mineactivity", {
        "INPUT": layer, "VELOCITY": velocity, "COHERENCE": coherence, "OUTPUT": str(tmp_path / "mines.gpkg")})
    assert (result["COUNT_POSITIVE"], result["COUNT_NEGATIVE"], result["COUNT_NONE"], result["COUNT_DECORRELATED"],
            result["COUNT_NO_DATA"]) == (1, 1, 1, 1, 1)
    from qgis.core import QgsVectorLayer

    out = {f["name"]: f for f in QgsVectorLayer(result["OUTPUT"], "m", "ogr").getFeatures()}
    assert out["0"]["ACTIVITY"] == "negative" and out["0"]["N_NEG"] == 84
    assert out["4"]["ACTIVITY"] == "no_data" and out["4"]["N_PIXELS"] == 0


def test_field_values_become_dates(minesar_provider):
    from datetime import datetime

    from qgis.core import NULL
    from qgis.PyQt.QtCore import QDate, QDateTime, QTime

    from minesar.processing_provider.surface_activity import _to_date

    day = D(2021, 3, 14)
    for value in (day, datetime(2021, 3, 14, 23, 59), QDate(2021, 3, 14), QDateTime(QDate(2021, 3, 14), QTime(23, 59)),
                  "2021-03-14", "20210314", "2021-03-14T10:00:00", " 20210314 "):
        assert _to_date(value) == day, value
    for value in (None, NULL, QDate(), "", "2021-13-40", "202103141"):
        assert _to_date(value) is None, value


def test_processing_surface_activity_refuses_pixel_size_in_degrees(minesar_provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    layer = _memory_layer("20210101_20210113", [box(116.0, 37.0, 116.01, 37.01)], crs="EPSG:4326")
    with pytest.raises(QgsProcessingException, match="EPSG:4326 is geographic .* PIXEL_SIZE cannot be metres"):
        processing.run("minesar:surfaceactivity", {
            "INPUT": [layer], "EXTENT": "116,116.1,37,37.1 [EPSG:4326]", "PIXEL_SIZE": 30,
            "OUTPUT_ACTIVITY": str(tmp_path / "days.tif"), "OUTPUT_SITES": "TEMPORARY_OUTPUT"})
