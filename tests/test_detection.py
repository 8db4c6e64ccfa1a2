"""Whole-scene detection: tiling, the merge of cut basins, no-data, coordinates and areas.

The tiling is tested with a detector whose answer is known exactly: it reports every connected
region of non-zero phase (noise-free synthetic scenes make that the basin itself), so any error in
the polygons comes from the tiling and merging, not from a network.
"""
import numpy as np
import pytest
import torch
from conftest import GEOTRANSFORM, write_geotiff
from osgeo import gdal
from scipy import ndimage
from shapely.geometry import Point, box

from minesar.core.detection import (TileDetection, area_m2, merge_detections, overlapping_windows,
                                    touches_inner_edge)
from minesar.core.errors import MineSARError
from minesar.core.io.interferogram import open_interferogram
from minesar.models.detectors import DetectorMixin, encode_phase
from minesar.models.inference import detect_interferogram

PIXEL = 30.0


class NonZeroPhaseDetector(torch.nn.Module, DetectorMixin):
    """Every 8-connected region where the phase is not 0 is a basin, with score 0.9."""

    has_masks = True

    def predict(self, images):
        out = []
        for image in images:
            cos, sin = image[0].numpy(), image[1].numpy()
            signal = (np.abs(sin) > 1e-3) | (cos < 1 - 1e-3)
            signal &= (cos != 0) | (sin != 0)  # 0/0 is no data
            labels, count = ndimage.label(signal, structure=np.ones((3, 3)))
            boxes, masks = [], []
            for index, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
                boxes.append([cols.start, rows.start, cols.stop, rows.stop])
                masks.append(labels == index)
            out.append({"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                         "scores": torch.full((count,), 0.9),
                         "masks": torch.from_numpy(np.array(masks, dtype=np.float32).reshape(count, *signal.shape))})
        return out


def basin_phase(rows, cols, centres_radii):
    """Noise-free wrapped phase of conical basins: non-zero exactly inside each disc."""
    y, x = np.mgrid[0:rows, 0:cols] + 0.5
    phase = np.zeros((rows, cols), np.float32)
    for (cx, cy), radius in centres_radii:
        distance = np.hypot(x - cx, y - cy)
        phase += np.where(distance < radius, -12.0 * (1 - distance / radius) - 0.2, 0.0)
    return np.angle(np.exp(1j * phase)).astype(np.float32)


def detect(tmp_path, phase, tile=128, overlap=32):
    path = write_geotiff(tmp_path / "ifg.tif", phase, gdal.GDT_Float32, nodata=float("nan"),
                         metadata={"MINESAR_KIND": "wrapped"})
    with open_interferogram(path, "wrapped") as source:
        return detect_interferogram(source, NonZeroPhaseDetector(), torch.device("cpu"), tile_size=tile,
                                    overlap=overlap, batch_size=3)


def to_pixels(polygon):
    x0, dx, _, y0, _, dy = GEOTRANSFORM
    from shapely import affinity
    return affinity.affine_transform(polygon, [1 / dx, 0, 0, 1 / dy, -x0 / dx, -y0 / dy])


def test_tiles_cover_the_raster_and_overlap_as_asked():
    windows = overlapping_windows(300, 250, 128, 32)
    covered = np.zeros((250, 300), int)
    for window in windows:
        assert window.width == 128 and window.height == 128
        covered[window.slices] += 1
    assert covered.min() >= 1
    cols = sorted({w.col for w in windows})
    assert cols == [0, 96, 172]  # step 96, last pulled back to end at the border
    assert overlapping_windows(50, 40, 128, 32)[0].width == 50  # small raster: one short tile
    with pytest.raises(MineSARError, match="Overlap"):
        overlapping_windows(300, 300, 128, 100)


def test_inner_edges_only_count_inside_the_raster():
    windows = overlapping_windows(300, 300, 128, 32)
    first = windows[0]
    assert not touches_inner_edge((0, 0, 40, 40), first, 300, 300)  # raster corner
    assert touches_inner_edge((90, 10, 127, 40), first, 300, 300)  # right edge is inner


def test_merge_keeps_the_whole_copy_and_unites_cut_pieces():
    whole = TileDetection(Point(50, 50).buffer(10), 0.8, cut=False)
    same_whole = TileDetection(Point(50.5, 50).buffer(10), 0.95, cut=False)
    cut_of_it = TileDetection(box(40, 40, 52, 60), 0.9, cut=True)
    left_piece = TileDetection(box(200, 0, 230, 30), 0.7, cut=True)
    right_piece = TileDetection(box(228, 2, 260, 28), 0.6, cut=True)
    merged = merge_detections([whole, same_whole, cut_of_it, left_piece, right_piece])
    assert len(merged) == 2
    scores = sorted(score for _, score in merged)
    assert scores == [0.7, 0.95]
    big = max(merged, key=lambda item: item[0].area)[0]
    assert big.bounds == (200.0, 0.0, 260.0, 30.0)


def test_a_chain_of_cut_pieces_longer_than_a_tile_is_not_a_basin():
    # Edge detections along a broad bowl, one per 64-px tile, each overlapping the next: united they
    # would be one 300-px strip, wider than any tile could hold; a real cut basin stays.
    chain = [TileDetection(box(x, 100, x + 70, 130), 0.6, cut=True) for x in range(0, 240, 60)]
    basin = [TileDetection(box(400, 400, 440, 430), 0.8, cut=True), TileDetection(box(436, 402, 470, 428), 0.7, cut=True)]
    assert len(merge_detections(chain + basin)) == 2  # without a cap: the strip and the basin
    merged = merge_detections(chain + basin, max_extent_px=128)
    assert [polygon.bounds for polygon, _ in merged] == [(400.0, 400.0, 470.0, 430.0)]
    # A whole detection boxing a broad bowl is dropped the same way.
    bowl = TileDetection(box(600, 600, 900, 880), 0.9, cut=False)
    assert len(merge_detections([bowl] + basin, max_extent_px=128)) == 1


