"""Getis-Ord Gi* hot and cold spots of a raster (seed 001's Category-I comparison on a velocity map).

For each pixel i, with binary weights w_ij = 1 for the valid pixels j within the distance band
(the pixel itself included, hence the star):

    Gi* = (Σ_j w_ij x_j − X̄ W_i) / (S √((n W_i − W_i²) / (n − 1))),   W_i = Σ_j w_ij

X̄ and S (population standard deviation) over all n valid pixels of the raster, taken in a first
pass; NaN/nodata pixels are excluded from n, the means and every neighbour sum, and get no
score. Gi* is a z-score; p is two-sided from the normal distribution; classes as ArcGIS's Gi_Bin:
±3 at 99 % (p < 0.01), ±2 at 95 %, ±1 at 90 %, 0 otherwise, positive = hot.

The band is a circle in map units (an ellipse in pixels when pixels are not square), turned into
one run of columns per row offset; run sums come from per-row cumulative sums, so each output
strip is exactly what a whole-raster pass gives (the halo is the band's radius in rows), and the
cost is (2r + 1) array passes for a radius of r rows.
"""
import contextlib
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy.special import erfc

from .errors import MineSARError
from .io.rasters import AtomicGeoTiff, Window, describe, open_raster, read_window
from .preprocess.blocks import RunningStatistics, halo_strips, read_rows
from .progress import SILENT, Progress

CLASS_NODATA = -128
CONFIDENCE_LEVELS = ((3, 0.01), (2, 0.05), (1, 0.10))  # class, p below which it applies
CLASS_LABELS = {
    3: "Hot spot, 99% confidence", 2: "Hot spot, 95% confidence", 1: "Hot spot, 90% confidence",
    0: "Not significant",
    -1: "Cold spot, 90% confidence", -2: "Cold spot, 95% confidence", -3: "Cold spot, 99% confidence",
}
_BYTES_PER_PIXEL = 64  # values, mask and their float64 cumulative sums, plus outputs


@dataclass
class HotspotSummary:
    valid_pixels: int
    mean: float
    std: float
    rows_in_band: int
    pixels_in_band: int
    class_counts: Dict[int, int] = field(default_factory=dict)


def band_runs(distance: float, pixel_width: float, pixel_height: float) -> List[Tuple[int, int]]:
    """(row offset, half-width in columns) of the pixels whose centres lie within ``distance``."""
    reach = int(math.floor(distance / pixel_height + 1e-9))
    runs = []
    for dy in range(-reach, reach + 1):
        across = math.sqrt(max(0.0, distance ** 2 - (dy * pixel_height) ** 2))
        runs.append((dy, int(math.floor(across / pixel_width + 1e-9))))
    return runs


def band_sums(block: np.ndarray, runs, core: slice) -> np.ndarray:
    """Sum of ``block`` (nodata as 0) over the band around each pixel of the ``core`` rows;
    the block must hold the core's rows plus the band's reach above and below."""
    rows, cols = block.shape
    widest = max(half for _, half in runs)
    cumulative = np.zeros((rows, cols + 2 * widest + 1), np.float64)
    np.cumsum(block, axis=1, dtype=np.float64, out=cumulative[:, widest + 1:widest + 1 + cols])
    cumulative[:, widest + 1 + cols:] = cumulative[:, widest + cols:widest + 1 + cols]  # zeros to the right
    total = np.zeros((core.stop - core.start, cols), np.float64)
    for dy, half in runs:
        source = cumulative[core.start + dy:core.stop + dy]
        total += source[:, widest + half + 1:widest + half + 1 + cols] - source[:, widest - half:widest - half + cols]
    return total


def classify(z: np.ndarray, p: np.ndarray) -> np.ndarray:
    classes = np.zeros(z.shape, np.int16)
    for level, threshold in reversed(CONFIDENCE_LEVELS):  # 90 % first, then overwritten by 95, 99
        significant = p < threshold
        classes[significant] = level * np.sign(z[significant])
    classes[~np.isfinite(z)] = CLASS_NODATA
    return classes


