"""A simulated sequence of interferograms over one mining area, with its truth in time.

Mines with known footprints, active periods and rates deform the ground epoch by epoch; every
pair of epochs is one call of the scene simulator (``simulate_interferogram``) with the mines
active in that pair as its basins, so the physics (phase = −4π/λ·d, coherence, decorrelation
noise for L looks, steep fringes decorrelating) is the simulator's own. What the sequence adds is
consistency in time:

- a mine's LOS displacement is its footprint shape × rate × the days it was active within the
  pair, so displacements add up from pair to pair (no moving face: a panel subsides in place);
- the atmosphere is one zenith delay per epoch (turbulent screen plus a stratified delay over one
  terrain shared by all epochs), and a pair gets the difference of its two epochs' delays, as
  GACOS pairs do (the simulator's ``gacos_pair_mm``), so the delays of a stack close;
- an open-pit mine is dug and dumped between passes: inside its decorrelation zone the phase is
  uniform noise and the coherence near 0 in every pair.

Outputs: the consecutive wrapped interferograms (epoch i → i+1, named YYYYMMDD_YYYYMMDD.tif with
the importer's metadata) in which only the mines active in that interval deform; a small-baseline
stack (each epoch to the next ``pair_span`` epochs) of unwrapped phase — the true phase plus the
pair's noise as an ideal unwrapper would leave it — with its coherence rasters; pixels whose
coherence is below ``mask_coherence`` (the pit) are no data (NaN) in both, as processors mask
them; the true LOS velocity (the least-squares line of the true series, as the SBAS inversion
fits it); and the mines' truth: footprint, active period, surface-activity class (core.activity's
classes of the share of the monitored period) and mine-activity class (core.activity's mine
classes of the true velocity).

Not simulated: orbital ramps (they would be per epoch, not per pair), non-mining signals, a mine
whose footprint moves during the period, unwrapping errors.
"""
import math
import os
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..activity import activity_class, classify_velocity, decide_class
from ..sbas import decimal_years, velocity_fit
from ..errors import MineSARError
from ..io.colours import wrap
from ..io.interferogram import InterferogramMetadata
from ..io.products import SENTINEL1_WAVELENGTH_M
from ..io.rasters import epsg_wkt
from ..progress import SILENT, Progress
from .fields import (
    Basin,
    grid_coordinates,
    phase_from_los_mm,
    power_law_screen,
    simulated_dem,
    stratified_delay_mm,
)
from .generate import _ORIGIN, SIMULATION_EPSG, _to_map, _write_array
from .interferograms import SimulationRecipe, simulate_interferogram, source_window

FIRST_DATE = date(2021, 1, 4)
# A mine is laid out in a cell of the scene this wide at least: its footprint (≤ 2 km), the
# 500 m buffer mine activity looks into, and stable ground between mines.
MIN_CELL_M = 3200.0
_SEQUENCE_TAG = "minesar:simulatesequence"


