#!/usr/bin/env python3
"""Mine-patch boundary refinement on simulated GF-2 scenes, and segmentation speed.

Quality (held-out scenes with known truth, seed 003's workflow):
  1. estimate shape/compactness (grid search) and scale (ESP2) on a training scene;
  2. calibrate p_intsct on the training scenes' reference patches (total area control);
  3. refine the preliminary masks of the held-out scenes with that p_intsct, the land cover
     (WorldCover 40/50/80 dropped) and a 50 m² minimum area, without and with the scene's DEM and
     sun (patches mostly in terrain shadow dropped); score before and after.
Speed: one 4-band 4000 × 4000 scene (a mosaic of 16 simulated 1000² scenes) segmented by
MineSAR's multiresolution segmentation and, when scikit-image is importable, by its felzenszwalb
and SLIC, with boundary recall against the truth patches' outlines (within 2 pixels).

    .venv/bin/python bench/mine_patches.py [--train 3] [--test 8] [--size 1024] [--speed-size 4000]

scikit-image is not a MineSAR dependency. For the side-by-side, run the script from a separate
venv that has it (numpy stays Debian's 1.24):

    /usr/bin/python3 -m venv --system-site-packages .build/bench-venv
    .build/bench-venv/bin/pip install scikit-image==0.22.0 shapely==2.0.7 -c constraints.txt
    .build/bench-venv/bin/python bench/mine_patches.py
"""
import argparse
import os
import sys
import time

import numpy as np
from scipy import ndimage

# This checkout as the package "minesar" (the venv's .pth may point at another checkout).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build", "plugins"))

from minesar.core.segmentation.area_control import (EXCLUDED_LANDCOVER, PAPER_P_INTSCT, SHADOW_ILLUMINATION,
                                                    Overlay, calibrate_p_intsct, refine)
from minesar.core.segmentation.terrain import illumination
from minesar.core.segmentation.mrs import MRSParameters, segment
from minesar.core.segmentation.parameters import estimate_scale, grid_search
from minesar.core.segmentation.scores import Scores, evaluate
from minesar.core.simulation.optical import OpticalRecipe, simulate_optical_scene

try:
    import skimage
    from skimage.segmentation import felzenszwalb, slic
except ImportError:
    skimage = None


def landcover_on_grid(scene):
    factor = scene.landcover_factor
    rows, cols = scene.truth.shape
    return np.kron(scene.landcover, np.ones((factor, factor), dtype=np.uint8))[:rows, :cols]


def pooled(scores_list):
    total = Scores(*(sum(getattr(s, k) for s in scores_list) for k in ("tp", "fp", "fn", "tn")))
    total.patches = [p for s in scores_list for p in s.patches]
    return total


def defects(mask, truth_ids):
    """Truth patches whose extracted cover has a hole, and those covered by two or more pieces (of
    at least 50 pixels of it each)."""
    holes = fragments = 0
    filled = ndimage.binary_fill_holes(mask)
    pieces, _ = ndimage.label(mask)
    for index, region in enumerate(ndimage.find_objects(truth_ids), start=1):
        inside = truth_ids[region] == index
        core = ndimage.binary_erosion(inside, iterations=3)
        holes += int(np.any(core & filled[region] & ~mask[region]))
        # A piece counts when it holds at least the 50 m² minimum patch area of the truth patch: a
        # neighbouring patch touching it by a pixel or two does not break it.
        shares = np.bincount(pieces[region][inside & mask[region]])
        fragments += int(np.count_nonzero(shares[1:] >= 50) >= 2)
    return holes, fragments


