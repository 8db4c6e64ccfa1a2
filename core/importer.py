"""Interferogram import: any reader → a float32 GeoTIFF with NaN nodata and full metadata.

The output is the plugin's common currency: radians (or coherence), its CRS and geotransform,
and tags every later step reads back (kind, dates, wavelength, incidence, heading). It is written
strip by strip, so the input may be far larger than memory, and it appears only when complete.
Band statistics and robust percentiles (from a regular subsample) go into the file, so QGIS can
style a large raster without another pass.

With ``keep_complex`` a complex interferogram (GAMMA .int/.diff/.diff_filt, a complex GDAL raster)
is written as a CFloat32 GeoTIFF instead: amplitude and phase both kept, complex 0 as nodata (the
convention of GAMMA and of every MineSAR reader; non-finite input values become 0), the same tags.
The amplitude is what multilooking (amplitude-weighted complex mean), coherence (|Σz|/Σ|z|) and
rendering (amplitude brightness) need; float32 phase would lose it. Band statistics are not
written for it: QGIS would take them for the real part's.
"""
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import MineSARError
from .io.interferogram import InterferogramSource
from .io.rasters import AtomicGeoTiff, rows_per_strip, strip_windows
from .preprocess.blocks import complex_reader
from .progress import SILENT, Progress

BAND_DESCRIPTIONS = {
    "wrapped": "wrapped phase (rad)",
    "unwrapped": "unwrapped phase (rad)",
    "coherence": "coherence",
}
COMPLEX_DESCRIPTION = "complex interferogram (phase = wrapped phase, amplitude kept; 0 = nodata)"
_SAMPLE_TARGET = 250_000  # values kept for the percentiles; enough for 0.1 % precision


@dataclass
class ImportSummary:
    path: str
    width: int
    height: int
    valid_fraction: float
    minimum: float
    maximum: float
    mean: float
    p02: float
    p98: float
    complex_kept: bool = False  # CFloat32 written (keep_complex on a complex input)


def import_interferogram(
    source: InterferogramSource,
    destination: str,
    progress: Progress = SILENT,
    block_bytes: Optional[int] = None,
    keep_complex: bool = False,
) -> ImportSummary:
    """Write ``source`` to ``destination``. ``keep_complex``: a complex input stays complex
    (CFloat32); other inputs are imported as usual (``complex_kept`` in the summary says which)."""
    meta = source.metadata
    tags = meta.to_tags()
    tags["SOURCE_FILE"] = os.path.basename(source.path)
    read_complex = complex_reader(source) if keep_complex else None
    # Stored bytes in, float32 (or complex64) out, and the temporaries of the conversion.
    rows = rows_per_strip(source.width, source.bytes_per_pixel + (32 if read_complex else 16), block_bytes)
    windows = list(strip_windows(source.width, source.height, rows))
    stride = max(1, (source.width * source.height) // _SAMPLE_TARGET)
    count, total, total_sq = 0, 0.0, 0.0
    low, high = np.inf, -np.inf
    samples = []
    offset = 0  # keeps the subsample regular across strip boundaries

    with AtomicGeoTiff(
        destination,
        source.width,
        source.height,
        dtype=np.complex64 if read_complex else np.float32,
        geotransform=source.geotransform,
        crs_wkt=source.crs_wkt if source.is_georeferenced else None,
        nodata=None if read_complex else np.nan,  # complex: 0 is nodata; GDAL's nodata is one real number
        metadata=tags,
        band_descriptions=[COMPLEX_DESCRIPTION if read_complex else BAND_DESCRIPTIONS[meta.kind]],
    ) as output:
        for index, window in enumerate(windows):
            progress.update(index / len(windows))
            if read_complex:
                values = read_complex(window)  # nodata already 0
                output.write(values, window)
                block = np.angle(values).astype(np.float32)  # the statistics are the phase's
                block[values == 0] = np.nan
            else:
                block = source.read(window)
                output.write(block, window)
            flat = block.ravel()
            picked = flat[(-offset) % stride::stride]
            offset = (offset + flat.size) % stride
            samples.append(picked[np.isfinite(picked)])
            valid = flat[np.isfinite(flat)]
            if valid.size:
                count += valid.size
                total += float(valid.sum(dtype=np.float64))
                total_sq += float(np.square(valid, dtype=np.float64).sum())
                low, high = min(low, float(valid.min())), max(high, float(valid.max()))
        progress.check_cancelled()  # last chance: after this block the output is published
        if count == 0:
            raise MineSARError(f"{source.path}: no valid pixels: every value is nodata, zero or NaN.")
        sample = np.concatenate(samples) if samples else np.empty(0, np.float32)
        if sample.size == 0:  # a sparse raster whose few valid pixels fell between samples
            sample = np.array([low, high], dtype=np.float32)
        p02, p98 = (float(v) for v in np.percentile(sample, [2.0, 98.0]))
        mean = total / count
        std = max(0.0, total_sq / count - mean * mean) ** 0.5
        statistics = {
            "STATISTICS_MINIMUM": f"{low:.9g}",
            "STATISTICS_MAXIMUM": f"{high:.9g}",
            "STATISTICS_MEAN": f"{mean:.9g}",
            "STATISTICS_STDDEV": f"{std:.9g}",
            "STATISTICS_VALID_PERCENT": f"{100.0 * count / (source.width * source.height):.6g}",
            "MINESAR_P02": f"{p02:.9g}",
            "MINESAR_P98": f"{p98:.9g}",
        }
        if read_complex:
            statistics = {key.replace("STATISTICS_", "MINESAR_PHASE_"): value for key, value in statistics.items()}
        output.band_metadata[1] = statistics
    progress.finish()
    return ImportSummary(
        destination, source.width, source.height, count / (source.width * source.height),
        low, high, mean, p02, p98, read_complex is not None,
    )
