"""One reader for every interferogram format SPEC §1 lists.

``open_interferogram`` looks at a file (GAMMA binary, GeoTIFF or any GDAL raster of phase,
complex values, coherence or rasmph colours; LiCSAR and HyP3 products; MineSAR's own GeoTIFFs)
and returns an ``InterferogramSource``: its grid, georeference and metadata (kind, dates,
wavelength, incidence, heading), and ``read(window)`` giving float32 radians (wrapped phase in
(−π, π], unwrapped phase) or coherence in [0, 1], with NaN wherever the product has no data.

Nodata: a GDAL band's nodata value; zero in GAMMA, LiCSAR and HyP3 products, whose processors
write 0 where they masked or could not unwrap (PyRate's statistics of the sample data count those
zeros as invalid too); complex zero anywhere, since it has no phase. A float GeoTIFF without such
a convention keeps its zeros: zero is a valid phase.
"""
import math
import os
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Dict, Optional, Tuple

import numpy as np
from osgeo import gdal

from ..errors import MineSARError
from . import gamma
from .colours import rgb_to_phase, wrap
from .products import SENTINEL1_WAVELENGTH_M, dates_from_name, float_or_none, identify_product
from .rasters import Window, describe, open_raster, read_window

KINDS = ("wrapped", "unwrapped", "coherence")
UNITS = {"wrapped": "radians", "unwrapped": "radians", "coherence": "coherence (0-1)"}
# Tags ``to_tags`` derives from the fields (or GDAL sets itself), as opposed to carried extras.
_OWN_TAGS = {
    "MINESAR_KIND", "UNITS", "SOURCE_FORMAT", "WAVELENGTH_M", "WAVELENGTH_SOURCE", "DATE1", "DATE2",
    "TEMPORAL_BASELINE_DAYS", "RADAR_FREQUENCY_HZ", "INCIDENCE_DEG", "HEADING_DEG", "BASELINE_TCN_M",
    "SOURCE_FILE", "AREA_OR_POINT",
}
_NAME_TOKENS = {
    "unwrapped": {"unw", "unwrapped", "unwrap"},
    "coherence": {"cc", "cor", "coh", "corr", "coherence"},
    "wrapped": {"int", "diff", "wrapped", "pha", "ifg", "interferogram", "filt"},
}


