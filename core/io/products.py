"""Names, dates and nodata conventions of interferogram products.

- Dates: ``YYYYMMDD[-_]YYYYMMDD`` anywhere in a name (GAMMA, LiCSAR, MintPy), HyP3's
  ``YYYYMMDDThhmmss_YYYYMMDDThhmmss``, and six-digit ``YYMMDD-YYMMDD`` of older GAMMA stacks.
- LiCSAR (COMET): ``YYYYMMDD_YYYYMMDD.geo.unw.tif`` (unwrapped, 0 = nodata),
  ``.geo.diff_pha.tif`` (wrapped, 0 = nodata), ``.geo.cc.tif`` (coherence as uint8 × 255, 0 = nodata).
  A frame's ``metadata.txt`` (``heading=``, ``avg_incidence_angle=``) is read when found.
- ASF HyP3: ``S1AB_YYYYMMDDThhmmss_YYYYMMDDThhmmss_…_unw_phase.tif`` / ``_wrapped_phase.tif`` /
  ``_corr.tif`` (0 = nodata), burst products ``S1_…_YYYYMMDD_YYYYMMDD_…``; the product's ``.txt``
  gives the heading and the perpendicular baseline.
Both are Sentinel-1 C-band products.
"""
import os
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Dict, Optional, Tuple

from ..errors import MineSARError

SENTINEL1_WAVELENGTH_M = 0.05546576

_PAIR_8 = re.compile(r"(?<!\d)(\d{8})(?:T\d{6})?[-_](\d{8})(?:T\d{6})?(?!\d)")
_PAIR_6 = re.compile(r"(?<!\d)(\d{6})[-_](\d{6})(?!\d)")
_LICSAR = re.compile(r"(\d{8})_(\d{8})\.geo\.(unw|diff_pha|diff_unfiltered_pha|cc)\.tif$", re.I)
_HYP3 = re.compile(r"^(S1\w*?)_.*_(unw_phase|wrapped_phase|corr)(?:_clip)?\.tif$", re.I)

_LICSAR_KINDS = {"unw": "unwrapped", "diff_pha": "wrapped", "diff_unfiltered_pha": "wrapped", "cc": "coherence"}
_HYP3_KINDS = {"unw_phase": "unwrapped", "wrapped_phase": "wrapped", "corr": "coherence"}


def _to_date(stamp: str, name: str) -> date:
    try:
        if len(stamp) == 6:  # YYMMDD: ERS/ENVISAT-era stacks; 90-99 means the 1990s
            year = int(stamp[:2])
            return date(1900 + year if year >= 90 else 2000 + year, int(stamp[2:4]), int(stamp[4:]))
        return date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:]))
    except ValueError:
        raise MineSARError(f"{name}: '{stamp}' in the name looks like a date but is not a valid one.")


def dates_from_name(path: str) -> Tuple[Optional[date], Optional[date]]:
    """The acquisition pair a file name states, or (None, None)."""
    name = os.path.basename(path)
    for pattern in (_PAIR_8, _PAIR_6):
        match = pattern.search(name)
        if match:
            return _to_date(match.group(1), name), _to_date(match.group(2), name)
    return None, None


@dataclass
class ProductConvention:
    processor: str
    kind: str
    zero_is_nodata: bool = True
    scale: float = 1.0  # multiply stored values by this (LiCSAR's uint8 coherence)
    wavelength_m: float = SENTINEL1_WAVELENGTH_M
    incidence_deg: Optional[float] = None
    heading_deg: Optional[float] = None
    extra: Dict[str, str] = field(default_factory=dict)


def identify_product(path: str, is_byte: bool = False) -> Optional[ProductConvention]:
    """LiCSAR or HyP3 conventions for ``path``, or None for any other file."""
    name = os.path.basename(path)
    match = _LICSAR.search(name)
    if match:
        kind = _LICSAR_KINDS[match.group(3).lower()]
        convention = ProductConvention("LiCSAR", kind, scale=1.0 / 255.0 if kind == "coherence" and is_byte else 1.0)
        _read_licsar_metadata(path, convention)
        return convention
    match = _HYP3.match(name)
    if match:
        convention = ProductConvention("HyP3", _HYP3_KINDS[match.group(2).lower()])
        _read_hyp3_metadata(path, convention)
        return convention
    return None


def _read_licsar_metadata(path: str, convention: ProductConvention) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    for candidate in (folder, os.path.dirname(folder), os.path.dirname(os.path.dirname(folder))):
        meta = os.path.join(candidate, "metadata.txt")
        if os.path.isfile(meta):
            values = _key_values(meta, "=")
            convention.heading_deg = float_or_none(values.get("heading"))
            convention.incidence_deg = float_or_none(values.get("avg_incidence_angle"))
            convention.extra["LICSAR_METADATA"] = meta
            return


def _read_hyp3_metadata(path: str, convention: ProductConvention) -> None:
    name = os.path.basename(path)
    match = re.match(r"^(.*)_(?:unw_phase|wrapped_phase|corr)(?:_clip)?\.tif$", name, re.I)
    meta = os.path.join(os.path.dirname(os.path.abspath(path)), match.group(1) + ".txt") if match else ""
    if meta and os.path.isfile(meta):
        values = _key_values(meta, ":")
        convention.heading_deg = float_or_none(values.get("Heading"))
        baseline = float_or_none(values.get("Baseline"))
        if baseline is not None:
            convention.extra["BPERP_M"] = f"{baseline:g}"
        if values.get("Reference Granule"):
            convention.extra["REFERENCE_GRANULE"] = values["Reference Granule"]
        convention.extra["HYP3_METADATA"] = meta


def _key_values(path: str, separator: str) -> Dict[str, str]:
    values = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if separator in line:
                    key, value = line.split(separator, 1)
                    values[key.strip()] = value.strip()
    except OSError:
        pass
    return values


def float_or_none(text: Optional[str]) -> Optional[float]:
    """The leading number of a metadata value ("-167.05", "38.9 deg"), or None."""
    if text is None:
        return None
    try:
        return float(str(text).split()[0])
    except (ValueError, IndexError):
        return None
