"""Dataset folders: label formats that agree, reproducible splits, real interferograms tiled."""
import json

import numpy as np
import pytest
from conftest import SAMPLE_DIR, write_geotiff
from osgeo import gdal
from shapely.geometry import Point, box

from minesar.core.dataset.layout import DatasetIndex, assign_splits, rasterize_rings
from minesar.core.dataset.tiling import LabelledRaster, build_dataset, rasterize_polygon, tile_starts
from minesar.core.errors import MineSARError
from minesar.core.io.colours import wrap
from minesar.core.io.interferogram import open_interferogram
from minesar.core.io.rasters import Window
from minesar.core.simulation.generate import simulate_dataset
from minesar.core.simulation.interferograms import SimulationRecipe

REAL = sorted(SAMPLE_DIR.glob("*_utm.unw"))


def read(path):
    return gdal.Open(str(path)).ReadAsArray()


def coco_rings(annotation):
    return [list(zip(poly[0::2], poly[1::2])) for poly in annotation["segmentation"]]


def check_formats_agree(folder):
    """Semantic mask, YOLO boxes and COCO polygons of every image describe the same instances."""
    index = DatasetIndex.open(str(folder))
    checked = 0
    for image in index.images():
        stem = index.stem(image)
        mask = read(folder / "masks" / f"{stem}.tif").astype(bool)
        annotations = index.annotations_of(image["id"])
        lines = (folder / "labels" / f"{stem}.txt").read_text().splitlines()
        assert len(lines) == len(annotations)
        union = np.zeros_like(mask)
        for line, annotation in zip(lines, annotations):
            instance = rasterize_rings(coco_rings(annotation), image["height"], image["width"])
            assert instance.sum() == annotation["area"] > 0
            rows, cols = np.nonzero(instance)
            x, y, w, h = annotation["bbox"]
            assert (cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1) == (x, y, w, h)
            values = [float(v) for v in line.split()]
            assert values[0] == 0
            assert values[1:] == pytest.approx([(x + w / 2) / image["width"], (y + h / 2) / image["height"],
                                                w / image["width"], h / image["height"]], abs=1e-6)
            union |= instance
            checked += 1
        assert np.array_equal(union, mask)
    return checked


def test_three_label_formats_agree_image_by_image(tmp_path):
    simulate_dataset(str(tmp_path / "ds"), SimulationRecipe(rows=96, cols=96, basin_count=(1, 5)), 15, seed=4)
    assert check_formats_agree(tmp_path / "ds") >= 15


def test_dataset_describes_itself_and_its_split(tmp_path):
    simulate_dataset(str(tmp_path / "ds"), SimulationRecipe(rows=32, cols=32), 20, seed=8, rgb=True)
    index = DatasetIndex.open(str(tmp_path / "ds"))
    assert index.description["images"] == 20 and index.description["recipe"]["rows"] == 32
    listed = index.split["train"] + index.split["val"] + index.split["test"]
    assert sorted(listed) == sorted(image["file_name"] for image in index.images())
    assert (len(index.split["train"]), len(index.split["val"]), len(index.split["test"])) == (14, 3, 3)
    assert index.split["seed"] == 8
    for image in index.images():
        assert image["file_name"] in index.split[image["split"]]
    dataset = gdal.Open(str(tmp_path / "ds" / "images" / "sim_000003.tif"))
    assert dataset.GetMetadata()["MINESAR_KIND"] == "wrapped" and dataset.GetMetadata()["DATE1"] == "2021-02-06"
    assert dataset.GetGeoTransform()[1] == 30.0 and "UTM zone 49N" in dataset.GetProjection()
    rgb = gdal.Open(str(tmp_path / "ds" / "rgb" / "sim_000003.tif"))
    assert rgb.RasterCount == 3 and rgb.GetRasterBand(1).DataType == gdal.GDT_Byte


def test_split_is_reproducible_and_independent_of_order():
    groups = [f"g{i}" for i in range(40)]
    first = assign_splits(groups, seed=3)
    assert first == assign_splits(list(reversed(groups)), seed=3)
    assert first != assign_splits(groups, seed=4)
    counts = {s: list(first.values()).count(s) for s in ("train", "val", "test")}
    assert counts == {"train": 28, "val": 6, "test": 6}
    small = assign_splits(["a", "b", "c"], seed=0)
    assert sorted(small.values()) == ["test", "train", "val"]
    with pytest.raises(MineSARError):
        assign_splits(groups, 0, {"train": 0, "val": 0, "test": 0})


def test_tile_offsets_cover_the_raster_and_stay_inside():
    assert tile_starts(1000, 416, 416) == [0, 416, 584]
    assert tile_starts(800, 800, 528) == [0]
    assert tile_starts(300, 800, 528) == [0]
    assert tile_starts(1400, 800, 528) == [0, 528, 600]
    for length, tile, step in ((1000, 256, 128), (7636, 800, 528), (257, 256, 128)):
        starts = tile_starts(length, tile, step)
        assert starts[0] == 0 and starts[-1] + tile == length
        assert all(b - a <= step for a, b in zip(starts, starts[1:]))


