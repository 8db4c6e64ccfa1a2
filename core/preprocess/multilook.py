"""Multilooking: the mean of RANGE_LOOKS × AZIMUTH_LOOKS boxes, on a grid that many times coarser.

What is averaged depends on what the pixels are: the complex values of a complex interferogram
(amplitude-weighted, as GAMMA's multi_cpx does), e^{iφ} of a wrapped phase raster (its phase is
the output), and the values themselves for unwrapped phase and coherence. Nodata is left out of
each mean; a box with no valid pixel is NaN. Boxes are aligned on the first row and column and an
incomplete last box is dropped (the output covers whole boxes only), so the geotransform is the
input's with the pixel size multiplied by the looks.
"""
from typing import Optional, Tuple

import numpy as np

from ..errors import MineSARError
from ..io.interferogram import InterferogramSource
from ..io.rasters import AtomicGeoTiff, Window
from ..progress import SILENT, Progress
from .blocks import RunningStatistics, complex_reader, halo_strips, output_tags, phasor_reader

_BYTES_PER_PIXEL = 40  # complex input, its box reshaping and the valid mask


def looks_for_pixel_size(geotransform, pixel_size: float) -> Tuple[int, int]:
    """(range looks, azimuth looks) that bring a geocoded grid nearest to ``pixel_size`` map units."""
    if geotransform is None:
        raise MineSARError("An output pixel size needs a georeferenced input; give the looks instead.")
    if geotransform[2] or geotransform[4]:
        raise MineSARError("The input grid is rotated; give the looks instead of a pixel size.")
    if pixel_size <= 0:
        raise MineSARError(f"PIXEL_SIZE = {pixel_size}: must be positive.")
    return max(1, round(pixel_size / abs(geotransform[1]))), max(1, round(pixel_size / abs(geotransform[5])))


def multilooked_geotransform(geotransform, range_looks: int, azimuth_looks: int):
    if geotransform is None:
        return None
    x0, dx, rx, y0, ry, dy = geotransform
    # The top-left corner stays; each pixel now spans the looks.
    return (x0, dx * range_looks, rx * azimuth_looks, y0, ry * range_looks, dy * azimuth_looks)


def box_mean(values: np.ndarray, valid: np.ndarray, range_looks: int, azimuth_looks: int) -> np.ndarray:
    """Mean over valid pixels of each whole box; NaN (complex: NaN+0j) where a box has none."""
    rows = values.shape[0] // azimuth_looks * azimuth_looks
    cols = values.shape[1] // range_looks * range_looks
    shape = (rows // azimuth_looks, azimuth_looks, cols // range_looks, range_looks)
    boxes = np.where(valid, values, 0)[:rows, :cols].reshape(shape)
    counts = valid[:rows, :cols].reshape(shape).sum(axis=(1, 3))
    wide = np.complex128 if np.iscomplexobj(values) else np.float64
    totals = boxes.sum(axis=(1, 3), dtype=wide)
    means = np.full(totals.shape, np.nan, dtype=wide)
    np.divide(totals, counts, out=means, where=counts > 0)
    return means


def multilook(
    source: InterferogramSource,
    destination: str,
    range_looks: int,
    azimuth_looks: int,
    progress: Progress = SILENT,
    block_bytes: Optional[int] = None,
) -> Tuple[int, int]:
    """Write the multilooked raster; returns its (width, height)."""
    if range_looks < 1 or azimuth_looks < 1:
        raise MineSARError(f"Looks {range_looks} × {azimuth_looks}: both must be at least 1.")
    width, height = source.width // range_looks, source.height // azimuth_looks
    if width == 0 or height == 0:
        raise MineSARError(
            f"{source.path}: {source.width} × {source.height} px is smaller than one "
            f"{range_looks} × {azimuth_looks} look box."
        )
    kind = source.metadata.kind
    complex_values = complex_reader(source) if kind == "wrapped" else None
    if kind == "wrapped":
        averaged = "complex values" if complex_values else "e^(i phase)"
        read = complex_values or phasor_reader(source)
    else:
        averaged = "values"
        read = source.read
    strips = list(halo_strips(height * azimuth_looks, source.width, _BYTES_PER_PIXEL, 0, block_bytes, azimuth_looks))
    statistics = RunningStatistics()
    tags = output_tags(source, kind, MINESAR_LOOKS=f"{range_looks}x{azimuth_looks}", MINESAR_LOOKS_AVERAGED=averaged)
    description = {"wrapped": "wrapped phase (rad)", "unwrapped": "unwrapped phase (rad)", "coherence": "coherence"}[kind]
    with AtomicGeoTiff(
        destination, width, height,
        geotransform=multilooked_geotransform(source.geotransform, range_looks, azimuth_looks),
        crs_wkt=source.crs_wkt if source.is_georeferenced else None,
        metadata=tags, band_descriptions=[f"{description}, {range_looks}x{azimuth_looks} looks"],
    ) as output:
        for index, strip in enumerate(strips):
            progress.update(index / len(strips))
            block = read(Window(0, strip.start, source.width, strip.stop - strip.start))
            valid = block != 0 if np.iscomplexobj(block) else np.isfinite(block)
            means = box_mean(block, valid, range_looks, azimuth_looks)
            if np.iscomplexobj(means):
                result = np.angle(means).astype(np.float32)
                result[~(np.abs(means) > 0)] = np.nan  # no valid pixel, or phases that cancel exactly
            else:
                result = means.astype(np.float32)
            output.write(result, strip.start // azimuth_looks)
            statistics.add(result)
        progress.check_cancelled()
        statistics.attach(output, width * height, f"{source.path}: no valid pixels to multilook: every value is nodata.")
    progress.finish()
    return width, height