def quality(args):
    recipe = OpticalRecipe(rows=args.size, cols=args.size)
    t0 = time.perf_counter()
    train = [simulate_optical_scene(recipe, np.random.default_rng([args.seed, i])) for i in range(args.train)]
    test = [simulate_optical_scene(recipe, np.random.default_rng([args.seed + 1, i])) for i in range(args.test)]
    print(f"simulated {args.train} training and {args.test} held-out {args.size}² scenes in "
          f"{time.perf_counter() - t0:.1f} s")

    # 1. Parameters on a crop of the first training scene around its patches (as the algorithm does).
    scene = train[0]
    truth_ids = ndimage.label(scene.truth > 0)[0]
    rows, cols = np.nonzero(scene.truth)
    r0, r1 = max(0, rows.min() - 50), min(args.size, rows.max() + 50)
    c0, c1 = max(0, cols.min() - 50), min(args.size, cols.max() + 50)
    crop = scene.image[:, r0:r1, c0:c1].astype(np.float64)
    t0 = time.perf_counter()
    grid = (0.1, 0.3, 0.5, 0.7, 0.9)
    searched = grid_search(crop, truth_ids[r0:r1, c0:c1], 50.0, grid, grid)
    esp = estimate_scale(crop, truth_ids[r0:r1, c0:c1], searched.shape, searched.compactness, range(10, 160, 10))
    params = MRSParameters(scale=esp.scale, shape=searched.shape, compactness=searched.compactness)
    print(f"estimated on a {crop.shape[2]}×{crop.shape[1]} crop in {time.perf_counter() - t0:.1f} s: "
          f"shape {params.shape}, compactness {params.compactness}, scale {params.scale:g} "
          f"(ESP2 peaks at {', '.join(f'{s:g}' for s in esp.candidates)})")

    print(f"\nheld-out: {args.test} scenes, {sum(len(s.patches) for s in test)} truth patches")
    print(f"{'':44s} {'F1':>6s} {'kappa':>6s} {'PA':>6s} {'UA':>6s} {'ident.':>7s} {'AS mean':>8s} "
          f"{'F1/scene':>9s} {'holes':>6s} {'frags':>6s} {'FP det.':>8s} {'F1 w/o':>7s}")
    print("(F1, kappa, PA, UA pooled over the scenes' pixels; FP det.: share of false positives in pieces touching "
          "no truth patch; F1 w/o: F1 without them)")
    report("preliminary", [score(scene.preliminary > 0, scene) for scene in test])
    # What the DEM alone does to the first answer: its pieces mostly in shadow dropped, nothing else.
    report("preliminary, shadows dropped", [score(drop_shadowed(scene.preliminary > 0, lit(scene, recipe.pixel_size_m)),
                                                  scene) for scene in test])
    for label, chosen in (("estimated", params), ("fixed", MRSParameters(scale=30.0, shape=0.5, compactness=0.5))):
        refine_held_out(f"{label} {chosen.scale:g}/{chosen.shape:g}/{chosen.compactness:g}", chosen, train, test, recipe)
    return params


def lit(scene, pixel_size=1.0):
    return illumination(scene.dem, (0.0, pixel_size, 0.0, 0.0, 0.0, -pixel_size), scene.sun_azimuth_deg,
                        scene.sun_elevation_deg)


def drop_shadowed(mask, illuminated, threshold=SHADOW_ILLUMINATION):
    pieces, count = ndimage.label(mask)
    dark = np.bincount(pieces.ravel(), weights=(illuminated < threshold).ravel(), minlength=count + 1)
    keep = dark <= 0.5 * np.bincount(pieces.ravel(), minlength=count + 1)
    keep[0] = False
    return keep[pieces]


def truth_patches(scene):
    # 8-connected, as the patch polygons are: a diagonal step is not a patch of its own.
    return ndimage.label(scene.truth > 0, structure=np.ones((3, 3)))[0]


def score(mask, scene):
    truth_ids = truth_patches(scene)
    # False positives in pieces that touch no truth patch: commission errors of the preliminary mask
    # (shadows, pads) that no boundary refinement can remove.
    pieces, count = ndimage.label(mask, structure=np.ones((3, 3)))
    touching = np.zeros(count + 1, dtype=bool)
    touching[np.unique(pieces[truth_ids > 0])] = True
    touching[0] = False
    detached = int(np.sum(mask & ~touching[pieces]))
    return evaluate(mask, truth_ids), defects(mask, truth_ids), detached


