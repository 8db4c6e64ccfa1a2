"""Real rasters that feed the simulator: GACOS zenith total delays and DEMs.

GACOS delivers ``*.ztd`` (float32, little-endian, metres) with a ROI_PAC-style ``*.ztd.rsc``
(WIDTH, FILE_LENGTH, X_FIRST, Y_FIRST, X_STEP, Y_STEP), or GeoTIFFs; any GDAL raster works too.
A simulated scene takes a random window of the right ground size from them, resampled to its own
pixel size, so the atmosphere keeps its real spatial structure.
"""
import math
import os
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
from osgeo import osr
from scipy import ndimage

from ..errors import MineSARError
from ..io.rasters import describe, open_raster

_MAX_PIXELS = 60_000_000  # auxiliary rasters are coarse (GACOS ≈ 90 m): held in memory whole
_EARTH_METRES_PER_DEGREE = 111_320.0


@dataclass
class AuxiliaryRaster:
    path: str
    values: np.ndarray  # float64, NaN = no data
    geotransform: Tuple[float, ...]
    crs_wkt: str
    pixel_size_m: Tuple[float, float]  # (x, y) ground size of a pixel


def read_rsc(path: str) -> dict:
    items = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 2:
                items[parts[0].upper()] = parts[1]
    return items


def load_auxiliary(path: str, what: str) -> AuxiliaryRaster:
    """Read a GACOS ZTD (``.ztd`` + ``.rsc`` or any raster) or a DEM whole, checked."""
    rsc = path + ".rsc"
    if path.lower().endswith(".ztd") and os.path.exists(rsc):
        values, geotransform, crs_wkt = _read_ztd(path, rsc)
    else:
        dataset = open_raster(path)
        info = describe(dataset)
        if info.width * info.height > _MAX_PIXELS:
            raise MineSARError(f"{path}: {info.width} × {info.height} is too large for a {what} raster "
                               f"(at most {_MAX_PIXELS:,} pixels); resample it first.")
        if info.geotransform is None or not info.crs_wkt:
            raise MineSARError(f"{path}: the {what} raster has no georeference, so its pixel size is unknown.")
        values = dataset.GetRasterBand(1).ReadAsArray().astype(np.float64)
        nodata = info.nodata[0]
        if nodata is not None and not math.isnan(nodata):
            values[values == nodata] = np.nan
        geotransform, crs_wkt = info.geotransform, info.crs_wkt
        dataset = None
        if what == "GACOS":
            values[values == 0] = np.nan  # a zenith delay is never 0: GACOS's "outside the model"
    if abs(geotransform[2]) > 0 or abs(geotransform[4]) > 0:
        raise MineSARError(f"{path}: rotated grids are not supported for {what} rasters.")
    if not np.isfinite(values).any():
        raise MineSARError(f"{path}: the {what} raster has no valid value.")
    return AuxiliaryRaster(path, values, tuple(geotransform), crs_wkt, _ground_pixel_size(geotransform, crs_wkt, values.shape))


def _read_ztd(path: str, rsc_path: str):
    items = read_rsc(rsc_path)
    try:
        width, length = int(items["WIDTH"]), int(items["FILE_LENGTH"])
        x_first, y_first = float(items["X_FIRST"]), float(items["Y_FIRST"])
        x_step, y_step = float(items["X_STEP"]), float(items["Y_STEP"])
    except (KeyError, ValueError) as error:
        raise MineSARError(f"{rsc_path}: not a usable GACOS header ({error} missing or unreadable).") from None
    expected = width * length * 4
    size = os.path.getsize(path)
    if size != expected:
        raise MineSARError(f"{path}: {size} bytes, but {rsc_path} says {width} × {length} float32 = {expected}.")
    values = np.fromfile(path, dtype="<f4").reshape(length, width).astype(np.float64)
    values[values == 0] = np.nan  # GACOS writes 0 outside its model domain
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    return values, (x_first, x_step, 0.0, y_first, 0.0, y_step), srs.ExportToWkt()


def _ground_pixel_size(geotransform, crs_wkt, shape) -> Tuple[float, float]:
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs_wkt)
    dx, dy = abs(geotransform[1]), abs(geotransform[5])
    if srs.IsGeographic():
        latitude = geotransform[3] + geotransform[5] * shape[0] / 2.0
        return (dx * _EARTH_METRES_PER_DEGREE * math.cos(math.radians(latitude)), dy * _EARTH_METRES_PER_DEGREE)
    factor = srs.GetLinearUnits() or 1.0
    return dx * factor, dy * factor


