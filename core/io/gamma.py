"""GAMMA binaries and parameter files.

GAMMA writes headerless big-endian rasters: complex interferograms (``.int``, ``.diff``,
``.diff_filt``) as ``>c8`` and real products (``.unw``, ``.cc``, ``.mli``, ``.dem``) as ``>f4``.
The width is not in the file: it comes from the parameter file of the *same grid*. For a
multilooked interferogram that is its ``.off``/``.diff_par``/``.mli.par``; for a geocoded one the
DEM/map ``dem_par``. The single-look ``.slc.par`` describes another grid and is only used for
dates, radar frequency, incidence and heading. A candidate grid is accepted only when
width × lines × item size equals the file size exactly, so a wrong par cannot slip through.
"""
import os
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Dict, List, Optional, Tuple

import numpy as np
from osgeo import osr

from ..errors import MineSARError
from .rasters import Window

SPEED_OF_LIGHT = 299_792_458.0  # m/s

# Extension -> (numpy dtype of the binary, what it holds). Checked from the end of the name, so
# "x.unw.cc" is coherence and "x.diff_filt" is a filtered interferogram.
BINARY_TYPES: Dict[str, Tuple[str, str]] = {
    ".int": (">c8", "wrapped"),
    ".diff": (">c8", "wrapped"),
    ".diff_filt": (">c8", "wrapped"),
    ".diff0": (">c8", "wrapped"),
    ".flt": (">c8", "wrapped"),
    ".filt": (">c8", "wrapped"),
    ".adf": (">c8", "wrapped"),
    ".unw": (">f4", "unwrapped"),
    ".cc": (">f4", "coherence"),
    ".cor": (">f4", "coherence"),
    ".coh": (">f4", "coherence"),
    ".ccp": (">f4", "coherence"),
    ".mli": (">f4", "intensity"),
    ".pwr": (">f4", "intensity"),
    ".dem": (">f4", "height"),
    ".hgt": (">f4", "height"),
    ".inc": (">f4", "angle"),
    ".lv_theta": (">f4", "angle"),
    ".lv_phi": (">f4", "angle"),
}
# Suffixes GAMMA users append to say "geocoded" that carry no type information.
_GEOCODED_SUFFIXES = (".geo", ".utm", ".eqa")
_PAR_SUFFIXES = (".par", ".off", ".diff_par", ".dem_par")

# (width key, lines key) per kind of parameter file, most specific first.
_GRID_KEYS = (
    ("width", "nlines"),  # DEM/map parameter file (geocoded grid)
    ("interferogram_width", "interferogram_azimuth_lines"),  # .off / .diff_par
    ("range_samp_1", "az_samp_1"),  # older .diff_par
    ("range_samples", "azimuth_lines"),  # SLC / MLI parameter file
)
_PAR_LINE = re.compile(r"^\s*([A-Za-z_][\w().\-/]*)\s*:\s*(.*?)\s*$")


@dataclass
class ParFile:
    """A GAMMA ``key: value [unit]`` parameter file."""

    path: str
    values: Dict[str, str]

    def has(self, key: str) -> bool:
        return key in self.values

    def text(self, key: str) -> str:
        if key not in self.values:
            raise MineSARError(f"{self.path}: parameter '{key}' is missing.")
        return self.values[key]

    def numbers(self, key: str) -> List[float]:
        """All leading numbers of a value ("5.33e+09 Hz" -> [5.33e9]; a TCN baseline -> 3)."""
        out = []
        for token in self.text(key).split():
            try:
                out.append(float(token))
            except ValueError:
                break
        if not out:
            raise MineSARError(
                f"{self.path}: parameter '{key}' should be a number but reads '{self.values[key]}'."
            )
        return out

    def number(self, key: str) -> float:
        return self.numbers(key)[0]

    def integer(self, key: str) -> int:
        value = self.number(key)
        if value != int(value) or value <= 0:
            raise MineSARError(f"{self.path}: parameter '{key}' should be a positive whole number, not {value}.")
        return int(value)

    def grid(self) -> Optional[Tuple[int, int]]:
        """(width, lines) of the raster this par describes, or None if it describes none."""
        for width_key, lines_key in _GRID_KEYS:
            if width_key in self.values and lines_key in self.values:
                return self.integer(width_key), self.integer(lines_key)
        return None

    @property
    def is_map(self) -> bool:
        return "DEM_projection" in self.values or "corner_lat" in self.values or "corner_north" in self.values

    def acquisition_date(self) -> Optional[date]:
        if "date" not in self.values:
            return None
        parts = self.values["date"].split()
        try:
            return date(int(parts[0]), int(parts[1]), int(float(parts[2])))
        except (ValueError, IndexError):
            raise MineSARError(f"{self.path}: 'date' should read 'YYYY MM DD ...', not '{self.values['date']}'.")


