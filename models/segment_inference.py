"""Whole-raster segmentation: overlapping tiles in batches through a segmenter, blended into a
probability raster and a mask raster (core.blending), both written by windows under temporary
names and published together only when complete."""
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from ..core.blending import StripBlender
from ..core.detection import overlapping_windows
from ..core.errors import MineSARError
from ..core.io.rasters import AtomicGeoTiff, Window
from ..core.progress import SILENT, Progress
from .detectors import encode_phase

MASK_NODATA = 255

# (input [C, tile, tile] float32, valid [window rows, window cols] bool) for one window.
TileReader = Callable[[Window], Tuple[np.ndarray, np.ndarray]]


@dataclass
class SegmentationRun:
    tiles: int
    tiles_skipped: int  # all no-data
    seconds: float
    pixels: int
    positive_pixels: int

    @property
    def megapixels_per_second(self) -> float:
        return 0.0 if self.seconds <= 0 else self.pixels / self.seconds / 1e6


def phase_reader(source, tile_size: int) -> TileReader:
    """Tiles of an open core.io interferogram as the "phase" input kind (cos/sin, 0 at no data)."""
    from .inference import read_wrapped_tile

    if source.metadata.kind == "coherence":
        raise MineSARError(f"{source.path}: this is a coherence raster ({source.metadata.kind_reason}); "
                           "subsidence segmentation needs an interferogram (wrapped or unwrapped phase, complex "
                           "values or rasmph colours).")

    def read(window: Window):
        phase = read_wrapped_tile(source, window, tile_size)
        return encode_phase(phase), np.isfinite(phase[: window.height, : window.width])

    return read


def optical_reader(image, normalisation: dict, tile_size: int) -> TileReader:
    """Tiles of an open core.io Orthophoto as the "optical" input kind: each band scaled by the
    checkpoint's scene percentiles exactly as in training (``segmenters.optical_input``), 0 outside
    the footprint."""
    from .segmenters import normalisation_limits, optical_input

    normalisation_limits(normalisation, image.info.band_count, image.path)  # checked before any tile is read

    def read(window: Window):
        block = image.read(window)
        valid = image.valid_mask(block)
        tile = np.zeros((block.shape[0], tile_size, tile_size), dtype=np.float32)
        tile[:, : window.height, : window.width] = optical_input(block, normalisation, valid)
        return tile, valid

    return read


