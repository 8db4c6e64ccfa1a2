"""Simulated GF-2 scenes of an arid mining district (seed 003 §2.1) with their truth.

A scene is 4-band (B, G, R, NIR) uint16 at about 1 m: a textured desert-steppe terrain lit by a
low sun (so ridges cast mountain shadows), with the confusers the paper names — wind-farm pads
and their roads, buildings, cropland, water — and mine patches of the four kinds it describes:

    coal gangue dump   gray to gray-black, heaped and rutted, clear edge
    iron ore pit       grayish yellow, light red to reddish brown, clumpy or streaky texture
    clay pit           whitish gray to grayish yellow, smooth and homogeneous
    sandstone pit      gray to light gray, bright, messy texture, terraced benches

Patches are irregular polygons of 200 m² to 20 ha. Each scene also gets an ESA WorldCover land
cover raster at 10 m (mines read as bare/sparse, 60) and a deliberately imperfect
"preliminary" mask — wobbly edges, holes, broken fragments, false blobs on shadows, pads and
roofs, a missed small patch — like a network's first answer, for the boundary-refinement work.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy import ndimage
from shapely import affinity
from shapely.geometry import Polygon, box
from shapely.ops import unary_union

from ..errors import MineSARError
from .fields import power_law_screen, simulated_dem

MINE_KINDS = ("coal_gangue", "iron_ore", "clay", "sandstone")
MINE_CODES = {kind: index + 1 for index, kind in enumerate(MINE_KINDS)}
WORLDCOVER = {"tree": 10, "shrubland": 20, "grassland": 30, "cropland": 40, "built_up": 50, "bare": 60,
              "water": 80}
BANDS = ("blue", "green", "red", "nir")
# Surface reflectance (B, G, R, NIR) of each cover, from the paper's interpretation signs.
_REFLECTANCE = {
    "desert": (0.11, 0.15, 0.19, 0.24),
    "steppe": (0.07, 0.10, 0.11, 0.26),
    "cropland": (0.04, 0.08, 0.05, 0.40),
    "water": (0.07, 0.07, 0.04, 0.02),
    "roof": (0.24, 0.25, 0.25, 0.27),
    "blue_roof": (0.30, 0.22, 0.13, 0.18),
    "road": (0.20, 0.21, 0.22, 0.25),
    "pad": (0.29, 0.30, 0.30, 0.31),
    "coal_gangue": (0.045, 0.047, 0.05, 0.065),
    "iron_ore": (0.10, 0.12, 0.19, 0.23),
    "clay": (0.30, 0.31, 0.31, 0.33),
    "sandstone": (0.27, 0.28, 0.29, 0.31),
}
_DN_OFFSET, _DN_GAIN = 180.0, 3200.0  # reflectance → 16-bit DN, GF-2-like dynamic range


@dataclass
class OpticalRecipe:
    rows: int = 1024
    cols: int = 1024
    pixel_size_m: float = 1.0
    patch_count: Tuple[int, int] = (3, 8)
    patch_area_m2: Tuple[float, float] = (200.0, 200_000.0)
    relief_m: float = 120.0
    confusers: bool = True

    def check(self) -> None:
        problems = []
        if self.rows < 64 or self.cols < 64:
            problems.append(f"size {self.cols} × {self.rows} is below 64 pixels")
        if not 0.1 <= self.pixel_size_m <= 10:
            problems.append(f"pixel size {self.pixel_size_m} m is outside 0.1–10 m (GF-2 is about 1 m)")
        low, high = self.patch_count
        if low < 0 or high < low:
            problems.append(f"patch count range {low}–{high} is not a range of counts")
        low, high = self.patch_area_m2
        if not 0 < low <= high:
            problems.append(f"patch area range {low}–{high} m² must be positive and ordered")
        if problems:
            raise MineSARError("Optical simulation parameters: " + "; ".join(problems) + ".")


@dataclass
class Patch:
    kind: str
    polygon: Polygon  # pixel coordinates (x = column, y = row)

    def area_m2(self, pixel_size_m: float) -> float:
        return self.polygon.area * pixel_size_m**2


@dataclass
class OpticalScene:
    image: np.ndarray  # uint16 (4, rows, cols): B, G, R, NIR
    truth: np.ndarray  # uint8 (rows, cols): 0 background, 1–4 the mine kind (MINE_CODES)
    preliminary: np.ndarray  # uint8 (rows, cols): 1 where the imperfect first answer says "mine"
    landcover: np.ndarray  # uint8 (rows // f, cols // f) WorldCover codes at 10 m
    landcover_factor: int  # landcover pixel = this many image pixels
    patches: List[Patch]
    confusers: List[Tuple[str, object]] = field(default_factory=list)  # (kind, pixel polygon)
    preliminary_notes: Dict[str, int] = field(default_factory=dict)
    dem: Optional[np.ndarray] = None  # float32 (rows, cols) terrain height in metres
    sun_azimuth_deg: float = 180.0  # clockwise from north, where the light comes from
    sun_elevation_deg: float = 45.0


def _irregular_polygon(rng, centre, area_px: float, vertices: int = 32) -> Polygon:
    """An irregular blob: a radius that wanders around the centre, stretched, sometimes with a
    second lobe (a pit with a side cut, a dump with a tongue), scaled to the area asked for."""
    def blob(stretch, rotation):
        angles = np.sort(rng.uniform(0, 2 * math.pi, vertices))
        harmonics = sum(rng.normal(0, 0.4 / k) * np.cos(k * angles + rng.uniform(0, 2 * math.pi)) for k in range(2, 7))
        radius = np.clip(1.0 + harmonics, 0.3, None)
        x = radius * np.cos(angles) * stretch
        y = radius * np.sin(angles) / stretch
        return Polygon(zip(x * math.cos(rotation) - y * math.sin(rotation),
                           x * math.sin(rotation) + y * math.cos(rotation))).buffer(0)

    rotation = rng.uniform(0, math.pi)
    shape = blob(rng.uniform(1.0, 2.2), rotation)
    if rng.random() < 0.5:
        angle = rotation + rng.normal(0, 0.8)
        offset = rng.uniform(0.8, 1.4)
        lobe = affinity.scale(blob(rng.uniform(1.0, 1.8), rng.uniform(0, math.pi)), 0.55, 0.55)
        shape = shape.union(affinity.translate(lobe, offset * math.cos(angle), offset * math.sin(angle))).buffer(0)
    if shape.geom_type != "Polygon":  # a lobe that only touched: keep the main part
        shape = max(shape.geoms, key=lambda g: g.area)
    scale = math.sqrt(area_px / shape.area)
    return Polygon([(centre[0] + px * scale, centre[1] + py * scale) for px, py in shape.exterior.coords])


def _burn(polygon, shape) -> np.ndarray:
    """Pixels whose centre is inside a pixel-coordinate polygon (vectorised over its bounding box)."""
    rows, cols = shape
    mask = np.zeros(shape, dtype=bool)
    x0, y0, x1, y1 = polygon.bounds
    c0, c1 = max(0, int(math.floor(x0))), min(cols, int(math.ceil(x1)) + 1)
    r0, r1 = max(0, int(math.floor(y0))), min(rows, int(math.ceil(y1)) + 1)
    if c1 <= c0 or r1 <= r0:
        return mask
    from shapely import contains_xy

    yy, xx = np.mgrid[r0:r1, c0:c1]
    mask[r0:r1, c0:c1] = contains_xy(polygon, xx + 0.5, yy + 0.5)
    return mask


def simulate_optical_scene(recipe: OpticalRecipe, rng: np.random.Generator) -> OpticalScene:
    recipe.check()
    rows, cols = recipe.rows, recipe.cols
    shape = (rows, cols)
    p = recipe.pixel_size_m
    area_px = (recipe.patch_area_m2[0] / p**2, recipe.patch_area_m2[1] / p**2)

    # Terrain and light: ridges in shadow are the paper's main false alarm for coal gangue.
    dem = simulated_dem(shape, p, rng, recipe.relief_m).astype(np.float64)
    dy, dx = np.gradient(dem, p)
    azimuth, elevation = math.radians(rng.uniform(120, 240)), math.radians(rng.uniform(18, 35))
    slope = np.arctan(np.hypot(dx, dy))
    aspect = np.arctan2(-dx, dy)
    shade = np.sin(elevation) * np.cos(slope) + np.cos(elevation) * np.sin(slope) * np.cos(azimuth - aspect)
    shade = np.clip(shade / max(math.sin(elevation), 1e-3), 0.15, 1.6)

    desert = power_law_screen(shape, p, rng, slope=-3.5) > rng.uniform(-0.3, 0.6)
    classes = np.full(shape, WORLDCOVER["bare"], dtype=np.uint8)
    classes[~desert] = WORLDCOVER["grassland"]
    reflectance = np.empty((4,) + shape, dtype=np.float32)
    for band in range(4):
        reflectance[band] = np.where(desert, _REFLECTANCE["desert"][band], _REFLECTANCE["steppe"][band])
    texture = 1.0 + 0.08 * power_law_screen(shape, p, rng, slope=-2.0)

    occupied = np.zeros(shape, dtype=bool)
    confusers: List[Tuple[str, object]] = []

    def paint(mask, material, variation=0.05, pattern=None):
        """Give the mask's pixels a material, with pixel noise and an optional per-pixel pattern."""
        factor = 1.0 + variation * rng.standard_normal(int(mask.sum()))
        if pattern is not None:
            factor = factor + pattern
        for band in range(4):
            reflectance[band][mask] = _REFLECTANCE[material][band] * factor

    if recipe.confusers:
        _add_cropland(rng, shape, classes, occupied, confusers, paint)
        _add_water(rng, shape, classes, occupied, confusers, paint)
        _add_settlement(rng, shape, classes, occupied, confusers, paint, reflectance)
        _add_wind_farm(rng, shape, classes, occupied, confusers, paint)

    patches = []
    truth = np.zeros(shape, dtype=np.uint8)
    count = int(rng.integers(recipe.patch_count[0], recipe.patch_count[1] + 1))
    attempts = 0
    while len(patches) < count and attempts < 50 * max(count, 1):
        attempts += 1
        kind = MINE_KINDS[int(rng.integers(len(MINE_KINDS)))]
        target = float(math.exp(rng.uniform(math.log(area_px[0]), math.log(area_px[1]))))
        target = min(target, 0.2 * rows * cols)
        centre = (rng.uniform(0.1 * cols, 0.9 * cols), rng.uniform(0.1 * rows, 0.9 * rows))
        polygon = _irregular_polygon(rng, centre, target).intersection(box(0, 0, cols, rows))
        if polygon.is_empty or polygon.geom_type != "Polygon" or polygon.area < area_px[0]:
            continue
        mask = _burn(polygon, shape)
        grown = ndimage.binary_dilation(mask, iterations=4)
        if (grown & (occupied | (truth > 0))).any():
            continue
        _paint_mine(kind, mask, polygon, rng, reflectance, p)
        truth[mask] = MINE_CODES[kind]
        classes[mask] = WORLDCOVER["bare"]
        patches.append(Patch(kind, polygon))

    dn = _DN_OFFSET + _DN_GAIN * reflectance * texture[None] * shade[None].astype(np.float32)
    dn = ndimage.gaussian_filter(dn, sigma=(0, 0.6, 0.6))  # sensor point spread
    dn += rng.normal(0.0, 6.0, size=dn.shape).astype(np.float32)
    image = np.clip(np.round(dn), 1, 65535).astype(np.uint16)

    factor = landcover_factor(p)
    landcover = _majority(classes, factor)
    preliminary, notes = imperfect_mask(truth > 0, patches, confusers, shade, rng)
    return OpticalScene(image, truth, preliminary, landcover, factor, patches, confusers, notes,
                        dem.astype(np.float32), math.degrees(azimuth), math.degrees(elevation))