def test_pixel_sizes_in_metres_for_the_extent_limit():
    from minesar.core.detection import pixel_size_m
    from minesar.core.io.rasters import epsg_wkt

    assert pixel_size_m((500000.0, 30.0, 0.0, 4e6, 0.0, -30.0), epsg_wkt(32650)) == (30.0, 30.0)
    # 0.001° at 38° N (the middle of 2000 rows from 39° N): 87.7 m east-west, 111.3 m north-south.
    width, height = pixel_size_m((110.0, 0.001, 0.0, 39.0, 0.0, -0.001), epsg_wkt(4326), rows=2000)
    assert width == pytest.approx(111.32 * np.cos(np.radians(38.0)), abs=0.01) and height == pytest.approx(111.32, abs=0.01)
    assert pixel_size_m(None, None) is None
    # A limit per axis: 60 columns but 50 rows allowed.
    wide = TileDetection(box(0, 0, 57, 40), 0.9, cut=False)
    tall = TileDetection(box(100, 0, 140, 57), 0.9, cut=False)
    assert [p.bounds for p, _ in merge_detections([wide, tall], max_extent_px=(60.0, 50.0))] == [(0.0, 0.0, 57.0, 40.0)]


def test_neighbouring_basins_stay_two():
    a = TileDetection(Point(50, 50).buffer(10), 0.9, cut=False)
    b = TileDetection(Point(68, 50).buffer(10), 0.8, cut=False)  # overlapping rims, IoU ~0.1
    assert len(merge_detections([a, b])) == 2


def test_a_basin_straddling_tile_borders_is_one_polygon(tmp_path):
    # Tiles of 128 step 96: borders at 96 and 128 in x and y. The big basin (radius 40 > overlap)
    # is cut in every tile that sees it; the small one (radius 10) is whole in one tile.
    truth = [((112.0, 112.0), 40.0), ((240.0, 60.0), 10.0)]
    run = detect(tmp_path, basin_phase(300, 300, truth))
    assert len(run.basins) == 2
    found = sorted((to_pixels(b.polygon) for b in run.basins), key=lambda p: -p.area)
    for polygon, ((cx, cy), radius) in zip(found, truth):
        disc = Point(cx, cy).buffer(radius, 64)
        iou = polygon.intersection(disc).area / polygon.union(disc).area
        assert iou > 0.95, iou
        assert polygon.geom_type == "Polygon"
    expected_area = np.pi * 40.0 ** 2 * PIXEL ** 2
    largest = max(run.basins, key=lambda b: b.area_m2).area_m2
    assert abs(largest - expected_area) / expected_area < 0.02


def test_no_data_gives_no_basins(tmp_path):
    phase = basin_phase(256, 256, [((60.0, 60.0), 15.0), ((190.0, 190.0), 15.0)])
    phase[150:, 150:] = np.nan  # the second basin lies in a masked area
    run = detect(tmp_path, phase)
    assert len(run.basins) == 1
    assert to_pixels(run.basins[0].polygon).distance(Point(60, 60)) == 0
    empty = detect(tmp_path, np.full((256, 256), np.nan, np.float32))
    assert empty.basins == [] and empty.tiles_skipped == empty.tiles


def test_area_in_a_geographic_crs_is_in_square_metres():
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    degree = 0.001  # at 60° N: 111.3 m × 55.7 m
    area = area_m2(box(10, 60, 10 + degree, 60 + degree), srs.ExportToWkt())
    assert area == pytest.approx(111_319.5 * 111_319.5 * 0.5 * degree ** 2, rel=1e-3)


def test_encoding_is_zero_at_no_data_and_continuous_across_the_wrap():
    encoded = encode_phase(np.array([[np.pi - 1e-4, -np.pi + 1e-4, np.nan]], np.float32))
    assert np.allclose(encoded[:, 0, 0], encoded[:, 0, 1], atol=1e-3)
    assert (encoded[:, 0, 2] == 0).all()


def test_a_checkpoint_whose_config_builds_no_network_is_named(tmp_path):
    from minesar.models.checkpoint import load_detector, save_checkpoint
    from minesar.models.registry import build_detector

    path = save_checkpoint(str(tmp_path / "odd.pt"), build_detector("yolobasin"), {})
    content = torch.load(path, weights_only=True)
    content["config"]["scale"] = "xl"
    torch.save(content, path)
    with pytest.raises(MineSARError, match="odd.pt: its configuration does not build a 'yolobasin' network"):
        load_detector(path)


def test_reports_write_undefined_ratios_as_null_and_leave_nothing_on_failure(tmp_path):
    import json

    from minesar.core.reports import write_json_report

    path = write_json_report(str(tmp_path / "r" / "report.json"), {"kappa": float("nan"), "f1": np.float32(0.5)})
    assert json.loads(open(path).read()) == {"kappa": None, "f1": 0.5}
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(MineSARError, match="cannot write the report"):
        write_json_report(str(blocked / "report.json"), {})
