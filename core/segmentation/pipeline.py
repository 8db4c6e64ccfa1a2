"""The mine-patch steps on files: segment a raster, refine preliminary patches, score patches.

Images are read tile by tile (``segment_tiles``); the label image, one int32 per pixel, is the
only full-scene array kept, with the masks the overlay needs on the same grid.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import MineSARError
from ..io.rasters import Window, describe, open_raster, read_window
from ..progress import SILENT, Progress
from .area_control import (EXCLUDED_LANDCOVER, PAPER_P_INTSCT, SHADOW_ILLUMINATION, Calibration, Overlay,
                           Refinement, calibrate_p_intsct, refine)
from .grid import Grid, aligned, aligned_values, burn, polygons
from .mrs import DEFAULT_TILE, MRSParameters, Segmentation, segment_tiles
from .scores import Scores, evaluate


def _bands(path: str, bands: Optional[Sequence[int]]) -> List[int]:
    count = describe(open_raster(path)).band_count
    bands = list(bands) if bands else list(range(1, count + 1))
    bad = [b for b in bands if not 1 <= b <= count]
    if bad:
        raise MineSARError(f"{path}: has {count} band(s); band(s) {', '.join(map(str, bad))} do not exist.")
    return bands


def segment_raster(path: str, params: MRSParameters, bands: Optional[Sequence[int]] = None,
                   tile: int = DEFAULT_TILE, progress: Progress = SILENT) -> Tuple[Grid, Segmentation, List[str]]:
    grid = Grid.of_raster(path)
    bands = _bands(path, bands)
    dataset = open_raster(path)
    names = [dataset.GetRasterBand(b).GetDescription() or f"b{b}" for b in bands]

    def read(row, col, height, width):
        block = read_window(dataset, Window(col, row, width, height), bands)
        return block[None] if block.ndim == 2 else block

    segmentation = segment_tiles(read, grid.height, grid.width, len(bands), params, tile, progress)
    return grid, segmentation, names


def segment_records(grid: Grid, segmentation: Segmentation) -> List[Dict]:
    """One record per segment: id, polygon (map units), mean per band, area, perimeter, compactness."""
    regions = segmentation.regions
    side = math.sqrt(grid.pixel_area)
    means = regions.mean
    records = []
    for value, geometry in polygons(segmentation.labels + 1, grid):
        index = value - 1
        n, perimeter = regions.n[index], regions.perimeter[index]
        records.append({"id": int(value), "geometry": geometry, "mean": [float(m) for m in means[index]],
                        "area": float(n * grid.pixel_area), "perimeter": float(perimeter * side),
                        # Baatz & Schäpe's compactness l/√n: 4 for a square, larger for ragged shapes.
                        "compactness": float(perimeter / math.sqrt(n))})
    return records


def preliminary_mask(grid: Grid, raster: Optional[str] = None, geometries: Optional[Sequence] = None) -> np.ndarray:
    if raster:
        mask = aligned(raster, grid, "preliminary mask") > 0
        where = raster
    elif geometries is not None:
        mask = burn(geometries, grid) > 0
        where = "the preliminary patch layer"
    else:
        raise MineSARError("Give the preliminary mine patches, as polygons or as a mask raster.")
    if not mask.any():
        raise MineSARError(f"{where}: no preliminary mine patch covers a pixel of the image {grid.path}.")
    return mask


@dataclass
class RefineResult:
    grid: Grid
    refinement: Refinement
    calibration: Optional[Calibration]
    patches: List[Tuple[int, object]] = field(default_factory=list)  # (patch id, polygon)
    report: Dict = field(default_factory=dict)


def refine_patches(image: str, preliminary: np.ndarray, grid: Grid, params: MRSParameters,
                   bands: Optional[Sequence[int]] = None, reference: Optional[np.ndarray] = None,
                   p_intsct: float = PAPER_P_INTSCT, accumulate: str = "segment",
                   landcover: Optional[str] = None, excluded_codes: Sequence[int] = EXCLUDED_LANDCOVER,
                   min_area: float = 50.0, tile: int = DEFAULT_TILE, progress: Progress = SILENT,
                   dem: Optional[str] = None, sun_azimuth_deg: Optional[float] = None,
                   sun_elevation_deg: Optional[float] = None,
                   shadow_illumination: float = SHADOW_ILLUMINATION) -> RefineResult:
    """Segment ``image``, calibrate p_intsct on ``reference`` (patch ids on the grid) if given,
    keep/merge/drop segments (area control), and return the refined patches as polygons. With a
    ``dem`` and the sun's position, patches mostly in terrain shadow are dropped."""
    illumination = None
    if dem:
        # Checked before the segmentation, which is the long part.
        if sun_azimuth_deg is None or sun_elevation_deg is None:
            raise MineSARError(f"{dem}: a DEM needs the sun's azimuth and elevation at acquisition time "
                               "(from the image's metadata) to tell where the terrain shadows fall.")
        srs = grid.srs()
        if srs.IsGeographic():
            raise MineSARError(f"{grid.path}: the image is in degrees; slopes from the DEM {dem} need a projected "
                               "grid in metres (warp the image to UTM first).")
        heights = aligned_values(dem, grid, "DEM")
        if not np.isfinite(heights).any():
            raise MineSARError(f"{dem}: the DEM has no height on the image {grid.path} (all nodata there).")
        from .terrain import illumination as terrain_illumination

        # Slopes need the pixel size in metres, as the heights are (a grid in feet is 0.3048 m a unit).
        metres = srs.GetLinearUnits() or 1.0
        x0, dx, rx, y0, ry, dy = grid.geotransform
        illumination = terrain_illumination(heights, (x0, dx * metres, rx, y0, ry, dy * metres), sun_azimuth_deg,
                                            sun_elevation_deg)
    _, segmentation, _ = segment_raster(image, params, bands, tile, progress.span(0.0, 0.8))
    calibration = None
    if reference is not None:
        overlay = Overlay.of(segmentation.labels, preliminary, segmentation.count)
        touching = np.bincount(segmentation.labels[reference > 0], minlength=segmentation.count) > 0
        calibration = calibrate_p_intsct(overlay, touching, float((reference > 0).sum()), accumulate)
        p_intsct = calibration.p_intsct
    progress.update(0.85)
    cover = aligned(landcover, grid, "land cover") if landcover else None
    refinement = refine(segmentation.labels, preliminary, p_intsct, grid.pixel_area, cover, excluded_codes, min_area,
                        segmentation=segmentation, illumination=illumination,
                        shadow_illumination=shadow_illumination)
    progress.update(0.9)
    patches = polygons(refinement.patches, grid) if refinement.patches.any() else []
    report = dict(refinement.report, calibrated=calibration is not None, scale=params.scale, shape=params.shape,
                  compactness=params.compactness)
    if calibration is not None:
        report["calibration"] = calibration.as_dict()
    progress.finish()
    return RefineResult(grid, refinement, calibration, patches, report)


