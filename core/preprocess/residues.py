"""Phase residues: the charges of the elementary 2 × 2 loops of a wrapped interferogram.

Going round a loop of four pixels and adding the wrapped phase differences gives 0, +2π or −2π;
a non-zero sum is a residue, where phase unwrapping paths must not pass. Noise creates residue
pairs, so their density is a quick quality figure for an interferogram (and for a filter).
Each loop's charge (+1, −1, 0) is written at its top-left pixel; loops touching nodata, and the
last row and column (which start no loop), are NaN.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import MineSARError
from ..io.colours import TWO_PI, wrap
from ..io.interferogram import InterferogramSource
from ..io.rasters import AtomicGeoTiff
from .blocks import halo_strips, output_tags, read_rows, require_kind

_BYTES_PER_PIXEL = 40  # phase, four differences, their sum (float32) and the charges


@dataclass
class ResidueCount:
    positive: int
    negative: int
    loops: int  # loops with four valid corners

    @property
    def total(self) -> int:
        return self.positive + self.negative

    @property
    def density(self) -> float:
        """Residues per valid loop."""
        return self.total / self.loops if self.loops else float("nan")


def residue_charges(phase: np.ndarray) -> np.ndarray:
    """(rows − 1, cols − 1) charges of the loops of ``phase``; NaN where a corner is nodata."""
    top_left, top_right = phase[:-1, :-1], phase[:-1, 1:]
    bottom_left, bottom_right = phase[1:, :-1], phase[1:, 1:]
    circulation = (
        wrap(top_right - top_left)
        + wrap(bottom_right - top_right)
        + wrap(bottom_left - bottom_right)
        + wrap(top_left - bottom_left)
    )
    return np.rint(circulation / np.float32(TWO_PI)).astype(np.float32)  # NaN corners stay NaN


def count_residues(phase: np.ndarray) -> ResidueCount:
    charges = residue_charges(np.asarray(phase, np.float32))
    return ResidueCount(int(np.sum(charges > 0)), int(np.sum(charges < 0)), int(np.isfinite(charges).sum()))


def map_residues(source: InterferogramSource, destination: Optional[str], progress=None, block_bytes=None) -> ResidueCount:
    """Count the residues of ``source`` and, with a ``destination``, write their charge map."""
    from ..progress import SILENT

    progress = progress or SILENT
    require_kind(source, ("wrapped",), "counting phase residues")
    # One row below each strip closes its last loops.
    strips = [s for s in halo_strips(source.height, source.width, _BYTES_PER_PIXEL, 1, block_bytes)]
    positive = negative = loops = 0

    def walk(output):
        nonlocal positive, negative, loops
        for index, strip in enumerate(strips):
            progress.update(index / len(strips))
            phase = read_rows(source.read, source.width, source.height, strip.start, strip.stop + 1)
            charges = np.full((strip.stop - strip.start, source.width), np.nan, np.float32)
            charges[:, :-1] = residue_charges(phase)
            positive += int(np.sum(charges > 0))
            negative += int(np.sum(charges < 0))
            loops += int(np.isfinite(charges).sum())
            if output is not None:
                output.write(charges, strip.start)
        progress.check_cancelled()
        if loops == 0:
            raise MineSARError(f"{source.path}: no 2 × 2 loop of valid pixels: no residues to count.")

    if destination is None:
        walk(None)
    else:
        tags = output_tags(source, None, MINESAR_PRODUCT="phase residues")
        with AtomicGeoTiff(
            destination, source.width, source.height,
            geotransform=source.geotransform, crs_wkt=source.crs_wkt if source.is_georeferenced else None,
            metadata=tags, band_descriptions=["residue charge (+1, -1, 0)"],
        ) as output:
            walk(output)
            count = ResidueCount(positive, negative, loops)
            output.band_metadata[1] = {
                "RESIDUES_POSITIVE": str(count.positive),
                "RESIDUES_NEGATIVE": str(count.negative),
                "RESIDUE_DENSITY": f"{count.density:.6g}",
            }
    progress.finish()
    return ResidueCount(positive, negative, loops)
