"""Simulated training datasets (many small images) and demo scenes (one large image + truth).

Image i draws from its own generator, seeded by (seed, i), so a dataset is identical whatever
the number of worker threads, and image i is the same in a dataset of 10 or of 10,000.
"""
import concurrent.futures
import os
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import List, Optional, Sequence, Tuple

import numpy as np
import scipy.fft
from shapely.geometry import Polygon
from shapely.ops import unary_union

from ..dataset.layout import DatasetWriter, Sample, mask_polygons
from ..errors import MineSARError
from ..io.interferogram import InterferogramMetadata
from ..io.rasters import AtomicGeoTiff, epsg_wkt, rows_per_strip, strip_windows
from ..progress import SILENT, Progress
from .auxiliary import DemPool, GacosPool
from .fields import Basin
from .interferograms import SimulatedInterferogram, SimulationRecipe, simulate_interferogram

SIMULATION_EPSG = 32649  # UTM 49N: the Shanxi coal fields of seed 001
_ORIGIN = (300_000.0, 4_100_000.0)
_FIRST_DATE = date(2021, 1, 1)
_REVISIT_DAYS = 12
_MAX_SCENE_PIXELS = 100_000_000


@dataclass
class SimulatedImage:
    index: int
    scene: SimulatedInterferogram
    gacos_pair: Optional[Tuple[str, str]]


def simulate_one(recipe: SimulationRecipe, seed: int, index: int, gacos: Optional[GacosPool] = None,
                 dem: Optional[DemPool] = None) -> SimulatedImage:
    rng = np.random.default_rng([seed, index])
    pair_mm, pair = None, None
    if gacos is not None:
        pair_mm, pair = gacos.pair_difference_mm(rng, recipe.rows, recipe.cols, recipe.pixel_size_m)
    heights = dem.heights(rng, recipe.rows, recipe.cols, recipe.pixel_size_m) if dem is not None else None
    scene = simulate_interferogram(recipe, rng, gacos_pair_mm=pair_mm, dem_m=heights)
    return SimulatedImage(index, scene, pair)


