#!/usr/bin/env python3
"""Trains the default weights shipped in models/weights/ (detectors and segmenters), from our own
simulations only.

    .venv/bin/python scripts/train_default_detectors.py --model yolobasin [--count 1600] [--epochs 12]
        [--batch 8] [--lr 2e-3] [--device auto] [--threads 2] [--minutes 0] [--config '{"base_width": 16}']

Interferogram networks (detectors, ecaunet and the other subsidence segmenters):

1. Simulates the training set with MineSAR's simulator (SimulationRecipe defaults, 256 × 256 at
   30 m, seed 1) into .build/detector-data/train unless it is there already: several basins per
   scene, Gaussian and PIM troughs of 1–150 mm (log-uniform), 5 mm RMS turbulence with a −8/3
   spectrum (kilometre-scale blobs), 20 mm/km stratified delay over a fractal DEM, coherence
   0.25–0.95 with multilook decorrelation, decorrelated steep centres, groundwater bowls and
   atmospheric blobs labelled background, ramps.
Mine-patch networks (minepatch, minepatch_light):
1. Simulates ``--count`` GF-2 scenes of 1024² at 1 m (OpticalRecipe defaults: the four mine kinds,
   confusers, relief 120 m; seed ``--seed``) into .build/detector-data/optical-COUNT-seedSEED.
2. Trains on 256² tiles at step 128 with flips and quarter turns, the bands stretched by the
   training split's 2nd/98th percentiles (stored in the checkpoint).
Then, for both: models.training.train, the same code as minesar:trainmodel, writes
models/weights/<model>.pt in fp16 with the command, the data recipe, the wall time and the
hardware in its metadata.

``--recipe`` (with ``--name``) changes simulation recipe fields for a harder training set, e.g. the
fifth Light YOLO-Basin run's '{"atmosphere_mm": 6.5, "radius_m": [90.0, 450.0], "coherence": [0.22, 0.95],
"distractor_share": 0.55}' — still narrower than bench/detection_accuracy.py's held-out ranges.

``--minutes`` sizes the schedule to a wall-time budget (0 = no budget) from the speed of 20 probe
iterations (the first 5 not timed: start-up made them several times slower), planning 90 % of it, or
``--iterations`` sets it; past 1.15 × the budget the run stops and keeps its weights.
"""
import argparse
import dataclasses
import json
import os
import platform
import shlex
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build", "plugins"))

from minesar.core.progress import Progress  # noqa: E402
from minesar.core.simulation.generate import simulate_dataset  # noqa: E402
from minesar.core.simulation.interferograms import SimulationRecipe  # noqa: E402
from minesar.core.simulation.optical import OpticalRecipe  # noqa: E402
from minesar.core.simulation.optical_scenes import simulate_optical_scenes  # noqa: E402
from minesar.models.checkpoint import WEIGHTS_DIR, load_model, save_checkpoint  # noqa: E402
from minesar.models.registry import build_model, input_kind_of  # noqa: E402
from minesar.models.training import steps_within, train  # noqa: E402

DATA_DIR = os.path.join(ROOT, ".build", "detector-data")