def test_real_interferogram_tiles_overlap_and_reassemble_to_the_original(tmp_path):
    path = str(REAL[0])
    with open_interferogram(path) as source:
        original = wrap(source.read(Window(0, 0, source.width, source.height)))
        geotransform = source.geotransform
        width, height = source.width, source.height
    x0, dx, _, y0, _, dy = geotransform
    label = Point(x0 + 20.5 * dx, y0 + 30.5 * dy).buffer(9 * dx)
    build_dataset(str(tmp_path / "ds"), [LabelledRaster(path, [label])], tile_size=32, step=24,
                  min_valid_fraction=0.0)
    index = DatasetIndex.open(str(tmp_path / "ds"))
    assert index.description["source"] == "real" and index.description["overlap"] == 0.25
    rebuilt = np.full((height, width), -99.0, dtype=np.float32)
    labels = np.zeros((height, width), dtype=bool)
    covered = np.zeros((height, width), dtype=int)
    for image in index.images():
        tile = read(index.path(image["file_name"]))
        mask = read(tmp_path / "ds" / "masks" / f"{index.stem(image)}.tif").astype(bool)
        row, col = image["source_row"], image["source_col"]
        # Overlapping tiles carry the same values where they overlap.
        previous = rebuilt[row:row + 32, col:col + 32]
        seen = covered[row:row + 32, col:col + 32] > 0
        assert np.array_equal(previous[seen], tile[seen], equal_nan=True)
        rebuilt[row:row + 32, col:col + 32] = tile
        labels[row:row + 32, col:col + 32] |= mask
        covered[row:row + 32, col:col + 32] += 1
        tile_dataset = gdal.Open(index.path(image["file_name"]))
        assert tile_dataset.GetGeoTransform()[0] == pytest.approx(x0 + col * dx)
        assert tile_dataset.GetMetadata()["MINESAR_WRAPPED_FROM"] == "unwrapped"
    assert covered.min() >= 1 and covered.max() > 1
    assert np.array_equal(rebuilt, original, equal_nan=True)
    # The label, rasterised on the whole raster, is what the tiles' masks put back together.
    whole = rasterize_polygon(
        Point(20.5, 30.5).buffer(9.0), height, width)
    assert labels.sum() > 200 and np.array_equal(labels, whole)
    assert check_formats_agree(tmp_path / "ds") > 0


def test_seed003_preset_rotates_tiles_and_their_labels_together(tmp_path):
    rng = np.random.default_rng(0)
    phase = wrap(rng.normal(0, 2, (300, 300))).astype(np.float32)
    raster = write_geotiff(tmp_path / "ifg_20210101_20210113.tif", phase, gdal.GDT_Float32,
                           metadata={"MINESAR_KIND": "wrapped"})
    x0, y0 = 500000.0, 4200000.0
    label = box(x0 + 30 * 100, y0 - 30 * 160, x0 + 30 * 180, y0 - 30 * 120)  # columns 100–180, rows 120–160
    build_dataset(str(tmp_path / "ds"), [LabelledRaster(raster, [label])], 256, 128, rotations=True,
                  min_valid_fraction=0.0, split_seed=5)
    index = DatasetIndex.open(str(tmp_path / "ds"))
    images = {index.stem(i): i for i in index.images()}
    assert len(images) == 4 * 4  # (0, 44) × (0, 44) offsets, each with three rotations
    for stem, image in images.items():
        if image["rotation_deg"] == 0:
            continue
        base = stem.rsplit("_rot", 1)[0]
        turns = image["rotation_deg"] // 90
        np.testing.assert_array_equal(read(index.path(image["file_name"])),
                                      np.rot90(read(index.path(images[base]["file_name"])), turns))
        np.testing.assert_array_equal(read(tmp_path / "ds" / "masks" / f"{stem}.tif"),
                                      np.rot90(read(tmp_path / "ds" / "masks" / f"{base}.tif"), turns))
        assert image["split"] == images[base]["split"] and image["group"] == images[base]["group"]
        assert gdal.Open(index.path(image["file_name"])).GetGeoTransform(can_return_null=True) is None
    first = read(tmp_path / "ds" / "masks" / "ifg_20210101_20210113_r00000_c00000.tif")
    assert first[120:160, 100:180].all() and first.sum() == 40 * 80
    assert check_formats_agree(tmp_path / "ds") == 16


