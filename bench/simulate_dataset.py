"""How long a training dataset of simulated interferograms takes (issue F2: 2,000 tiles of 256²
in under 2 minutes on 2 cores).

    .venv/bin/python bench/simulate_dataset.py [--count 2000] [--size 256] [--workers 0]

Prints wall time, images per second, the size on disk and the number of labelled basins.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build", "plugins"))

from minesar.core.simulation.generate import simulate_dataset  # noqa: E402
from minesar.core.simulation.interferograms import SimulationRecipe  # noqa: E402


def folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=0, help="threads (0 = up to 4, by CPU count)")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="minesar-bench-")
    try:
        start = time.perf_counter()
        description = simulate_dataset(os.path.join(scratch, "ds"), SimulationRecipe(rows=args.size, cols=args.size),
                                       args.count, seed=1, workers=args.workers)
        seconds = time.perf_counter() - start
        size_mb = folder_bytes(os.path.join(scratch, "ds")) / 1e6
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{args.count} images of {args.size}² on {os.cpu_count()} CPUs: {seconds:.1f} s "
          f"({args.count / seconds:.1f} images/s), {size_mb:.0f} MB, {description['instances']} labelled basins")


if __name__ == "__main__":
    main()
