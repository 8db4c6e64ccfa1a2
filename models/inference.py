"""Whole-interferogram detection: overlapping tiles in batches through a detector, merged into one
polygon per basin (core.detection), in the raster's CRS."""
import time
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..core.detection import area_m2, merge_detections, overlapping_windows, pixel_size_m, tile_detections, to_map
from ..core.errors import MineSARError
from ..core.progress import Progress
from .detectors import encode_phase


# Mining basins reach a few km (seed 001/002: influence radii to ~1 km); beyond this an outline is
# a broad signal such as a groundwater bowl.
MAX_BASIN_EXTENT_M = 6000.0


@dataclass
class Basin:
    polygon: object  # shapely Polygon in the raster's CRS
    score: float
    area_m2: float


@dataclass
class DetectionRun:
    basins: List[Basin]
    tiles: int
    tiles_skipped: int  # all no-data: nothing to look at
    seconds: float
    pixels: int

    @property
    def megapixels_per_second(self) -> float:
        return 0.0 if self.seconds <= 0 else self.pixels / self.seconds / 1e6


def read_wrapped_tile(source, window, tile_size: int) -> np.ndarray:
    """[tile, tile] wrapped phase of ``window``, NaN-padded to a full tile."""
    values = source.read(window).astype(np.float32)
    if source.metadata.kind == "unwrapped":
        values = np.angle(np.exp(1j * values)).astype(np.float32)
    tile = np.full((tile_size, tile_size), np.nan, dtype=np.float32)
    tile[: values.shape[0], : values.shape[1]] = values
    return tile


def detect_interferogram(
    source,
    model,
    device,
    tile_size: int = 512,
    overlap: int = 128,
    batch_size: int = 4,
    score_threshold: float = 0.5,
    progress: Optional[Progress] = None,
    max_extent_m: Optional[float] = MAX_BASIN_EXTENT_M,
    mirror: bool = False,
) -> DetectionRun:
    """Every basin ``model`` finds in ``source`` (an open core.io InterferogramSource). Outlines
    wider or taller than ``max_extent_m`` (or than a tile) are dropped as non-mining signals.
    ``mirror``: each tile is also seen mirrored and the answers fused (models/augment.py)."""
    import torch

    from .augment import mirrored_predict

    progress = progress or Progress()
    if source.metadata.kind == "coherence":
        raise MineSARError(f"{source.path}: this is a coherence raster ({source.metadata.kind_reason}); detection "
                           "needs an interferogram (wrapped or unwrapped phase, complex values or rasmph colours).")
    if tile_size % 32:
        raise MineSARError(f"Tile size {tile_size}: use a multiple of 32 pixels (the detectors downsample by 32).")
    windows = overlapping_windows(source.width, source.height, tile_size, overlap)
    started = time.perf_counter()
    detections, skipped = [], 0
    model.eval()
    batch_windows, batch_tiles, batch_valid = [], [], []

    def run_batch():
        images = torch.from_numpy(np.stack(batch_tiles)).to(device)
        with torch.no_grad():
            predictions = mirrored_predict(model.predict, images) if mirror else model.predict(images)
        for window, valid, prediction in zip(batch_windows, batch_valid, predictions):
            masks = prediction.get("masks")
            detections.extend(tile_detections(
                window, source.width, source.height, valid,
                prediction["boxes"].float().cpu().numpy(), prediction["scores"].float().cpu().numpy(),
                None if masks is None else masks.float().cpu().numpy(), score_threshold))
        batch_windows.clear(), batch_tiles.clear(), batch_valid.clear()

    for number, window in enumerate(windows):
        progress.update(number / len(windows))
        phase = read_wrapped_tile(source, window, tile_size)
        valid = np.isfinite(phase)
        if not valid.any():
            skipped += 1
            continue
        batch_windows.append(window)
        batch_tiles.append(encode_phase(phase))
        batch_valid.append(valid)
        if len(batch_tiles) == batch_size:
            run_batch()
    if batch_tiles:
        run_batch()
    progress.update(1.0)

    basins = []
    limit = (float(tile_size), float(tile_size))
    metres = pixel_size_m(source.geotransform, source.crs_wkt, source.height)
    if max_extent_m and metres:
        limit = (min(limit[0], max_extent_m / metres[0]), min(limit[1], max_extent_m / metres[1]))
    for polygon, score in merge_detections(detections, max_extent_px=limit):
        # Without a georeference QGIS shows the raster at y = −row: the outlines must lie on it.
        mapped = to_map(polygon, source.geotransform or (0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
        basins.append(Basin(mapped, score, area_m2(mapped, source.crs_wkt)))
    basins.sort(key=lambda basin: -basin.score)
    return DetectionRun(basins, len(windows), skipped, time.perf_counter() - started, source.width * source.height)