@dataclass
class SequenceRecipe:
    rows: int = 384
    cols: int = 512
    pixel_size_m: float = 30.0
    epochs: int = 12
    interval_days: int = 48
    first_date: date = FIRST_DATE
    pair_span: int = 2  # each epoch is paired with the next pair_span epochs in the stack
    atmosphere_mm: float = 1.0  # turbulent zenith delay RMS of one epoch
    stratified_mm_per_km: float = 5.0
    dem_relief_m: float = 300.0
    coherence: Tuple[float, float] = (0.4, 0.95)
    looks: int = 10
    uniform_noise_rad: float = 0.3
    wavelength_m: float = SENTINEL1_WAVELENGTH_M
    incidence_deg: float = 39.0
    label_fraction: float = 0.1
    mask_coherence: float = 0.1

    @property
    def dates(self) -> List[date]:
        return [self.first_date + timedelta(days=self.interval_days * k) for k in range(self.epochs)]

    @property
    def intervals(self) -> int:
        return self.epochs - 1

    @property
    def monitored_days(self) -> int:
        return self.intervals * self.interval_days

    def pairs(self) -> List[Tuple[int, int]]:
        """Stack pairs (i, j), i < j ≤ i + pair_span, ordered by first epoch then span."""
        return [(i, j) for i in range(self.epochs) for j in range(i + 1, min(self.epochs, i + self.pair_span + 1))]

    def scene_recipe(self) -> SimulationRecipe:
        """The scene simulator's recipe for one pair: the sequence's own noise, no drawn sources,
        no ramps, every mine centre kept coherent (the velocity there is part of the truth)."""
        return SimulationRecipe(
            rows=self.rows, cols=self.cols, pixel_size_m=self.pixel_size_m, wavelength_m=self.wavelength_m,
            incidence_deg=self.incidence_deg, coherence=tuple(self.coherence), looks=self.looks,
            uniform_noise_rad=self.uniform_noise_rad, decorrelated_centre_share=0.0, ramp_share=0.0,
            distractor_share=0.0, atmosphere_mm=0.0, stratified_mm_per_km=0.0, label_fraction=self.label_fraction,
        )

    def check(self) -> None:
        problems = []
        if self.epochs < 4:
            problems.append(f"{self.epochs} epochs: the mines' activity needs at least 4")
        if self.interval_days < 1:
            problems.append("the interval between epochs must be at least one day")
        if self.pair_span < 1:
            problems.append("each epoch must be paired with at least the next one")
        width_m, height_m = self.cols * self.pixel_size_m, self.rows * self.pixel_size_m
        if width_m < 3 * MIN_CELL_M or height_m < 2 * MIN_CELL_M:
            problems.append(
                f"the scene is {width_m / 1000:.1f} × {height_m / 1000:.1f} km; six mines need at least "
                f"{3 * MIN_CELL_M / 1000:.1f} × {2 * MIN_CELL_M / 1000:.1f} km "
                f"({math.ceil(3 * MIN_CELL_M / self.pixel_size_m)} × {math.ceil(2 * MIN_CELL_M / self.pixel_size_m)} "
                f"pixels of {self.pixel_size_m:g} m)")
        if not 0 <= self.mask_coherence < 1:
            problems.append("the unwrapping mask's coherence must lie within 0–1")
        if self.atmosphere_mm < 0 or self.stratified_mm_per_km < 0:
            problems.append("atmosphere strengths cannot be negative")
        if problems:
            raise MineSARError("Sequence simulation: " + "; ".join(problems) + ".")
        self.scene_recipe().check()


@dataclass(frozen=True)
class Mine:
    """A mine: where it deforms (``source``: the shape of a simulator Basin, its depth unused),
    how fast (LOS mm/day, negative = subsidence) and when (from epoch ``start`` to epoch ``end``;
    None = it never moves). ``decorrelated``: an open pit, incoherent in every pair."""

    name: str
    kind: str
    source: Basin
    rate_mm_per_day: float = 0.0
    start: Optional[int] = None
    end: Optional[int] = None
    decorrelated: bool = False

    def active_days_between(self, recipe: SequenceRecipe, i: int, j: int) -> int:
        """Days of activity between epochs i < j."""
        if self.start is None or self.end is None:
            return 0
        return max(0, min(j, self.end) - max(i, self.start)) * recipe.interval_days

    def displacement_mm(self, recipe: SequenceRecipe, i: int, j: int) -> float:
        """Signed LOS displacement at the deepest point from epoch i to epoch j."""
        return self.rate_mm_per_day * self.active_days_between(recipe, i, j)

    def subsides(self) -> bool:
        return self.rate_mm_per_day < 0 and self.start is not None and self.end is not None and self.end > self.start


