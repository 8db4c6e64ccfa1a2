#!/usr/bin/env python3
"""Shipped (or given) segmentation networks on held-out simulated data: the issue's figures.

Subsidence (``ecaunet`` and the other phase segmenters): bench/detection_accuracy.py's held-out
set (seed 2024, wider ranges than training: depth 0.5–200 mm, radius 80–500 m, 8 mm RMS
turbulence, coherence down to 0.20, 0–5 basins, more distractors; 400 tiles of 256²) → PA, MIoU,
IoU(background), IoU(subsidence) (paper: ECA-UNet 62.74 %), once over every pixel and once with
the pixels that only basins under 8 mm cover left out (the basin rule's floor: the truth reaches
out to 10 % of a basin's depth, so a 3 mm basin labels ground no one can see under 8 mm of
atmosphere, where the paper's hand-drawn labels hold only visible basins), and the basin-level rule (connected
regions at probability ≥ the checkpoint's own threshold matched at IoU ≥ 0.25; basins under 8 mm
ignored), at that threshold and, when it differs, at 0.5.

Mine patches (``minepatch_light``, ``minepatch``): held-out GF-2 scenes of 1024² at 1 m, seed 4040,
wider than the training recipe (relief 160 m instead of 120, 2–10 patches instead of 3–8, 150 m² to
25 ha instead of 200 m² to 20 ha) → pixel precision, recall, F1 (paper 0.727), IoU, with the
checkpoint's own band percentiles; then F1 and the share of patches found, scene by scene, on ten
small scenes (320² with 3–4 patches of 0.1–0.8 ha, and 512² with the default areas; seeds 0–4),
where pooled pixels cannot hide a missed small patch.

    .venv/bin/python bench/segmentation_accuracy.py [--models ecaunet minepatch_light] [--device auto]
        [--scenes 8] [--threads 2] [--mirror] [--turns]
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build", "plugins"))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from detection_accuracy import held_out_folder  # noqa: E402
from minesar.models.calibration import threshold_of  # noqa: E402
from minesar.core.simulation.optical import OpticalRecipe  # noqa: E402
from minesar.core.simulation.optical_scenes import simulate_optical_scenes  # noqa: E402
from minesar.models.checkpoint import checkpoint_for, load_model  # noqa: E402
from minesar.models.device import resolve_device  # noqa: E402

OPTICAL_HELD_OUT = OpticalRecipe(rows=1024, cols=1024, patch_count=(2, 10), patch_area_m2=(150.0, 250_000.0),
                                 relief_m=160.0)
OPTICAL_SEED = 4040


def optical_held_out(scenes: int) -> str:
    folder = os.path.join(ROOT, ".build", "detector-data", f"optical-heldout-seed{OPTICAL_SEED}-{scenes}")
    if not os.path.isdir(folder):
        simulate_optical_scenes(folder, OPTICAL_HELD_OUT, scenes, OPTICAL_SEED,
                                split_fractions={"train": 0.0, "val": 0.0, "test": 1.0})
    return folder


def small_scenes(model, normalisation):
    import numpy as np
    import torch
    from scipy import ndimage

    from minesar.core.segmentation.scores import evaluate
    from minesar.core.simulation.optical import simulate_optical_scene
    from minesar.models.segmenters import optical_input

    rows = []
    for size, areas in ((320, (1000.0, 8000.0)), (512, OpticalRecipe().patch_area_m2)):
        for seed in range(5):
            scene = simulate_optical_scene(OpticalRecipe(rows=size, cols=size, patch_count=(3, 4), patch_area_m2=areas),
                                           np.random.default_rng([seed, 0]))
            with torch.no_grad():
                probability = model.predict(torch.from_numpy(optical_input(scene.image, normalisation))[None])[0]
            scores = evaluate(probability.cpu().numpy() >= 0.5, ndimage.label(scene.truth > 0)[0])
            rows.append((size, seed, scores.f1, scores.identification_rate))
    print("small scenes, one at a time (size, seed: pixel F1 / patches found): " + "; ".join(
        f"{size}² {seed}: {f1:.2f}/{found:.2f}" for size, seed, f1, found in rows))
    print(f"  median F1 {np.median([r[2] for r in rows]):.3f}, lowest {min(r[2] for r in rows):.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["ecaunet", "minepatch_light"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--count", type=int, default=400, help="held-out interferogram tiles")
    parser.add_argument("--scenes", type=int, default=8, help="held-out GF-2 scenes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mirror", action="store_true",
                        help="also the scores with each tile seen mirrored and the probabilities averaged "
                             "(segmentsubsidence's MIRROR, on there by default)")
    parser.add_argument("--turns", action="store_true",
                        help="also the scores with each tile seen in all eight views, mirrored and turned "
                             "(segmentsubsidence's MIRROR and TURNS, both on there by default)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    for name in args.models:
        path = checkpoint_for(name)
        model, metadata = load_model(path, device)
        optical = model.input_kind == "optical"
        folder = optical_held_out(args.scenes) if optical else held_out_folder(args.count)
        own = threshold_of(metadata)
        views = [(False, False)] + [(True, False)] * args.mirror + [(True, True)] * args.turns
        for mirror, turns in views:
            for threshold in (own, 0.5) if own != 0.5 and not optical else (own,):
                _report(name, path, model, metadata, folder, device, optical, threshold, mirror, turns)


def _report(name, path, model, metadata, folder, device, optical, threshold, mirror, turns=False):
    from minesar.models.evaluation import evaluate_segmenter

    started = time.perf_counter()
    scores = evaluate_segmenter(model, folder, "test", device=device, batch_size=8, threshold=threshold,
                                normalisation=metadata.get("normalisation") if optical else None, mirror=mirror,
                                turns=turns)
    seconds = time.perf_counter() - started
    minutes = metadata.get("training_wall_time_min", "?")
    seen = " + mirror + turns" if turns else (" + mirror" if mirror else "")
    print(f"\n== {name}{seen}: {model.architecture} {model.config()} "
          f"({os.path.basename(path)}, trained {minutes} min on {metadata.get('hardware', '?')}); {seconds:.1f} s "
          f"on {device}; probability ≥ {threshold:g}")
    print(f"pixels: PA {scores['PA']:.3f}  MIoU {scores['MIoU']:.3f}  IoU(background) {scores['IoU_background']:.3f}  "
          f"IoU({'mine patch' if optical else 'subsidence'}) {scores['IoU_subsidence']:.3f}  "
          f"precision {scores['pixel_precision']:.3f}  recall {scores['pixel_recall']:.3f}  "
          f"F1 {scores['pixel_F1']:.3f}")
    if optical and not mirror:
        small_scenes(model, metadata["normalisation"])
    if not optical:
        print(f"pixels counted under the basin rule (what only basins under 8 mm cover left out): "
              f"PA {scores['PA_counted']:.3f}  MIoU {scores['MIoU_counted']:.3f}  "
              f"IoU(background) {scores['IoU_background_counted']:.3f}  "
              f"IoU(subsidence) {scores['IoU_subsidence_counted']:.3f}")
        print(f"basin level (IoU ≥ 0.25, ≥ 8 mm): P {scores['precision']:.3f}  R {scores['recall']:.3f}  "
              f"F1 {scores['F1']:.3f}  (TP {scores['TP']}, FP {scores['FP']}, FN {scores['FN']}; "
              f"{scores['truths']} basins counted, {scores['ignored_truths']} shallower ignored)")
        if getattr(model, "cores", False):
            whole = evaluate_segmenter(model, folder, "test", device=device, batch_size=8, threshold=threshold,
                                       mirror=mirror, use_cores=False, turns=turns)
            print(f"  the same regions not split by the cores: P {whole['precision']:.3f}  R {whole['recall']:.3f}  "
                  f"F1 {whole['F1']:.3f}  (TP {whole['TP']}, FP {whole['FP']}, FN {whole['FN']})")


if __name__ == "__main__":
    main()