def hardware(device) -> str:
    import torch

    cpu = f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads"
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}; {cpu}"
    return cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="yolobasin")
    parser.add_argument("--count", type=int, default=1600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=0.0)
    parser.add_argument("--iterations", type=int, default=0, help="cap on iterations (0 = the epochs decide)")
    parser.add_argument("--output", default=None)
    parser.add_argument("--resume", default=None, help="checkpoint to continue from (a fresh schedule)")
    parser.add_argument("--config", default="{}", help="JSON of constructor arguments, e.g. '{\"base_width\": 16}'")
    parser.add_argument("--recipe", default="{}",
                        help="JSON of simulation recipe fields that differ from the defaults, e.g. "
                             "'{\"atmosphere_mm\": 6.5}'; the data folder is named --name")
    parser.add_argument("--name", default=None, help="data folder name for a --recipe (under .build/detector-data)")
    args = parser.parse_args()
    config = json.loads(args.config)
    overrides = {key: tuple(value) if isinstance(value, list) else value
                 for key, value in json.loads(args.recipe).items()}
    if overrides and not args.name:
        parser.error("--recipe needs --name: a folder of other scenes must not pass for the default one")

    import torch

    from minesar.models.device import resolve_device

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    optical = input_kind_of(args.model) == "optical"
    if optical:
        folder = os.path.join(DATA_DIR, args.name or f"optical-{args.count}-seed{args.seed}")
        recipe = OpticalRecipe(rows=1024, cols=1024, **overrides)
    else:
        folder = os.path.join(DATA_DIR, args.name or f"train-{args.count}-seed{args.seed}")
        recipe = SimulationRecipe(rows=256, cols=256, **overrides)
    if os.path.isdir(folder):
        _check_same_recipe(folder, recipe)
    else:
        started = time.perf_counter()
        if optical:
            simulate_optical_scenes(folder, recipe, args.count, args.seed,
                                    split_fractions={"train": 0.9, "val": 0.1, "test": 0.0})
        else:
            simulate_dataset(folder, recipe, count=args.count, seed=args.seed)
        print(f"simulated {args.count} scenes in {time.perf_counter() - started:.0f} s -> {folder}", flush=True)

    previous_minutes = 0.0
    if args.resume:
        model, previous = load_model(args.resume)
        if config.get("cores"):
            from minesar.models.segnets import with_cores

            model = with_cores(model)
        # A file from minesar:trainmodel has no running total: its own run's wall time is the total.
        previous_minutes = float(previous.get("training_wall_time_min")
                                 or previous.get("training", {}).get("wall_time_s", 0.0) / 60)
    else:
        model = build_model(args.model, **config)
    max_iterations = args.iterations or None
    if args.minutes > 0 and not max_iterations:
        max_iterations = steps_within(args.minutes, model, folder, args.batch, args.lr,
                                      os.path.join(DATA_DIR, f"probe-{args.model}.pt"), device=device, seed=args.seed)
        print(f"{max_iterations} iterations fit in {args.minutes} min", flush=True)

    # Paths inside this checkout are stored relative to it: the command must not name this machine.
    arguments = [os.path.relpath(a, ROOT) if os.path.isabs(a) and a.startswith(ROOT + os.sep) else a
                 for a in sys.argv[1:]]
    previous_command = (previous.get("command") or "").replace(ROOT + os.sep, "") if args.resume else None
    command = "scripts/train_default_detectors.py " + " ".join(shlex.quote(a) for a in arguments)
    last = [0.0]

    # A machine busier than when the probe ran must not overrun the budget: past it, the run is
    # cancelled, which keeps the weights reached so far (models.training's cancel contract).
    deadline = time.perf_counter() + 1.15 * args.minutes * 60 if args.minutes > 0 else float("inf")

    def report(fraction):
        if time.perf_counter() - last[0] > 60:
            last[0] = time.perf_counter()
            print(f"{100 * fraction:5.1f} %", flush=True)

    started = time.perf_counter()
    work = os.path.join(DATA_DIR, f"{args.model}-training.pt")
    result = train(model, folder, epochs=args.epochs, batch_size=args.batch, learning_rate=args.lr, device=device,
                   checkpoint_path=work, max_iterations=max_iterations, seed=args.seed,
                   progress=Progress(callback=report, is_cancelled=lambda: time.perf_counter() > deadline), metadata={
                       "command": command,
                       "data_recipe": {"simulator": "minesar.core.simulation", "seed": args.seed, "count": args.count,
                                       "recipe": dataclasses.asdict(recipe)},
                       "hardware": hardware(device),
                       **({"resumed_from": {"command": previous_command,
                                            "minutes": previous_minutes}} if args.resume else {}),
                   })
    minutes = (time.perf_counter() - started) / 60
    trained, metadata = load_model(work)
    metadata["training_wall_time_min"] = round(previous_minutes + minutes, 1)
    # The full-precision work file is what a later --resume starts from: it carries the total too.
    save_checkpoint(work, trained, metadata, half=False)
    output = args.output or os.path.join(WEIGHTS_DIR, f"{args.model}.pt")
    save_checkpoint(output, trained, metadata, half=True)
    print(json.dumps({"output": output, "size_mb": round(os.path.getsize(output) / 1e6, 2),
                      "iterations": result.iterations, "final_loss": result.final_loss,
                      "minutes": round(minutes, 1)}, indent=1))


def _check_same_recipe(folder, recipe) -> None:
    """A data folder made earlier is reused only if it was made with this recipe."""
    with open(os.path.join(folder, "dataset.json"), encoding="utf-8") as handle:
        stored = json.load(handle).get("recipe")
    wanted = json.loads(json.dumps(dataclasses.asdict(recipe)))
    if stored != wanted:
        changed = sorted(k for k in set(stored or {}) | set(wanted) if (stored or {}).get(k) != wanted.get(k))
        raise SystemExit(f"{folder} was simulated with another recipe ({', '.join(changed)} differ): "
                         "give another --name or remove the folder.")


if __name__ == "__main__":
    main()