def test_tiling_refuses_what_it_cannot_use(tmp_path):
    coherence = write_geotiff(tmp_path / "a.cc.tif", np.full((40, 40), 0.5, dtype=np.float32), gdal.GDT_Float32,
                              metadata={"MINESAR_KIND": "coherence"})
    with pytest.raises(MineSARError, match="a.cc.tif: is a coherence raster"):
        build_dataset(str(tmp_path / "ds"), [LabelledRaster(coherence, [])], 32, 32)
    plain = write_geotiff(tmp_path / "plain.tif", np.zeros((40, 40), dtype=np.float32), gdal.GDT_Float32,
                          georeferenced=False, metadata={"MINESAR_KIND": "wrapped"})
    with pytest.raises(MineSARError, match="plain.tif: no georeference"):
        build_dataset(str(tmp_path / "ds"), [LabelledRaster(plain, [])], 32, 32)
    with pytest.raises(MineSARError, match="Tile step 64"):
        build_dataset(str(tmp_path / "ds"), [LabelledRaster(str(REAL[0]), [])], 32, 64)
    assert not (tmp_path / "ds").exists()


def test_empty_and_mostly_invalid_tiles_are_skipped_on_request(tmp_path):
    phase = np.full((64, 128), np.nan, dtype=np.float32)
    phase[:, :64] = 0.5
    raster = write_geotiff(tmp_path / "half.tif", phase, gdal.GDT_Float32, metadata={"MINESAR_KIND": "wrapped"})
    label = box(500000.0 + 30 * 5, 4200000.0 - 30 * 20, 500000.0 + 30 * 20, 4200000.0 - 30 * 5)
    build_dataset(str(tmp_path / "all"), [LabelledRaster(raster, [label])], 32, 32, min_valid_fraction=0.5)
    described = json.loads((tmp_path / "all" / "dataset.json").read_text())
    assert described["images"] == 4 and described["skipped_tiles"] == 4
    build_dataset(str(tmp_path / "labelled"), [LabelledRaster(raster, [label])], 32, 32, keep_empty=False)
    assert json.loads((tmp_path / "labelled" / "dataset.json").read_text())["images"] == 1


def test_a_label_touching_a_tile_edge_is_no_instance_there_and_holes_are_filled(tmp_path):
    raster = write_geotiff(tmp_path / "w.tif", np.zeros((32, 64), dtype=np.float32), gdal.GDT_Float32,
                           metadata={"MINESAR_KIND": "wrapped"})
    x0, y0 = 500000.0, 4200000.0
    # Columns 10–31: its right edge lies exactly on the left edge of the tile at column 32.
    touching = box(x0 + 30 * 10, y0 - 30 * 20, x0 + 30 * 32, y0 - 30 * 10)
    ring = box(x0 + 30 * 40, y0 - 30 * 30, x0 + 30 * 60, y0 - 30 * 2).difference(
        box(x0 + 30 * 45, y0 - 30 * 25, x0 + 30 * 55, y0 - 30 * 7))
    build_dataset(str(tmp_path / "ds"), [LabelledRaster(raster, [touching, ring])], 32, 32, min_valid_fraction=0.0)
    index = DatasetIndex.open(str(tmp_path / "ds"))
    by_col = {image["source_col"]: index.annotations_of(image["id"]) for image in index.images()}
    assert len(by_col[0]) == 1 and by_col[0][0]["area"] == 22 * 10
    assert len(by_col[32]) == 1  # the ring only: the touching box left no line of pixels behind
    assert by_col[32][0]["area"] == 20 * 28  # its hole filled, as the COCO polygon has it
    assert check_formats_agree(tmp_path / "ds") == 2


def test_overlapping_tiles_never_fall_in_two_splits(tmp_path):
    phase = wrap(np.random.default_rng(2).normal(0, 2, (700, 700))).astype(np.float32)
    raster = write_geotiff(tmp_path / "big.tif", phase, gdal.GDT_Float32, metadata={"MINESAR_KIND": "wrapped"})
    described = build_dataset(str(tmp_path / "ds"), [LabelledRaster(raster, [])], 64, 32, min_valid_fraction=0.0,
                              split_seed=1)
    index = DatasetIndex.open(str(tmp_path / "ds"))
    images = index.images()
    assert described["border_tiles_left_out"] > 0 and described["split_block_m"] == 4 * 64 * 30.0
    assert all(described["split_counts"][s] > 0 for s in ("train", "val", "test"))
    for a in images:
        for b in images:
            overlap = (abs(a["source_row"] - b["source_row"]) < 64) and (abs(a["source_col"] - b["source_col"]) < 64)
            if overlap:
                assert a["split"] == b["split"]
    # The same ground in another interferogram of the area draws the same splits.
    other = write_geotiff(tmp_path / "later.tif", phase[::-1].copy(), gdal.GDT_Float32,
                          metadata={"MINESAR_KIND": "wrapped"})
    build_dataset(str(tmp_path / "two"), [LabelledRaster(raster, []), LabelledRaster(other, [])], 64, 32,
                  min_valid_fraction=0.0, split_seed=1)
    pairs = {}
    for image in DatasetIndex.open(str(tmp_path / "two")).images():
        pairs.setdefault((image["source_row"], image["source_col"]), set()).add(image["split"])
    assert all(len(splits) == 1 for splits in pairs.values())
