"""GDAL rasters read and written by windows, and outputs that appear only when complete.

Rasters here can be far larger than memory (a Sentinel-1 frame, a GF-2 scene), so nothing in
this module reads or writes a whole raster: callers walk ``strip_windows``/``tile_windows`` and
move one block at a time. ``AtomicGeoTiff`` writes under a temporary name in the destination
folder and renames on success, so a failure or a cancel never leaves a half-made file behind.
"""
import math
import os
import uuid
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, osr

from ..errors import MineSARError

# Budget for one block of pixels held at once by a reader or writer loop. 32 MiB keeps a
# 10k-wide float32 strip at ~800 rows: few enough GDAL calls, far below any memory limit.
DEFAULT_BLOCK_BYTES = 32 * 1024 * 1024

GEOTIFF_OPTIONS = (
    "TILED=YES",
    "BLOCKXSIZE=256",
    "BLOCKYSIZE=256",
    "COMPRESS=DEFLATE",
    "ZLEVEL=4",
    "BIGTIFF=IF_SAFER",
    "NUM_THREADS=ALL_CPUS",
)

_NUMPY_TO_GDAL = {
    np.dtype(np.uint8): gdal.GDT_Byte,
    np.dtype(np.uint16): gdal.GDT_UInt16,
    np.dtype(np.int16): gdal.GDT_Int16,
    np.dtype(np.uint32): gdal.GDT_UInt32,
    np.dtype(np.int32): gdal.GDT_Int32,
    np.dtype(np.float32): gdal.GDT_Float32,
    np.dtype(np.float64): gdal.GDT_Float64,
    np.dtype(np.complex64): gdal.GDT_CFloat32,
}


@dataclass(frozen=True)
class Window:
    """A block of a raster in pixel coordinates: column/row offset and size."""

    col: int
    row: int
    width: int
    height: int

    @property
    def slices(self) -> Tuple[slice, slice]:
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)