@dataclass
class InterferogramMetadata:
    kind: str
    kind_reason: str
    source_format: str
    date1: Optional[date] = None
    date2: Optional[date] = None
    wavelength_m: float = SENTINEL1_WAVELENGTH_M
    wavelength_source: str = "Sentinel-1 default (no radar frequency found)"
    radar_frequency_hz: Optional[float] = None
    incidence_deg: Optional[float] = None
    heading_deg: Optional[float] = None
    baseline_tcn_m: Optional[Tuple[float, float, float]] = None
    extra: Dict[str, str] = field(default_factory=dict)

    @property
    def temporal_baseline_days(self) -> Optional[int]:
        if self.date1 and self.date2:
            return (self.date2 - self.date1).days
        return None

    def to_tags(self) -> Dict[str, str]:
        """GDAL dataset metadata written into every imported GeoTIFF (and read back by ``from_tags``)."""
        tags = {
            "MINESAR_KIND": self.kind,
            "UNITS": UNITS[self.kind],
            "SOURCE_FORMAT": self.source_format,
            "WAVELENGTH_M": f"{self.wavelength_m:.9g}",
            "WAVELENGTH_SOURCE": self.wavelength_source,
        }
        optional = {
            "DATE1": self.date1.isoformat() if self.date1 else None,
            "DATE2": self.date2.isoformat() if self.date2 else None,
            "TEMPORAL_BASELINE_DAYS": self.temporal_baseline_days,
            "RADAR_FREQUENCY_HZ": f"{self.radar_frequency_hz:.10g}" if self.radar_frequency_hz else None,
            "INCIDENCE_DEG": f"{self.incidence_deg:.6g}" if self.incidence_deg is not None else None,
            "HEADING_DEG": f"{self.heading_deg:.8g}" if self.heading_deg is not None else None,
            "BASELINE_TCN_M": " ".join(f"{v:.7g}" for v in self.baseline_tcn_m) if self.baseline_tcn_m else None,
        }
        tags.update({k: str(v) for k, v in optional.items() if v is not None})
        tags.update(self.extra)
        return tags

    @classmethod
    def from_tags(cls, tags: Dict[str, str], source_format: str) -> Optional["InterferogramMetadata"]:
        """Metadata of a MineSAR GeoTIFF, or of a PyRate one (FIRST_DATE/WAVELENGTH_METRES…)."""
        if "MINESAR_KIND" in tags and tags["MINESAR_KIND"] in KINDS:
            meta = cls(tags["MINESAR_KIND"], "MineSAR metadata", tags.get("SOURCE_FORMAT", source_format))
            meta.date1 = _iso_or_none(tags.get("DATE1"))
            meta.date2 = _iso_or_none(tags.get("DATE2"))
            if float_or_none(tags.get("WAVELENGTH_M")):
                meta.wavelength_m = float(tags["WAVELENGTH_M"])
                meta.wavelength_source = tags.get("WAVELENGTH_SOURCE", "MineSAR metadata")
            meta.radar_frequency_hz = float_or_none(tags.get("RADAR_FREQUENCY_HZ"))
            meta.incidence_deg = float_or_none(tags.get("INCIDENCE_DEG"))
            meta.heading_deg = float_or_none(tags.get("HEADING_DEG"))
            if tags.get("BASELINE_TCN_M"):
                meta.baseline_tcn_m = tuple(float(v) for v in tags["BASELINE_TCN_M"].split()[:3])
            # Whatever else an earlier import recorded (grid par, HyP3 baseline, …) travels on.
            meta.extra = {k: v for k, v in tags.items() if k not in _OWN_TAGS}
            return meta
        if "FIRST_DATE" in tags or "WAVELENGTH_METRES" in tags:  # PyRate's GeoTIFF metadata
            kind = {"ORIGINAL_IFG": "unwrapped", "COHERENCE": "coherence"}.get(tags.get("DATA_TYPE", ""), "")
            meta = cls(kind, "PyRate metadata" if kind else "", source_format)
            meta.date1 = _iso_or_none(tags.get("FIRST_DATE"))
            meta.date2 = _iso_or_none(tags.get("SECOND_DATE"))
            if float_or_none(tags.get("WAVELENGTH_METRES")):
                meta.wavelength_m = float(tags["WAVELENGTH_METRES"])
                meta.wavelength_source = "PyRate metadata"
            meta.incidence_deg = float_or_none(tags.get("INCIDENCE_DEGREES"))
            return meta
        return None


class InterferogramSource:
    """A phase or coherence raster read by windows. Use ``with`` or call ``close``."""

    def __init__(self, path, width, height, geotransform, crs_wkt, metadata, bytes_per_pixel, notes=None):
        self.path = path
        self.width = width
        self.height = height
        self.geotransform = geotransform
        self.crs_wkt = crs_wkt
        self.metadata: InterferogramMetadata = metadata
        self.bytes_per_pixel = bytes_per_pixel  # stored bytes read per output pixel
        self.notes = list(notes or [])

    @property
    def is_georeferenced(self) -> bool:
        return self.geotransform is not None and bool(self.crs_wkt)

    def read(self, window: Window) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _GammaSource(InterferogramSource):
    def __init__(self, binary: gamma.GammaBinary, **kwargs):
        super().__init__(**kwargs)
        self._binary = binary

    def read(self, window: Window) -> np.ndarray:
        values = self._binary.read(window)
        return _convert(values, self.metadata.kind, self.path, nodata=None, zero_is_nodata=True)

    def close(self) -> None:
        self._binary.close()


