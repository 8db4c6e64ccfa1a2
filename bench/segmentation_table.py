#!/usr/bin/env python3
"""Seed 000's Table 1 on our simulated interferograms: the seven segmentation networks trained on
the same data with the same budget, scored on the same held-out set.

Columns: PA, MIoU, IoU(background), IoU(subsidence) as in the paper, IoU(subsidence) with the pixels
that only basins under 8 mm cover left out (models/evaluation.py, "_counted"), the issue's basin-level
F1 (IoU ≥ 0.25, basins under 8 mm ignored), parameters and training time, so users can see which
network to pick for their hardware.

    .venv/bin/python bench/segmentation_table.py [--iterations 600 | --minutes 8] [--batch 8] [--lr 1e-3]
        [--models ecaunet unet fcn8s fcn16s fcn32s pspnet deeplabv3] [--threads 2] [--device auto]
        [--train-folder DATASET] [--held-out-folder DATASET]

``--iterations`` gives every network the same number of steps (the paper's way: same epochs).
``--minutes`` gives every network the same wall time instead: its steps are sized from the speed of
a few probe steps, so the schedule still anneals. On a CPU that is the fairer question ("which
network is best after the time I have?"); FCN's 134 M parameters then get few steps.

Training data: the detectors' training set (scripts/train_default_detectors.py: SimulationRecipe
defaults, 1600 scenes of 256² at 30 m, seed 1), made under .build/detector-data on first use.
Held-out: bench/detection_accuracy.py's (seed 2024, wider ranges, 400 tiles). Every network gets
the same iterations, batch, learning rate, schedule, seed and augmentation.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build", "plugins"))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from detection_accuracy import held_out_folder  # noqa: E402
from minesar.core.simulation.generate import simulate_dataset  # noqa: E402
from minesar.core.simulation.interferograms import SimulationRecipe  # noqa: E402
from minesar.models.device import resolve_device  # noqa: E402

SEGMENTERS = ("ecaunet", "unet", "fcn8s", "fcn16s", "fcn32s", "pspnet", "deeplabv3")


def training_folder(count: int = 1600, seed: int = 1) -> str:
    folder = os.path.join(ROOT, ".build", "detector-data", f"train-{count}-seed{seed}")
    if not os.path.isdir(folder):
        simulate_dataset(folder, SimulationRecipe(rows=256, cols=256), count=count, seed=seed)
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(SEGMENTERS))
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--iterations", type=int, default=600)
    budget.add_argument("--minutes", type=float, default=0.0, help="the same wall time per network instead")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--count", type=int, default=400, help="held-out tiles")
    parser.add_argument("--keep", default=None, help="folder to keep the checkpoints in")
    parser.add_argument("--train-folder", default=None, help="a MineSAR dataset to train on instead (its train split)")
    parser.add_argument("--held-out-folder", default=None, help="a MineSAR dataset to score on instead (its test split)")
    args = parser.parse_args(argv)

    import torch

    from minesar.models.evaluation import evaluate_segmenter
    from minesar.models.registry import build_model
    from minesar.models.training import steps_within, train

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    train_folder = args.train_folder or training_folder()
    test_folder = args.held_out_folder or held_out_folder(args.count)
    keep = args.keep or os.path.join(ROOT, ".build", "segmentation-table")
    os.makedirs(keep, exist_ok=True)
    budget = f"{args.minutes:g} min" if args.minutes else f"{args.iterations} iterations"
    print(f"train: {train_folder}; held-out: {test_folder}; {budget} of batch {args.batch} per network, "
          f"lr {args.lr:g}, on {device} ({torch.get_num_threads()} threads)")
    rows = []
    for name in args.models:
        iterations = args.iterations
        if args.minutes:
            iterations = steps_within(args.minutes, build_model(name), train_folder, args.batch, args.lr,
                                      os.path.join(keep, f"probe-{name}.pt"), device=device, probe_steps=4)
        model = build_model(name)
        parameters = sum(p.numel() for p in model.parameters())
        started = time.perf_counter()
        train(model, train_folder, epochs=1000, batch_size=args.batch, learning_rate=args.lr, device=device,
              checkpoint_path=os.path.join(keep, f"{name}.pt"), max_iterations=iterations, seed=0,
              calibrate=False)  # Table 1 is read at probability 0.5, as in seed 000
        minutes = (time.perf_counter() - started) / 60
        scores = evaluate_segmenter(model, test_folder, "test", device=device, batch_size=8)
        rows.append((name, parameters, iterations, minutes, scores))
        print(f"  {name}: {iterations} iterations, {minutes:.1f} min, IoU(subsidence) "
              f"{scores['IoU_subsidence']:.3f}", flush=True)

    print(f"\n{'network':10s} {'params':>8s} {'PA':>6s} {'MIoU':>6s} {'IoU bg':>7s} {'IoU sub':>8s} "
          f"{'IoU sub ≥8mm':>13s} {'basin P':>8s} {'basin R':>8s} {'basin F1':>9s} {'steps':>6s} {'train min':>10s}")
    for name, parameters, iterations, minutes, s in rows:
        print(f"{name:10s} {parameters / 1e6:7.1f}M {s['PA']:6.3f} {s['MIoU']:6.3f} {s['IoU_background']:7.3f} "
              f"{s['IoU_subsidence']:8.3f} {s['IoU_subsidence_counted']:13.3f} {s['precision']:8.3f} {s['recall']:8.3f} {s['F1']:9.3f} "
              f"{iterations:6d} {minutes:10.1f}")
    print("(paper, seed 000 Table 1, real Sentinel-1 data: IoU(subsidence) ECA-UNet 0.6274, U-Net 0.6020, "
          "DeepLabv3 0.6085; MIoU ECA-UNet 0.8058)")
    return rows


if __name__ == "__main__":
    main()