def segment_to_rasters(
    read_tile: TileReader,
    width: int,
    height: int,
    model,
    device,
    probability_path: str,
    mask_path: str,
    geotransform: Optional[Sequence[float]] = None,
    crs_wkt: Optional[str] = None,
    tile_size: int = 256,
    overlap: int = 64,
    batch_size: int = 4,
    threshold: float = 0.5,
    tags: Optional[Dict[str, str]] = None,
    progress: Progress = SILENT,
    mirror: bool = False,
    cores_path: Optional[str] = None,
    turns: bool = False,
) -> SegmentationRun:
    """Probability (float32, NaN = no data) and mask (1 ≥ ``threshold``, 0 below, 255 no data)
    rasters of ``model`` over a ``width`` × ``height`` raster read by ``read_tile``; with ``mirror``
    each tile's probability is the mean of it and its mirror image's, with ``turns`` also of its
    quarter turns' (models/augment.py, SegmenterViews). A model
    with ``cores`` also writes its blended core map to ``cores_path`` (1 at core probability ≥
    core.segmentation.basin_cores.CORE_PROBABILITY), which ``probability_zones.zones`` parts
    touching basins with."""
    if not 0.0 < threshold < 1.0:
        raise MineSARError(f"Threshold {threshold}: use a probability strictly between 0 and 1.")
    if batch_size < 1:
        raise MineSARError(f"Batch size {batch_size}: use at least 1.")
    windows = overlapping_windows(width, height, tile_size, overlap)
    started = time.perf_counter()
    counts = {"skipped": 0, "positive": 0}
    from .augment import segmenter_views

    model = segmenter_views(model, mirror, turns)
    model.eval()
    tags = dict(tags or {})
    if geotransform is not None and (geotransform[2] or geotransform[4]):
        raise MineSARError("The raster's grid is rotated; warp it north-up first (Raster > Projections > Warp).")
    # Both files are finished before either is renamed into place, so a failure while writing or
    # flushing one of them leaves neither (a new mask never stands beside an old probability).
    probability_file = AtomicGeoTiff(probability_path, width, height, 1, np.float32, geotransform, crs_wkt, np.nan,
                                     dict(tags, MINESAR_PRODUCT="probability"), ["probability"], deferred=True)
    mask_file = AtomicGeoTiff(mask_path, width, height, 1, np.uint8, geotransform, crs_wkt, MASK_NODATA,
                              dict(tags, MINESAR_PRODUCT="mask", MINESAR_THRESHOLD=str(threshold)), ["mask"],
                              deferred=True)
    files = [probability_file, mask_file]
    if cores_path and getattr(model, "cores", False):
        files.append(AtomicGeoTiff(cores_path, width, height, 1, np.uint8, geotransform, crs_wkt, MASK_NODATA,
                                   dict(tags, MINESAR_PRODUCT="cores"), ["cores"], deferred=True))
    try:
        _blend_into(files, read_tile, windows, width, height, model, device, overlap, batch_size, threshold,
                    progress, counts)
        for file in files:
            file.publish()
    finally:
        for file in files:
            file.discard()
    return SegmentationRun(len(windows), counts["skipped"], time.perf_counter() - started, width * height,
                           counts["positive"])


def _blend_into(files, read_tile, windows, width, height, model, device, overlap, batch_size, threshold, progress,
                counts) -> None:
    import contextlib

    import torch

    from ..core.segmentation.basin_cores import CORE_PROBABILITY
    from .segmenters import segment_maps

    with contextlib.ExitStack() as stack:
        probability_out, mask_out, *cores_out = [stack.enter_context(file) for file in files]

        def write(first_row: int, rows: np.ndarray) -> None:
            probability_out.write(rows, first_row)
            mask = np.where(np.isfinite(rows), rows >= threshold, MASK_NODATA).astype(np.uint8)
            counts["positive"] += int(np.count_nonzero(mask == 1))
            mask_out.write(mask, first_row)

        def write_cores(first_row: int, rows: np.ndarray) -> None:
            cores_out[0].write(np.where(np.isfinite(rows), rows >= CORE_PROBABILITY, MASK_NODATA).astype(np.uint8),
                               first_row)

        # One blender per map: the core map is blended exactly as the probability is.
        blenders = [StripBlender(width, height, overlap, write)]
        if cores_out:
            blenders.append(StripBlender(width, height, overlap, write_cores))
        pending = []

        def release_before(row: int) -> None:
            for blender in blenders:
                blender.release_before(row)

        def run_batch(next_row: int) -> None:
            if pending:
                images = torch.from_numpy(np.stack([p[1] for p in pending])).to(device)
                with torch.no_grad():
                    maps = segment_maps(model, images).float().cpu().numpy()
                for (window, _, valid), tile_maps in zip(pending, maps):
                    for blender, probability in zip(blenders, tile_maps):
                        tile = probability[: window.height, : window.width].astype(np.float64)
                        blender.add(window, np.where(valid, tile, np.nan))
                pending.clear()
            release_before(next_row)

        for number, window in enumerate(windows):
            progress.update(number / len(windows))
            image, valid = read_tile(window)
            following = windows[number + 1].row if number + 1 < len(windows) else height
            if not valid.any():
                counts["skipped"] += 1
                if not pending:  # a run of no-data tiles must not hold its rows
                    release_before(following)
            else:
                pending.append((window, image, valid))
            if len(pending) == batch_size:
                run_batch(following)
        run_batch(height)
        for blender in blenders:
            blender.finish()
        progress.update(1.0)
