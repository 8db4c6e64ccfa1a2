"""rasmph-style colour rendering of a wrapped interferogram, for people who label or publish.

Phase is hue (``core.io.colours.phase_to_rgb``: one colour cycle per 2π, 0 = red), optionally
darkened by a brightness raster as GAMMA's rasmph_pwr does: (value / reference)^0.35, where the
reference is the scene mean of an amplitude raster, or 1 for coherence (already 0–1), so that
every block of a scene is rendered alike. A brightness raster is coherence only when something
other than its values says so — MineSAR's or PyRate's tags, a LiCSAR/HyP3 coherence product name,
a coherence word in the file name (cc, coh, cor) — since calibrated σ⁰ or a normalised amplitude
also lies within 0–1 and would render far too dark if taken for coherence. Nodata is black, which ``rgb_to_phase`` reads back as
nodata. Output: a 3-band byte GeoTIFF, or a PNG with a world file when the name ends in .png.
"""
import math
import os
import uuid
from typing import Optional

import numpy as np
from osgeo import gdal

from ..errors import MineSARError
from ..io.colours import brightness_from, phase_to_rgb
from ..io.interferogram import InterferogramSource, open_interferogram
from ..io.rasters import AtomicGeoTiff, Window, describe, open_raster, read_window
from ..progress import SILENT, Progress
from .blocks import complex_reader, halo_strips, output_tags, require_kind, same_grid

_BYTES_PER_PIXEL = 80  # float64 hue arithmetic of three channels


class _Brightness:
    """An amplitude raster read by windows, nodata as NaN."""

    def __init__(self, path: str):
        self.path = path
        self._dataset = open_raster(path)
        info = describe(self._dataset)
        self.width, self.height, self.geotransform = info.width, info.height, info.geotransform
        self._nodata = info.nodata[0]

    def read(self, window: Window) -> np.ndarray:
        values = read_window(self._dataset, window).astype(np.float32)
        if self._nodata is not None and not math.isnan(self._nodata):
            values[values == self._nodata] = np.nan
        values[~np.isfinite(values)] = np.nan
        return values


def coherence_or_none(path: str) -> Optional[InterferogramSource]:
    """The brightness raster opened as coherence when its tags, product name or file name say it
    is one (never its value range), else None (an amplitude)."""
    try:
        source = open_interferogram(path, "auto", allow_pixel_coordinates=True)
    except MineSARError:
        return None  # not readable as an interferogram product: an amplitude image
    if source.metadata.kind == "coherence" and not source.metadata.kind_reason.startswith("values within"):
        return source  # read through the product's conventions (LiCSAR byte scale, zero nodata)
    source.close()
    return None


def render_interferogram(
    source: InterferogramSource,
    destination: str,
    brightness_path: Optional[str] = None,
    amplitude_brightness: bool = False,
    progress: Progress = SILENT,
    block_bytes: Optional[int] = None,
) -> dict:
    """Render ``source``; returns what the brightness was and its reference."""
    require_kind(source, ("wrapped",), "colour rendering")
    if brightness_path and amplitude_brightness:
        raise MineSARError(
            f"{source.path}: both a brightness raster ({os.path.basename(brightness_path)}, BRIGHTNESS) and the "
            "interferogram's own amplitude (AMPLITUDE_BRIGHTNESS) were asked for; choose one."
        )
    read_brightness, what, reference, coherence = None, None, None, None
    if brightness_path:
        coherence = coherence_or_none(brightness_path)
        if coherence is not None:
            same_grid(source, coherence, "the brightness raster")
            read_brightness, what, reference = coherence.read, f"coherence {os.path.basename(brightness_path)}", 1.0
        else:
            brightness = _Brightness(brightness_path)
            same_grid(source, brightness, "the brightness raster")
            read_brightness, what = brightness.read, f"amplitude {os.path.basename(brightness_path)}"
    elif amplitude_brightness:
        read_complex = complex_reader(source)
        if read_complex is None:
            raise MineSARError(
                f"{source.path}: holds no amplitudes (not complex); give a brightness raster instead, or import "
                "the complex interferogram with minesar:importinterferogram KEEP_COMPLEX."
            )

        def read_brightness(window):
            values = read_complex(window)
            return np.where(values != 0, np.abs(values), np.nan).astype(np.float32)

        what = "interferogram amplitude"
    try:
        return _render(source, destination, read_brightness, what, reference, brightness_path, progress, block_bytes)
    finally:
        if coherence is not None:
            coherence.close()


