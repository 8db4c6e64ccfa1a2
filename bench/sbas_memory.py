#!/usr/bin/env python3
"""Peak memory of MineSAR's SBAS inversion on full-width strips of a 5000-column, 300-pair stack.

The inversion reads, solves and writes one strip of rows at a time, sized by ``block_bytes``
(default 128 MiB), so its memory depends on the width, the pairs and the epochs, never on the
height: a few dozen rows of a 5000 × 5000 × 300-pair stack show the peak the whole stack
would reach (the whole would only take longer). This writes ROWS × 5000 float32 GeoTIFFs of
phase and coherence for 300 pairs (102 dates, each linked to its next 3), runs the weighted
inversion end to end and prints the per-block budget the code computes, the strips it took,
the peak of numpy allocations and the process's peak resident memory.

    .venv/bin/python bench/sbas_memory.py [--rows 40] [--cols 5000] [--dates 102] [--span 3]
"""
import argparse
import math
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import date, timedelta

import numpy as np
from osgeo import gdal, osr

# This checkout as the package "minesar" (the venv's .pth may point at another checkout).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build", "plugins"))

from minesar.core import sbas  # noqa: E402
from minesar.core.io.rasters import rows_per_strip  # noqa: E402

WAVELENGTH = 0.05546576


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_stack(folder, rows, cols, n_dates, span, seed=0):
    rng = np.random.default_rng(seed)
    dates = [date(2019, 1, 4) + timedelta(days=12 * i) for i in range(n_dates)]
    pairs = [(i, j) for i in range(n_dates) for j in range(i + 1, min(n_dates, i + span + 1))]
    years = np.array([(d - dates[0]).days for d in dates]) / 365.25
    rate = np.linspace(-40, 10, cols)[None, :] * np.ones((rows, 1))  # mm/yr
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32650)
    paths, cc = [], []
    for i, j in pairs:  # one pair in memory at a time
        name = f"{dates[i]:%Y%m%d}-{dates[j]:%Y%m%d}"
        phase = (rate * (years[j] - years[i]) * (-4 * math.pi / WAVELENGTH / 1000.0)
                 + rng.normal(0, 0.3, (rows, cols))).astype(np.float32)
        coherence = rng.uniform(0.2, 0.95, (rows, cols)).astype(np.float32)
        for data, suffix, kind, bucket in ((phase, "unw", "unwrapped", paths), (coherence, "cc", "coherence", cc)):
            path = os.path.join(folder, f"{name}_{suffix}.tif")
            ds = gdal.GetDriverByName("GTiff").Create(path, cols, rows, 1, gdal.GDT_Float32)
            ds.SetGeoTransform((500000, 30, 0, 4200000, 0, -30))
            ds.SetProjection(srs.ExportToWkt())
            ds.SetMetadata({"MINESAR_KIND": kind, "WAVELENGTH_M": str(WAVELENGTH)})
            ds.GetRasterBand(1).WriteArray(data)
            ds = None
            bucket.append(path)
    return paths, cc, len(dates), len(pairs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--cols", type=int, default=5000)
    parser.add_argument("--dates", type=int, default=102)
    parser.add_argument("--span", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths, cc, n_dates, n_pairs = write_stack(folder, args.rows, args.cols, args.dates, args.span)
        per_pixel = n_pairs * sbas._BYTES_PER_PAIR + n_dates * sbas._BYTES_PER_EPOCH
        strip = rows_per_strip(args.cols, per_pixel, sbas.DEFAULT_SBAS_BLOCK_BYTES)
        print(f"stack: {n_dates} dates, {n_pairs} pairs, {args.rows} × {args.cols} px; block budget "
              f"{sbas.DEFAULT_SBAS_BLOCK_BYTES / 2 ** 20:.0f} MiB at {per_pixel} B/px → strips of {strip} rows "
              f"({strip * args.cols} px), {math.ceil(args.rows / strip)} strips here, "
              f"{math.ceil(5000 / strip)} for 5000 rows")
        before = peak_rss_mib()
        outputs = sbas.SbasOutputs(*(os.path.join(folder, f"{n}.tif") for n in ("ts", "vel", "coh")))
        tracemalloc.start()
        started = time.perf_counter()
        report = sbas.run_sbas(paths, outputs, coherence_paths=cc, reference_xy=(500000 + 45, 4200000 - 45),
                               weighting="coherence", looks=20)
        seconds = time.perf_counter() - started
        numpy_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"weighted inversion: {seconds:.1f} s, {report.solved_pixels / seconds:,.0f} px/s; numpy peak "
              f"{numpy_peak / 2 ** 20:.0f} MiB; process peak RSS {peak_rss_mib():.0f} MiB "
              f"(before the inversion {before:.0f} MiB; GDAL's block cache is bounded by GDAL_CACHEMAX)")


if __name__ == "__main__":
    main()