def report(name, results):
    total = pooled([r[0] for r in results])
    per_scene = np.mean([r[0].f1 for r in results])
    holes, fragments = sum(r[1][0] for r in results), sum(r[1][1] for r in results)
    detached = sum(r[2] for r in results)
    without = 2 * total.tp / (2 * total.tp + total.fp - detached + total.fn)
    print(f"{name:44s} {total.f1:6.3f} {total.kappa:6.3f} {total.producers_accuracy:6.3f} "
          f"{total.users_accuracy:6.3f} {total.identification_rate:7.3f} {total.mean_area_similarity:8.3f} "
          f"{per_scene:9.3f} {holes:6d} {fragments:6d} {detached / max(total.fp, 1):8.2f} {without:7.3f}")


def refine_held_out(label, params, train, test, recipe):
    """p_intsct calibrated on the training scenes' references, then applied to the held-out scenes."""
    overlays, touching, reference_area = [], [], 0.0
    for scene in train:
        labels = segment(scene.image, params).labels
        overlays.append(Overlay.of(labels, scene.preliminary))
        touching.append(np.bincount(labels[scene.truth > 0], minlength=labels.max() + 1) > 0)
        reference_area += float((scene.truth > 0).sum())
    joined = Overlay(np.concatenate([o.segment_area for o in overlays]),
                     np.concatenate([o.intersect_area for o in overlays]))
    p_values = {mode: calibrate_p_intsct(joined, np.concatenate(touching), reference_area, mode).p_intsct
                for mode in ("intersection", "segment")}
    t0 = time.perf_counter()
    segmentations = [segment(scene.image, params) for scene in test]
    seconds = (time.perf_counter() - t0) / len(test)
    violations, smallest = 0, float("inf")
    illuminations = [lit(scene, recipe.pixel_size_m) for scene in test]
    for name, p, dem in ((f"p={p_values['segment']:.3f} (Σ segment)", p_values["segment"], False),
                         (f"p={p_values['segment']:.3f} (Σ segment) + DEM", p_values["segment"], True),
                         (f"p={p_values['intersection']:.3f} (ΣA_intsct)", p_values["intersection"], False),
                         (f"p={PAPER_P_INTSCT} (paper)", PAPER_P_INTSCT, False),
                         (f"p={PAPER_P_INTSCT} (paper) + DEM", PAPER_P_INTSCT, True)):
        results = []
        for scene, segmentation, illuminated in zip(test, segmentations, illuminations):
            labels = segmentation.labels
            cover = landcover_on_grid(scene)
            result = refine(labels, scene.preliminary, p, recipe.pixel_size_m**2, cover, EXCLUDED_LANDCOVER, 50.0,
                            segmentation=segmentation, illumination=illuminated if dem else None)
            results.append(score(result.mask, scene))
            # Land cover and minimum area act as specified: no kept segment touches 40/50/80 …
            kept = np.unique(labels[result.mask])
            excluded = np.unique(labels[np.isin(cover, EXCLUDED_LANDCOVER)])
            violations += int(np.intersect1d(kept, excluded).size)
            sizes = np.bincount(result.patches.ravel())[1:]
            if sizes.size:  # … and no refined patch is below 50 m²
                smallest = min(smallest, float(sizes.min()) * recipe.pixel_size_m**2)
        report(f"{label[:14]} {name}"[:44], results)
    print(f"  ({label}: segmentation {seconds:.1f} s per scene; kept segments touching WorldCover 40/50/80: "
          f"{violations}; smallest refined patch {smallest:.0f} m²)")
    # How much the choices of the shadow threshold and the hole spread matter (calibrated p, with DEM).
    for option, values in (("shadow_illumination", (0.3, SHADOW_ILLUMINATION, 0.45, 0.6)),
                           ("hole_spread", (2.0, 3.0))):
        for value in values:
            results = [score(refine(segmentation.labels, scene.preliminary, p_values["segment"],
                                    recipe.pixel_size_m**2, landcover_on_grid(scene), EXCLUDED_LANDCOVER, 50.0,
                                    segmentation=segmentation, illumination=illuminated, **{option: value}).mask,
                             scene)
                       for scene, segmentation, illuminated in zip(test, segmentations, illuminations)]
            report(f"  + DEM, {option} {value:g}", results)