def _render(source, destination, read_brightness, what, reference, brightness_path, progress, block_bytes) -> dict:
    strips = list(halo_strips(source.height, source.width, _BYTES_PER_PIXEL, 0, block_bytes))
    first_pass = read_brightness is not None and reference is None  # amplitude: its scene mean
    total_steps = len(strips) * (2 if first_pass else 1)
    if first_pass:
        count, total = 0, 0.0
        for index, strip in enumerate(strips):
            progress.update(index / total_steps)
            values = read_brightness(Window(0, strip.start, source.width, strip.stop - strip.start))
            valid = values[np.isfinite(values)]
            count += valid.size
            total += float(valid.sum(dtype=np.float64))
        if count == 0 or total <= 0:
            raise MineSARError(f"{brightness_path or source.path}: no positive brightness values to scale by.")
        reference = total / count

    png = destination.lower().endswith(".png")
    target = os.path.join(os.path.dirname(os.path.abspath(destination)), f".{uuid.uuid4().hex[:8]}.render.tif") if png else destination
    tags = output_tags(source, None, MINESAR_PRODUCT="rasmph colour interferogram",
                       MINESAR_BRIGHTNESS=f"{what}, reference {reference:.6g}, exponent 0.35" if reference else "none")
    with AtomicGeoTiff(
        target, source.width, source.height, bands=3, dtype=np.uint8,
        geotransform=source.geotransform, crs_wkt=source.crs_wkt if source.is_georeferenced else None,
        nodata=None, metadata=tags, band_descriptions=["red", "green", "blue"],
    ) as output:
        offset = len(strips) if first_pass else 0
        for index, strip in enumerate(strips):
            progress.update((offset + index) / total_steps)
            window = Window(0, strip.start, source.width, strip.stop - strip.start)
            phase = source.read(window)
            light = brightness_from(read_brightness(window), reference) if read_brightness else None
            rgb = phase_to_rgb(phase, light)
            for band in range(3):
                output.write(rgb[..., band], strip.start, band=band + 1)
        progress.check_cancelled()
    if png:
        try:
            _to_png(target, destination)
        finally:
            for leftover in (target, target + ".aux.xml"):
                if os.path.exists(leftover):
                    os.remove(leftover)
    progress.finish()
    return {"brightness": what if reference else "none", "reference": reference}


def _to_png(geotiff: str, destination: str) -> None:
    """PNG copy with a world file, published under its final name only when complete."""
    folder, name = os.path.split(os.path.abspath(destination))
    partial = os.path.join(folder, f".{uuid.uuid4().hex[:8]}.{name}")
    dataset = gdal.Open(geotiff)
    copy = gdal.GetDriverByName("PNG").CreateCopy(partial, dataset, options=["WORLDFILE=YES"])
    if copy is None:
        raise MineSARError(f"{destination}: cannot write the PNG ({gdal.GetLastErrorMsg()}).")
    copy, dataset = None, None
    stem, partial_stem = os.path.splitext(destination)[0], os.path.splitext(partial)[0]
    for extension in (".wld", ".pgw"):
        if os.path.exists(partial_stem + extension):
            os.replace(partial_stem + extension, stem + extension)
    if os.path.exists(partial + ".aux.xml"):
        os.replace(partial + ".aux.xml", os.path.abspath(destination) + ".aux.xml")
    os.replace(partial, os.path.abspath(destination))
