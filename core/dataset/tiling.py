"""Real interferograms + label polygons → a dataset folder, cut the papers' ways (SPEC §2).

Presets: seed 001 cut 800 × 800 tiles at 34 % overlap, seed 002 416 × 416 tiles, seed 003
256 × 256 tiles every 128 pixels plus their 90/180/270° rotations. Tiles of the last row and
column are shifted back inside the raster (as SAHI does) so every tile is full; a raster smaller
than a tile gives one tile padded with NaN. Each tile is read as a window, never the whole
raster. Rotations and flips are separate images in the same split group as their original.

Overlapping tiles share pixels, so the train/validation/test split is spatial: the ground is cut
into square blocks of BLOCK_TILES tiles (in map units, the same for every raster, so
interferograms of one area at other dates fall alike), each block draws its split, and a tile
that straddles blocks of different splits is left out. No pixel, and no place, is then seen in
two splits.
"""
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from shapely import affinity
from scipy import ndimage
from shapely.geometry import box
from shapely.ops import unary_union

from ..errors import MineSARError
from ..io.colours import wrap
from ..io.interferogram import open_interferogram
from ..io.rasters import Window
from ..io.vectorize import rasterize
from ..progress import SILENT, Progress
from .layout import DatasetWriter, Sample, assign_splits


BLOCK_TILES = 4


@dataclass(frozen=True)
class TilingPreset:
    title: str
    tile_size: int
    step: int
    rotations: bool = False


PRESETS = {
    "seed001": TilingPreset("800 × 800, 34 % overlap (seed 001, Mask R-CNN)", 800, 528),
    "seed002": TilingPreset("416 × 416 (seed 002, Light YOLO-Basin)", 416, 416),
    "seed003": TilingPreset("256 × 256, step 128, rotations 90/180/270° (seed 003)", 256, 128, True),
}


def step_for(tile_size: int, overlap: float) -> int:
    if not 0.0 <= overlap < 1.0:
        raise MineSARError(f"Tile overlap {overlap} must be at least 0 and below 1.")
    return max(1, int(round(tile_size * (1.0 - overlap))))