def read_par(path: str) -> ParFile:
    """Parse a GAMMA parameter file; a binary or empty file is reported as corrupt."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(1 << 20)
    except FileNotFoundError:
        raise MineSARError(f"{path}: parameter file not found.")
    except OSError as error:
        raise MineSARError(f"{path}: cannot read the parameter file ({error.strerror}).")
    if b"\x00" in raw:
        raise MineSARError(f"{path}: corrupt GAMMA parameter file (binary content, expected 'key: value' text).")
    text = raw.decode("utf-8", errors="replace")
    values: Dict[str, str] = {}
    for line in text.splitlines():
        match = _PAR_LINE.match(line)
        if match:
            values.setdefault(match.group(1), match.group(2))
    if not values:
        raise MineSARError(f"{path}: corrupt GAMMA parameter file (no 'key: value' lines).")
    return ParFile(path, values)


def binary_type(path: str) -> Optional[Tuple[str, str, str]]:
    """(extension, dtype, content) of a GAMMA binary judged by its name, or None."""
    name = os.path.basename(path).lower()
    for suffix in _GEOCODED_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    for extension in sorted(BINARY_TYPES, key=len, reverse=True):
        if name.endswith(extension):
            dtype, content = BINARY_TYPES[extension]
            return extension, dtype, content
    return None


@dataclass
class Georeference:
    geotransform: Tuple[float, float, float, float, float, float]
    crs_wkt: str
    source: str


@dataclass
class GammaGrid:
    width: int
    lines: int
    par: Optional[str]  # the parameter file that gave the grid, None when WIDTH was given
    georeference: Optional[Georeference]
    georeference_problem: Optional[str] = None
    notes: List[str] = field(default_factory=list)


def locate_grid(path: str, item_size: int, width: Optional[int] = None, par: Optional[str] = None) -> GammaGrid:
    """Find width and lines of the binary ``path`` (and its georeference) as the module doc says."""
    size = os.path.getsize(path)
    if size == 0:
        raise MineSARError(f"{path}: file is empty.")
    if size % item_size:
        raise MineSARError(f"{path}: file size {size} bytes is not a whole number of {item_size}-byte pixels.")

    if par:
        par_file = read_par(par)
        grid = par_file.grid()
        if grid is None:
            raise MineSARError(
                f"{par}: no raster size in this parameter file (looked for "
                + ", ".join(f"{w}/{l}" for w, l in _GRID_KEYS)
                + "). Give the .off, .diff_par, .mli.par or dem_par of this raster, or WIDTH."
            )
        par_width, par_lines = grid
        if width and width != par_width:
            raise MineSARError(f"{path}: WIDTH={width} contradicts {par}, which says width {par_width}.")
        _check_size(path, size, item_size, par_width, par_lines, par)
        georef, problem = _georeference_if_map(par_file)
        return GammaGrid(par_width, par_lines, par, georef, problem)

    if width:
        if size % (width * item_size):
            raise MineSARError(
                f"{path}: file size {size} bytes is not a multiple of WIDTH={width} × {item_size} bytes "
                f"per pixel; the width is wrong or the file is truncated."
            )
        lines = size // (width * item_size)
        neighbours = _candidate_pars(path)
        fitting = [p for p in neighbours if _fits(p, size, item_size)]
        if fitting and all(_grid_or_none(p) != (width, lines) for p in fitting):
            other = fitting[0]
            raise MineSARError(
                f"{path}: WIDTH={width} contradicts {os.path.basename(other.path)} next to it, whose "
                f"{_grid_or_none(other)[0]} × {_grid_or_none(other)[1]} grid fits this file exactly. "
                "Leave WIDTH at 0, or give the right PAR."
            )
        maps = [p for p in neighbours if p.is_map and _grid_or_none(p) == (width, lines)]
        georef, problem = _georeference_if_map(maps[0]) if maps else (None, "no dem_par of this grid found")
        return GammaGrid(width, lines, None, georef, problem)

    fitting, tried = [], []
    for candidate in _candidate_pars(path):
        grid = _grid_or_none(candidate)
        if grid is None:
            continue
        tried.append(f"{os.path.basename(candidate.path)} ({grid[0]} × {grid[1]})")
        if _fits(candidate, size, item_size):
            fitting.append(candidate)
    if not fitting:
        shown = ", ".join(tried[:8]) + (f" and {len(tried) - 8} more" if len(tried) > 8 else "")
        hint = f"; tried {shown}" if tried else "; none found next to it"
        raise MineSARError(
            f"{path}: cannot tell the width. No parameter file describes a raster of {size} bytes "
            f"({item_size} bytes per pixel){hint}. Give PAR (its .off, .diff_par, .mli.par or dem_par) "
            "or WIDTH. The single-look .slc.par is never used: it describes another grid."
        )
    grids = sorted({_grid_or_none(p) for p in fitting})
    if len(grids) > 1:
        raise MineSARError(
            f"{path}: contradictory parameter files: "
            + ", ".join(f"{os.path.basename(p.path)} says {_grid_or_none(p)[0]} × {_grid_or_none(p)[1]}" for p in fitting)
            + ". Give PAR or WIDTH to choose."
        )
    maps = [p for p in fitting if p.is_map]
    radar = [p for p in fitting if not p.is_map]
    geocoded_name = bool(re.search(r"(^|[._-])(utm|geo|eqa)([._-]|$)", os.path.basename(path).lower()))
    chosen = maps[0] if maps and (geocoded_name or not radar) else (radar or maps)[0]
    georef, problem = _georeference_if_map(chosen) if chosen.is_map else (None, "the grid is in radar coordinates")
    grid = GammaGrid(grids[0][0], grids[0][1], chosen.path, georef, problem)
    if maps and not chosen.is_map:
        grid.notes.append(
            f"{os.path.basename(maps[0].path)} has the same size but the name does not say geocoded; "
            "kept radar coordinates. Give it as PAR to georeference."
        )
    return grid


def _check_size(path, size, item_size, width, lines, par) -> None:
    expected = width * lines * item_size
    if expected == size:
        return
    if size % (width * item_size) == 0:
        raise MineSARError(
            f"{path}: contradicts {par}: the par says {lines} lines of width {width} "
            f"but the file holds {size // (width * item_size)} lines."
        )
    raise MineSARError(
        f"{path}: file size {size} bytes is not a multiple of the width {width} × {item_size} bytes "
        f"given by {par}; this par belongs to another raster or the file is truncated."
    )


def _fits(par_file: ParFile, size: int, item_size: int) -> bool:
    grid = _grid_or_none(par_file)
    return grid is not None and grid[0] * grid[1] * item_size == size


def _grid_or_none(par_file: ParFile) -> Optional[Tuple[int, int]]:
    try:
        return par_file.grid()
    except MineSARError:
        return None


def _candidate_pars(path: str) -> List[ParFile]:
    """Parameter files that might describe ``path``: its own names first, then its folder."""
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    stems = [name]
    while "." in stems[-1].lstrip("."):
        stems.append(stems[-1].rsplit(".", 1)[0])
    own = [os.path.join(folder, stem + suffix) for stem in stems for suffix in _PAR_SUFFIXES]
    try:
        listing = sorted(os.listdir(folder))
    except OSError:
        listing = []
    others = [os.path.join(folder, f) for f in listing if f.endswith(_PAR_SUFFIXES)]
    seen, out = set(), []
    for candidate in own + others:
        if candidate in seen or not os.path.isfile(candidate) or os.path.abspath(candidate) == os.path.abspath(path):
            continue
        seen.add(candidate)
        try:
            par_file = read_par(candidate)
        except MineSARError:
            continue  # a corrupt neighbour is not this file's problem unless given as PAR
        if not _is_single_look(par_file):
            out.append(par_file)
    return out


def _is_single_look(par_file: ParFile) -> bool:
    """An SLC's parameter file: its grid is never that of a product, even when sizes happen to fit."""
    name = os.path.basename(par_file.path).lower()
    image_format = par_file.values.get("image_format", "").upper()
    return name.endswith("slc.par") or (par_file.has("range_samples") and "COMPLEX" in image_format)


