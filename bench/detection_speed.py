#!/usr/bin/env python3
"""Whole-interferogram detection speed: Mpx/s and peak memory on a 7636 × 8205 scene.

Writes the same synthetic wrapped interferogram as bench/goldstein_throughput.py (seed 002's
scene size, 62.7 Mpx: subsidence bowls, a ramp, phase noise) and runs
models.inference.detect_interferogram on it end to end: windowed reads, cos/sin encoding, batched
tiles through the detector, merge of cut basins, polygons in map coordinates. Speed barely depends
on the weights, so an untrained network of the same architecture stands in when no checkpoint
exists yet (the script says so).

    .venv/bin/python bench/detection_speed.py --model yolobasin [--device cpu] [--tile 512]
        [--overlap 128] [--batch 4] [--width 7636] [--height 8205] [--threads 2]
"""
import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), ".build", "plugins"))
sys.path.insert(0, HERE)

from goldstein_throughput import write_input  # noqa: E402

from minesar.core.io.interferogram import open_interferogram  # noqa: E402
from minesar.models.checkpoint import load_detector, shipped_checkpoint  # noqa: E402
from minesar.models.device import resolve_device  # noqa: E402
from minesar.models.inference import detect_interferogram  # noqa: E402
from minesar.models.registry import ARCHITECTURES, build_detector  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="yolobasin", help="architecture name or checkpoint path")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--width", type=int, default=7636)
    parser.add_argument("--height", type=int, default=8205)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mirror", action="store_true", help="each tile also seen mirrored (detectsubsidence's "
                        "MIRROR, its default)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.model in ARCHITECTURES:
        checkpoint = shipped_checkpoint(args.model)
        if checkpoint:
            model, _ = load_detector(checkpoint, device)
        else:
            print(f"no shipped weights for {args.model}: timing an untrained network of the same architecture")
            model = build_detector(args.model).eval().to(device)
    else:
        model, _ = load_detector(args.model, device)
    folder = tempfile.mkdtemp(prefix="minesar-detect-bench-")
    try:
        started = time.perf_counter()
        path = write_input(folder, args.width, args.height)
        print(f"input {args.width} × {args.height} written in {time.perf_counter() - started:.1f} s")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with open_interferogram(path) as source:
            run = detect_interferogram(source, model, device, tile_size=args.tile, overlap=args.overlap,
                                       batch_size=args.batch, score_threshold=0.5, mirror=args.mirror)
        print(f"model {model.architecture} {model.config()} on {device}, {args.threads} CPU threads")
        print(f"tiles {run.tiles} of {args.tile} px, overlap {args.overlap} px, batch {args.batch}"
              f"{', each also mirrored' if args.mirror else ''}")
        print(f"basins {len(run.basins)}")
        print(f"time {run.seconds:.2f} s, {run.megapixels_per_second:.2f} Mpx/s")
        print(f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GB")
        if device.type == "cuda":
            print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 1024 ** 3:.2f} GB")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
