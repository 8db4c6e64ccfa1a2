"""Getis-Ord Gi* hot and cold spots of a raster (seed 001's Category-I comparison on a velocity map).

For each pixel i, with binary weights w_ij = 1 for the valid pixels j within the distance band
(the pixel itself included, hence the star):

    Gi* = (Σ_j w_ij x_j − X̄ W_i) / (S √((n W_i − W_i²) / (n − 1))),   W_i = Σ_j w_ij

X̄ and S (population standard deviation) over all n valid pixels of the raster, taken in a first
pass; NaN/nodata pixels are excluded from n, the means and every neighbour sum, and get no
score. Gi* is a z-score; p is two-sided from the normal distribution; classes as ArcGIS's Gi_Bin:
±3 at 99 % (p < 0.01), ±2 at 95 %, ±1 at 90 %, 0 otherwise, positive = hot.

The band is a circle of DISTANCE metres (an ellipse in pixels when pixels are not square), turned
into one run of columns per row offset. Pixel sizes are taken in metres: projected map units times
their length in metres; degrees of a geographic CRS at the raster's centre latitude, on the CRS's
ellipsoid, separately east–west (N cos φ) and north–south (M), so a band on a lat/lon grid is an
ellipse in pixels; a raster without a geotransform is measured in pixels. Bands that reach across
the raster, or that would need more memory or time than a run can give, are refused up front; run sums come from per-row cumulative sums, so each output
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
from .io.rasters import DEFAULT_BLOCK_BYTES, AtomicGeoTiff, Window, describe, open_raster, read_window
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
# A strip reads its core rows plus the band's reach above and below; with cores at least as tall
# as the reach, the halo at most triples the reads. Beyond these bounds the run is hopeless on a
# desktop (memory), or takes hours: (2r + 1) passes over every pixel, twice (sums and counts).
_MAX_STRIP_BYTES = 2 * 1024 ** 3
_MAX_BAND_PASSES = 2e11  # pixel × band-row operations, roughly ten minutes of numpy


@dataclass
class HotspotSummary:
    valid_pixels: int
    mean: float
    std: float
    rows_in_band: int
    pixels_in_band: int
    class_counts: Dict[int, int] = field(default_factory=dict)


def pixel_size_in_metres(geotransform, crs_wkt: Optional[str], height: int) -> Tuple[float, float, str]:
    """(width, height) of a pixel in metres and how they were measured.

    Geographic CRS: at the centre latitude φ of the raster, a degree spans N·cos φ·π/180 m east–
    west and M·π/180 m north–south (N, M: the ellipsoid's prime-vertical and meridional radii of
    curvature). Projected CRS: map units × their length in metres. No CRS: map units taken as
    metres. No geotransform: 1 × 1 (the distance is in pixels).
    """
    if geotransform is None:
        return 1.0, 1.0, "pixels (no geotransform)"
    width, height_units = abs(geotransform[1]), abs(geotransform[5])
    if not crs_wkt:
        return width, height_units, "map units taken as metres (no CRS)"
    from osgeo import osr

    srs = osr.SpatialReference()
    if srs.ImportFromWkt(crs_wkt) != 0:
        return width, height_units, "map units taken as metres (unreadable CRS)"
    if srs.IsGeographic():
        semi_major = srs.GetSemiMajor()
        inverse_flattening = srs.GetInvFlattening()
        flattening = 1.0 / inverse_flattening if inverse_flattening else 0.0
        e2 = flattening * (2.0 - flattening)
        latitude = geotransform[3] + geotransform[5] * height / 2.0
        unit = srs.GetAngularUnits() or math.radians(1.0)  # radians per CRS unit
        sin_lat = math.sin(math.radians(max(-90.0, min(90.0, latitude * unit / math.radians(1.0)))))
        prime_vertical = semi_major / math.sqrt(1.0 - e2 * sin_lat ** 2)
        meridional = semi_major * (1.0 - e2) / (1.0 - e2 * sin_lat ** 2) ** 1.5
        cos_lat = math.sqrt(max(0.0, 1.0 - sin_lat ** 2))
        return (width * unit * prime_vertical * cos_lat, height_units * unit * meridional,
                f"degrees at latitude {math.degrees(math.asin(sin_lat)):.4f}")
    metres = srs.GetLinearUnits() or 1.0
    return width * metres, height_units * metres, "metres" if metres == 1.0 else f"map units of {metres:g} m"


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
    """Gi* of band ``band`` of the raster at ``path`` with a ``distance`` band in metres (pixels
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
    pixel_width, pixel_height, measured = pixel_size_in_metres(geotransform, info.crs_wkt, info.height)
    size = f"{pixel_width:.4g} × {pixel_height:.4g} m" if geotransform else "1 × 1 px"
    if distance < min(pixel_width, pixel_height):
        raise MineSARError(
            f"DISTANCE = {distance:g} m is less than one pixel of {path} ({size}, {measured}): "
            "the band would hold only the pixel itself."
        )
    # Reach in rows and widest run in columns, before any array is made.
    reach = int(math.floor(distance / pixel_height + 1e-9)) if pixel_height > 0 else math.inf
    widest = int(math.floor(distance / pixel_width + 1e-9)) if pixel_width > 0 else math.inf
    if reach >= info.height or widest >= info.width:
        raise MineSARError(
            f"{path}: a DISTANCE of {distance:g} m spans {widest} columns and {reach} rows either side "
            f"(pixels of {size}, {measured}) but the raster is {info.width} × {info.height} px: the band "
            "would take in the whole raster and Gi* compares each neighbourhood with the raster itself. "
            "Give a DISTANCE in metres much smaller than the raster."
        )
    width_px, height_px = info.width, info.height
    strip_bytes = 3 * reach * width_px * _BYTES_PER_PIXEL
    passes = 2.0 * width_px * height_px * (2 * reach + 1)
    if strip_bytes > _MAX_STRIP_BYTES or passes > _MAX_BAND_PASSES:
        raise MineSARError(
            f"{path}: a DISTANCE of {distance:g} m reaches {reach} rows either side (pixels of {size}); "
            f"each strip would need {strip_bytes / 1024 ** 3:.1f} GiB and the run {passes:.2g} pixel "
            "operations, more than a run can take. Use a smaller DISTANCE or multilook the raster "
            "first (minesar:multilook)."
        )
    runs = band_runs(distance, pixel_width, pixel_height)
    nodata = info.nodata[band - 1]

    def read(window: Window) -> np.ndarray:
        values = read_window(dataset, window, (band,)).astype(np.float64)
        if nodata is not None and not math.isnan(nodata):
            values[values == nodata] = np.nan
        values[~np.isfinite(values)] = np.nan
        return values

    width, height = info.width, info.height
    # Cores at least as tall as the reach, or a wide band would shrink strips to one row each.
    budget = max(DEFAULT_BLOCK_BYTES if block_bytes is None else block_bytes, strip_bytes)
    strips = list(halo_strips(height, width, _BYTES_PER_PIXEL, reach, budget))
    steps = 2 * len(strips)
    statistics = RunningStatistics()
    for index, strip in enumerate(strips):  # pass 1: global mean and standard deviation
        progress.update(index / steps)
        statistics.add(read(Window(0, strip.start, width, strip.stop - strip.start)))
    n = statistics.count
    if n < 2:
        raise MineSARError(f"{path}: {n} valid pixel(s); Gi* needs a raster with valid values.")
    mean, std = statistics.mean, statistics.std
    # low == high is exact; a tiny std from rounding of a constant raster would be mistaken for spread.
    if statistics.low == statistics.high or not std > 0:
        raise MineSARError(f"{path}: every valid pixel has the value {mean:g}; there is nothing to cluster.")

    counts = {level: 0 for level in CLASS_LABELS}
    scored = 0
    common = dict(geotransform=geotransform, crs_wkt=info.crs_wkt)
    tags = {
        "MINESAR_PRODUCT": "Getis-Ord Gi* hot spots",
        "GI_SOURCE": path, "GI_BAND": str(band), "GI_DISTANCE_M": f"{distance:.9g}",
        "GI_PIXEL_SIZE_M": f"{pixel_width:.6g} x {pixel_height:.6g} ({measured})",
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
            scored += int(np.count_nonzero(centre_valid))
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
        if scored == 0:
            # n W − W² = 0 everywhere: every band holds all n valid pixels, Gi* is 0/0.
            raise MineSARError(
                f"{path}: the {distance:g} m band around every valid pixel takes in all {n} valid pixels, "
                "so Gi* is undefined (0/0) everywhere. Use a smaller DISTANCE."
            )
        opened[0].band_metadata[1] = {f"CLASS_{level}": str(count) for level, count in counts.items()}
    progress.finish()
    return HotspotSummary(n, mean, std, 2 * reach + 1, sum(2 * half + 1 for _, half in runs), counts)


def _is_complex(gdal_type) -> bool:
    from osgeo import gdal

    return bool(gdal.DataTypeIsComplex(gdal_type))