def evaluation_grid(geometries: Sequence, crs_wkt: str, pixel_size: float) -> Grid:
    """A grid over the union of the geometries' extents (for scoring polygons against polygons)."""
    boxes = np.array([g.bounds for g in geometries if g is not None and not g.is_empty])
    if boxes.size == 0:
        raise MineSARError("Neither layer has a patch with a geometry: nothing to evaluate.")
    if not pixel_size > 0:
        raise MineSARError(f"The evaluation pixel size must be positive, not {pixel_size}.")
    x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
    x1, y1 = boxes[:, 2].max(), boxes[:, 3].max()
    width, height = max(1, int(math.ceil((x1 - x0) / pixel_size))), max(1, int(math.ceil((y1 - y0) / pixel_size)))
    if width * height > 400_000_000:
        raise MineSARError(f"Evaluating at {pixel_size} map units would need a {width} × {height} grid; "
                           "choose a larger pixel size or give the image as the grid.")
    return Grid(width, height, (x0, pixel_size, 0.0, y1, 0.0, -pixel_size), crs_wkt)


def evaluate_patches(extracted: Sequence, reference: Sequence, grid: Grid) -> Scores:
    """Score extracted patch polygons against reference patch polygons on ``grid`` (map units)."""
    if not any(g is not None and not g.is_empty for g in reference):
        raise MineSARError("The reference layer has no patch with a geometry.")
    reference_ids = burn(reference, grid)
    if not reference_ids.any():
        raise MineSARError(f"No reference patch overlaps the evaluation area {grid.path or ''}".rstrip() + ".")
    extracted_mask = burn(extracted, grid) > 0
    return evaluate(extracted_mask, reference_ids, pixel_area=grid.pixel_area)


