"""Simulated wrapped interferograms of mining subsidence with their truth (SPEC §2).

φ_wrap = W(φ_def + φ_atm + φ_noise) (seed 001 eq. 7, 10). Deformation: Gaussian basins (eq. 8,
elliptical and rotated) and probability-integral-method troughs of rotated panels, several per
scene, sometimes overlapping or adjacent. Atmosphere: a turbulent power-law screen plus a
stratified delay proportional to a DEM (given or simulated), or, when GACOS zenith delays are
given, the difference of two of them (eq. 9). Noise: coherence-driven decorrelation for L looks,
where steep fringes and some basin centres decorrelate, plus uniform noise (eq. 10). Optional
orbital ramp. Distractors (broad groundwater bowls, atmospheric blobs) deform the phase but are
background in the labels. Every draw comes from the generator handed in, so a seed fixes the
output bit for bit.
"""
import math
from dataclasses import dataclass, field, replace
from typing import List, Optional, Sequence, Tuple

import numpy as np
from scipy.special import ndtr

from ..errors import MineSARError
from ..io.colours import wrap
from ..io.products import SENTINEL1_WAVELENGTH_M
from ..io.rasters import Window
from .fields import (
    Basin,
    decorrelation_noise,
    grid_coordinates,
    phase_from_los_mm,
    phase_gradient,
    power_law_screen,
    ramp_mm,
    simulated_dem,
    stratified_delay_mm,
)

NOISE_STRIP_ROWS = 256  # noise is drawn strip by strip with its own seed: same output at any size
# Phase gradients this steep (radians per pixel) cannot be resolved: such fringes decorrelate.
ALIASING_GRADIENT = 2.0


@dataclass
class SimulationRecipe:
    """What a simulated scene may contain. Ranges are (low, high), drawn uniformly per scene."""

    rows: int = 256
    cols: int = 256
    pixel_size_m: float = 30.0
    wavelength_m: float = SENTINEL1_WAVELENGTH_M
    incidence_deg: float = 39.0
    basin_count: Tuple[int, int] = (1, 4)
    subsidence_mm: Tuple[float, float] = (1.0, 150.0)
    radius_m: Tuple[float, float] = (100.0, 400.0)
    gaussian_share: float = 0.5
    adjacent_share: float = 0.3
    atmosphere_mm: float = 5.0
    stratified_mm_per_km: float = 20.0
    turbulence_slope: float = -8.0 / 3.0
    dem_relief_m: float = 300.0
    coherence: Tuple[float, float] = (0.25, 0.95)
    looks: int = 10
    uniform_noise_rad: float = 0.5
    decorrelated_centre_share: float = 0.3
    ramp_share: float = 0.3
    ramp_mm_per_km: float = 2.0
    distractor_share: float = 0.5
    label_fraction: float = 0.1

    def check(self) -> None:
        problems = []
        if self.rows < 16 or self.cols < 16:
            problems.append(f"size {self.cols} × {self.rows} is below 16 pixels")
        if self.pixel_size_m <= 0:
            problems.append("pixel size must be positive")
        low, high = self.basin_count
        if low < 0 or high < low:
            problems.append(f"basin count range {low}–{high} is not a range of counts")
        low, high = self.subsidence_mm
        if not 0 < low <= high:
            problems.append(f"subsidence range {low}–{high} mm must be positive and ordered")
        low, high = self.radius_m
        if not 0 < low <= high:
            problems.append(f"radius range {low}–{high} m must be positive and ordered")
        low, high = self.coherence
        if not 0 <= low <= high <= 1:
            problems.append(f"coherence range {low}–{high} must lie within 0–1")
        if not 0 < self.label_fraction < 1:
            problems.append("label fraction must lie between 0 and 1")
        if self.atmosphere_mm < 0 or self.stratified_mm_per_km < 0 or self.uniform_noise_rad < 0:
            problems.append("atmosphere and noise strengths cannot be negative")
        if problems:
            raise MineSARError("Simulation parameters: " + "; ".join(problems) + ".")