def _georeference_if_map(par_file: ParFile) -> Tuple[Optional[Georeference], Optional[str]]:
    if not par_file.is_map:
        return None, f"{os.path.basename(par_file.path)} describes radar coordinates"
    return dem_par_georeference(par_file), None


def dem_par_georeference(par_file: ParFile) -> Georeference:
    """Geotransform and CRS of a DEM/map parameter file (EQA and UTM).

    GAMMA's corner coordinates are those of the *centre* of the first pixel, GDAL's geotransform
    starts at its outer corner: the origin moves half a posting up and left.
    """
    projection = par_file.values.get("DEM_projection", "EQA").split()[0].upper()
    if projection == "EQA":
        lat, lon = par_file.number("corner_lat"), par_file.number("corner_lon")
        dlat, dlon = par_file.number("post_lat"), par_file.number("post_lon")
        srs = _geographic_srs(par_file)
        transform = (lon - dlon / 2.0, dlon, 0.0, lat - dlat / 2.0, 0.0, dlat)
    elif projection == "UTM":
        north, east = par_file.number("corner_north"), par_file.number("corner_east")
        dnorth, deast = par_file.number("post_north"), par_file.number("post_east")
        zone = int(par_file.number("projection_zone"))
        southern = par_file.has("false_northing") and par_file.number("false_northing") >= 5_000_000
        if _is_wgs84(par_file):
            srs = osr.SpatialReference()
            srs.ImportFromEPSG((32700 if southern else 32600) + zone)
        else:
            srs = _geographic_srs(par_file)
            srs.SetUTM(zone, not southern)
        transform = (east - deast / 2.0, deast, 0.0, north - dnorth / 2.0, 0.0, dnorth)
    else:
        raise MineSARError(
            f"{par_file.path}: map projection '{projection}' is not supported (EQA and UTM are). "
            "Reproject the product to one of them, or import in pixel coordinates."
        )
    if transform[1] == 0 or transform[5] == 0:
        raise MineSARError(f"{par_file.path}: pixel spacing (post_*) is zero.")
    return Georeference(transform, srs.ExportToWkt(), par_file.path)