def default_mines(recipe: SequenceRecipe) -> List[Mine]:
    """Six mines laid out on a 3 × 2 grid of the scene: three subsiding (all the period, about
    a quarter of it early, one interval late: strong, moderate and weak surface activity from 8
    epochs on),
    an open pit (decorrelated), a closed mine rising as the groundwater returns (positive) and a
    dormant one (none)."""
    n = recipe.intervals
    width_m, height_m = recipe.cols * recipe.pixel_size_m, recipe.rows * recipe.pixel_size_m

    def centre(column, row):
        return (column + 0.5) * width_m / 3.0, (row + 0.5) * height_m / 2.0

    def pim(column, row, half_length, half_width, radius, angle_deg):
        x, y = centre(column, row)
        return Basin("pim", x, y, 1.0, math.radians(angle_deg), half_length_m=half_length, half_width_m=half_width,
                     radius_m=radius)

    def gaussian(column, row, sigma_x, sigma_y, angle_deg):
        x, y = centre(column, row)
        return Basin("gaussian", x, y, 1.0, math.radians(angle_deg), sigma_x_m=sigma_x, sigma_y_m=sigma_y)

    # About 23 % of the period: the middle of core.activity's moderate class (15.3–30.6 %).
    early = min(1 + max(1, round(0.23 * n)), n - 1)
    return [
        Mine("M1", "longwall panel", pim(0, 0, 450.0, 160.0, 300.0, 30.0), -0.7, 0, n),
        Mine("M2", "room and pillar", gaussian(1, 0, 380.0, 280.0, 120.0), -1.0, 1, early),
        Mine("M3", "longwall panel", pim(2, 0, 350.0, 140.0, 280.0, 75.0), -1.4, n - 2, n - 1),
        Mine("M4", "open pit", gaussian(0, 1, 380.0, 300.0, 10.0), 0.0, None, None, decorrelated=True),
        Mine("M5", "closed, groundwater rebound", gaussian(1, 1, 500.0, 400.0, 60.0), 0.12, 0, n),
        Mine("M6", "dormant", gaussian(2, 1, 350.0, 300.0, 150.0)),
    ]


@dataclass
class MineTruth:
    name: str
    kind: str
    footprint: object  # shapely (Multi)Polygon in map coordinates
    rate_mm_per_day: float
    first_date: Optional[date]
    last_date: Optional[date]
    active_days: int
    share_percent: float
    surface_class: Optional[str]  # core.activity's weak/moderate/strong, None when it never subsides
    velocity_mm_yr: float  # the true LOS velocity at its deepest point (least-squares line)
    activity_class: str  # core.activity's mine classes: positive, negative, none, decorrelated
    active_intervals: List[int] = field(default_factory=list)


@dataclass
class SequenceResult:
    dates: List[date]
    interferograms: List[str]  # consecutive wrapped pairs, epoch k → k+1
    unwrapped: List[str]
    coherence: List[str]
    pairs: List[Tuple[int, int]]
    true_velocity: str
    mines: List[MineTruth]
    geotransform: Tuple[float, ...]
    crs_wkt: str
    reference_xy: Tuple[float, float]  # stable ground for the SBAS reference


def pair_name(dates: Sequence[date], i: int, j: int) -> str:
    return f"{dates[i]:%Y%m%d}_{dates[j]:%Y%m%d}"


def mine_truth(recipe: SequenceRecipe, mines: Sequence[Mine], geotransform) -> List[MineTruth]:
    dates = recipe.dates
    years = decimal_years(dates)
    scene = recipe.scene_recipe()
    truths = []
    for mine in mines:
        series = np.array([mine.displacement_mm(recipe, 0, k) for k in range(recipe.epochs)])
        velocity = float(velocity_fit(years, series[:, None])[0][0])  # the line SBAS fits
        active = [k for k in range(recipe.intervals) if mine.active_days_between(recipe, k, k + 1) > 0]
        subsides = mine.subsides()
        days = len(active) * recipe.interval_days if subsides else 0
        share = 100.0 * days / recipe.monitored_days
        if mine.decorrelated:
            truth_class = "decorrelated"
        else:  # mine activity's own rule, on a patch whose every pixel moves at the true velocity
            truth_class = decide_class(np.array([velocity]), classify_velocity(np.array([velocity]), None))
        window = source_window(mine.source, scene)
        x, y = grid_coordinates(window.height, window.width, recipe.pixel_size_m, window.row, window.col)
        footprint = _to_map(mine.source.shape(x, y) >= recipe.label_fraction, window, geotransform)
        truths.append(MineTruth(
            mine.name, mine.kind, footprint, mine.rate_mm_per_day,
            dates[mine.start] if subsides else None, dates[mine.end] if subsides else None, days, share,
            activity_class(share) if subsides else None, velocity, truth_class, active if subsides else []))
    return truths


