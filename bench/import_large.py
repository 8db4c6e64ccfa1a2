#!/usr/bin/env python3
"""Import throughput and memory on a Sentinel-1-frame-sized GAMMA interferogram.

Writes a SIZE × SIZE big-endian complex64 ``.diff`` (default 10000 × 10000 = 800 MB) with its
dem_par into a temporary folder, imports it with MineSAR's block-wise importer and prints the
throughput, the peak of numpy allocations and the process's peak resident memory. The input is
several times the block budget, so the figures show that memory follows the block, not the raster.

    .venv/bin/python bench/import_large.py [--size 10000] [--keep DIR]
"""
import argparse
import os
import resource
import shutil
import tempfile
import time
import tracemalloc

import numpy as np
from osgeo import gdal

from minesar.core.importer import import_interferogram
from minesar.core.io.interferogram import open_interferogram
from minesar.core.io.rasters import DEFAULT_BLOCK_BYTES


def write_input(folder, size):
    path = os.path.join(folder, "20230301_20230313.geo.diff")
    rng = np.random.default_rng(0)
    y = np.arange(size, dtype=np.float32)[:, None]
    with open(path, "wb") as handle:
        for start in range(0, size, 500):
            rows = min(500, size - start)
            x = np.arange(size, dtype=np.float32)[None, :]
            phase = 0.02 * x + 0.013 * (y[start:start + rows]) + rng.normal(0, 0.3, (rows, size)).astype(np.float32)
            handle.write(np.exp(1j * phase).astype(">c8").tobytes())
    with open(os.path.join(folder, "scene.dem_par"), "w") as handle:
        handle.write(
            f"DEM_projection: EQA\nwidth: {size}\nnlines: {size}\ncorner_lat: 36.0\ncorner_lon: 112.0\n"
            "post_lat: -1.0e-04\npost_lon: 1.0e-04\nellipsoid_name: WGS 84\n"
        )
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--keep", help="folder to keep the input and output in (default: a temporary one)")
    args = parser.parse_args()
    folder = args.keep or tempfile.mkdtemp(prefix="minesar-bench-")
    os.makedirs(folder, exist_ok=True)
    try:
        path = write_input(folder, args.size)
        size_mb = os.path.getsize(path) / 1e6
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with open_interferogram(path) as source:
            tracemalloc.start()
            started = time.perf_counter()
            import_interferogram(source, os.path.join(folder, "imported.tif"))
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        pixels = args.size * args.size
        print(f"input            : {args.size} x {args.size} complex64 GAMMA .diff, {size_mb:.0f} MB")
        print(f"block budget     : {DEFAULT_BLOCK_BYTES / 2**20:.0f} MiB")
        print(f"import time      : {elapsed:.1f} s  ({pixels / elapsed / 1e6:.1f} Mpx/s)")
        print(f"numpy peak       : {peak / 1e6:.0f} MB  ({100 * peak / 1e6 / size_mb:.1f}% of the input)")
        print(f"process peak RSS : {rss_after:.0f} MB (before import: {rss_before:.0f} MB; "
              f"GDAL's block cache may hold up to {gdal.GetCacheMax() / 1e6:.0f} MB, set by GDAL_CACHEMAX)")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
