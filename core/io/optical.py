"""GF-2 orthophotos: 4 bands (blue, green, red, near infrared), 16-bit, about 1 m.

Networks see each band stretched between two percentiles of the *scene* (not of a tile, which
would make the same ground look different in every tile). The percentiles come from exact
histograms accumulated block by block for integer data, so a 30k × 30k scene needs one pass and
no more memory than a block. Pixels that are zero in every band are the fill around an
orthophoto's footprint and are left out (as is the bands' nodata value).
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
from osgeo import gdal

from ..errors import MineSARError
from ..progress import SILENT, Progress
from .rasters import RasterInfo, Window, describe, open_raster, read_window, rows_per_strip, strip_windows

GF2_BANDS = ("blue", "green", "red", "nir")
_INTEGER_TYPES = {gdal.GDT_Byte: 256, gdal.GDT_UInt16: 65536}


@dataclass
class StretchLimits:
    """Per-band (low, high) values mapped to 0 and 1; stored in model checkpoints."""

    low: np.ndarray
    high: np.ndarray
    percentiles: tuple

    def apply(self, block: np.ndarray) -> np.ndarray:
        """(bands, rows, cols) → float32 in [0, 1]."""
        low = self.low.reshape(-1, 1, 1).astype(np.float32)
        span = np.maximum(self.high - self.low, 1e-6).reshape(-1, 1, 1).astype(np.float32)
        return np.clip((block.astype(np.float32) - low) / span, 0.0, 1.0)


class Orthophoto:
    """A multi-band optical scene read by windows."""

    def __init__(self, path: str, band_names: Sequence[str] = GF2_BANDS):
        self.path = path
        self._dataset = open_raster(path)
        self.info: RasterInfo = describe(self._dataset)
        if self.info.band_count != len(band_names):
            raise MineSARError(
                f"{path}: {self.info.band_count} band(s), expected {len(band_names)} "
                f"({', '.join(band_names)}) as in a GF-2 multispectral orthophoto."
            )
        if any(gdal.DataTypeIsComplex(t) for t in self.info.data_types):
            raise MineSARError(f"{path}: complex bands are not an optical image.")
        self.band_names = tuple(band_names)

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def height(self) -> int:
        return self.info.height

    def read(self, window: Window) -> np.ndarray:
        """(bands, rows, cols) in the stored type."""
        return read_window(self._dataset, window, range(1, self.info.band_count + 1))

    def valid_mask(self, block: np.ndarray) -> np.ndarray:
        valid = np.any(block != 0, axis=0)
        if np.issubdtype(block.dtype, np.floating):
            valid &= np.isfinite(block).all(axis=0)  # NaN never equals a NaN nodata value
        for index, nodata in enumerate(self.info.nodata):
            if nodata is not None:
                valid &= block[index] != nodata
        return valid

    def close(self) -> None:
        self._dataset = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def percentile_limits(
    image: Orthophoto,
    low: float = 2.0,
    high: float = 98.0,
    progress: Progress = SILENT,
    block_bytes: Optional[int] = None,
) -> StretchLimits:
    """Scene-wide per-band percentiles (numpy's 'inverted_cdf' definition), in one pass."""
    return pooled_percentile_limits([image], low, high, progress, block_bytes)


def histogram_percentiles(histogram: np.ndarray, percentiles: Sequence[float]) -> np.ndarray:
    """Values at ``percentiles`` of the data whose counts per value 0, 1, 2 … are ``histogram``:
    numpy's 'inverted_cdf' (the smallest value whose cumulative share reaches the percentile)."""
    cumulative = np.cumsum(np.asarray(histogram, dtype=np.int64))
    total = cumulative[-1] if cumulative.size else 0
    if total == 0:
        raise MineSARError("No valid pixels to take percentiles of.")
    targets = [max(1, np.ceil(total * q / 100.0)) for q in percentiles]
    return np.searchsorted(cumulative, targets).astype(np.float64)


def pooled_percentile_limits(
    images: Sequence[Orthophoto],
    low: float = 2.0,
    high: float = 98.0,
    progress: Progress = SILENT,
    block_bytes: Optional[int] = None,
) -> StretchLimits:
    """Per-band percentiles of the valid pixels of several scenes taken together (a training set:
    every scene weighs by its pixel count). Exact from histograms for 8- and 16-bit bands;
    float bands are sampled (about 2 million values per scene)."""
    if not 0.0 <= low < high <= 100.0:
        raise MineSARError(f"Percentiles must satisfy 0 <= low < high <= 100, not {low} and {high}.")
    if not images:
        raise MineSARError("No images to take percentiles of.")
    bands = images[0].info.band_count
    for image in images[1:]:
        if image.info.band_count != bands:
            raise MineSARError(f"{image.path}: {image.info.band_count} band(s), but {images[0].path} has {bands}.")
    types = [t for image in images for t in image.info.data_types]
    exact = all(t in _INTEGER_TYPES for t in types)
    bins = max(_INTEGER_TYPES.get(t, 0) for t in types) if exact else 0
    histograms = np.zeros((bands, bins), dtype=np.int64) if exact else None
    samples: List[List[np.ndarray]] = [[] for _ in range(bands)]
    for number, image in enumerate(images):
        stride = max(1, image.width * image.height // 2_000_000)
        windows = list(strip_windows(image.width, image.height,
                                     rows_per_strip(image.width, 2 * bands * 4, block_bytes)))
        for index, window in enumerate(windows):
            progress.update((number + index / len(windows)) / len(images))
            block = image.read(window)
            valid = image.valid_mask(block)
            for band in range(bands):
                values = block[band][valid]
                if exact:
                    histograms[band] += np.bincount(values.astype(np.int64), minlength=bins)[:bins]
                else:
                    values = values[np.isfinite(values)][::stride]
                    samples[band].append(values.astype(np.float64))
    progress.update(1.0)

    names = images[0].path if len(images) == 1 else f"{len(images)} images ({images[0].path} …)"
    lows, highs = np.zeros(bands), np.zeros(bands)
    for band in range(bands):
        if exact:
            if not histograms[band].any():
                raise MineSARError(f"{names}: band {band + 1} has no valid pixels.")
            lows[band], highs[band] = histogram_percentiles(histograms[band], (low, high))
        else:
            values = np.concatenate(samples[band]) if samples[band] else np.empty(0)
            if values.size == 0:
                raise MineSARError(f"{names}: band {band + 1} has no valid pixels.")
            lows[band], highs[band] = np.percentile(values, [low, high], method="inverted_cdf")
    return StretchLimits(lows, highs, (low, high))
