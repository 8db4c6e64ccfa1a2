"""Touching basins parted by their cores: the core target, the raster and vector splits (which
must draw the same lines), the evaluator's basin count, the whole-raster run and the network's
core output."""
import numpy as np
import pytest
import torch
from osgeo import gdal
from shapely.geometry import Point

from minesar.core.io.rasters import Window
from minesar.core.io.vectorize import polygonize
from minesar.core.segmentation.basin_cores import (
    MIN_CORE_PIXELS,
    core_centroids,
    core_parts,
    instance_cores,
    split_by_cores,
    split_polygon,
)
from minesar.models.evaluation import SegmentationEvaluator


def disk(shape, row, col, radius):
    rows, cols = np.indices(shape)
    return ((rows - row) ** 2 + (cols - col) ** 2 <= radius ** 2).astype(np.uint8)


def two_touching(shape=(96, 128)):
    """Two overlapping basins whose union is one region, and their instance masks."""
    return np.stack([disk(shape, 48, 40, 22), disk(shape, 50, 80, 24)])


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_the_cores_of_overlapping_basins_stay_apart():
    masks = two_touching()
    cores = instance_cores(masks, masks.shape[1:])
    labels, count = split_by_cores(cores > 0, np.zeros(cores.shape))
    assert count == 2  # the union of the extents is one region; the cores are two
    # A disk's core (inside distance ≥ half the largest) is the disk of half the radius.
    single = instance_cores(masks[:1], masks.shape[1:])
    assert single.sum() == pytest.approx(np.pi * 11 ** 2, rel=0.15)
    assert not single[masks[0] == 0].any()
    assert instance_cores(None, (4, 5)).shape == (4, 5) and not instance_cores(None, (4, 5)).any()


def test_a_region_holding_two_cores_is_split_between_them():
    masks = two_touching()
    union = masks.max(axis=0) > 0
    labels, count = split_by_cores(union, instance_cores(masks, union.shape))
    assert count == 2
    pieces = [labels == k for k in (1, 2)]
    best = sorted(max(iou(piece, mask > 0) for piece in pieces) for mask in masks)
    assert best[0] > 0.8
    # One core (or none, or only specks) leaves the region whole.
    assert split_by_cores(union, instance_cores(masks[:1], union.shape))[1] == 1
    assert split_by_cores(union, np.zeros(union.shape))[1] == 1
    specks = np.zeros(union.shape)
    specks[40:42, 30:32] = specks[40:42, 80:82] = 1  # 4 pixels each: under MIN_CORE_PIXELS
    assert split_by_cores(union, specks)[1] == 1
    # A second region elsewhere keeps its own label.
    union[5:10, 110:120] = True
    assert split_by_cores(union, instance_cores(masks, union.shape))[1] == 3


def test_the_vector_split_draws_the_raster_split():
    masks = two_touching()
    union = (masks.max(axis=0) > 0).astype(np.uint8)
    cores = (instance_cores(masks, union.shape) > 0).astype(np.uint8)
    labels, count = split_by_cores(union > 0, cores)
    (value, zone), = [(v, p) for v, p in polygonize(union, connectivity=8) if v == 1]
    seeds = [Point(col + 0.5, row + 0.5) for row, col in core_centroids(cores, union > 0)]
    pieces = split_polygon(zone, seeds)
    assert len(pieces) == count == 2
    assert sum(p.area for p in pieces) == pytest.approx(zone.area)
    rows, cols = np.indices(union.shape)
    for piece in pieces:
        inside = np.array([piece.contains(Point(c + 0.5, r + 0.5)) for r, c in zip(rows.ravel(), cols.ravel())])
        inside = inside.reshape(union.shape)
        assert max(iou(inside, labels == k) for k in (1, 2)) > 0.97
    assert split_polygon(zone, seeds[:1]) == [zone]