def _add_cropland(rng, shape, classes, occupied, confusers, paint):
    rows, cols = shape
    for _ in range(int(rng.integers(0, 3))):
        # Fields fit in a small scene too.
        width, height = rng.uniform(60, 220) * min(1.0, 0.5 * cols / 220), rng.uniform(40, 160) * min(1.0, 0.5 * rows / 160)
        x, y = rng.uniform(0, cols - width), rng.uniform(0, rows - height)
        field_box = box(x, y, x + width, y + height)
        mask = _burn(field_box, shape) & ~occupied
        # Plough lines: stripes the networks must not take for a pit's benches.
        yy, xx = np.nonzero(mask)
        stripes = 0.12 * np.sin((xx if rng.random() < 0.5 else yy) * 2 * math.pi / rng.uniform(3, 8))
        fallow = rng.random() < 0.4
        paint(mask, "desert" if fallow else "cropland", 0.02, stripes)
        classes[mask] = WORLDCOVER["cropland"]
        occupied |= mask
        confusers.append(("cropland", field_box))


def _add_water(rng, shape, classes, occupied, confusers, paint):
    if rng.random() < 0.5:
        return
    rows, cols = shape
    pond = _irregular_polygon(rng, (rng.uniform(0.1, 0.9) * cols, rng.uniform(0.1, 0.9) * rows),
                              rng.uniform(800, 12000), vertices=16)
    mask = _burn(pond, shape) & ~occupied
    paint(mask, "water", 0.02)
    classes[mask] = WORLDCOVER["water"]
    occupied |= mask
    confusers.append(("water", pond))