def image_geotransform(recipe: SimulationRecipe, index: int) -> Tuple[float, ...]:
    """Images sit side by side on a UTM grid (50 per row, 1 km apart), each at its own place."""
    step_x = recipe.cols * recipe.pixel_size_m + 1000.0
    step_y = recipe.rows * recipe.pixel_size_m + 1000.0
    x0 = _ORIGIN[0] + (index % 50) * step_x
    y0 = _ORIGIN[1] - (index // 50) * step_y
    return (x0, recipe.pixel_size_m, 0.0, y0, 0.0, -recipe.pixel_size_m)


def simulated_tags(recipe: SimulationRecipe, index: int, seed: int, atmosphere: str) -> dict:
    meta = InterferogramMetadata("wrapped", "simulated", "MineSAR simulation")
    meta.date1 = _FIRST_DATE + timedelta(days=_REVISIT_DAYS * index)
    meta.date2 = meta.date1 + timedelta(days=_REVISIT_DAYS)
    meta.wavelength_m = recipe.wavelength_m
    meta.wavelength_source = "simulation recipe"
    meta.incidence_deg = recipe.incidence_deg
    meta.extra = {"MINESAR_SIMULATION_SEED": str(seed), "MINESAR_SIMULATION_INDEX": str(index),
                  "MINESAR_ATMOSPHERE": atmosphere}
    return meta.to_tags()


def basin_attributes(basin: Basin) -> dict:
    """What a label carries besides its shape: lets evaluation select e.g. basins ≥ 8 mm."""
    return {"kind": basin.kind, "depth_mm": round(basin.depth_mm, 3)}


def simulate_dataset(
    folder: str,
    recipe: SimulationRecipe,
    count: int,
    seed: int,
    rgb: bool = False,
    gacos_paths: Sequence[str] = (),
    dem_path: Optional[str] = None,
    split_fractions: Optional[dict] = None,
    progress: Progress = SILENT,
    workers: int = 0,
) -> dict:
    """Write ``count`` simulated images with their labels into a dataset folder; return dataset.json."""
    recipe.check()
    if count < 1:
        raise MineSARError("The number of images to simulate must be at least 1.")
    gacos = GacosPool(list(gacos_paths)) if gacos_paths else None
    dem = DemPool(dem_path) if dem_path else None
    description = {
        "title": "MineSAR simulated wrapped interferograms",
        "source": "simulated",
        "created_by": "minesar:simulateinterferograms",
        "seed": seed,
        "recipe": asdict(recipe),
        "gacos": list(gacos_paths),
        "dem": dem_path,
        "pixel_size_m": recipe.pixel_size_m,
        "wavelength_m": recipe.wavelength_m,
        "crs": f"EPSG:{SIMULATION_EPSG}",
    }
    crs_wkt = epsg_wkt(SIMULATION_EPSG)
    workers = workers or min(4, os.cpu_count() or 1)
    batch = max(8, 4 * workers)
    with DatasetWriter(folder, description, split_seed=seed, split_fractions=split_fractions, rgb=rgb) as writer:
        # Threads: the FFTs and the noise draws release the GIL, the writing stays in order here.
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            for start in range(0, count, batch):
                progress.check_cancelled()
                indices = range(start, min(count, start + batch))
                for image in pool.map(lambda i: simulate_one(recipe, seed, i, gacos, dem), indices):
                    writer.add(_sample(recipe, seed, image, crs_wkt))
                progress.update(min(count, start + batch) / count)
    return writer.description


def _sample(recipe: SimulationRecipe, seed: int, image: SimulatedImage, crs_wkt: str) -> Sample:
    scene = image.scene
    rows, cols = scene.phase.shape
    attributes = {"atmosphere": scene.atmosphere_source,
                  "distractors": [d.kind for d in scene.distractors]}
    if image.gacos_pair:
        attributes["gacos_pair"] = [os.path.basename(p) for p in image.gacos_pair]
    name = f"sim_{image.index:06d}"
    return Sample(
        name=name,
        phase=scene.phase,
        instances=[instance.full(rows, cols) for instance in scene.instances],
        instance_attributes=[basin_attributes(b) for b in scene.basins],
        group=name,
        geotransform=image_geotransform(recipe, image.index),
        crs_wkt=crs_wkt,
        tags=simulated_tags(recipe, image.index, seed, scene.atmosphere_source),
        attributes=attributes,
        brightness=scene.coherence,
    )


@dataclass
class TruthPolygon:
    """A source's footprint in map coordinates, for the scene's truth layer."""

    identifier: int
    kind: str
    label: str  # "mining" or "background"
    depth_mm: float
    geometry: object  # shapely (Multi)Polygon


def simulate_scene(
    path: str,
    recipe: SimulationRecipe,
    seed: int,
    origin: Tuple[float, float] = _ORIGIN,
    crs_wkt: Optional[str] = None,
    gacos_paths: Sequence[str] = (),
    dem_path: Optional[str] = None,
    coherence_path: Optional[str] = None,
    deformation_path: Optional[str] = None,
    progress: Progress = SILENT,
) -> Tuple[SimulatedInterferogram, List[TruthPolygon], Tuple[float, ...], str]:
    """One large interferogram (GeoTIFF at ``path``) and the truth polygons of its sources.

    Mining footprints are the labelled masks; distractors get their footprint at the same
    fraction of their own depth and the label "background".
    """
    recipe.check()
    if recipe.rows * recipe.cols > _MAX_SCENE_PIXELS:
        raise MineSARError(f"A simulated scene of {recipe.cols} × {recipe.rows} is above "
                           f"{_MAX_SCENE_PIXELS:,} pixels; simulate several smaller ones.")
    crs_wkt = crs_wkt or epsg_wkt(SIMULATION_EPSG)
    gacos = GacosPool(list(gacos_paths)) if gacos_paths else None
    dem = DemPool(dem_path) if dem_path else None
    progress.update(0.0)
    with scipy.fft.set_workers(-1):  # one large scene: its FFTs may use every core
        image = simulate_one(recipe, seed, 0, gacos, dem)
    progress.check_cancelled()
    progress.update(0.6)
    scene = image.scene
    geotransform = (origin[0], recipe.pixel_size_m, 0.0, origin[1], 0.0, -recipe.pixel_size_m)
    tags = simulated_tags(recipe, 0, seed, scene.atmosphere_source)
    outputs = [(path, scene.phase, tags, "wrapped phase (rad)")]
    if coherence_path:
        outputs.append((coherence_path, scene.coherence, {"MINESAR_KIND": "coherence", "UNITS": "coherence (0-1)"},
                        "coherence"))
    if deformation_path:
        outputs.append((deformation_path, scene.deformation_mm, {"UNITS": "mm", "MINESAR_QUANTITY": "LOS displacement"},
                        "mining LOS displacement (mm)"))
    for index, (target, array, target_tags, description) in enumerate(outputs):
        _write_array(target, array, geotransform, crs_wkt, target_tags, description, progress.span(
            0.6 + 0.3 * index / len(outputs), 0.6 + 0.3 * (index + 1) / len(outputs)))
    truth = truth_polygons(scene, recipe, geotransform)
    progress.finish()
    return scene, truth, geotransform, crs_wkt


def _write_array(path, array, geotransform, crs_wkt, tags, description, progress):
    rows, cols = array.shape
    with AtomicGeoTiff(path, cols, rows, geotransform=geotransform, crs_wkt=crs_wkt, metadata=tags,
                       band_descriptions=[description]) as output:
        windows = list(strip_windows(cols, rows, rows_per_strip(cols, 4)))
        for number, window in enumerate(windows):
            progress.update(number / len(windows))
            output.write(array[window.slices], window)


def truth_polygons(scene: SimulatedInterferogram, recipe: SimulationRecipe, geotransform) -> List[TruthPolygon]:
    from .interferograms import add_sources

    truth = []
    for number, (basin, instance) in enumerate(zip(scene.basins, scene.instances), start=1):
        truth.append(TruthPolygon(number, basin.kind, "mining", basin.depth_mm,
                                  _to_map(instance.mask, instance.window, geotransform)))
    scratch = np.zeros((recipe.rows, recipe.cols), dtype=np.float32)
    for number, (source, instance) in enumerate(
        zip(scene.distractors, add_sources(scratch, scene.distractors, recipe, recipe.label_fraction)),
        start=len(truth) + 1,
    ):
        if instance.pixel_count:
            truth.append(TruthPolygon(number, source.kind, "background", source.depth_mm,
                                      _to_map(instance.mask, instance.window, geotransform)))
    return truth


def _to_map(mask: np.ndarray, window, geotransform):
    x0, dx, _, y0, _, dy = geotransform
    parts = []
    for ring in mask_polygons(mask):
        parts.append(Polygon([(x0 + (window.col + c) * dx, y0 + (window.row + r) * dy) for c, r in ring]))
    return unary_union(parts)