@dataclass
class InstanceMask:
    """A basin's footprint as a boolean block placed at ``window`` of the scene."""

    window: Window
    mask: np.ndarray

    @property
    def pixel_count(self) -> int:
        return int(self.mask.sum())

    def bbox(self) -> Optional[Tuple[int, int, int, int]]:
        """(col0, row0, col1, row1) in scene pixels, exclusive ends; None if empty."""
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        if rows.size == 0:
            return None
        return (self.window.col + int(cols[0]), self.window.row + int(rows[0]),
                self.window.col + int(cols[-1]) + 1, self.window.row + int(rows[-1]) + 1)

    def full(self, rows: int, cols: int) -> np.ndarray:
        out = np.zeros((rows, cols), dtype=bool)
        out[self.window.slices] = self.mask
        return out


@dataclass
class SimulatedInterferogram:
    """A wrapped phase with its components and truth. Arrays are float32, rows × cols."""

    phase: np.ndarray
    deformation_mm: np.ndarray
    distractors_mm: np.ndarray
    atmosphere_mm: np.ndarray
    coherence: np.ndarray
    basins: List[Basin]
    instances: List[InstanceMask]
    distractors: List[Basin] = field(default_factory=list)
    atmosphere_source: str = "simulated"

    def semantic_mask(self) -> np.ndarray:
        rows, cols = self.phase.shape
        mask = np.zeros((rows, cols), dtype=np.uint8)
        for instance in self.instances:
            mask[instance.window.slices] |= instance.mask
        return mask


def draw_basins(recipe: SimulationRecipe, rng: np.random.Generator) -> List[Basin]:
    """Mining basins for one scene: kind, depth, size and place; some next to or over another."""
    count = int(rng.integers(recipe.basin_count[0], recipe.basin_count[1] + 1))
    width_m, height_m = recipe.cols * recipe.pixel_size_m, recipe.rows * recipe.pixel_size_m
    low_depth, high_depth = recipe.subsidence_mm
    basins: List[Basin] = []
    for _ in range(count):
        # Log-uniform depth: small basins are as common as in real scenes and as hard to see.
        depth = float(math.exp(rng.uniform(math.log(low_depth), math.log(high_depth))))
        angle = float(rng.uniform(0.0, math.pi))
        if rng.random() < recipe.gaussian_share:
            sigma = float(rng.uniform(0.8 * recipe.radius_m[0], recipe.radius_m[1]))
            basin = Basin("gaussian", 0.0, 0.0, depth, angle, sigma_x_m=sigma,
                          sigma_y_m=sigma * float(rng.uniform(0.5, 1.0)))
            half_extent = 2.2 * sigma
        else:
            radius = float(rng.uniform(*recipe.radius_m))
            half_length = float(rng.uniform(50.0, 600.0))
            half_width = float(rng.uniform(40.0, min(half_length, 200.0)))
            basin = Basin("pim", 0.0, 0.0, depth, angle, half_length_m=half_length,
                          half_width_m=half_width, radius_m=radius)
            half_extent = half_length + 0.6 * radius
        if basins and rng.random() < recipe.adjacent_share:
            # Next to (or partly over) an earlier basin, as neighbouring longwall panels are.
            neighbour = basins[int(rng.integers(len(basins)))]
            direction = rng.uniform(0.0, 2.0 * math.pi)
            distance = (half_extent + 0.5 * neighbour.reach_m()) * float(rng.uniform(0.5, 1.0))
            x = neighbour.x_m + distance * math.cos(direction)
            y = neighbour.y_m + distance * math.sin(direction)
        else:
            x, y = rng.uniform(0.0, width_m), rng.uniform(0.0, height_m)
        # Centres stay inside the scene, away from its edge, so a basin is not merely grazed by it.
        margin = min(0.25 * half_extent, 0.25 * min(width_m, height_m))
        x = float(np.clip(x, margin, width_m - margin))
        y = float(np.clip(y, margin, height_m - margin))
        basins.append(replace(basin, x_m=x, y_m=y))
    return basins


