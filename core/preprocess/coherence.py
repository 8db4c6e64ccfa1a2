"""Coherence estimated in a WINDOW × WINDOW box around each pixel.

Three estimators, chosen by what the input holds:

- two co-registered SLCs s1, s2: the standard γ = |Σ s1·s2*| / √(Σ|s1|² · Σ|s2|²);
- a complex interferogram z (amplitudes, no SLCs): |Σ z| / Σ|z|, the amplitude-weighted phase
  coherence. It equals the standard estimator where the two images' amplitude ratio is constant
  in the box and is an upper bound of it otherwise (Cauchy–Schwarz), since |z| = |s1||s2| cannot
  separate the two intensities;
- a wrapped phase raster: the phase-only |Σ e^{iφ}| / N, N the valid pixels in the box. For pure
  noise its root-mean-square is 1/√N; for a noise-free constant phase it is 1.

Sums leave nodata out and shrink at the raster edges (the box is clipped, not padded). All three
are biased upwards for small boxes (≈ 1/√N at zero coherence), as any sample coherence is.
"""
from typing import Optional

import numpy as np
from scipy.ndimage import uniform_filter

from ..errors import MineSARError
from ..io.interferogram import InterferogramSource
from ..io.rasters import AtomicGeoTiff
from ..progress import SILENT, Progress
from .blocks import RunningStatistics, complex_reader, halo_strips, output_tags, phasor_reader, read_rows, require_kind, same_grid

_BYTES_PER_PIXEL = 96  # complex inputs and several float64 box sums

ESTIMATORS = {
    "slc": "|sum(s1 s2*)| / sqrt(sum|s1|^2 sum|s2|^2) from two SLCs",
    "amplitude": "|sum(z)| / sum(|z|) from the complex interferogram (amplitude-weighted phase coherence)",
    "phase": "|sum(exp(i phase))| / N (phase-only coherence)",
}


def box_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum over the window around each pixel, zeros beyond the block (callers pass nodata as 0)."""
    # uniform_filter gives the mean over window² values; the ratio of sums needs the sum.
    return uniform_filter(values.astype(np.float64), window, mode="constant", cval=0.0) * (window * window)


def coherence_of_block(first: np.ndarray, second: Optional[np.ndarray], estimator: str, window: int) -> np.ndarray:
    """Coherence of a block: ``first`` complex (0 = nodata), ``second`` the second SLC or None."""
    if estimator == "slc":
        product = first * np.conj(second)
        numerator = np.hypot(box_sum(product.real, window), box_sum(product.imag, window))
        denominator = np.sqrt(box_sum(np.abs(first) ** 2, window) * box_sum(np.abs(second) ** 2, window))
    else:
        numerator = np.hypot(box_sum(first.real, window), box_sum(first.imag, window))
        denominator = box_sum(np.abs(first), window)  # N for unit phasors
    out = np.full(first.shape, np.nan, np.float32)
    np.divide(numerator, denominator, out=out, where=denominator > 1e-12 * window * window, casting="unsafe")
    return np.clip(out, 0.0, 1.0)


def estimate_coherence(
    source: InterferogramSource,
    destination: str,
    window: int = 5,
    second: Optional[InterferogramSource] = None,
    phase_only: bool = False,
    progress: Progress = SILENT,
    block_bytes: Optional[int] = None,
) -> str:
    """Write the coherence of ``source`` (and ``second``); returns which estimator was used."""
    if window < 3 or window % 2 == 0:
        raise MineSARError(f"WINDOW = {window}: use an odd number of pixels, at least 3.")
    require_kind(source, ("wrapped",), "coherence estimation")
    read_first = None if phase_only else complex_reader(source)
    read_second = None
    if second is not None:
        same_grid(source, second, "the second SLC")
        read_second = complex_reader(second)
        if read_first is None or read_second is None:
            which = source if read_first is None else second
            raise MineSARError(f"{which.path}: not complex values; two SLCs must both be complex rasters.")
        estimator = "slc"
    elif read_first is not None:
        estimator = "amplitude"
    else:
        estimator, read_first = "phase", phasor_reader(source)
    halo = window // 2
    strips = list(halo_strips(source.height, source.width, _BYTES_PER_PIXEL, halo, block_bytes))
    statistics = RunningStatistics()
    tags = output_tags(source, "coherence", MINESAR_COHERENCE_ESTIMATOR=ESTIMATORS[estimator], MINESAR_COHERENCE_WINDOW=window)
    with AtomicGeoTiff(
        destination, source.width, source.height,
        geotransform=source.geotransform, crs_wkt=source.crs_wkt if source.is_georeferenced else None,
        metadata=tags, band_descriptions=[f"coherence ({estimator}, {window}x{window})"],
    ) as output:
        for index, strip in enumerate(strips):
            progress.update(index / len(strips))
            first = read_rows(read_first, source.width, source.height, strip.read_start, strip.read_stop, fill=0)
            other = None
            if read_second is not None:
                other = read_rows(read_second, source.width, source.height, strip.read_start, strip.read_stop, fill=0)
                # A pixel is valid only where both images have data.
                both = (first != 0) & (other != 0)
                first, other = np.where(both, first, 0), np.where(both, other, 0)
            coherence = coherence_of_block(first, other, estimator, window)[strip.core]
            coherence[first[strip.core] == 0] = np.nan
            output.write(coherence, strip.start)
            statistics.add(coherence)
        progress.check_cancelled()
        statistics.attach(output, source.width * source.height, f"{source.path}: no valid pixels to estimate coherence from.")
    progress.finish()
    return ESTIMATORS[estimator]