def _is_wgs84(par_file: ParFile) -> bool:
    name = (par_file.values.get("ellipsoid_name", "WGS 84") + par_file.values.get("datum_name", "")).upper()
    return "WGS" in name and "84" in name


def _geographic_srs(par_file: ParFile) -> "osr.SpatialReference":
    srs = osr.SpatialReference()
    if _is_wgs84(par_file) or not par_file.has("ellipsoid_ra"):
        srs.ImportFromEPSG(4326)
    else:
        semi_major = par_file.number("ellipsoid_ra")
        inverse_flattening = par_file.number("ellipsoid_reciprocal_flattening")
        srs.SetGeogCS(
            "GAMMA geographic", "unknown", par_file.values.get("ellipsoid_name", "unknown"),
            semi_major, inverse_flattening,
        )
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


class GammaBinary:
    """Window reads of a headerless big-endian GAMMA raster, without loading or mapping it.

    Plain reads rather than a memory map: mapped pages count as the process's memory, and a
    user watching a 10k × 10k import should see the size of a block, not of the file.
    """

    def __init__(self, path: str, dtype: str, width: int, lines: int):
        self.path, self.width, self.lines = path, width, lines
        self.dtype = np.dtype(dtype)
        self._handle = open(path, "rb")

    def read(self, window: Window) -> np.ndarray:
        if window.col < 0 or window.row < 0 or window.col + window.width > self.width or window.row + window.height > self.lines:
            raise MineSARError(
                f"{self.path}: window {window} lies outside the {self.width} × {self.lines} raster."
            )
        row_bytes = self.width * self.dtype.itemsize
        native = self.dtype.newbyteorder("=")
        if window.col == 0 and window.width == self.width:
            self._handle.seek(window.row * row_bytes)
            count = window.height * self.width
            rows = np.fromfile(self._handle, dtype=self.dtype, count=count)
            if rows.size != count:
                raise MineSARError(f"{self.path}: file ended early, before row {window.row + window.height}.")
            return rows.reshape(window.height, self.width).astype(native)
        # A tile: map just its rows for the copy, so only the pages under its columns are touched.
        mapped = np.memmap(self.path, dtype=self.dtype, mode="r", offset=window.row * row_bytes,
                           shape=(window.height, self.width))
        try:
            return np.array(mapped[:, window.col:window.col + window.width], dtype=native)
        finally:
            del mapped

    def close(self) -> None:
        self._handle.close()