def draw_distractors(recipe: SimulationRecipe, rng: np.random.Generator) -> List[Basin]:
    """Signals that are not mining: a broad groundwater bowl, atmospheric blobs of either sign."""
    if rng.random() >= recipe.distractor_share:
        return []
    width_m, height_m = recipe.cols * recipe.pixel_size_m, recipe.rows * recipe.pixel_size_m
    distractors = []
    for _ in range(int(rng.integers(1, 3))):
        x, y = float(rng.uniform(0, width_m)), float(rng.uniform(0, height_m))
        angle = float(rng.uniform(0.0, math.pi))
        if rng.random() < 0.5:
            sigma = float(rng.uniform(1500.0, 5000.0))
            distractors.append(Basin("groundwater", x, y, float(rng.uniform(5.0, 40.0)), angle,
                                     sigma_x_m=sigma, sigma_y_m=sigma * float(rng.uniform(0.6, 1.0))))
        else:
            sigma = float(rng.uniform(600.0, 2000.0))
            amplitude = float(rng.uniform(2.0, 2.0 + 3.0 * max(recipe.atmosphere_mm, 1.0)))
            distractors.append(Basin("atmosphere", x, y, amplitude, angle, sigma_x_m=sigma,
                                     sigma_y_m=sigma * float(rng.uniform(0.5, 1.0)),
                                     sign=float(rng.choice([-1.0, 1.0]))))
    return distractors


def source_window(basin: Basin, recipe: SimulationRecipe) -> Optional[Window]:
    """The block of the scene where a source is not negligible (None if it misses the scene)."""
    reach = basin.reach_m()
    p = recipe.pixel_size_m
    col0 = max(0, int(math.floor((basin.x_m - reach) / p)))
    col1 = min(recipe.cols, int(math.ceil((basin.x_m + reach) / p)))
    row0 = max(0, int(math.floor((basin.y_m - reach) / p)))
    row1 = min(recipe.rows, int(math.ceil((basin.y_m + reach) / p)))
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def add_sources(target: np.ndarray, sources: Sequence[Basin], recipe: SimulationRecipe,
                label_fraction: Optional[float] = None) -> List[InstanceMask]:
    """Add each source's LOS field to ``target`` (mm) inside its window; footprints if asked.

    A footprint is where the source's own field reaches ``label_fraction`` of its depth: the
    same truth makes the instance masks, the boxes and the semantic mask.
    """
    instances = []
    for source in sources:
        window = source_window(source, recipe)
        if window is None:
            instances.append(InstanceMask(Window(0, 0, 0, 0), np.zeros((0, 0), dtype=bool)))
            continue
        x, y = grid_coordinates(window.height, window.width, recipe.pixel_size_m, window.row, window.col)
        shape = source.shape(x, y)
        target[window.slices] += (source.sign * source.depth_mm * shape).astype(np.float32)
        if label_fraction is not None:
            instances.append(InstanceMask(window, shape >= label_fraction))
    return instances