def reference_point(recipe: SequenceRecipe, mines: Sequence[Mine], geotransform,
                    mean_coherence: Optional[np.ndarray] = None) -> Tuple[float, float]:
    """A reference for the SBAS inversion as an analyst picks one: beyond the reach of every mine
    (and 10 pixels in from the scene's edge), the most coherent pixel over the stack; without
    coherence, the point farthest from the mines. A reference's noise goes into every pixel's
    series, and the inversion's own choice, the most coherent pixel anywhere, may lie on a mine's
    smooth flank."""
    margin = 10
    rows = np.arange(margin, recipe.rows - margin)
    cols = np.arange(margin, recipe.cols - margin)
    y = (rows[:, None] + 0.5) * recipe.pixel_size_m
    x = (cols[None, :] + 0.5) * recipe.pixel_size_m
    clearance = np.full((rows.size, cols.size), np.inf)
    for mine in mines:
        reach = mine.source.reach_m() + (500.0 if mine.decorrelated else 0.0)
        clearance = np.minimum(clearance, np.hypot(x - mine.source.x_m, y - mine.source.y_m) - reach)
    score = clearance
    if mean_coherence is not None and (clearance > 0).any():
        score = np.where(clearance > 0, mean_coherence[margin:recipe.rows - margin, margin:recipe.cols - margin],
                         -np.inf)
    row, col = np.unravel_index(int(np.argmax(score)), score.shape)
    return (geotransform[0] + (cols[col] + 0.5) * geotransform[1],
            geotransform[3] + (rows[row] + 0.5) * geotransform[5])


def _shape_field(mine: Mine, recipe: SimulationRecipe) -> np.ndarray:
    out = np.zeros((recipe.rows, recipe.cols), dtype=np.float32)
    window = source_window(mine.source, recipe)
    if window is not None:
        x, y = grid_coordinates(window.height, window.width, recipe.pixel_size_m, window.row, window.col)
        out[window.slices] = mine.source.shape(x, y)
    return out


def _tags(recipe: SequenceRecipe, kind: str, date1: date, date2: date, seed: int) -> dict:
    meta = InterferogramMetadata(kind, "simulated", "MineSAR simulation")
    meta.date1, meta.date2 = date1, date2
    meta.wavelength_m = recipe.wavelength_m
    meta.wavelength_source = "simulation recipe"
    meta.incidence_deg = recipe.incidence_deg
    meta.extra = {"MINESAR_SIMULATION_SEED": str(seed), "MINESAR_SIMULATION": _SEQUENCE_TAG}
    return meta.to_tags()


