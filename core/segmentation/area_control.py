"""Total area control (seed 003 §2.2.3, SPEC §5.2): which segments of the multiresolution
segmentation make up the mine patches a preliminary mask roughly outlines.

For each segment, the area A_intsct it shares with the preliminary mask and the proportion
p_intsct = A_intsct / A_segment. Segments below a threshold p are dropped; the threshold is
calibrated on reference patches: sort the segments touching them by p_intsct (descending),
accumulate ΣA_intsct, and take the p_intsct where |ΣA_intsct − ΣA_ref| is least (paper: 21.5 %).
The kept segments are merged with their neighbours, those touching excluded land cover and
patches below a minimum area are dropped; a hole inside a patch survives only where a segment
the preliminary mask hardly covers says the ground there is different. Given the terrain's
illumination (``terrain.illumination``), patches lying mostly in terrain shadow are dropped: a
mountain shadow is the paper's main false alarm for dark coal gangue, and no segment boundary can
tell the two apart, since the preliminary mask covers a shadow's segments whole.
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np
from scipy import ndimage

from ..errors import MineSARError

PAPER_P_INTSCT = 0.215
# ESA WorldCover: cropland, built-up, permanent water bodies.
EXCLUDED_LANDCOVER = (40, 50, 80)
# Illumination (cos i / sin e, 1 on flat ground) below which a slope counts as in shadow.
SHADOW_ILLUMINATION = 0.4
# A hole whose mean colour lies within this many of the enclosing patch's own standard deviations
# (in every weighted band) is ground like the patch: a textured pit's clump, not a pond. Three
# sigma, the range nearly all of a patch's own pixels fall in; at two, two clumps of large iron-ore
# pits stayed holes in bench/mine_patches.py.
HOLE_SPREAD = 3.0
# A hole under this share of its patch is below mapping scale (a 50 m² pinhole in a 2 ha pit) and is
# filled like one below the minimum area; land cover still keeps a pond or a roof open.
HOLE_SHARE = 0.01


@dataclass
class Overlay:
    """Per segment: its area and the area the preliminary mask covers of it (pixels)."""

    segment_area: np.ndarray
    intersect_area: np.ndarray

    @classmethod
    def of(cls, labels: np.ndarray, preliminary: np.ndarray, count: Optional[int] = None) -> "Overlay":
        count = int(labels.max()) + 1 if count is None else count
        flat = labels.ravel()
        return cls(np.bincount(flat, minlength=count).astype(np.float64),
                   np.bincount(flat, weights=preliminary.ravel().astype(np.float64), minlength=count))

    @property
    def proportion(self) -> np.ndarray:
        return self.intersect_area / np.maximum(self.segment_area, 1.0)


@dataclass
class Calibration:
    p_intsct: float
    reference_area: float
    cumulative_area: np.ndarray  # ΣA_intsct after each segment, in descending p order
    proportions: np.ndarray  # p_intsct in that order

    def as_dict(self) -> dict:
        return {"p_intsct": self.p_intsct, "reference_area_px": self.reference_area,
                "segments_considered": int(self.proportions.size)}


# "segment" first: it is the default (see calibrate_p_intsct).
ACCUMULATE = ("segment", "intersection")


def calibrate_p_intsct(overlay: Overlay, touching_reference: np.ndarray, reference_area: float,
                       accumulate: str = "segment") -> Calibration:
    """The paper's total-area-control rule. ``touching_reference``: boolean per segment.

    ``accumulate="intersection"`` sums A_intsct, the paper's and SPEC §5.2's wording. That sum can
    never exceed the preliminary area, which is about the reference area, so it meets ΣA_ref only
    near the very last segment: on simulated GF-2 scenes it calibrates p_intsct ≈ 0.001–0.02 and
    keeps nearly every segment touched (held-out F1 0.88 → 0.70, bench/mine_patches.py).
    ``"segment"`` (default) sums the areas of the segments kept, i.e. the area the refined patches
    will have, and matches that to ΣA_ref: p_intsct ≈ 0.27 there, close to the paper's 0.215.
    """
    if accumulate not in ACCUMULATE:
        raise MineSARError(f"accumulate must be one of {', '.join(ACCUMULATE)}, not {accumulate!r}.")
    if reference_area <= 0:
        raise MineSARError("The reference patches cover no pixel of the image: nothing to calibrate p_intsct on.")
    candidates = np.flatnonzero(touching_reference & (overlay.intersect_area > 0))
    if candidates.size == 0:
        raise MineSARError("No segment touches both the reference patches and the preliminary mine patches: "
                           "p_intsct cannot be calibrated (do they cover the same ground?).")
    proportion = overlay.proportion[candidates]
    order = np.argsort(-proportion, kind="stable")
    areas = overlay.intersect_area if accumulate == "intersection" else overlay.segment_area
    cumulative = np.cumsum(areas[candidates][order])
    best = int(np.argmin(np.abs(cumulative - reference_area)))
    return Calibration(float(proportion[order][best]), float(reference_area), cumulative, proportion[order])


@dataclass
class Refinement:
    mask: np.ndarray  # bool, refined mine patches
    patches: np.ndarray  # int32: 0 background, 1… patch id
    report: Dict = field(default_factory=dict)


def refine(labels: np.ndarray, preliminary: np.ndarray, p_intsct: float, pixel_area: float,
           landcover: Optional[np.ndarray] = None, excluded_codes: Sequence[int] = EXCLUDED_LANDCOVER,
           min_area: float = 50.0, fill_below: Optional[float] = None, segmentation=None,
           illumination: Optional[np.ndarray] = None,
           shadow_illumination: float = SHADOW_ILLUMINATION, hole_spread: float = HOLE_SPREAD,
           hole_share: float = HOLE_SHARE) -> Refinement:
    """Keep segments with p_intsct ≥ the threshold, drop those touching excluded land cover, merge
    neighbours into patches, fill holes and drop patches below ``min_area`` (map units²). Given the
    terrain ``illumination`` on the same grid (NaN = unknown), a patch of which more than half the
    known pixels are lit below ``shadow_illumination`` loses its segments that are mostly dark: a
    shadow blob goes whole, a lit mine merged with it stays, and a mine only partly in shadow is
    not touched.

    A hole is filled when it is smaller than ``fill_below`` (default ``min_area``) or than
    ``hole_share`` of the patch around it, or, given the
    ``segmentation`` (its region statistics and parameters), when the ground in it is like the patch
    around it: its segments would merge with the patch by the segmentation's own colour criterion,
    (1 − shape)·h_color < scale², or its mean colour lies within ``hole_spread`` of the patch's own
    standard deviations in every band and nearer the patch's mean than the ground's just outside it.
    A textured pit's odd clump that the preliminary hole happened to cover goes back into the pit;
    a pond, or an island of the surrounding ground, stays a hole; so does any hole on excluded land
    cover."""
    if not 0.0 <= p_intsct <= 1.0:
        raise MineSARError(f"p_intsct {p_intsct} must be a proportion between 0 and 1.")
    count = int(labels.max()) + 1
    overlay = Overlay.of(labels, preliminary, count)
    keep = (overlay.intersect_area > 0) & (overlay.proportion >= p_intsct)
    report = {"segments": count, "segments_touching_preliminary": int((overlay.intersect_area > 0).sum()),
              "segments_kept": int(keep.sum()), "p_intsct": float(p_intsct)}
    excluded = None
    if landcover is not None:
        excluded = np.isin(landcover, list(excluded_codes))
        touching = np.bincount(labels[excluded], minlength=count) > 0
        report["segments_dropped_landcover"] = int((keep & touching).sum())
        keep &= ~touching
    mask = keep[labels]
    # Kept segments that share an edge are one patch (the paper's "merge the neighbouring objects").
    min_pixels = min_area / pixel_area
    fill_pixels = min_pixels if fill_below is None else fill_below / pixel_area
    holes = ndimage.binary_fill_holes(mask) & ~mask
    report["holes_filled"] = 0
    if holes.any():
        hole_labels, hole_count = ndimage.label(holes)
        sizes = np.bincount(hole_labels.ravel(), minlength=hole_count + 1)
        fill = sizes < fill_pixels
        fill |= sizes < hole_share * _enclosing_size(mask, hole_labels, hole_count)
        if segmentation is not None:
            fill |= _holes_alike(labels, mask, hole_labels, hole_count, segmentation, hole_spread)
        if excluded is not None:
            # Land cover said built-up, cropland or water there: no hole rule brings it back.
            fill &= np.bincount(hole_labels[excluded], minlength=hole_count + 1) == 0
        fill[0] = False
        report["holes_filled"] = int(fill.sum())
        mask |= fill[hole_labels]
    if illumination is not None:
        mask = _drop_shadows(labels, mask, illumination, shadow_illumination, report)
    patches, patch_count = ndimage.label(mask)
    sizes = np.bincount(patches.ravel(), minlength=patch_count + 1)
    large = sizes >= min_pixels
    large[0] = False
    report["patches_dropped_small"] = int((~large[1:]).sum())
    mask = large[patches]
    renumber = np.zeros(patch_count + 1, dtype=np.int32)
    renumber[large] = np.arange(1, int(large.sum()) + 1)
    patches = renumber[patches]
    report["patches"] = int(large.sum())
    report["area_preliminary"] = float(preliminary.sum() * pixel_area)
    report["area_refined"] = float(mask.sum() * pixel_area)
    return Refinement(mask, patches, report)


def _enclosing_size(mask, hole_labels, hole_count) -> np.ndarray:
    """Per hole (index = hole label): pixels of the patch around it."""
    patches, patch_count = ndimage.label(mask)
    sizes = np.bincount(patches.ravel(), minlength=patch_count + 1)
    ring = ndimage.grey_dilation(hole_labels, size=3) * mask
    enclosing = np.zeros(hole_count + 1, dtype=np.int64)
    enclosing[ring[ring > 0]] = patches[ring > 0]
    result = sizes[enclosing]
    result[enclosing == 0] = 0
    return result


def _drop_shadows(labels, mask, illumination, threshold, report) -> np.ndarray:
    if illumination.shape != labels.shape:
        raise MineSARError(f"The illumination grid {illumination.shape} is not the image's {labels.shape}.")
    known = np.isfinite(illumination)
    dark = known & (illumination < threshold)
    patches, patch_count = ndimage.label(mask)
    shadowed = (np.bincount(patches.ravel(), weights=dark.ravel(), minlength=patch_count + 1)
                > 0.5 * np.bincount(patches.ravel(), weights=known.ravel(), minlength=patch_count + 1))
    shadowed[0] = False
    count = int(labels.max()) + 1
    dark_segment = (np.bincount(labels.ravel(), weights=dark.ravel(), minlength=count)
                    > 0.5 * np.bincount(labels.ravel(), weights=known.ravel(), minlength=count))
    drop = shadowed[patches] & dark_segment[labels]
    report["patches_dropped_shadow"] = int(shadowed.sum())
    report["shadow_area_dropped_px"] = int(drop.sum())
    return mask & ~drop


def _holes_alike(labels, mask, hole_labels, hole_count, segmentation, hole_spread=HOLE_SPREAD) -> np.ndarray:
    """Per hole (index = hole label): would its segments merge with the patch enclosing it?"""
    regions, params = segmentation.regions, segmentation.params
    count = regions.count
    patches, patch_count = ndimage.label(mask)
    # Every segment lies wholly in one patch or one hole: a hole is a union of dropped segments.
    segment_patch = np.zeros(count, dtype=np.int64)
    segment_patch[labels[mask]] = patches[mask]
    segment_hole = np.zeros(count, dtype=np.int64)
    inside = hole_labels > 0
    segment_hole[labels[inside]] = hole_labels[inside]
    # The patch around a hole: the one on the pixels next to it (a hole has one enclosing patch).
    ring = ndimage.grey_dilation(hole_labels, size=3) * mask
    enclosing = np.zeros(hole_count + 1, dtype=np.int64)
    enclosing[ring[ring > 0]] = patches[ring > 0]

    def sums(owner, groups):
        n = np.bincount(owner, weights=regions.n, minlength=groups)
        s = np.stack([np.bincount(owner, weights=regions.s[:, b], minlength=groups) for b in range(regions.s.shape[1])], 1)
        ss = np.stack([np.bincount(owner, weights=regions.ss[:, b], minlength=groups) for b in range(regions.s.shape[1])], 1)
        return n, s, ss

    def colour(n, s, ss):
        n = np.maximum(n, 1e-12)
        variance = np.clip(ss / n[:, None] - (s / n[:, None]) ** 2, 0.0, None)
        return n * (np.sqrt(variance) @ segmentation.weights)

    hole_n, hole_s, hole_ss = sums(segment_hole, hole_count + 1)
    patch_n, patch_s, patch_ss = sums(segment_patch, patch_count + 1)
    around = enclosing
    h_colour = (colour(hole_n + patch_n[around], hole_s + patch_s[around], hole_ss + patch_ss[around])
                - colour(hole_n, hole_s, hole_ss) - colour(patch_n[around], patch_s[around], patch_ss[around]))
    alike = (1.0 - params.shape) * h_colour < float(params.scale) ** 2
    # Within the patch's own spread: a clump of a textured pit, which the merge cost (a large patch's
    # n·σ grows with any addition) can refuse although the patch holds pixels like it everywhere.
    # A two-coloured pit's σ is wide, so the hole must also look more like the patch than like the
    # ground around the patch (each measured in its own σ): an island of that ground stays a hole.
    n_hole, n_patch = np.maximum(hole_n, 1e-12)[:, None], np.maximum(patch_n[around], 1e-12)[:, None]
    mean_hole, mean_patch = hole_s / n_hole, patch_s[around] / n_patch
    spread = np.sqrt(np.clip(patch_ss[around] / n_patch - mean_patch ** 2, 0.0, None))
    weights = np.asarray(segmentation.weights, dtype=np.float64)
    weighted = weights > 0
    within = np.all((np.abs(mean_hole - mean_patch) <= hole_spread * spread)[:, weighted], axis=1)
    outside_n, outside_s, outside_ss = sums(_outside_owner(labels, patches, count), patch_count + 1)
    n_outside = np.maximum(outside_n[around], 1e-12)[:, None]
    mean_outside = outside_s[around] / n_outside
    spread_outside = np.sqrt(np.clip(outside_ss[around] / n_outside - mean_outside ** 2, 0.0, None))
    # Distances in each side's own standard deviations (at least one grey level): a textured pit is
    # wide, plain ground narrow, and a clump is judged against how much each side varies.
    to_patch = (np.abs(mean_hole - mean_patch) / np.maximum(spread, 1.0)) @ weights
    to_outside = np.where(outside_n[around] > 0,
                          (np.abs(mean_hole - mean_outside) / np.maximum(spread_outside, 1.0)) @ weights, np.inf)
    alike |= within & (to_patch < to_outside)
    alike &= around > 0
    return alike


def _outside_owner(labels, patches, count) -> np.ndarray:
    """Per segment: the patch whose outer ring (2 pixels beyond its filled outline) it lies on, 0 if none."""
    whole = np.zeros_like(patches)
    for value, region in enumerate(ndimage.find_objects(patches), start=1):
        if region is not None:
            inside = ndimage.binary_fill_holes(patches[region] == value)
            whole[region][inside] = value
    ring = ndimage.grey_dilation(whole, size=5) * (whole == 0)
    owner = np.zeros(count, dtype=np.int64)
    owner[labels[ring > 0]] = ring[ring > 0]
    return owner
