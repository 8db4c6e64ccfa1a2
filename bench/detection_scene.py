#!/usr/bin/env python3
"""Whole-scene detection against the simulator's truth polygons: what an analyst gets from
minesar:detectsubsidence on a large interferogram, tiles, overlaps, merges and all.

One scene per seed (minesar:simulatescene's scene mode) with the held-out ranges of
bench/detection_accuracy.py (depth 0.5–200 mm, radius 80–500 m, 8 mm RMS turbulence, coherence
0.20–0.95, more distractors) and many basins, detected with the shipped weights at the given tile
sizes and the checkpoint's own score threshold (as detectsubsidence; --score to override). Matching is the issue's basin rule on polygons: a detection matches a mining truth at
polygon IoU ≥ 0.25; truths under 8 mm peak count neither as misses nor, when matched, as false
alarms. A detection that matches no mining truth is a false alarm; the ones lying on a groundwater
bowl or atmospheric blob of the truth are counted apart.

    .venv/bin/python bench/detection_scene.py [--model yolobasin] [--size 2048] [--seeds 1 2 3 4 5]
        [--tiles 512 256] [--overlap 128] [--threads 1] [--mirror] [--score 0.5]
"""
import argparse
import dataclasses
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build", "plugins"))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from detection_accuracy import HELD_OUT  # noqa: E402
from minesar.core.io.interferogram import open_interferogram  # noqa: E402
from minesar.core.simulation.generate import simulate_scene  # noqa: E402
from minesar.models.calibration import threshold_of  # noqa: E402
from minesar.models.checkpoint import checkpoint_for, load_detector  # noqa: E402
from minesar.models.device import resolve_device  # noqa: E402
from minesar.models.inference import detect_interferogram  # noqa: E402

IGNORE_BELOW_MM = 8.0
IOU = 0.25


def polygon_iou(a, b) -> float:
    union = a.union(b).area
    return a.intersection(b).area / union if union else 0.0


def score(basins, truth):
    """Greedy matching by score (as the tile evaluator does), on polygons in map units."""
    mining = [t for t in truth if t.label == "mining"]
    background = [t for t in truth if t.label != "mining"]
    taken = set()
    tp = fp = ignored_hits = distractor_hits = 0
    for basin in sorted(basins, key=lambda b: -b.score):
        best, best_iou = None, IOU
        for index, t in enumerate(mining):
            if index in taken or not basin.polygon.intersects(t.geometry):
                continue
            iou = polygon_iou(basin.polygon, t.geometry)
            if iou >= best_iou:
                best, best_iou = index, iou
        if best is not None:
            taken.add(best)
            if mining[best].depth_mm < IGNORE_BELOW_MM:
                ignored_hits += 1
            else:
                tp += 1
        else:
            fp += 1
            if any(basin.polygon.intersection(t.geometry).area > 0.5 * basin.polygon.area for t in background):
                distractor_hits += 1
    counted = sum(1 for t in mining if t.depth_mm >= IGNORE_BELOW_MM)
    return tp, fp, counted - tp, distractor_hits, counted


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="yolobasin")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--basins", type=int, nargs=2, default=[15, 30])
    parser.add_argument("--tiles", type=int, nargs="+", default=[512, 256])
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--mirror", action="store_true", help="each tile also seen mirrored (detectsubsidence's MIRROR)")
    parser.add_argument("--score", type=float, default=None, help="score threshold instead of the checkpoint's own")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    checkpoint = checkpoint_for(args.model)
    model, metadata = load_detector(checkpoint, device)
    threshold = threshold_of(metadata) if args.score is None else args.score  # as detectsubsidence
    recipe = dataclasses.replace(HELD_OUT, rows=args.size, cols=args.size, basin_count=tuple(args.basins))
    print(f"{args.model} ({os.path.basename(checkpoint)}){' + mirror' if args.mirror else ''} on {device}; scenes {args.size}² at "
          f"{recipe.pixel_size_m:g} m, {args.basins[0]}–{args.basins[1]} basins, held-out ranges; seeds {args.seeds}; "
          f"score ≥ {threshold:g}")
    totals = {tile: [0, 0, 0, 0, 0, 0.0] for tile in args.tiles}
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            path = os.path.join(folder, f"scene_{seed}.tif")
            _, truth, _, _ = simulate_scene(path, recipe, seed)
            for tile in args.tiles:
                with open_interferogram(path, "auto") as source:
                    started = time.perf_counter()
                    run = detect_interferogram(source, model, device, tile_size=tile,
                                               overlap=min(args.overlap, tile // 2), batch_size=4,
                                               score_threshold=threshold, mirror=args.mirror)
                    seconds = time.perf_counter() - started
                tp, fp, fn, distractors, counted = score(run.basins, truth)
                largest = max((b.area_m2 for b in run.basins), default=0.0) / 1e6
                print(f"  seed {seed}, tile {tile}: {counted} basins ≥ 8 mm; TP {tp} FP {fp} (on distractors "
                      f"{distractors}) FN {fn}; largest detection {largest:.2f} km²; {seconds:.1f} s")
                for i, v in enumerate((tp, fp, fn, distractors, counted, seconds)):
                    totals[tile][i] += v
    print(f"\n{'tile':>5s} {'P':>6s} {'R':>6s} {'F1':>6s} {'TP':>4s} {'FP':>4s} {'FN':>4s} {'FP on distr.':>13s} "
          f"{'Mpx/s':>6s}")
    for tile, (tp, fp, fn, distractors, counted, seconds) in totals.items():
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        mpx = len(args.seeds) * args.size ** 2 / seconds / 1e6
        print(f"{tile:5d} {p:6.3f} {r:6.3f} {f1:6.3f} {tp:4d} {fp:4d} {fn:4d} {distractors:13d} {mpx:6.2f}")


if __name__ == "__main__":
    main()