@dataclass
class Estimate:
    scale: float
    shape: float
    compactness: float
    report: Dict = field(default_factory=dict)


def estimate_parameters(image: str, reference: Sequence, bands: Optional[Sequence[int]] = None,
                        weights: Optional[Sequence[float]] = None, shapes: Sequence[float] = (),
                        compactnesses: Sequence[float] = (), grid_scale: float = 50.0,
                        scales: Sequence[float] = (), margin: float = 50.0, tile: int = DEFAULT_TILE,
                        progress: Progress = SILENT) -> Estimate:
    """Seed 003's parameter estimation on the part of ``image`` around the reference patches
    (their extent plus ``margin`` map units): the grid search, then ESP2 (see ``parameters``)."""
    from .parameters import GRID, estimate_scale, grid_search

    grid = Grid.of_raster(image)
    bands = _bands(image, bands)
    geometries = [g for g in reference if g is not None and not g.is_empty]
    if not geometries:
        raise MineSARError("The reference layer has no patch with a geometry.")
    left, bottom, right, top = (f(g.bounds[i] for g in geometries) for i, f in enumerate((min, min, max, max)))
    x0, dx, _, y0, _, dy = grid.geotransform
    cols = sorted(((left - margin - x0) / dx, (right + margin - x0) / dx))
    rows = sorted(((top + margin - y0) / dy, (bottom - margin - y0) / dy))
    c0, c1 = max(0, int(math.floor(cols[0]))), min(grid.width, int(math.ceil(cols[1])))
    r0, r1 = max(0, int(math.floor(rows[0]))), min(grid.height, int(math.ceil(rows[1])))
    if c1 <= c0 or r1 <= r0:
        raise MineSARError(f"{image}: the reference patches do not overlap the image.")
    window = Window(c0, r0, c1 - c0, r1 - r0)
    sub = Grid(window.width, window.height, (x0 + c0 * dx, dx, 0.0, y0 + r0 * dy, 0.0, dy), grid.crs_wkt, image)
    pixels = read_window(open_raster(image), window, bands).astype(np.float64)
    pixels = pixels[None] if pixels.ndim == 2 else pixels
    reference_ids = burn(geometries, sub)
    if not reference_ids.any():
        raise MineSARError(f"{image}: no reference patch covers the centre of any pixel of the image.")
    searched = grid_search(pixels, reference_ids, grid_scale, shapes or GRID, compactnesses or GRID, weights, tile,
                           progress.span(0.0, 0.8))
    scales = list(scales) or list(range(10, 160, 10))
    esp = estimate_scale(pixels, reference_ids, searched.shape, searched.compactness, scales, weights, tile,
                         progress.span(0.8, 1.0))
    progress.finish()
    report = {"window": [c0, r0, window.width, window.height], "reference_patches": len(geometries),
              "grid_scale": grid_scale, "grid_search": searched.table, "esp2": esp.table,
              "scale_candidates": esp.candidates, "scale": esp.scale, "shape": searched.shape,
              "compactness": searched.compactness}
    return Estimate(esp.scale, searched.shape, searched.compactness, report)