def tile_starts(length: int, tile: int, step: int) -> List[int]:
    """Offsets along one axis: every ``step``, the last one moved back so the tile ends at the edge."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, step))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


@dataclass
class LabelledRaster:
    """An interferogram and its label polygons (shapely, in the raster's CRS)."""

    path: str
    polygons: Sequence[object]
    attributes: Sequence[Dict] = ()


def rasterize_polygon(polygon_pixels, rows: int, cols: int) -> np.ndarray:
    """Pixels whose centre lies inside a shapely polygon given in pixel coordinates (holes kept)."""
    return rasterize([polygon_pixels], (rows, cols), dtype=bool)


def _variants(rotations: bool, flips: bool) -> List[Tuple[str, int, bool]]:
    variants = [("", 0, False)]
    if rotations:
        variants += [("_rot90", 1, False), ("_rot180", 2, False), ("_rot270", 3, False)]
    if flips:
        variants += [("_flip", 0, True)]
    return variants


def build_dataset(
    folder: str,
    rasters: Sequence[LabelledRaster],
    tile_size: int,
    step: int,
    rotations: bool = False,
    flips: bool = False,
    keep_empty: bool = True,
    min_valid_fraction: float = 0.1,
    split_seed: int = 0,
    split_fractions: Optional[dict] = None,
    rgb: bool = False,
    preset: str = "custom",
    progress: Progress = SILENT,
) -> dict:
    """Cut each raster into tiles with their labels; return the written dataset.json."""
    if tile_size < 16:
        raise MineSARError(f"Tile size {tile_size} is too small (at least 16 pixels).")
    if not 0 < step <= tile_size:
        raise MineSARError(f"Tile step {step} must be between 1 and the tile size {tile_size}.")
    if not rasters:
        raise MineSARError("Give at least one interferogram to cut into tiles.")
    plans = []
    for item in rasters:
        source = open_interferogram(item.path)
        if source.metadata.kind == "coherence":
            source.close()
            raise MineSARError(f"{item.path}: is a coherence raster; the dataset needs interferogram phase.")
        if source.geotransform is None:
            source.close()
            raise MineSARError(f"{item.path}: has no georeference, so the label polygons cannot be placed on it.")
        if abs(source.geotransform[2]) > 0 or abs(source.geotransform[4]) > 0:
            source.close()
            raise MineSARError(f"{item.path}: rotated grids are not supported.")
        rows_starts = tile_starts(source.height, tile_size, step)
        col_starts = tile_starts(source.width, tile_size, step)
        plans.append((item, source, [(r, c) for r in rows_starts for c in col_starts]))
    description = {
        "title": "MineSAR dataset from real interferograms",
        "source": "real",
        "created_by": "minesar:builddataset",
        "preset": preset,
        "tile_size": tile_size,
        "step": step,
        "overlap": round(1.0 - step / tile_size, 4),
        "rotations": rotations,
        "flips": flips,
        "keep_empty": keep_empty,
        "min_valid_fraction": min_valid_fraction,
        "rasters": [item.path for item, _, _ in plans],
        "skipped_tiles": 0,
    }
    block_m = BLOCK_TILES * tile_size * abs(plans[0][1].geotransform[1])
    blocks_of = {}
    for item, source, tiles in plans:
        for row, col in tiles:
            blocks_of[(item.path, row, col)] = _blocks(source.geotransform, row, col, tile_size, block_m)
    all_blocks = sorted({block for blocks in blocks_of.values() for block in blocks})
    block_splits = assign_splits(all_blocks, split_seed, split_fractions)
    description.update({"split_unit": "spatial block", "split_block_m": block_m, "border_tiles_left_out": 0})
    total = sum(len(tiles) for _, _, tiles in plans)
    done = 0
    skipped = 0
    border = 0
    try:
        with DatasetWriter(folder, description, split_seed=split_seed, split_fractions=split_fractions,
                           rgb=rgb, group_splits=block_splits) as writer:
            used_stems = set()
            for item, source, tiles in plans:
                stem = _unique_stem(item.path, used_stems)
                pixel_polygons = _to_pixels(item.polygons, source.geotransform)
                wrapped = source.metadata.kind == "unwrapped"
                for row, col in tiles:
                    progress.update(done / total)
                    done += 1
                    blocks = blocks_of[(item.path, row, col)]
                    if len({block_splits[b] for b in blocks}) > 1:
                        border += 1
                        continue
                    phase, instances, attributes = _cut(source, pixel_polygons, item.attributes, row, col, tile_size)
                    valid = np.isfinite(phase)
                    if valid.mean() < min_valid_fraction or not valid.any() or (not instances and not keep_empty):
                        skipped += 1
                        continue
                    if wrapped:
                        phase = wrap(phase)
                    group = blocks[0]
                    for suffix, quarter_turns, flip in _variants(rotations, flips):
                        writer.add(_variant_sample(
                            f"{stem}_r{row:05d}_c{col:05d}{suffix}", phase, instances, attributes, group,
                            quarter_turns, flip, source, row, col, item.path, wrapped))
            writer.description["skipped_tiles"] = skipped
            writer.description["border_tiles_left_out"] = border
    finally:
        for _, source, _ in plans:
            source.close()
    progress.finish()
    return writer.description


def _blocks(geotransform, row, col, tile_size, block_m) -> List[str]:
    """Ids of the ground blocks a tile's footprint touches (map coordinates, same for every raster)."""
    x0, dx, _, y0, _, dy = geotransform
    xs = sorted((x0 + col * dx, x0 + (col + tile_size) * dx))
    ys = sorted((y0 + row * dy, y0 + (row + tile_size) * dy))
    # A footprint ending exactly on a block edge does not reach into the next block.
    span = lambda low, high: range(int(np.floor(low / block_m)), int(np.ceil(high / block_m)))  # noqa: E731
    return [f"block_{bx}_{by}" for by in span(*ys) for bx in span(*xs)]


def _unique_stem(path: str, used: set) -> str:
    stem = os.path.basename(path).split(".")[0] or "raster"
    candidate, number = stem, 2
    while candidate in used:
        candidate, number = f"{stem}_{number}", number + 1
    used.add(candidate)
    return candidate


def _to_pixels(polygons, geotransform):
    """Polygons in map coordinates → pixel coordinates (x = column, y = row) of the raster."""
    x0, dx, _, y0, _, dy = geotransform
    out = []
    for polygon in polygons:
        if polygon is None or polygon.is_empty:
            continue
        if not polygon.is_valid:
            polygon = polygon.buffer(0)
        out.append(affinity.affine_transform(polygon, [1.0 / dx, 0.0, 0.0, 1.0 / dy, -x0 / dx, -y0 / dy]))
    return out


def _cut(source, pixel_polygons, attributes, row, col, tile_size):
    height = min(tile_size, source.height - row)
    width = min(tile_size, source.width - col)
    phase = np.full((tile_size, tile_size), np.nan, dtype=np.float32)
    phase[:height, :width] = source.read(Window(col, row, width, height))
    bounds = box(col, row, col + width, row + height)
    instances, kept_attributes = [], []
    for index, polygon in enumerate(pixel_polygons):
        if not polygon.intersects(bounds):
            continue
        part = _polygonal(polygon.intersection(bounds))
        if part is None:
            continue  # touches the tile along an edge or at a corner: nothing of it is inside
        mask = rasterize_polygon(affinity.translate(part, -col, -row), tile_size, tile_size)
        # A basin has no holes, and COCO polygons could not carry one: a drawn hole is filled.
        mask = ndimage.binary_fill_holes(mask)
        if mask.any():
            instances.append(mask)
            kept_attributes.append(dict(attributes[index]) if index < len(attributes) else {})
    return phase, instances, kept_attributes


def _polygonal(geometry):
    """The areal part of an intersection (a polygon can touch a tile along a line or at a point)."""
    if geometry.is_empty:
        return None
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry if geometry.area > 0 else None
    parts = [g for g in getattr(geometry, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon") and g.area > 0]
    return unary_union(parts) if parts else None


def _variant_sample(name, phase, instances, attributes, group, quarter_turns, flip, source, row, col, path,
                    wrapped) -> Sample:
    def transform(array):
        array = np.rot90(array, quarter_turns)
        return np.ascontiguousarray(array[:, ::-1] if flip else array)

    geotransform = None
    if quarter_turns == 0 and not flip:
        x0, dx, _, y0, _, dy = source.geotransform
        geotransform = (x0 + col * dx, dx, 0.0, y0 + row * dy, 0.0, dy)
    tags = source.metadata.to_tags()
    if wrapped:
        tags.update({"MINESAR_KIND": "wrapped", "UNITS": "radians", "MINESAR_WRAPPED_FROM": "unwrapped"})
    return Sample(
        name=name,
        phase=transform(phase),
        instances=[transform(mask) for mask in instances],
        instance_attributes=attributes,
        group=group,
        geotransform=geotransform,
        crs_wkt=source.crs_wkt,
        tags=tags,
        attributes={"source": os.path.basename(path), "source_col": col, "source_row": row,
                    "rotation_deg": 90 * quarter_turns, "flipped": flip},
    )