def rows_per_strip(width: int, bytes_per_pixel: int, budget_bytes: int = None) -> int:
    """How many full-width rows fit in the block budget (at least one)."""
    budget = DEFAULT_BLOCK_BYTES if budget_bytes is None else budget_bytes
    return max(1, int(budget // max(1, width * bytes_per_pixel)))


def strip_windows(width: int, height: int, rows: int) -> Iterator[Window]:
    """Full-width strips of ``rows`` rows, top to bottom (the last one may be shorter)."""
    for row in range(0, height, rows):
        yield Window(0, row, width, min(rows, height - row))


def tile_windows(width: int, height: int, tile_width: int, tile_height: int) -> Iterator[Window]:
    """Tiles in row-major order, clipped at the right and bottom edges."""
    for row in range(0, height, tile_height):
        for col in range(0, width, tile_width):
            yield Window(col, row, min(tile_width, width - col), min(tile_height, height - row))


@dataclass
class RasterInfo:
    path: str
    width: int
    height: int
    band_count: int
    data_types: List[int]
    geotransform: Optional[Tuple[float, ...]]
    crs_wkt: Optional[str]
    nodata: List[Optional[float]]
    metadata: Dict[str, str] = field(default_factory=dict)
    band_descriptions: List[str] = field(default_factory=list)

    @property
    def is_complex(self) -> bool:
        return bool(self.data_types) and all(gdal.DataTypeIsComplex(t) for t in self.data_types)


def open_raster(path: str, update: bool = False) -> "gdal.Dataset":
    """Open with GDAL or raise an error that names the file and says why."""
    if not os.path.exists(path):
        raise MineSARError(f"{path}: file not found.")
    if os.path.isdir(path):
        raise MineSARError(f"{path}: is a folder, not a raster file.")
    with _GdalFailures() as failures:
        dataset = gdal.Open(path, gdal.GA_Update if update else gdal.GA_ReadOnly)
    if dataset is None:
        reason = "; ".join(dict.fromkeys(failures.messages)) or "GDAL does not recognise the format"
        raise MineSARError(f"{path}: not a raster this plugin can read ({reason}).")
    return dataset


def describe(dataset: "gdal.Dataset") -> RasterInfo:
    geotransform = dataset.GetGeoTransform(can_return_null=True)
    if geotransform is not None and tuple(geotransform) == (0.0, 1.0, 0.0, 0.0, 0.0, 1.0):
        geotransform = None  # GDAL's placeholder for "no georeference"
    crs_wkt = dataset.GetProjection() or None
    bands = [dataset.GetRasterBand(i + 1) for i in range(dataset.RasterCount)]
    return RasterInfo(
        path=dataset.GetDescription(),
        width=dataset.RasterXSize,
        height=dataset.RasterYSize,
        band_count=dataset.RasterCount,
        data_types=[b.DataType for b in bands],
        geotransform=tuple(geotransform) if geotransform is not None else None,
        crs_wkt=crs_wkt,
        nodata=[b.GetNoDataValue() for b in bands],
        metadata=dict(dataset.GetMetadata() or {}),
        band_descriptions=[b.GetDescription() for b in bands],
    )


def read_window(dataset: "gdal.Dataset", window: Window, bands: Sequence[int] = (1,)) -> np.ndarray:
    """Read ``bands`` (1-based) of one window: shape (rows, cols) for one band, else (bands, rows, cols)."""
    arrays = []
    for index in bands:
        array = dataset.GetRasterBand(index).ReadAsArray(
            window.col, window.row, window.width, window.height
        )
        if array is None:
            raise MineSARError(
                f"{dataset.GetDescription()}: could not read rows {window.row}..."
                f"{window.row + window.height - 1} of band {index} ({gdal.GetLastErrorMsg()})."
            )
        arrays.append(array)
    return arrays[0] if len(arrays) == 1 else np.stack(arrays)


def epsg_wkt(code: int) -> str:
    srs = osr.SpatialReference()
    if srs.ImportFromEPSG(code) != 0:
        raise MineSARError(f"EPSG:{code} is not a known coordinate reference system.")
    return srs.ExportToWkt()


class AtomicGeoTiff:
    """A GeoTIFF written block by block under a temporary name and renamed when complete.

    Use as a context manager: leaving the block normally publishes the file at ``path``
    (replacing any earlier one); an exception, a cancel included, deletes the partial file.
    """

    def __init__(
        self,
        path: str,
        width: int,
        height: int,
        bands: int = 1,
        dtype=np.float32,
        geotransform: Optional[Sequence[float]] = None,
        crs_wkt: Optional[str] = None,
        nodata: Optional[float] = math.nan,
        metadata: Optional[Dict[str, str]] = None,
        band_descriptions: Optional[Sequence[str]] = None,
        options: Sequence[str] = GEOTIFF_OPTIONS,
        deferred: bool = False,
    ):
        self.path = os.path.abspath(path)
        # deferred: leaving the block only finishes the file; ``publish()`` renames it, so several
        # outputs can all be finished before any is renamed into place.
        self._deferred = deferred
        self._finished = False
        self._shape = (bands, height, width)
        self._dtype = np.dtype(dtype)
        if self._dtype not in _NUMPY_TO_GDAL:
            raise ValueError(f"No GeoTIFF type for {self._dtype}")
        self._geotransform = geotransform
        self._crs_wkt = crs_wkt
        self._nodata = nodata
        self._metadata = dict(metadata or {})
        self._band_descriptions = list(band_descriptions or [])
        self._options = list(options)
        if self._dtype.kind == "f":
            self._options.append("PREDICTOR=3")
        elif self._dtype.kind in "iu":
            self._options.append("PREDICTOR=2")
        folder = os.path.dirname(self.path)
        self._temporary = os.path.join(
            folder, f".{os.path.basename(self.path)}.partial-{uuid.uuid4().hex[:8]}.tif"
        )
        self._dataset = None
        self.band_metadata: Dict[int, Dict[str, str]] = {}

    def __enter__(self) -> "AtomicGeoTiff":
        bands, height, width = self._shape
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        driver = gdal.GetDriverByName("GTiff")
        with _GdalFailures() as failures:
            self._dataset = driver.Create(
                self._temporary, width, height, bands, _NUMPY_TO_GDAL[self._dtype], self._options
            )
        if self._dataset is None:
            raise MineSARError(f"{self.path}: cannot create the output ({failures.describe()}).")
        if self._geotransform is not None:
            self._dataset.SetGeoTransform(list(self._geotransform))
        if self._crs_wkt:
            self._dataset.SetProjection(self._crs_wkt)
        if self._metadata:
            self._dataset.SetMetadata({str(k): str(v) for k, v in self._metadata.items()})
        for index in range(bands):
            band = self._dataset.GetRasterBand(index + 1)
            if self._nodata is not None:
                band.SetNoDataValue(float(self._nodata))
            if index < len(self._band_descriptions):
                band.SetDescription(self._band_descriptions[index])
        return self

    def write(self, array: np.ndarray, window_or_row, col: int = 0, band: int = 1) -> None:
        """Write a 2-D block at a ``Window`` (or at row/col offsets) of ``band`` (1-based)."""
        if isinstance(window_or_row, Window):
            row, col = window_or_row.row, window_or_row.col
        else:
            row = int(window_or_row)
        with _GdalFailures() as failures:
            result = self._dataset.GetRasterBand(band).WriteArray(
                np.ascontiguousarray(array, dtype=self._dtype), int(col), int(row)
            )
        if result != 0 or failures.messages:
            raise MineSARError(f"{self.path}: writing failed ({failures.describe()}).")

    def __exit__(self, exc_type, exc, traceback) -> bool:
        dataset, self._dataset = self._dataset, None
        # GTiff writes cached blocks when flushed and closed: a full disk shows up only here.
        with _GdalFailures() as failures:
            if exc_type is None:
                for index, items in self.band_metadata.items():
                    dataset.GetRasterBand(index).SetMetadata({k: str(v) for k, v in items.items()})
                dataset.FlushCache()
            dataset = None  # closing the handle finishes the TIFF on disk
        if exc_type is not None or failures.messages:
            _remove_quietly(self._temporary)
            _remove_quietly(self._temporary + ".aux.xml")
            if exc_type is None:
                raise MineSARError(f"{self.path}: writing failed ({failures.describe()}); nothing was written.")
            return False
        self._finished = True
        if not self._deferred:
            self.publish()
        return False

    def publish(self) -> None:
        """Rename the finished file into place (done on leaving the block unless deferred)."""
        if not self._finished:
            raise MineSARError(f"{self.path}: not finished, nothing to publish.")
        # Statistics GDAL/QGIS cached for an earlier file of this name would now be wrong.
        _remove_quietly(self.path + ".aux.xml")
        try:
            os.replace(self._temporary, self.path)
        except OSError as error:
            _remove_quietly(self._temporary)
            raise MineSARError(f"{self.path}: cannot be put in place ({error}); nothing was written.") from error
        self._finished = False

    def discard(self) -> None:
        """Remove a finished but unpublished file."""
        if self._finished:
            _remove_quietly(self._temporary)
            self._finished = False


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


class _GdalFailures:
    """Collect the GDAL failures raised inside the block instead of printing them: we turn them
    into our own messages (and GDAL reports some write failures only to its handler)."""

    def __enter__(self):
        self.messages: List[str] = []

        def handler(error_class, number, message):
            if error_class >= gdal.CE_Failure:
                self.messages.append(message)

        self._handler = handler  # referenced here so that it outlives the push
        gdal.PushErrorHandler(handler)
        return self

    def __exit__(self, *exc):
        gdal.PopErrorHandler()
        return False

    def describe(self) -> str:
        return "; ".join(dict.fromkeys(self.messages)) or gdal.GetLastErrorMsg() or "GDAL error"


def read_tags(path: str, band: int = 1) -> Tuple[Dict[str, str], Dict[str, str]]:
    """Dataset metadata and one band's metadata of a raster (both empty if it has none)."""
    dataset = open_raster(path)
    band_tags = dataset.GetRasterBand(band).GetMetadata() if dataset.RasterCount >= band else {}
    return dict(dataset.GetMetadata() or {}), dict(band_tags or {})