class _GdalSource(InterferogramSource):
    def __init__(self, dataset, storage, nodata, zero_is_nodata, scale, palette=None, **kwargs):
        super().__init__(**kwargs)
        self._dataset = dataset
        self._storage = storage
        self._palette = palette
        self._nodata = nodata
        self._zero_is_nodata = zero_is_nodata
        self._scale = scale

    def read(self, window: Window) -> np.ndarray:
        if self._storage == "colour":
            bands = list(range(1, self._dataset.RasterCount + 1))
            block = read_window(self._dataset, window, bands)
            phase = rgb_to_phase(np.moveaxis(block[:3], 0, -1))
            if len(bands) == 4:  # alpha
                phase[block[3] == 0] = np.nan
            if self._nodata is not None:
                phase[np.all(block[:3] == self._nodata, axis=0)] = np.nan
            return phase
        if self._storage == "palette":
            index = read_window(self._dataset, window)
            rgba = self._palette[np.clip(index, 0, len(self._palette) - 1)]
            phase = rgb_to_phase(rgba[..., :3])
            phase[rgba[..., 3] == 0] = np.nan
            if self._nodata is not None:
                phase[index == self._nodata] = np.nan
            return phase
        values = read_window(self._dataset, window)
        return _convert(values, self.metadata.kind, self.path, self._nodata, self._zero_is_nodata, self._scale)

    def close(self) -> None:
        self._dataset = None


def _convert(values, kind, path, nodata, zero_is_nodata, scale=1.0) -> np.ndarray:
    if np.iscomplexobj(values):
        out = np.angle(values).astype(np.float32)
        invalid = ~np.isfinite(values) | (values == 0)
    else:
        out = values.astype(np.float32)
        invalid = ~np.isfinite(out)
        if nodata is not None and not math.isnan(nodata):
            invalid |= values == nodata
        if zero_is_nodata:
            invalid |= values == 0
        if scale != 1.0:
            out *= np.float32(scale)
        if kind == "wrapped":
            out = wrap(out)
        elif kind == "coherence":
            valid = out[~invalid]
            if valid.size and (valid.min() < -1e-6 or valid.max() > 1.0 + 1e-3):
                raise MineSARError(
                    f"{path}: values from {valid.min():.4g} to {valid.max():.4g} are not a coherence (0–1). "
                    "Is KIND right?"
                )
    out[invalid] = np.nan
    return out


