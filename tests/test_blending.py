"""Blended whole-raster segmentation with stand-in networks whose answers are known exactly."""
import numpy as np
import pytest
import torch
from osgeo import gdal

from minesar.core.blending import StripBlender, ramp, tile_weights
from minesar.core.detection import overlapping_windows
from minesar.core.errors import Cancelled, MineSARError
from minesar.core.io.rasters import Window
from minesar.core.progress import Progress
from minesar.models.segment_inference import MASK_NODATA, segment_to_rasters

WIDTH, HEIGHT = 203, 157  # not multiples of the tile or its step


class Constant(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def predict(self, images):
        return torch.full((images.shape[0],) + tuple(images.shape[2:]), self.value)


class FirstChannel(torch.nn.Module):
    """Probability = channel 0 of the input: a network that sees the same thing everywhere."""

    def predict(self, images):
        return images[:, 0].clamp(0, 1)


class TileMean(torch.nn.Module):
    """Probability = the tile's mean of channel 0: a different answer in every tile (seams)."""

    def predict(self, images):
        means = images[:, 0].mean(dim=(1, 2), keepdim=True)
        return means.expand(-1, images.shape[2], images.shape[3]).clamp(0, 1)


def array_reader(values, tile):
    def read(window: Window):
        block = values[window.row:window.row + window.height, window.col:window.col + window.width]
        image = np.zeros((1, tile, tile), dtype=np.float32)
        image[0, : window.height, : window.width] = np.nan_to_num(block)
        return image, np.isfinite(block)
    return read


def run(tmp_path, values, model, tile=64, overlap=16, batch=3, name="run", progress=None):
    probability, mask = str(tmp_path / f"{name}_p.tif"), str(tmp_path / f"{name}_m.tif")
    result = segment_to_rasters(array_reader(values, tile), values.shape[1], values.shape[0], model, "cpu",
                                probability, mask, tile_size=tile, overlap=overlap, batch_size=batch,
                                progress=progress or Progress())
    return result, gdal.Open(probability).ReadAsArray(), gdal.Open(mask).ReadAsArray()


def test_ramps_fade_only_at_inner_edges():
    assert np.allclose(ramp(8, 4, False, False), 1.0)
    assert np.allclose(ramp(8, 4, True, False), [0.125, 0.375, 0.625, 0.875, 1, 1, 1, 1])
    assert np.allclose(ramp(8, 4, True, True), [0.125, 0.375, 0.625, 0.875, 0.875, 0.625, 0.375, 0.125])
    weights = tile_weights(Window(0, 50, 64, 64), 100, 200, 16)
    assert weights[0, 0] < 0.05 and weights[-1, 0] < 0.05  # top and bottom inside the raster
    assert weights[32, 0] == 1.0  # left is the raster's border


def test_a_constant_probability_stays_constant_across_tile_borders(tmp_path):
    values = np.ones((HEIGHT, WIDTH), dtype=np.float32)
    values[100:130, 20:60] = np.nan  # no data
    result, probability, mask = run(tmp_path, values, Constant(0.7))
    valid = np.isfinite(values)
    assert result.tiles == len(overlapping_windows(WIDTH, HEIGHT, 64, 16)) > 9
    assert np.all(np.abs(probability[valid] - 0.7) < 1e-6)
    assert np.all(np.isnan(probability[~valid])) and np.all(mask[~valid] == MASK_NODATA)
    assert np.all(mask[valid] == 1) and result.positive_pixels == valid.sum()


def test_a_network_that_agrees_with_itself_gives_its_answer_exactly(tmp_path):
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    values = (0.5 + 0.45 * np.sin(xx / 17.0) * np.cos(yy / 23.0)).astype(np.float32)
    _, probability, mask = run(tmp_path, values, FirstChannel())
    assert np.allclose(probability, values, atol=1e-6)
    assert np.array_equal(mask == 1, values >= 0.5)


def test_blending_smooths_the_seams_of_disagreeing_tiles(tmp_path):
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    values = (xx / WIDTH).astype(np.float32)  # every tile has another mean
    _, hard, _ = run(tmp_path, values, TileMean(), overlap=0, name="hard")
    _, blended, _ = run(tmp_path, values, TileMean(), overlap=32, name="blended")
    jump = lambda a: np.abs(np.diff(a, axis=1)).max()  # noqa: E731
    # Without overlap the answer steps by a tile's change of mean (~0.3) at a border; blended it
    # changes by a fraction of that per pixel.
    assert jump(hard) > 0.25 and jump(blended) < 0.05
    assert np.allclose(blended[:, 0], hard[:, 0], atol=1e-6)  # near the raster's border one tile rules


def test_cancel_and_bad_settings_leave_nothing(tmp_path):
    values = np.ones((HEIGHT, WIDTH), dtype=np.float32)
    calls = []
    cancelling = Progress(is_cancelled=lambda: len(calls) > 3, callback=calls.append)
    with pytest.raises(Cancelled):
        run(tmp_path, values, Constant(0.2), progress=cancelling, name="cancelled")
    with pytest.raises(MineSARError, match="Threshold"):
        segment_to_rasters(array_reader(values, 64), WIDTH, HEIGHT, Constant(0.2), "cpu",
                           str(tmp_path / "t_p.tif"), str(tmp_path / "t_m.tif"), threshold=1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_rows_are_written_once_each_and_in_order():
    written = []
    blender = StripBlender(10, 25, 4, lambda row, rows: written.append((row, rows.shape[0])))
    for window in overlapping_windows(10, 25, 32, 4):
        blender.add(window, np.full((window.height, window.width), 0.5))
    blender.finish()
    assert written == [(0, 25)]
    written.clear()
    blender = StripBlender(40, 100, 8, lambda row, rows: written.append((row, rows.shape[0])))
    windows = overlapping_windows(40, 100, 32, 8)
    for window in windows:
        blender.release_before(window.row)
        blender.add(window, np.full((window.height, window.width), 0.5))
    blender.finish()
    assert written[0][0] == 0 and sum(n for _, n in written) == 100
    assert all(a[0] + a[1] == b[0] for a, b in zip(written, written[1:]))


def test_no_data_rows_are_never_held_whole(tmp_path, monkeypatch):
    # 3000 rows with data only in the last 100: rows are written at most a few tiles at a time.
    import minesar.models.segment_inference as inference

    sizes = []

    class Recording(inference.AtomicGeoTiff):
        def write(self, array, window_or_row, col=0, band=1):
            sizes.append(array.shape[0])
            super().write(array, window_or_row, col, band)

    monkeypatch.setattr(inference, "AtomicGeoTiff", Recording)
    values = np.full((3000, 40), np.nan, dtype=np.float32)
    values[-100:] = 1.0
    result, probability, mask = run(tmp_path, values, Constant(0.6), batch=4)
    assert result.tiles_skipped > 50 and max(sizes) <= 4 * 64
    assert np.all(np.isnan(probability[:-150])) and np.allclose(probability[-100:], 0.6)
    assert sum(sizes) == 2 * 3000  # every row once, in each raster


def test_a_failure_finishing_either_raster_publishes_neither(tmp_path, monkeypatch):
    import minesar.models.segment_inference as inference

    class FullDiskOnProbability(inference.AtomicGeoTiff):
        def __exit__(self, exc_type, exc, traceback):
            result = super().__exit__(exc_type, exc, traceback)
            if exc_type is None and self.path.endswith("_p.tif"):  # finished last, after the mask
                self.discard()
                raise MineSARError(f"{self.path}: writing failed (disk full)")
            return result

    monkeypatch.setattr(inference, "AtomicGeoTiff", FullDiskOnProbability)
    with pytest.raises(MineSARError, match="disk full"):
        run(tmp_path, np.ones((HEIGHT, WIDTH), dtype=np.float32), Constant(0.3))
    assert sorted(p.name for p in tmp_path.iterdir()) == []