def boundary_recall(labels, truth, tolerance=2):
    """Share of truth-outline pixels within ``tolerance`` pixels of a segment boundary."""
    truth_edge = truth != ndimage.grey_erosion(truth, size=3)
    seg_edge = np.zeros(labels.shape, dtype=bool)
    seg_edge[:-1] |= labels[:-1] != labels[1:]
    seg_edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    near = ndimage.binary_dilation(seg_edge, iterations=tolerance)
    return float(near[truth_edge].mean())


def speed(args, params):
    tile = args.speed_size // 4
    recipe = OpticalRecipe(rows=tile, cols=tile)
    image = np.empty((4, args.speed_size, args.speed_size), dtype=np.uint16)
    truth = np.zeros((args.speed_size, args.speed_size), dtype=np.int32)
    t0 = time.perf_counter()
    for index in range(16):
        scene = simulate_optical_scene(recipe, np.random.default_rng([args.seed + 7, index]))
        r, c = divmod(index, 4)
        window = (slice(r * tile, (r + 1) * tile), slice(c * tile, (c + 1) * tile))
        image[(slice(None),) + window] = scene.image
        truth[window] = ndimage.label(scene.truth > 0)[0] + np.where(scene.truth > 0, 1000 * (index + 1), 0)
    print(f"\nspeed: 4-band {args.speed_size}² scene (16 simulated {tile}² scenes) made in {time.perf_counter() - t0:.0f} s; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    rows = []
    for label, p in (("MineSAR MRS (estimated)", params), ("MineSAR MRS (paper 79/0.2/0.5)", MRSParameters())):
        t0 = time.perf_counter()
        result = segment(image, p, tile=512, workers=args.workers)
        rows.append((f"{label} scale {p.scale:g}", time.perf_counter() - t0, result.count,
                     boundary_recall(result.labels, truth)))
        del result
    if skimage is not None:
        # RGB-ordered float in [0, 1]: what both expect; the 4 bands are kept.
        stretched = np.moveaxis(image, 0, -1).astype(np.float32)
        stretched /= np.percentile(stretched, 99.5)
        t0 = time.perf_counter()
        labels = felzenszwalb(stretched, scale=100, sigma=0.5, min_size=50, channel_axis=-1)
        rows.append(("skimage felzenszwalb scale 100", time.perf_counter() - t0, int(labels.max()) + 1,
                     boundary_recall(labels, truth)))
        del labels
        count = rows[0][2]
        t0 = time.perf_counter()
        labels = slic(stretched, n_segments=count, compactness=0.1, channel_axis=-1, start_label=0)
        rows.append((f"skimage SLIC n={count}", time.perf_counter() - t0, int(labels.max()) + 1,
                     boundary_recall(labels, truth)))
    else:
        print("scikit-image is not importable here: felzenszwalb and SLIC skipped (see the docstring).")
    print(f"{'method':44s} {'seconds':>8s} {'segments':>9s} {'boundary recall (2 px)':>23s}")
    for name, seconds, count, recall in rows:
        print(f"{name:44s} {seconds:8.1f} {count:9d} {recall:23.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=3)
    parser.add_argument("--test", type=int, default=8)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--speed-size", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=300)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    params = MRSParameters()
    if not args.skip_quality:
        params = quality(args)
    if not args.skip_speed:
        speed(args, params)


if __name__ == "__main__":
    main()