def _add_settlement(rng, shape, classes, occupied, confusers, paint, reflectance):
    if rng.random() < 0.4:
        return
    rows, cols = shape
    cx, cy = rng.uniform(0.15, 0.85) * cols, rng.uniform(0.15, 0.85) * rows
    for _ in range(int(rng.integers(6, 20))):
        w, h = rng.uniform(8, 30), rng.uniform(8, 20)
        x, y = cx + rng.normal(0, 60), cy + rng.normal(0, 60)
        roof = box(x, y, x + w, y + h)
        mask = _burn(roof, shape) & ~occupied
        paint(mask, "roof" if rng.random() < 0.7 else "blue_roof", 0.03)
        # The shadow a building casts on its north side.
        shadow = _burn(box(x, y + h, x + w, y + h + rng.uniform(2, 6)), shape) & ~occupied & ~mask
        for band in range(4):
            reflectance[band][shadow] *= 0.45
        classes[mask | shadow] = WORLDCOVER["built_up"]
        occupied |= mask | shadow
        confusers.append(("building", roof))


def _add_wind_farm(rng, shape, classes, occupied, confusers, paint):
    if rng.random() < 0.4:
        return
    rows, cols = shape
    x, y = rng.uniform(0.1, 0.9) * cols, rng.uniform(0.1, 0.9) * rows
    heading = rng.uniform(0, 2 * math.pi)
    for _ in range(int(rng.integers(2, 5))):
        step = rng.uniform(150, 300)
        nx, ny = x + step * math.cos(heading), y + step * math.sin(heading)
        road = Polygon([(x, y), (nx, ny), (nx + 1, ny + 1), (x + 1, y + 1)]).buffer(3.0)
        road_mask = _burn(road, shape) & ~occupied
        paint(road_mask, "road", 0.04)
        pad = Polygon([(nx + 20 * math.cos(a), ny + 20 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 20)])
        pad_mask = _burn(pad, shape) & ~occupied
        paint(pad_mask, "pad", 0.05)
        occupied |= road_mask | pad_mask
        confusers.append(("wind_pad", pad))
        confusers.append(("road", road))
        x, y = nx, ny
        heading += rng.normal(0, 0.5)