def check_same_grid(rasters: Sequence[AuxiliaryRaster], what: str) -> None:
    first = rasters[0]
    for other in rasters[1:]:
        if other.values.shape != first.values.shape or not np.allclose(other.geotransform, first.geotransform):
            raise MineSARError(
                f"{other.path}: its grid differs from {first.path}; the {what} rasters must share one grid "
                "so that a pair is differenced pixel by pixel."
            )


_MIN_VALID = 0.95
_WINDOW_TRIES = 50


def random_window(values: np.ndarray, source_pixel_m: Tuple[float, float], rows: int, cols: int,
                  pixel_size_m: float, rng: np.random.Generator, path: str, what: str) -> Tuple[slice, slice]:
    """A random block of the source covering rows × cols scene pixels on the ground, at least 95 %
    valid (drawn again otherwise): a window of gaps would give an image without atmosphere."""
    raster_shape = values.shape
    need_rows = int(math.ceil(rows * pixel_size_m / source_pixel_m[1])) + 1
    need_cols = int(math.ceil(cols * pixel_size_m / source_pixel_m[0])) + 1
    height, width = raster_shape
    if need_rows > height or need_cols > width:
        raise MineSARError(
            f"{path}: the {what} raster covers {width * source_pixel_m[0] / 1000:.1f} × "
            f"{height * source_pixel_m[1] / 1000:.1f} km, a scene of {cols} × {rows} pixels of {pixel_size_m:g} m "
            f"needs {cols * pixel_size_m / 1000:.1f} × {rows * pixel_size_m / 1000:.1f} km."
        )
    for _ in range(_WINDOW_TRIES):
        row0 = int(rng.integers(0, height - need_rows + 1))
        col0 = int(rng.integers(0, width - need_cols + 1))
        window = slice(row0, row0 + need_rows), slice(col0, col0 + need_cols)
        if np.isfinite(values[window]).mean() >= _MIN_VALID:
            return window
    raise MineSARError(f"{path}: no window of {need_cols} × {need_rows} pixels with {_MIN_VALID:.0%} valid values "
                       f"in {_WINDOW_TRIES} random tries; the {what} raster has too many gaps.")


def resample_block(block: np.ndarray, rows: int, cols: int, source_pixel_m, pixel_size_m: float) -> np.ndarray:
    """Bilinear resampling of a source block to the scene grid; small gaps take the nearest value
    (a mean would put a false step into the delay)."""
    gaps = ~np.isfinite(block)
    filled = block
    if gaps.any():
        nearest = ndimage.distance_transform_edt(gaps, return_distances=False, return_indices=True)
        filled = block[tuple(nearest)]
    row_coords = (np.arange(rows) + 0.5) * pixel_size_m / source_pixel_m[1] - 0.5
    col_coords = (np.arange(cols) + 0.5) * pixel_size_m / source_pixel_m[0] - 0.5
    grid_rows, grid_cols = np.meshgrid(row_coords, col_coords, indexing="ij")
    return ndimage.map_coordinates(filled, [grid_rows, grid_cols], order=1, mode="nearest")


class GacosPool:
    """Several ZTD maps of one area; each scene differences a random pair (seed 001 eq. 9)."""

    def __init__(self, paths: Sequence[str]):
        if len(paths) < 2:
            raise MineSARError("GACOS: give at least two zenith delay rasters, so that a pair can be differenced.")
        self.rasters: List[AuxiliaryRaster] = [load_auxiliary(p, "GACOS") for p in paths]
        check_same_grid(self.rasters, "GACOS")

    def pair_difference_mm(self, rng: np.random.Generator, rows: int, cols: int, pixel_size_m: float):
        """(ZTD_a − ZTD_b in mm on the scene grid, (path_a, path_b))."""
        first, second = rng.choice(len(self.rasters), size=2, replace=False)
        a, b = self.rasters[int(first)], self.rasters[int(second)]
        difference_m = a.values - b.values
        window = random_window(difference_m, a.pixel_size_m, rows, cols, pixel_size_m, rng, a.path, "GACOS")
        difference = difference_m[window] * 1000.0
        return resample_block(difference, rows, cols, a.pixel_size_m, pixel_size_m).astype(np.float32), (a.path, b.path)


class DemPool:
    """A DEM from which each scene takes a random window for its stratified delay."""

    def __init__(self, path: str):
        self.raster = load_auxiliary(path, "DEM")

    def heights(self, rng: np.random.Generator, rows: int, cols: int, pixel_size_m: float) -> np.ndarray:
        r = self.raster
        window = random_window(r.values, r.pixel_size_m, rows, cols, pixel_size_m, rng, r.path, "DEM")
        return resample_block(r.values[window], rows, cols, r.pixel_size_m, pixel_size_m).astype(np.float32)
