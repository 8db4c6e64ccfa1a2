#!/usr/bin/env python3
"""Goldstein filter throughput and memory on a 7636 × 8205 wrapped interferogram.

Writes a WIDTH × HEIGHT float32 GeoTIFF of wrapped phase (default 7636 × 8205, the scene size the
YOLO-Basin paper times its detector on: 62.7 Mpx) with a few subsidence bowls, a ramp and phase
noise into a temporary folder, runs MineSAR's block-wise Goldstein filter on it end to end (read,
filter, compressed write) and prints the throughput in Mpx/s, the peak of numpy allocations and
the process's peak resident memory. It also counts the residues of one 1024-row band before and
after, to show what the filter bought.

    .venv/bin/python bench/goldstein_throughput.py [--width 7636] [--height 8205] [--alpha 0.5] [--keep DIR]

Detection F1 with and without filtering on noisy held-out scenes needs the shipped detector
([F3]); this script will gain that figure when it lands.
"""
import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc

import numpy as np
from osgeo import gdal, osr

# This checkout as the package "minesar" (the venv's .pth may point at another checkout).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build", "plugins"))

from minesar.core.io.colours import wrap
from minesar.core.io.interferogram import open_interferogram
from minesar.core.preprocess.goldstein import goldstein_filter
from minesar.core.preprocess.residues import count_residues

WAVELENGTH = 0.05546576


def write_input(folder, width, height, seed=0):
    path = os.path.join(folder, "20230301_20230313.wrapped.tif")
    dataset = gdal.GetDriverByName("GTiff").Create(path, width, height, 1, gdal.GDT_Float32, ["TILED=YES"])
    dataset.SetGeoTransform((500000.0, 20.0, 0.0, 4000000.0, 0.0, -20.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32649)
    dataset.SetProjection(srs.ExportToWkt())
    dataset.SetMetadata({"MINESAR_KIND": "wrapped", "DATE1": "2023-03-01", "DATE2": "2023-03-13"})
    rng = np.random.default_rng(seed)
    bowls = [(rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, 80), rng.uniform(0.02, 0.12)) for _ in range(40)]
    x = np.arange(width, dtype=np.float64)[None, :]
    band = dataset.GetRasterBand(1)
    band.SetNoDataValue(float("nan"))
    for start in range(0, height, 512):
        rows = min(512, height - start)
        y = np.arange(start, start + rows, dtype=np.float64)[:, None]
        phase = 0.002 * x + 0.001 * y
        for cx, cy, sigma, depth in bowls:
            if abs(cy - (start + rows / 2)) < 6 * sigma + rows:
                phase = phase + 4 * np.pi / WAVELENGTH * depth * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))
        phase = phase + rng.normal(0.0, 0.9, phase.shape)
        band.WriteArray(wrap(phase).astype(np.float32), 0, start)
    dataset = None
    return path


def residues_of_band(path, rows=1024):
    dataset = gdal.Open(path)
    block = dataset.GetRasterBand(1).ReadAsArray(0, 0, dataset.RasterXSize, rows)
    return count_residues(block).total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=7636)
    parser.add_argument("--height", type=int, default=8205)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--keep", help="folder to keep the input and output in (default: a temporary one)")
    args = parser.parse_args()
    folder = args.keep or tempfile.mkdtemp(prefix="minesar-bench-")
    os.makedirs(folder, exist_ok=True)
    try:
        started = time.perf_counter()
        path = write_input(folder, args.width, args.height)
        print(f"input {args.width} × {args.height} written in {time.perf_counter() - started:.1f} s")
        output = os.path.join(folder, "filtered.tif")
        with open_interferogram(path) as source:
            tracemalloc.start()
            started = time.perf_counter()
            goldstein_filter(source, output, alpha=args.alpha, patch_size=args.patch)
            elapsed = time.perf_counter() - started
            _, numpy_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        megapixels = args.width * args.height / 1e6
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"Goldstein filter, patch {args.patch}, alpha {args.alpha}: {megapixels:.1f} Mpx in {elapsed:.1f} s "
              f"= {megapixels / elapsed:.2f} Mpx/s on {os.cpu_count()} CPU(s), end to end (read, filter, DEFLATE write)")
        print(f"peak numpy allocations {numpy_peak / 2**20:.0f} MiB; peak resident memory {rss:.0f} MiB "
              f"(input {os.path.getsize(path) / 2**20:.0f} MiB on disk)")
        before, after = residues_of_band(path), residues_of_band(output)
        print(f"residues in the first 1024 rows: {before} before, {after} after ({100 * (1 - after / before):.1f} % fewer)")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
