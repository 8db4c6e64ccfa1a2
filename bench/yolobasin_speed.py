#!/usr/bin/env python3
"""Light YOLO-Basin size, work and CPU speed for the S, M and L scales.

Prints per scale: parameters, weights size in MB (fp32 and fp16), GFLOPs of one 416 × 416 forward
(torch.utils.flop_counter counts a multiply-add as 2 FLOPs; the paper reports 10.07 for Light-S)
and the CPU throughput of ``predict`` (forward, decoding and NMS) on a batch of 4 random
512 × 512 tiles in Mpx/s after a warm-up: the median of the timed runs and the best (on a machine
shared with other jobs the best is the closer to what the model can do). The product's target is
≥ 1 Mpx/s for S on 2 CPU cores.

    .venv/bin/python bench/yolobasin_speed.py [--threads 2] [--scales s,m,l] [--runs 5] [--device cpu]
"""
import argparse
import os
import statistics
import sys
import time

import torch

# This checkout as the package "minesar" (the venv's .pth may point at another checkout).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build", "plugins"))

from minesar.models.yolobasin import LightYoloBasin  # noqa: E402


def gflops(model, side: int, device) -> float:
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return float("nan")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 2, side, side, device=device))
    return counter.get_total_flops() / 1e9


def throughput(model, batch: int, side: int, runs: int, device) -> float:
    images = torch.randn(batch, 2, side, side, device=device)
    model.predict(images)  # warm-up: allocator and kernel selection
    times = []
    for _ in range(runs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.predict(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    pixels = batch * side * side / 1e6
    return pixels / statistics.median(times), pixels / min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scales", default="s,m,l")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {device}")
    print(f"{'scale':>5} {'params':>10} {'MB fp32':>8} {'MB fp16':>8} {'GFLOPs@416':>10} "
          f"{'Mpx/s median':>12} {'best':>6}  ({args.batch}×{args.tile}² tiles, predict)")
    for scale in args.scales.split(","):
        model = LightYoloBasin(scale=scale).eval().to(device)
        params = sum(p.numel() for p in model.parameters())
        state_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values()
                          if t.is_floating_point())
        median, best = throughput(model, args.batch, args.tile, args.runs, device)
        print(f"{scale:>5} {params:>10,} {state_bytes / 1e6:>8.2f} {state_bytes / 2e6:>8.2f} "
              f"{gflops(model, 416, device):>10.2f} {median:>12.2f} {best:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