def getis_ord_hotspots(
    path: str,
    classes_path: str,
    distance: float,
    z_path: Optional[str] = None,
    p_path: Optional[str] = None,
    band: int = 1,
    progress: Progress = SILENT,
    block_bytes: Optional[int] = None,
) -> HotspotSummary:
    """Gi* of band ``band`` of the raster at ``path`` with a ``distance`` band in map units (pixels
    when the raster has no geotransform); writes the classes and optionally z and p."""
    dataset = open_raster(path)
    info = describe(dataset)
    if not 1 <= band <= info.band_count:
        raise MineSARError(f"{path}: has {info.band_count} band(s), not band {band}.")
    if info.data_types and any(_is_complex(t) for t in info.data_types[band - 1:band]):
        raise MineSARError(f"{path}: complex values; Gi* needs a real raster (velocity, displacement…).")
    if not (distance > 0 and math.isfinite(distance)):
        raise MineSARError(f"DISTANCE = {distance}: the distance band must be a positive length.")
    geotransform = info.geotransform
    if geotransform is not None and (geotransform[2] or geotransform[4]):
        raise MineSARError(f"{path}: a rotated grid; resample it north-up first.")
    pixel_width, pixel_height = (abs(geotransform[1]), abs(geotransform[5])) if geotransform else (1.0, 1.0)
    if distance < min(pixel_width, pixel_height):
        raise MineSARError(
            f"DISTANCE = {distance:g} is less than one pixel ({pixel_width:g} × {pixel_height:g} map units): "
            "the band would hold only the pixel itself."
        )
    runs = band_runs(distance, pixel_width, pixel_height)
    reach = max(dy for dy, _ in runs)
    nodata = info.nodata[band - 1]

    def read(window: Window) -> np.ndarray:
        values = read_window(dataset, window, (band,)).astype(np.float64)
        if nodata is not None and not math.isnan(nodata):
            values[values == nodata] = np.nan
        values[~np.isfinite(values)] = np.nan
        return values

    width, height = info.width, info.height
    strips = list(halo_strips(height, width, _BYTES_PER_PIXEL, reach, block_bytes))
    steps = 2 * len(strips)
    statistics = RunningStatistics()
    for index, strip in enumerate(strips):  # pass 1: global mean and standard deviation
        progress.update(index / steps)
        statistics.add(read(Window(0, strip.start, width, strip.stop - strip.start)))
    n = statistics.count
    if n < 2:
        raise MineSARError(f"{path}: {n} valid pixel(s); Gi* needs a raster with valid values.")
    mean, std = statistics.mean, statistics.std
    if not std > 0:
        raise MineSARError(f"{path}: every valid pixel has the value {mean:g}; there is nothing to cluster.")

    counts = {level: 0 for level in CLASS_LABELS}
    common = dict(geotransform=geotransform, crs_wkt=info.crs_wkt)
    tags = {
        "MINESAR_PRODUCT": "Getis-Ord Gi* hot spots",
        "GI_SOURCE": path, "GI_BAND": str(band), "GI_DISTANCE": f"{distance:.9g}",
        "GI_MEAN": f"{mean:.9g}", "GI_STD": f"{std:.9g}", "GI_VALID_PIXELS": str(n),
    }
    outputs = [AtomicGeoTiff(classes_path, width, height, dtype=np.int16, nodata=CLASS_NODATA, metadata=tags,
                             band_descriptions=["Gi* class (3 = hot 99%, -3 = cold 99%)"], **common)]
    if z_path:
        outputs.append(AtomicGeoTiff(z_path, width, height, metadata=tags, band_descriptions=["Gi* z-score"], **common))
    if p_path:
        outputs.append(AtomicGeoTiff(p_path, width, height, metadata=tags, band_descriptions=["Gi* p-value (two-sided)"], **common))
    with contextlib.ExitStack() as stack:  # every output published together, or none
        opened = [stack.enter_context(output) for output in outputs]
        for index, strip in enumerate(strips):  # pass 2: neighbour sums and scores
            progress.update((len(strips) + index) / steps)
            values = read_rows(read, width, height, strip.read_start, strip.read_stop, dtype=np.float64)
            valid = np.isfinite(values)
            sums = band_sums(np.where(valid, values, 0.0), runs, strip.core)
            weights = np.rint(band_sums(valid.astype(np.float64), runs, strip.core))
            spread = std * np.sqrt(np.maximum(n * weights - weights ** 2, 0.0) / (n - 1))
            z = np.full(sums.shape, np.nan)
            centre_valid = valid[strip.core] & (spread > 0)
            z[centre_valid] = (sums[centre_valid] - mean * weights[centre_valid]) / spread[centre_valid]
            p = erfc(np.abs(z) / math.sqrt(2.0))
            classes = classify(z, p)
            for level in CLASS_LABELS:
                counts[level] += int(np.count_nonzero(classes == level))
            opened[0].write(classes, strip.start)
            extra = iter(opened[1:])
            if z_path:
                next(extra).write(z.astype(np.float32), strip.start)
            if p_path:
                next(extra).write(p.astype(np.float32), strip.start)
        progress.check_cancelled()
        opened[0].band_metadata[1] = {f"CLASS_{level}": str(count) for level, count in counts.items()}
    progress.finish()
    return HotspotSummary(n, mean, std, 2 * reach + 1, sum(2 * half + 1 for _, half in runs), counts)


def _is_complex(gdal_type) -> bool:
    from osgeo import gdal

    return bool(gdal.DataTypeIsComplex(gdal_type))