def _paint_mine(kind, mask, polygon, rng, reflectance, pixel_size_m):
    rows_idx, cols_idx = np.nonzero(mask)
    base = np.array(_REFLECTANCE[kind])
    count = rows_idx.size
    r0, c0 = rows_idx.min(), cols_idx.min()
    local_shape = (rows_idx.max() - r0 + 1, cols_idx.max() - c0 + 1)
    if kind == "coal_gangue":
        # Heaps dumped by trucks: bumpy brightness, and ruts.
        heaps = ndimage.gaussian_filter(rng.standard_normal(local_shape), 3.0)
        factor = 1.0 + 2.5 * heaps[rows_idx - r0, cols_idx - c0]
        tint = np.zeros((4, count))
    elif kind == "iron_ore":
        # Clumps of oxidised ore, from grayish yellow to reddish brown.
        clumps = ndimage.gaussian_filter(rng.standard_normal(local_shape), 2.0)[rows_idx - r0, cols_idx - c0]
        factor = 1.0 + 1.8 * clumps
        redness = np.clip(clumps * 4.0, -1, 1)
        tint = np.outer([-0.02, -0.01, 0.05, 0.02], redness)
    elif kind == "clay":
        factor = 1.0 + 0.015 * rng.standard_normal(count)
        tint = np.outer([0.0, 0.01, 0.02, 0.0], np.full(count, rng.uniform(-1, 1)))
    else:
        # Terraced benches around the pit, and a messy, high-contrast surface.
        inside = np.zeros(local_shape, dtype=bool)
        inside[rows_idx - r0, cols_idx - c0] = True
        depth = ndimage.distance_transform_edt(inside)[rows_idx - r0, cols_idx - c0] * pixel_size_m
        bench = rng.uniform(6.0, 12.0)
        factor = 1.0 + 0.18 * np.sign(np.sin(2 * math.pi * depth / bench)) + 0.12 * rng.standard_normal(count)
        tint = np.zeros((4, count))
    for band in range(4):
        reflectance[band][mask] = np.clip(base[band] * factor + tint[band], 0.01, 0.9)