def _iso_or_none(text: Optional[str]) -> Optional[date]:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _is_tiff(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _kind_from_name(path: str) -> Optional[str]:
    """The kind named by the *last* telling word: "x.unw.cc.tif" is the coherence of an unwrapped pair."""
    for token in reversed(re.split(r"[^a-z0-9]+", os.path.basename(path).lower())):
        for kind, words in _NAME_TOKENS.items():
            if token in words:
                return kind
    return None


def open_interferogram(
    path: str,
    kind: str = "auto",
    width: Optional[int] = None,
    par: Optional[str] = None,
    allow_pixel_coordinates: bool = False,
) -> InterferogramSource:
    """Open ``path`` as an interferogram, unwrapped interferogram or coherence raster.

    ``kind`` forces what the values are; ``width``/``par`` force the grid of a GAMMA binary (and
    make any headerless file read as one). Without a georeference the file is refused unless
    ``allow_pixel_coordinates``.
    """
    if kind not in KINDS + ("auto",):
        raise MineSARError(f"Unknown kind '{kind}': use one of auto, {', '.join(KINDS)}.")
    if not os.path.isfile(path):
        raise MineSARError(f"{path}: file not found.")
    if os.path.getsize(path) == 0:
        raise MineSARError(f"{path}: file is empty.")
    gamma_type = gamma.binary_type(path)
    has_header = any(os.path.exists(path + ext) for ext in (".rsc", ".hdr", ".vrt", ".xml"))
    if (width or par) or (gamma_type and not has_header and not _is_tiff(path)):
        source = _open_gamma(path, kind, gamma_type, width, par)
    else:
        source = _open_gdal(path, kind)
    if not source.is_georeferenced and not allow_pixel_coordinates:
        source.close()
        reason = "; ".join(source.notes) if source.notes else "the file carries no coordinates"
        raise MineSARError(
            f"{path}: no georeference ({reason}). Give the dem_par of its grid as PAR, "
            "or allow import in pixel coordinates."
        )
    return source


def _open_gamma(path, kind, gamma_type, width, par) -> InterferogramSource:
    if gamma_type is not None:
        extension, dtype, content = gamma_type
        if kind == "auto":
            if content not in KINDS:
                raise MineSARError(
                    f"{path}: a GAMMA {extension} file holds {content}, not an interferogram or "
                    "coherence. Set KIND to import it anyway."
                )
            kind, reason = content, f"GAMMA {extension} file"
        else:
            reason = "given"
            if dtype == ">c8" and kind != "wrapped":
                raise MineSARError(
                    f"{path}: a GAMMA {extension} file is complex, i.e. wrapped phase; KIND={kind} contradicts it."
                )
    else:
        if kind == "auto":
            raise MineSARError(
                f"{path}: the name does not say what this headerless file holds. Set KIND "
                "(wrapped = complex >c8, unwrapped or coherence = float >f4) or use a GAMMA extension."
            )
        dtype, reason = (">c8" if kind == "wrapped" else ">f4"), "given"
    item_size = np.dtype(dtype).itemsize
    grid = gamma.locate_grid(path, item_size, width=width, par=par)
    date1, date2 = dates_from_name(path)
    info = gamma.acquisition_info(path, date1, date2, par or grid.par)
    meta = InterferogramMetadata(kind, reason, "GAMMA", info.date1, info.date2)
    if info.radar_frequency_hz:
        meta.radar_frequency_hz = info.radar_frequency_hz
        meta.wavelength_m = gamma.wavelength_from_frequency(info.radar_frequency_hz, info.frequency_source)
        meta.wavelength_source = f"radar_frequency in {os.path.basename(info.frequency_source)}"
    meta.incidence_deg, meta.heading_deg = info.incidence_deg, info.heading_deg
    meta.baseline_tcn_m = info.baseline_tcn_m
    if grid.par:
        meta.extra["GAMMA_GRID_PAR"] = os.path.basename(grid.par)
    georef = grid.georeference
    notes = list(grid.notes)
    if georef is None:
        notes.append(grid.georeference_problem or "no dem_par of this grid")
    return _GammaSource(
        gamma.GammaBinary(path, dtype, grid.width, grid.lines),
        path=path,
        width=grid.width,
        height=grid.lines,
        geotransform=georef.geotransform if georef else None,
        crs_wkt=georef.crs_wkt if georef else None,
        metadata=meta,
        bytes_per_pixel=item_size,
        notes=notes,
    )


def _open_gdal(path, kind) -> InterferogramSource:
    dataset = open_raster(path)
    info = describe(dataset)
    byte = info.data_types and info.data_types[0] == gdal.GDT_Byte
    palette = _palette(dataset)
    if info.is_complex:
        storage = "complex"
    elif info.band_count in (3, 4) and all(t == gdal.GDT_Byte for t in info.data_types):
        storage = "colour"
    elif info.band_count == 1 and palette is not None:
        storage = "palette"  # a colour interferogram saved with a colour table (PNG, GIF, BMP)
    elif info.band_count == 1:
        storage = "real"
    else:
        raise MineSARError(
            f"{path}: {info.band_count} bands of {gdal.GetDataTypeName(info.data_types[0])}: not an "
            "interferogram layout (expected one band of phase or coherence, one complex band, or "
            "3/4 bytes of rasmph colours)."
        )
    product = identify_product(path, is_byte=bool(byte))
    tagged = InterferogramMetadata.from_tags(info.metadata, "GeoTIFF")
    fixed = {"complex": "wrapped", "colour": "wrapped", "palette": "wrapped"}.get(storage)
    named = _kind_from_name(path)

    if kind != "auto":
        chosen, reason = kind, "given"
        if fixed and kind != fixed:
            what = "complex values" if storage == "complex" else "rasmph colours"
            raise MineSARError(f"{path}: holds {what}, i.e. wrapped phase; KIND={kind} contradicts it.")
    elif tagged is not None and tagged.kind:
        chosen, reason = tagged.kind, tagged.kind_reason
    elif product is not None:
        chosen, reason = product.kind, f"{product.processor} product name"
    elif fixed:
        chosen, reason = fixed, "complex values" if storage == "complex" else "rasmph colour image"
    elif named:
        chosen, reason = named, "file name"
    else:
        chosen, reason = _kind_from_range(dataset, path)

    if product is not None:
        source_format = product.processor
    elif tagged is not None and "MINESAR_KIND" in info.metadata:
        source_format = tagged.source_format  # a re-import keeps the original format
    else:
        source_format = "rasmph colour" if storage in ("colour", "palette") else dataset.GetDriver().ShortName
    meta = tagged if tagged is not None else InterferogramMetadata(chosen, reason, source_format)
    meta.kind, meta.kind_reason, meta.source_format = chosen, reason, source_format
    if meta.date1 is None:
        meta.date1, meta.date2 = dates_from_name(path)
    if product is not None:
        if meta.wavelength_source.startswith("Sentinel-1 default"):
            meta.wavelength_m, meta.wavelength_source = product.wavelength_m, f"{product.processor} (Sentinel-1)"
        meta.incidence_deg = meta.incidence_deg if meta.incidence_deg is not None else product.incidence_deg
        meta.heading_deg = meta.heading_deg if meta.heading_deg is not None else product.heading_deg
        meta.extra.update(product.extra)

    notes = []
    if info.geotransform is None or not info.crs_wkt:
        notes.append("no geotransform" if info.geotransform is None else "no coordinate reference system")
    if storage in ("colour", "palette"):
        stored_bytes = 64  # the hue conversion works on float64 copies of three channels
    else:
        stored_bytes = gdal.GetDataTypeSize(info.data_types[0]) // 8
    return _GdalSource(
        dataset,
        storage,
        palette=palette,
        nodata=info.nodata[0],
        zero_is_nodata=product is not None and product.zero_is_nodata,
        scale=product.scale if product else 1.0,
        path=path,
        width=info.width,
        height=info.height,
        geotransform=info.geotransform,
        crs_wkt=info.crs_wkt,
        metadata=meta,
        bytes_per_pixel=stored_bytes,
        notes=notes,
    )


def _palette(dataset) -> Optional[np.ndarray]:
    """(entries, 4) RGBA lookup of a single paletted band, else None."""
    if dataset.RasterCount != 1:
        return None
    band = dataset.GetRasterBand(1)
    table = band.GetColorTable()
    if table is None or band.GetColorInterpretation() != gdal.GCI_PaletteIndex:
        return None
    return np.array([table.GetColorEntry(i) for i in range(table.GetCount())], dtype=np.uint8).reshape(-1, 4)


def _kind_from_range(dataset, path) -> Tuple[str, str]:
    """Last resort for an anonymous float raster: what its value range allows."""
    band = dataset.GetRasterBand(1)
    try:
        low, high = band.ComputeRasterMinMax(True)  # approximate: overviews or a sample
    except RuntimeError:
        low = high = None
    if low is None or not (math.isfinite(low) and math.isfinite(high)):
        raise MineSARError(f"{path}: no valid values to judge what the raster holds; set KIND.")
    if 0.0 <= low and high <= 1.0:
        return "coherence", f"values within 0–1 ({low:.3g}…{high:.3g})"
    if -math.pi * 1.001 <= low and high <= math.pi * 1.001:
        return "wrapped", f"values within ±π ({low:.3g}…{high:.3g})"
    return "unwrapped", f"values beyond ±π ({low:.3g}…{high:.3g})"