@dataclass
class AcquisitionInfo:
    """What the per-date parameter files say about an interferogram's acquisitions."""

    date1: Optional[date] = None
    date2: Optional[date] = None
    radar_frequency_hz: Optional[float] = None
    frequency_source: Optional[str] = None
    incidence_deg: Optional[float] = None
    heading_deg: Optional[float] = None
    baseline_tcn_m: Optional[Tuple[float, float, float]] = None
    sources: List[str] = field(default_factory=list)


_DATE_PAR_PATTERNS = ("{d}.mli.par", "{d}_mli.par", "{d}.rmli.par", "{d}.slc.par", "{d}_slc.par",
                      "{d}.rslc.par", "{d}.amp.par", "{d}.pwr.par", "{d}.par")


def acquisition_info(path: str, date1: Optional[date], date2: Optional[date], par: Optional[str]) -> AcquisitionInfo:
    """Collect dates, radar frequency, incidence, heading and baseline from parameter files.

    Dates from the name are checked against the ``date:`` line of the matching per-date par; a
    disagreement is an error, because it means the par belongs to another acquisition.
    """
    info = AcquisitionInfo(date1, date2)
    folder = os.path.dirname(os.path.abspath(path))
    per_date: List[Tuple[Optional[date], ParFile]] = []
    for which in (date1, date2):
        if which is None:
            continue
        stamp = which.strftime("%Y%m%d")
        for pattern in _DATE_PAR_PATTERNS:
            candidate = os.path.join(folder, pattern.format(d=stamp))
            if os.path.isfile(candidate):
                per_date.append((which, read_par(candidate)))
                break
    if par:
        per_date.append((None, read_par(par)))
    for expected, par_file in per_date:
        said = par_file.acquisition_date()
        if expected is not None and said is not None and said != expected:
            raise MineSARError(
                f"{par_file.path}: contradictory par: its date is {said.isoformat()} but the name says "
                f"{expected.isoformat()}."
            )
        if info.date1 is None and said is not None:
            info.date1 = said
        if par_file.has("radar_frequency"):
            frequency = par_file.number("radar_frequency")
            if info.radar_frequency_hz is None:
                info.radar_frequency_hz, info.frequency_source = frequency, par_file.path
            elif abs(frequency - info.radar_frequency_hz) > 1e-6 * info.radar_frequency_hz:
                raise MineSARError(
                    f"{par_file.path}: contradictory par: radar_frequency {frequency:.6g} Hz, but "
                    f"{os.path.basename(info.frequency_source)} says {info.radar_frequency_hz:.6g} Hz."
                )
        if info.incidence_deg is None and par_file.has("incidence_angle"):
            info.incidence_deg = par_file.number("incidence_angle")
        if info.heading_deg is None and par_file.has("heading"):
            info.heading_deg = par_file.number("heading")
        if par_file.has("radar_frequency") or par_file.has("date"):
            info.sources.append(par_file.path)
    if date1 is not None and date2 is not None:
        stamps = (date1.strftime("%Y%m%d"), date2.strftime("%Y%m%d"))
        for pattern in ("{}-{}_base.par", "{}_{}_base.par", "{}-{}.base", "{}_{}.base", "{}-{}.base.par"):
            candidate = os.path.join(folder, pattern.format(*stamps))
            if os.path.isfile(candidate):
                base = read_par(candidate)
                for key in ("precision_baseline(TCN)", "initial_baseline(TCN)"):
                    if base.has(key) and len(base.numbers(key)) >= 3:
                        info.baseline_tcn_m = tuple(base.numbers(key)[:3])
                        info.sources.append(candidate)
                        break
                break
    return info


def wavelength_from_frequency(frequency_hz: float, source: str) -> float:
    if not frequency_hz or frequency_hz <= 0:
        raise MineSARError(f"{source}: radar_frequency {frequency_hz} Hz is not a valid frequency.")
    return SPEED_OF_LIGHT / frequency_hz