def dumbbell(shape=(64, 96), neck=3):
    """Two cores of radius 10 run together through a neck ``neck`` rows high."""
    core = disk(shape, 32, 28, 10) | disk(shape, 32, 64, 10)
    core[32 - neck // 2: 32 - neck // 2 + neck, 28:64] = 1
    return core


def test_cores_run_together_through_a_neck_are_parted_there():
    parts = core_parts(dumbbell() > 0)
    assert len(parts) == 2
    centres = sorted(np.argwhere(part).mean(axis=0)[1] for part in parts)
    assert centres == [pytest.approx(28, abs=1.5), pytest.approx(64, abs=1.5)]
    # A neck nearly as wide as the cores is no neck: one core (a peanut-shaped basin).
    assert len(core_parts(dumbbell(neck=17) > 0)) == 1
    # Single cores of any elongation, and a bump on a rim, stay whole.
    rows, cols = np.indices((64, 96))
    for a, b in ((12, 12), (30, 10), (40, 6)):
        ellipse = ((rows - 32) / b) ** 2 + ((cols - 48) / a) ** 2 <= 1
        assert len(core_parts(ellipse)) == 1
    bumped = disk((64, 96), 32, 48, 14) | disk((64, 96), 32, 64, 3)
    assert len(core_parts(bumped > 0)) == 1
    # The centroids of the core map: one per part, specks under MIN_CORE_PIXELS left out.
    core_map = dumbbell().astype(np.float32)
    core_map[2:4, 2:4] = 1.0
    assert MIN_CORE_PIXELS > 4 and len(core_centroids(core_map, np.ones(core_map.shape, bool))) == 2


@pytest.mark.parametrize("georeferenced", [True, False])
def test_a_zone_whose_cores_run_together_is_split_in_both_paths(tmp_path, georeferenced):
    from minesar.core.probability_zones import zones

    shape = (64, 96)
    extent = (disk(shape, 32, 28, 20) | disk(shape, 32, 64, 20)).astype(np.uint8)
    cores = dumbbell(shape)
    labels, count = split_by_cores(extent > 0, cores)
    assert count == 2
    driver = gdal.GetDriverByName("GTiff")
    paths = {}
    for name, array, kind in (("m", extent, gdal.GDT_Byte), ("p", extent.astype(np.float32), gdal.GDT_Float32),
                              ("c", cores, gdal.GDT_Byte)):
        paths[name] = str(tmp_path / f"{name}.tif")
        dataset = driver.Create(paths[name], shape[1], shape[0], 1, kind)
        if georeferenced:
            dataset.SetGeoTransform((500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0))
        dataset.GetRasterBand(1).WriteArray(array)
        dataset = None
    parted = zones(paths["m"], paths["p"], cores_path=paths["c"])
    assert len(parted) == 2 and sum(z.pixels for z in parted) == int(extent.sum())
    for zone in parted:
        col = (zone.polygon.centroid.x - 500000.0) / 30.0 if georeferenced else zone.polygon.centroid.x
        expected = labels == labels[32, int(col)]
        assert zone.pixels == pytest.approx(expected.sum(), rel=0.03)


def test_the_evaluator_counts_both_basins_when_the_cores_part_them():
    masks = two_touching()
    probability = masks.max(axis=0).astype(np.float32)
    depths = np.array([30.0, 40.0])
    plain, parted = SegmentationEvaluator(threshold=0.5), SegmentationEvaluator(threshold=0.5)
    plain.add(probability, truth_masks=masks, depth_mm=depths)
    parted.add(probability, truth_masks=masks, depth_mm=depths, cores=instance_cores(masks, probability.shape))
    assert (plain.result()["TP"], plain.result()["FN"]) == (1, 1)
    assert (parted.result()["TP"], parted.result()["FN"], parted.result()["FP"]) == (2, 0, 0)
    assert parted.result()["IoU_subsidence"] == plain.result()["IoU_subsidence"] == 1.0


class _MapsAsImages(torch.nn.Module):
    """A 'network' that answers its two input channels: the extent, then the cores."""

    task, input_kind, architecture, cores = "segmentation", "phase", "ecaunet", True

    def predict(self, images):
        return images[:, 0]

    def predict_maps(self, images):
        return images


def test_a_whole_raster_run_splits_the_zones_by_the_blended_cores(tmp_path):
    from minesar.core.probability_zones import zones
    from minesar.models.segment_inference import segment_to_rasters

    masks = two_touching((150, 190))
    extent = masks.max(axis=0).astype(np.float32)
    cores = instance_cores(masks, extent.shape)

    def read(window: Window):
        tile = np.zeros((2, 64, 64), dtype=np.float32)
        tile[0, : window.height, : window.width] = extent[window.slices]
        tile[1, : window.height, : window.width] = cores[window.slices]
        return tile, np.ones((window.height, window.width), dtype=bool)

    paths = {name: str(tmp_path / f"{name}.tif") for name in ("p", "m", "c")}
    # Tiles of 64 with overlap 16: the basins straddle several tile borders.
    segment_to_rasters(read, 190, 150, _MapsAsImages(), "cpu", paths["p"], paths["m"], tile_size=64, overlap=16,
                       threshold=0.5, cores_path=paths["c"])
    written = gdal.Open(paths["c"]).ReadAsArray()
    assert np.array_equal(written == 1, cores >= 0.5)
    parted = zones(paths["m"], paths["p"], cores_path=paths["c"])
    whole = zones(paths["m"], paths["p"])
    assert len(whole) == 1 and len(parted) == 2
    assert sum(z.pixels for z in parted) == whole[0].pixels == int(extent.sum())
    # A network without cores writes no core raster, whatever it is given.
    plain = _MapsAsImages()
    plain.cores = False
    segment_to_rasters(read, 190, 150, plain, "cpu", paths["p"], paths["m"], tile_size=64, overlap=16,
                       threshold=0.5, cores_path=str(tmp_path / "none.tif"))
    assert not (tmp_path / "none.tif").exists()


def _bowls(shape, centres, radius):
    """A wrapped interferogram of Gaussian bowls (cos/sin) and their instance masks."""
    rows, cols = np.indices(shape)
    depth, masks = np.zeros(shape), []
    for row, col in centres:
        squared = (rows - row) ** 2 + (cols - col) ** 2
        depth += np.exp(-squared / (2 * (radius / 2) ** 2))
        masks.append((squared <= radius ** 2).astype(np.uint8))
    phase = 12.0 * depth
    return np.stack([np.cos(phase), np.sin(phase)]).astype(np.float32), np.stack(masks)


def test_a_network_with_cores_learns_to_part_touching_basins(one_torch_thread, tmp_path):
    from minesar.models.checkpoint import load_model, save_checkpoint
    from minesar.models.registry import build_model
    from minesar.models.segnets import with_cores

    torch.manual_seed(0)
    scenes = [_bowls((64, 64), centres, 13) for centres in (((32, 20), (34, 44)), ((20, 30), (44, 36)))]
    images = torch.from_numpy(np.stack([image for image, _ in scenes]))
    targets = [{"masks": torch.from_numpy(masks)} for _, masks in scenes]
    model = build_model("ecaunet", base_width=8, cores=True)
    assert model.predict_maps(images).shape == (2, 2, 64, 64)
    assert {"loss_core_bce", "loss_core_dice"} <= set(model.losses(images, targets))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(150):
        loss = sum(model.losses(images, targets).values())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    path = str(tmp_path / "cores.pt")
    save_checkpoint(path, model, {})
    loaded, _ = load_model(path)
    assert loaded.cores and loaded.config()["cores"] is True
    for maps, target in zip(loaded.predict_maps(images).numpy(), targets):
        parted, plain = SegmentationEvaluator(threshold=0.5), SegmentationEvaluator(threshold=0.5)
        parted.add(maps[0], truth_masks=target["masks"], depth_mm=np.array([50.0, 50.0]), cores=maps[1])
        plain.add(maps[0], truth_masks=target["masks"], depth_mm=np.array([50.0, 50.0]))
        assert (plain.result()["TP"], plain.result()["FN"]) == (1, 1)  # the union matches one basin
        assert (parted.result()["TP"], parted.result()["FP"], parted.result()["FN"]) == (2, 0, 0)

    # Grown from a network without cores: the extent map is the old network's, unchanged.
    plain_net = build_model("ecaunet", base_width=8).eval()
    grown = with_cores(plain_net).eval()
    assert grown.cores and not plain_net.cores
    assert torch.equal(grown.predict_maps(images)[:, 0], plain_net.predict(images))
    assert torch.equal(grown.predict(images), plain_net.predict(images))
    with pytest.raises(Exception, match="cores"):
        with_cores(build_model("fcn8s", base_width=8, fc_channels=16))