def landcover_factor(pixel_size_m: float) -> int:
    """Image pixels per land-cover pixel: WorldCover's 10 m, rounded to a whole number of pixels."""
    return max(1, int(round(10.0 / pixel_size_m)))


def _majority(classes: np.ndarray, factor: int) -> np.ndarray:
    """Majority class per factor × factor block; a partial last block covers the scene's edge."""
    rows, cols = -(-classes.shape[0] // factor), -(-classes.shape[1] // factor)
    padded = np.pad(classes, ((0, rows * factor - classes.shape[0]), (0, cols * factor - classes.shape[1])),
                    mode="edge")
    blocks = padded.reshape(rows, factor, cols, factor).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(rows, cols, factor * factor)
    codes = np.array(sorted(WORLDCOVER.values()), dtype=np.uint8)
    counts = np.stack([(blocks == code).sum(axis=2) for code in codes], axis=-1)
    return codes[np.argmax(counts, axis=-1)]


def imperfect_mask(truth: np.ndarray, patches, confusers, shade, rng) -> Tuple[np.ndarray, Dict[str, int]]:
    """What a segmentation network might first say: the truth, spoilt in the usual ways."""
    shape = truth.shape
    notes = {"holes": 0, "fragments": 0, "false_blobs": 0, "missed": 0}
    # Wobbly edges: the signed distance to the boundary plus a smooth random field of a few metres.
    inside = ndimage.distance_transform_edt(truth)
    outside = ndimage.distance_transform_edt(~truth)
    wobble = 2.5 * ndimage.gaussian_filter(rng.standard_normal(shape), 6.0) / 0.05
    mask = (inside - outside + np.clip(wobble, -4, 4)) > 0
    for patch in patches:
        bounds = patch.polygon.bounds
        size = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
        if patch.polygon.area < 900 and rng.random() < 0.3:
            mask &= ~_burn(patch.polygon.buffer(6), shape)
            notes["missed"] += 1
            continue
        if size > 40:
            for _ in range(int(rng.integers(1, 4))):
                point = patch.polygon.representative_point() if rng.random() < 0.3 else _random_point_in(patch.polygon, rng)
                hole = _irregular_polygon(rng, (point.x, point.y), rng.uniform(0.01, 0.05) * patch.polygon.area, 12)
                mask &= ~_burn(hole, shape)
                notes["holes"] += 1
        draw = rng.random()  # drawn for every patch, so one patch's size does not reshuffle the rest
        if size > 80 and draw < 0.5:
            # A gap across the patch breaks it into fragments.
            c = patch.polygon.centroid
            angle = rng.uniform(0, math.pi)
            half = size
            line = Polygon([(c.x - half * math.cos(angle), c.y - half * math.sin(angle)),
                            (c.x + half * math.cos(angle), c.y + half * math.sin(angle)),
                            (c.x + half * math.cos(angle) + 1, c.y + half * math.sin(angle) + 1),
                            (c.x - half * math.cos(angle) + 1, c.y - half * math.sin(angle) + 1)]).buffer(
                rng.uniform(2.0, 4.0))
            mask &= ~_burn(line, shape)
            notes["fragments"] += 1
    # False blobs where the paper's network erred: shadows, wind-farm pads, roofs.
    shadows = shade < 0.45
    labels, count = ndimage.label(shadows)
    if count:
        sizes = ndimage.sum(shadows, labels, index=np.arange(1, count + 1))
        for label in np.argsort(sizes)[::-1][: int(rng.integers(0, 3))] + 1:
            if sizes[label - 1] > 30:
                mask |= labels == label
                notes["false_blobs"] += 1
    for kind, polygon in confusers:
        if kind in ("wind_pad", "building") and rng.random() < 0.35:
            mask |= _burn(polygon.buffer(rng.uniform(0, 3)), shape)
            notes["false_blobs"] += 1
    return mask.astype(np.uint8), notes


def _random_point_in(polygon, rng):
    from shapely.geometry import Point

    x0, y0, x1, y1 = polygon.bounds
    for _ in range(100):
        point = Point(rng.uniform(x0, x1), rng.uniform(y0, y1))
        if polygon.contains(point):
            return point
    return polygon.representative_point()


def truth_union(patches) -> object:
    return unary_union([patch.polygon for patch in patches])