def simulate_interferogram(
    recipe: SimulationRecipe,
    rng: np.random.Generator,
    gacos_pair_mm: Optional[np.ndarray] = None,
    dem_m: Optional[np.ndarray] = None,
    basins: Optional[List[Basin]] = None,
    distractors: Optional[List[Basin]] = None,
) -> SimulatedInterferogram:
    """One scene. ``gacos_pair_mm``: ZTD₁ − ZTD₂ already on the scene grid (zenith, mm) replaces
    the simulated atmosphere; ``dem_m`` (heights on the scene grid) drives the stratified delay;
    ``basins``/``distractors`` fix the sources instead of drawing them."""
    recipe.check()
    shape = (recipe.rows, recipe.cols)
    p = recipe.pixel_size_m
    if basins is None:
        basins = draw_basins(recipe, rng)
    if distractors is None:
        distractors = draw_distractors(recipe, rng)

    deformation = np.zeros(shape, dtype=np.float32)
    instances = add_sources(deformation, basins, recipe, recipe.label_fraction)
    kept = [(b, i) for b, i in zip(basins, instances) if i.pixel_count > 0]
    basins, instances = [b for b, _ in kept], [i for _, i in kept]
    other = np.zeros(shape, dtype=np.float32)
    add_sources(other, distractors, recipe)

    cos_incidence = math.cos(math.radians(recipe.incidence_deg))
    if gacos_pair_mm is not None:
        if gacos_pair_mm.shape != shape:
            raise MineSARError(f"GACOS delay difference is {gacos_pair_mm.shape}, the scene {shape}.")
        # Zenith delay to slant range, a longer path reading as motion away from the radar.
        atmosphere = -(gacos_pair_mm / cos_incidence).astype(np.float32)
        atmosphere_source = "GACOS"
    else:
        atmosphere = np.zeros(shape, dtype=np.float32)
        if recipe.atmosphere_mm > 0:
            rms = recipe.atmosphere_mm * float(rng.uniform(0.2, 1.0))
            atmosphere += rms * power_law_screen(shape, p, rng, recipe.turbulence_slope)
        if recipe.stratified_mm_per_km > 0:
            heights = dem_m if dem_m is not None else simulated_dem(shape, p, rng, recipe.dem_relief_m)
            if heights.shape != shape:
                raise MineSARError(f"DEM block is {heights.shape}, the scene {shape}.")
            coefficient = recipe.stratified_mm_per_km * float(rng.uniform(-1.0, 1.0))
            atmosphere += stratified_delay_mm(np.nan_to_num(heights, nan=float(np.nanmean(heights))), coefficient)
        atmosphere_source = "simulated"
    if recipe.ramp_share > 0 and rng.random() < recipe.ramp_share:
        gradient = rng.uniform(-1.0, 1.0, size=2) * recipe.ramp_mm_per_km
        other += ramp_mm(shape, p, (float(gradient[0]), float(gradient[1])))

    clean_phase = phase_from_los_mm(deformation + other + atmosphere, recipe.wavelength_m)
    coherence = _coherence(recipe, rng, basins, instances, clean_phase)
    noise = _noise(recipe, rng, coherence)
    return SimulatedInterferogram(
        phase=wrap((clean_phase + noise).astype(np.float32)),
        deformation_mm=deformation,
        distractors_mm=other,
        atmosphere_mm=atmosphere,
        coherence=coherence,
        basins=basins,
        instances=instances,
        distractors=list(distractors),
        atmosphere_source=atmosphere_source,
    )


def _coherence(recipe, rng, basins, instances, clean_phase) -> np.ndarray:
    low, high = recipe.coherence
    shape = clean_phase.shape
    if high - low <= 0:
        coherence = np.full(shape, low, dtype=np.float32)
    else:
        # A smooth field spread over the range, its level shifted per scene (wet fields, dry hills).
        field_ = power_law_screen(shape, recipe.pixel_size_m, rng, slope=-3.0)
        level = float(rng.uniform(-1.0, 1.0))
        coherence = (low + (high - low) * ndtr(1.2 * field_ + level)).astype(np.float32)
    if high > 0:
        steepness = phase_gradient(clean_phase) / ALIASING_GRADIENT
        coherence *= np.exp(-(steepness**2)).astype(np.float32)
        for basin, instance in zip(basins, instances):
            if basin.depth_mm > recipe.wavelength_m * 1000.0 and rng.random() < recipe.decorrelated_centre_share:
                x, y = grid_coordinates(instance.window.height, instance.window.width, recipe.pixel_size_m,
                                        instance.window.row, instance.window.col)
                centre = basin.shape(x, y) >= float(rng.uniform(0.5, 0.8))
                block = coherence[instance.window.slices]
                block[centre] = np.minimum(block[centre], float(rng.uniform(0.0, 0.15)))
    return coherence


def _noise(recipe, rng, coherence) -> np.ndarray:
    rows, _ = coherence.shape
    noise = np.zeros_like(coherence)
    if float(coherence.min()) < 1.0:
        seed = int(rng.integers(2**62))
        for row in range(0, rows, NOISE_STRIP_ROWS):
            strip_rng = np.random.default_rng([seed, row])
            block = slice(row, row + NOISE_STRIP_ROWS)
            noise[block] = decorrelation_noise(coherence[block], recipe.looks, strip_rng)
    if recipe.uniform_noise_rad > 0:
        half_width = recipe.uniform_noise_rad * float(rng.uniform(0.0, 1.0))
        noise += rng.uniform(-half_width, half_width, size=coherence.shape).astype(np.float32)
    return noise
