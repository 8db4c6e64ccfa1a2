"""Strip walking with halos, complex reads and output tags shared by the preprocessing steps."""
import dataclasses
import math
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from ..errors import MineSARError
from ..io.interferogram import InterferogramSource, _GammaSource, _GdalSource
from ..io.rasters import DEFAULT_BLOCK_BYTES, Window


@dataclasses.dataclass(frozen=True)
class Strip:
    """Output rows ``[start, stop)`` and the rows ``[read_start, read_stop)`` they need, which may
    reach past the raster (those rows are padding)."""

    start: int
    stop: int
    read_start: int
    read_stop: int

    @property
    def core(self) -> slice:
        """The output rows within the block that was read."""
        return slice(self.start - self.read_start, self.stop - self.read_start)


def halo_strips(
    height: int, width: int, bytes_per_pixel: int, halo: int, block_bytes: Optional[int] = None, multiple: int = 1
) -> Iterator[Strip]:
    """Strips whose reads (core + 2 halos) fit the budget; core heights are multiples of ``multiple``
    so that patch grids and look boxes never straddle a strip boundary."""
    budget = DEFAULT_BLOCK_BYTES if block_bytes is None else block_bytes
    rows = int(budget // max(1, width * bytes_per_pixel)) - 2 * halo
    rows = max(multiple, rows // multiple * multiple)
    for start in range(0, height, rows):
        stop = min(height, start + rows)
        yield Strip(start, stop, start - halo, stop + halo)


def strip_count(height: int, width: int, bytes_per_pixel: int, halo: int, block_bytes=None, multiple=1) -> int:
    return sum(1 for _ in halo_strips(height, width, bytes_per_pixel, halo, block_bytes, multiple))


def read_rows(read, width: int, height: int, start: int, stop: int, fill=np.nan, dtype=np.float32) -> np.ndarray:
    """Rows ``[start, stop)`` of a raster through ``read(window)``, ``fill`` where they lie outside it."""
    first, last = max(0, start), min(height, stop)
    inside = read(Window(0, first, width, last - first)) if last > first else None
    if first == start and last == stop:
        return inside
    block = np.full((stop - start, width), fill, dtype=inside.dtype if inside is not None else dtype)
    if inside is not None:
        block[first - start:last - start] = inside
    return block


def complex_reader(source: InterferogramSource):
    """``read(window)`` giving complex64 values with their amplitudes when the file stores complex
    values (GAMMA .int/.diff, complex GeoTIFF), else None. Zero and non-finite values are nodata and
    come back as 0, which adds nothing to a complex sum."""
    if isinstance(source, _GammaSource) and source._binary.dtype.kind == "c":
        raw = source._binary.read
    elif isinstance(source, _GdalSource) and source._storage == "complex":
        from ..io.rasters import read_window

        def raw(window):
            return read_window(source._dataset, window)
    else:
        return None

    def read(window: Window) -> np.ndarray:
        values = np.asarray(raw(window)).astype(np.complex64)
        values[~np.isfinite(values)] = 0
        return values

    return read


def phasor_reader(source: InterferogramSource):
    """``read(window)`` giving e^{iφ} as complex64 with 0 at nodata: the interferogram without its
    amplitude, so that bright pixels do not dominate an average."""

    def read(window: Window) -> np.ndarray:
        phase = source.read(window)
        valid = np.isfinite(phase)
        out = np.zeros(phase.shape, np.complex64)
        out[valid] = np.exp(1j * phase[valid])
        return out

    return read


def require_kind(source: InterferogramSource, kinds: Tuple[str, ...], step: str) -> None:
    if source.metadata.kind not in kinds:
        raise MineSARError(
            f"{source.path}: holds {source.metadata.kind} values ({source.metadata.kind_reason}); "
            f"{step} needs {' or '.join(kinds)}. If that guess is wrong, import the file with "
            f"minesar:importinterferogram and its KIND set to what the file holds, then use the import."
        )


def same_grid(source: InterferogramSource, other, what: str) -> None:
    """Refuse a companion raster (coherence, brightness, second SLC) on another grid."""
    if (other.width, other.height) != (source.width, source.height):
        raise MineSARError(
            f"{other.path}: {what} is {other.width} × {other.height} px but {source.path} is "
            f"{source.width} × {source.height} px; they must share one grid."
        )
    first, second = source.geotransform, other.geotransform
    if first is not None and second is not None:
        tolerance = 1e-6 * max(abs(first[1]), abs(first[5]), 1e-12)
        offset_tolerance = 0.01 * max(abs(first[1]), abs(first[5]))
        if any(abs(a - b) > tolerance for a, b in zip((first[1], first[2], first[4], first[5]), (second[1], second[2], second[4], second[5]))) or \
                abs(first[0] - second[0]) > offset_tolerance or abs(first[3] - second[3]) > offset_tolerance:
            raise MineSARError(
                f"{other.path}: {what} has geotransform {tuple(second)}, {source.path} has {tuple(first)}; "
                "they must share one grid (resample one onto the other first)."
            )


def output_tags(source: InterferogramSource, kind: Optional[str] = None, **extra) -> Dict[str, str]:
    """The input's tags (dates, wavelength, geometry…) for an output of ``kind``; without a kind the
    output is not an interferogram and carries no MINESAR_KIND, only the acquisition facts."""
    import os

    meta = dataclasses.replace(source.metadata, extra=dict(source.metadata.extra))
    if kind is not None:
        meta.kind = kind
    tags = meta.to_tags()
    tags["SOURCE_FILE"] = os.path.basename(source.path)
    if kind is None:
        tags.pop("MINESAR_KIND", None)
        tags.pop("UNITS", None)
    tags.update({key: str(value) for key, value in extra.items()})
    return tags


class RunningStatistics:
    """Minimum, maximum, mean and standard deviation accumulated block by block, for the band
    statistics QGIS reads instead of scanning the output again."""

    def __init__(self):
        self.count, self.total, self.total_sq = 0, 0.0, 0.0
        self.low, self.high = math.inf, -math.inf

    def add(self, block: np.ndarray) -> None:
        valid = block[np.isfinite(block)]
        if valid.size:
            self.count += valid.size
            self.total += float(valid.sum(dtype=np.float64))
            self.total_sq += float(np.square(valid, dtype=np.float64).sum())
            self.low, self.high = min(self.low, float(valid.min())), max(self.high, float(valid.max()))

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    @property
    def std(self) -> float:
        if not self.count:
            return math.nan
        return max(0.0, self.total_sq / self.count - self.mean ** 2) ** 0.5

    def attach(self, output, pixels: int, empty_message: str) -> None:
        """Put the band statistics on the output, or refuse an output without a single valid value
        (raised inside the output's ``with``, so nothing is published)."""
        if self.count == 0:
            raise MineSARError(empty_message)
        output.band_metadata[1] = self.tags(pixels)

    def tags(self, pixels: int) -> Dict[str, str]:
        if not self.count:
            return {}
        return {
            "STATISTICS_MINIMUM": f"{self.low:.9g}",
            "STATISTICS_MAXIMUM": f"{self.high:.9g}",
            "STATISTICS_MEAN": f"{self.mean:.9g}",
            "STATISTICS_STDDEV": f"{self.std:.9g}",
            "STATISTICS_VALID_PERCENT": f"{100.0 * self.count / pixels:.6g}",
        }