def simulate_sequence(
    folder: str,
    recipe: SequenceRecipe,
    seed: int,
    mines: Optional[Sequence[Mine]] = None,
    origin: Tuple[float, float] = _ORIGIN,
    crs_wkt: Optional[str] = None,
    progress: Progress = SILENT,
) -> SequenceResult:
    """Write the sequence into ``folder``: interferograms/ (wrapped, consecutive), stack/
    (unwrapped pairs and their coherence), truth/ (true LOS velocity, mm/yr); return the paths
    and the mines' truth."""
    recipe.check()
    mines = list(default_mines(recipe) if mines is None else mines)
    if not mines:
        raise MineSARError("Sequence simulation: no mines given.")
    for mine in mines:
        if mine.start is not None and not (0 <= mine.start < (mine.end or 0) <= recipe.intervals):
            raise MineSARError(f"Mine {mine.name}: active from epoch {mine.start} to {mine.end}, outside the "
                               f"{recipe.epochs} epochs.")
    crs_wkt = crs_wkt or epsg_wkt(SIMULATION_EPSG)
    geotransform = (origin[0], recipe.pixel_size_m, 0.0, origin[1], 0.0, -recipe.pixel_size_m)
    scene = recipe.scene_recipe()
    dates = recipe.dates
    shape = (recipe.rows, recipe.cols)
    pairs = recipe.pairs()
    folders = {name: os.path.join(folder, name) for name in ("interferograms", "stack", "truth")}
    for path in folders.values():
        os.makedirs(path, exist_ok=True)

    # One zenith delay per epoch over one terrain: pair delays are differences, so they close.
    terrain_rng = np.random.default_rng([seed, 0])
    terrain = simulated_dem(shape, recipe.pixel_size_m, terrain_rng, recipe.dem_relief_m)
    delays = []
    for k in range(recipe.epochs):
        rng = np.random.default_rng([seed, 1, k])
        delay = np.zeros(shape, dtype=np.float32)
        if recipe.atmosphere_mm > 0:
            delay += recipe.atmosphere_mm * power_law_screen(shape, recipe.pixel_size_m, rng)
        if recipe.stratified_mm_per_km > 0:
            delay += stratified_delay_mm(terrain, recipe.stratified_mm_per_km * float(rng.uniform(-1.0, 1.0)))
        delays.append(delay)
        progress.update(0.1 * (k + 1) / recipe.epochs)
    pits = np.zeros(shape, dtype=bool)
    for mine in mines:
        if mine.decorrelated:
            # The pit, its dumps and haul roads: down to 1 % of the footprint's shape.
            pits |= _shape_field(mine, scene) >= 0.01

    interferograms, unwrapped, coherences = [], [], []
    coherence_sum = np.zeros(shape, dtype=np.float64)
    for number, (i, j) in enumerate(pairs):
        progress.check_cancelled()
        rng = np.random.default_rng([seed, 2, i, j])
        basins = []
        for mine in mines:
            displacement = mine.displacement_mm(recipe, i, j)
            if displacement:
                basins.append(replace(mine.source, depth_mm=abs(displacement), sign=math.copysign(1.0, displacement)))
        simulated = simulate_interferogram(scene, rng, gacos_pair_mm=delays[i] - delays[j], basins=basins,
                                           distractors=[])
        phase, coherence = simulated.phase, simulated.coherence
        if pits.any():
            phase[pits] = rng.uniform(-math.pi, math.pi, int(pits.sum())).astype(np.float32)
            coherence[pits] = rng.uniform(0.0, 0.08, int(pits.sum())).astype(np.float32)
        clean = phase_from_los_mm(simulated.deformation_mm + simulated.distractors_mm + simulated.atmosphere_mm,
                                  recipe.wavelength_m).astype(np.float32)
        # An ideal unwrapper: the true phase plus the pair's noise folded into (−π, π].
        unwrapped_phase = clean + wrap(phase - clean)
        coherence_sum += coherence
        masked = coherence < recipe.mask_coherence
        unwrapped_phase[masked] = np.nan
        phase[masked] = np.nan
        name = pair_name(dates, i, j)
        if j == i + 1:
            path = os.path.join(folders["interferograms"], f"{name}.tif")
            _write_array(path, phase, geotransform, crs_wkt, _tags(recipe, "wrapped", dates[i], dates[j], seed),
                         "wrapped phase (rad)", SILENT)
            interferograms.append(path)
        path = os.path.join(folders["stack"], f"{name}_unw.tif")
        _write_array(path, unwrapped_phase, geotransform, crs_wkt,
                     _tags(recipe, "unwrapped", dates[i], dates[j], seed), "unwrapped phase (rad)", SILENT)
        unwrapped.append(path)
        path = os.path.join(folders["stack"], f"{name}_coh.tif")
        _write_array(path, coherence, geotransform, crs_wkt, _tags(recipe, "coherence", dates[i], dates[j], seed),
                     "coherence", SILENT)
        coherences.append(path)
        progress.update(0.1 + 0.85 * (number + 1) / len(pairs))

    truths = mine_truth(recipe, mines, geotransform)
    velocity = np.zeros(shape, dtype=np.float32)
    for mine, truth in zip(mines, truths):
        if truth.velocity_mm_yr and not mine.decorrelated:
            velocity += np.float32(truth.velocity_mm_yr) * _shape_field(mine, scene)
    velocity_path = os.path.join(folders["truth"], "true_velocity.tif")
    _write_array(velocity_path, velocity, geotransform, crs_wkt,
                 {"UNITS": "mm/yr", "MINESAR_QUANTITY": "true LOS velocity", "MINESAR_SIMULATION": _SEQUENCE_TAG},
                 "true LOS velocity (mm/yr)", SILENT)
    progress.finish()
    return SequenceResult(dates, interferograms, unwrapped, coherences, pairs, velocity_path, truths, geotransform,
                          crs_wkt, reference_point(recipe, mines, geotransform, coherence_sum / len(pairs)))
