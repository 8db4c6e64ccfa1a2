"""Overlapping tiles of a segmentation blended into one probability raster, without seams.

Each tile's probabilities are weighted by a ramp that rises from near 0 at a tile edge lying
inside the raster to 1 at ``overlap`` pixels in (raster borders keep weight 1: nothing is there to
blend with), and the raster is Σ w·p / Σ w. A network is least sure near a tile's edge, where it
sees half a context; the ramp hands those pixels to the neighbouring tile, and since the weights
are normalised, a constant probability stays exactly constant across every border.

Tiles come in rows (``core.detection.overlapping_windows`` order); only a strip of one tile's
height is held, and rows are written out as soon as no later tile can touch them.
"""
from typing import Callable, Optional

import numpy as np

from .io.rasters import Window


def ramp(length: int, overlap: int, rising: bool, falling: bool) -> np.ndarray:
    """1-D weights of a tile side: ``rising`` ramps up from its start, ``falling`` down to its end."""
    weights = np.ones(length, dtype=np.float64)
    if overlap > 0:
        edge = np.minimum(1.0, (np.arange(length) + 0.5) / overlap)
        if rising:
            weights = np.minimum(weights, edge)
        if falling:
            weights = np.minimum(weights, edge[::-1])
    return weights


def tile_weights(window: Window, width: int, height: int, overlap: int) -> np.ndarray:
    """[rows, cols] blending weights of ``window`` in a ``width`` × ``height`` raster."""
    rows = ramp(window.height, overlap, window.row > 0, window.row + window.height < height)
    cols = ramp(window.width, overlap, window.col > 0, window.col + window.width < width)
    return np.outer(rows, cols)


class StripBlender:
    """Accumulates weighted tiles and hands finished rows to ``write(first_row, rows)``.

    Rows no tile covered with a finite probability (no data) come out as NaN."""

    def __init__(self, width: int, height: int, overlap: int, write: Callable[[int, np.ndarray], None]):
        self.width, self.height, self.overlap = width, height, overlap
        self._write = write
        self._first = 0  # raster row of the buffers' first row
        self._sum = np.zeros((0, width), dtype=np.float64)
        self._weight = np.zeros((0, width), dtype=np.float64)

    def add(self, window: Window, probability: np.ndarray, weights: Optional[np.ndarray] = None) -> None:
        """One tile's probabilities ([window.height, window.width], NaN = no data there)."""
        if probability.shape != (window.height, window.width):
            raise ValueError(f"tile probabilities {probability.shape} do not fit the window {window}")
        if window.row < self._first:
            raise ValueError(f"tile at row {window.row} comes after rows up to {self._first} were written")
        if weights is None:
            weights = tile_weights(window, self.width, self.height, self.overlap)
        self._skip_to(window.row)  # rows above this tile that no tile reached
        end = window.row + window.height - self._first
        if end > self._sum.shape[0]:
            grow = end - self._sum.shape[0]
            self._sum = np.vstack([self._sum, np.zeros((grow, self.width))])
            self._weight = np.vstack([self._weight, np.zeros((grow, self.width))])
        valid = np.isfinite(probability)
        weights = np.where(valid, weights, 0.0)
        rows = slice(window.row - self._first, end)
        cols = slice(window.col, window.col + window.width)
        self._sum[rows, cols] += weights * np.where(valid, probability, 0.0)
        self._weight[rows, cols] += weights

    def release_before(self, row: int) -> None:
        """Write every row above ``row``: no tile still to come starts above it."""
        row = min(row, self.height)
        held = min(max(0, row - self._first), self._sum.shape[0])
        if held:
            self._emit(held)
        self._skip_to(row)

    def finish(self) -> None:
        self.release_before(self.height)

    def _skip_to(self, row: int) -> None:
        """Rows no tile reached (all no data): NaN, a tile's height at a time, never held whole."""
        if self._sum.shape[0] or row <= self._first:
            return
        chunk = max(1, min(row - self._first, 256))
        while self._first < row:
            count = min(chunk, row - self._first)
            self._write(self._first, np.full((count, self.width), np.nan, dtype=np.float32))
            self._first += count

    def _emit(self, count: int) -> None:
        weight = self._weight[:count]
        with np.errstate(invalid="ignore", divide="ignore"):
            rows = np.where(weight > 0, self._sum[:count] / weight, np.nan).astype(np.float32)
        self._write(self._first, rows)
        self._sum, self._weight = self._sum[count:], self._weight[count:]
        self._first += count
