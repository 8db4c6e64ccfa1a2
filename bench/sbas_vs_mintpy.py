"""MineSAR's SBAS inversion against MintPy's on one synthetic stack: agreement and speed.

Run with a Python that has MintPy (GPL, optional, never a dependency of the plugin), e.g. the
separate venv described in README ("SBAS benchmark"):

    .build/mintpy-venv/bin/python bench/sbas_vs_mintpy.py [--rows 60 --cols 100 --dates 60 --span 4]

Both read the same referenced stack (60 dates, 230 pairs, NaN holes, coherence). MineSAR runs
end to end (GeoTIFF in → three GeoTIFFs out); MintPy runs ``run_ifgram_inversion_patch`` on an
ifgramStack.h5 of the same data (reading and inversion, no writing), the step ``ifgram_inversion``
spends its time in. Velocity for MintPy: its own ``time_func.estimate_time_func`` (linear).
"""
import argparse
import math
import os
import sys
import tempfile
import time
import tracemalloc
from datetime import date, timedelta

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".build", "plugins"))

from osgeo import gdal, osr  # noqa: E402

from minesar.core.sbas import Network, Pair, SbasOutputs, run_sbas  # noqa: E402

WAVELENGTH = 0.05546576


def on_lut_centres(coherence):
    """Coherence moved onto the centres of MintPy's 0.005-wide coherence bins (0.0025 + 0.005 k).

    MintPy looks the phase variance up in a table of those centres, truncating a coherence to
    the centre at or below it; MineSAR evaluates the variance at the coherence itself. On the
    centres both give the variance of the same coherence, so the comparison measures the
    inversions, not the two look-up conventions (up to 5 % apart in weight at coherence 0.9).
    The 1e-5 nudge keeps MintPy's float32 truncation on the intended bin.
    """
    return (0.0025 + 0.005 * np.round((coherence - 0.0025) / 0.005) + 1e-5).astype(np.float32)


def make_stack(rows, cols, n_dates, span, seed=0, scattered=0.0, snap=True):
    """The synthetic stack; ``scattered``: share of observations set NaN at random (on top of the
    rectangles), so nearly every pixel has its own valid-pair pattern; ``snap``: coherence on
    MintPy's look-up bin centres (see ``on_lut_centres``), else the raw values."""
    rng = np.random.default_rng(seed)
    dates = [date(2019, 1, 4) + timedelta(days=12 * i) for i in range(n_dates)]
    pairs = [Pair(dates[i], dates[j]) for i in range(n_dates) for j in range(i + 1, min(n_dates, i + span + 1))]
    network = Network.from_pairs(pairs)
    years = network.years
    yy, xx = np.mgrid[0:rows, 0:cols]
    bowl = -60.0 * np.exp(-((yy - rows / 2) ** 2 + (xx - cols / 3) ** 2) / (2 * (min(rows, cols) / 6) ** 2))
    truth_mm = years[:, None, None] * (bowl + 2.0)[None] + 4.0 * np.sin(2 * np.pi * years)[:, None, None]
    phase_per_mm = -4 * math.pi / WAVELENGTH / 1000.0
    truth_phase = truth_mm * phase_per_mm
    phase = np.empty((len(pairs), rows, cols), np.float32)
    coherence = np.empty_like(phase)
    for k, (i, j) in enumerate(network.pairs):
        phase[k] = truth_phase[j] - truth_phase[i] + rng.normal(0, 0.4, (rows, cols))
        raw = np.clip(0.55 + 0.3 * np.sin(xx / 9.0 + k) * np.cos(yy / 7.0) + rng.normal(0, 0.05, (rows, cols)), 0.05, 0.98)
        coherence[k] = on_lut_centres(raw) if snap else raw.astype(np.float32)
        if rng.random() < 0.3:  # an unwrapping failure: a rectangle of NaN
            r0, c0 = rng.integers(0, rows - 5), rng.integers(0, cols - 5)
            phase[k, r0:r0 + rng.integers(3, rows // 3 + 4), c0:c0 + rng.integers(3, cols // 3 + 4)] = np.nan
    if scattered:
        phase[np.random.default_rng(seed + 1000).random(phase.shape) < scattered] = np.nan
    ref = (1, cols - 2)
    for k in range(len(pairs)):
        phase[k][ref] = phase[k][ref] if np.isfinite(phase[k][ref]) else 0.5
    return network, phase, coherence, ref


def write_geotiffs(folder, network, phase, coherence):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32650)
    paths, cc = [], []
    for k, (i, j) in enumerate(network.pairs):
        name = f"{network.dates[i]:%Y%m%d}-{network.dates[j]:%Y%m%d}"
        for data, suffix, kind, bucket in ((phase[k], "unw", "unwrapped", paths), (coherence[k], "cc", "coherence", cc)):
            path = os.path.join(folder, f"{name}_{suffix}.tif")
            ds = gdal.GetDriverByName("GTiff").Create(path, data.shape[1], data.shape[0], 1, gdal.GDT_Float32)
            ds.SetGeoTransform((500000, 30, 0, 4200000, 0, -30))
            ds.SetProjection(srs.ExportToWkt())
            ds.SetMetadata({"MINESAR_KIND": kind, "WAVELENGTH_M": str(WAVELENGTH)})
            ds.GetRasterBand(1).WriteArray(data)
            ds.GetRasterBand(1).SetNoDataValue(float("nan"))
            ds = None
            bucket.append(path)
    return paths, cc


def write_ifgram_stack(path, network, phase, coherence, ref, looks):
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("date", data=np.array([[f"{network.dates[i]:%Y%m%d}".encode(), f"{network.dates[j]:%Y%m%d}".encode()]
                                                for i, j in network.pairs], dtype="S8"))
        f.create_dataset("bperp", data=np.zeros(len(network.pairs), np.float32))
        f.create_dataset("dropIfgram", data=np.ones(len(network.pairs), np.bool_))
        f.create_dataset("unwrapPhase", data=phase)
        f.create_dataset("coherence", data=coherence)
        f.attrs.update({"FILE_TYPE": "ifgramStack", "LENGTH": str(phase.shape[1]), "WIDTH": str(phase.shape[2]),
                        "WAVELENGTH": str(WAVELENGTH), "REF_Y": str(ref[0]), "REF_X": str(ref[1]),
                        "ALOOKS": "1", "RLOOKS": str(looks), "UNIT": "radian",
                        # MintPy otherwise derives independent looks as ALOOKS·RLOOKS/1.94 (Sentinel-1
                        # resolution/pixel ratio): give it the same number MineSAR gets, LOOKS.
                        "NCORRLOOKS": str(looks)})


def run_minesar(paths, cc, folder, ref_xy, weighted, looks):
    tracemalloc.start()
    started = time.perf_counter()
    report = run_sbas(paths, SbasOutputs(*(os.path.join(folder, f"{n}_{weighted}.tif") for n in ("ts", "vel", "coh"))),
                      coherence_paths=cc if weighted else None, reference_xy=ref_xy,
                      weighting="coherence" if weighted else "none", looks=looks)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    ts = gdal.Open(os.path.join(folder, f"ts_{weighted}.tif")).ReadAsArray()
    vel = gdal.Open(os.path.join(folder, f"vel_{weighted}.tif")).ReadAsArray()
    return ts, vel, seconds, peak, report


def run_mintpy(stack_file, network, phase, ref, weighted):
    import contextlib
    import io

    from mintpy import ifgram_inversion
    from mintpy.utils import time_func

    ref_phase = phase[:, ref[0], ref[1]].astype(np.float64)
    tracemalloc.start()
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        ts = ifgram_inversion.run_ifgram_inversion_patch(
            stack_file, box=(0, 0, phase.shape[2], phase.shape[1]), ref_phase=ref_phase,
            weight_func="var" if weighted else "no", min_norm_velocity=True, min_redundancy=1.0)[0]
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    ts_mm = ts * 1000.0  # MintPy already applied −λ/(4π): metres, negative = away from the satellite
    dates = [f"{d:%Y%m%d}" for d in network.dates]
    with contextlib.redirect_stdout(io.StringIO()):
        m = time_func.estimate_time_func({"polynomial": 1}, dates, ts_mm.reshape(len(dates), -1))[1]
    return ts_mm, m[1].reshape(phase.shape[1:]), seconds, peak


def rms(a, b):
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2))), int(ok.sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--cols", type=int, default=100)
    parser.add_argument("--dates", type=int, default=60)
    parser.add_argument("--span", type=int, default=4)
    parser.add_argument("--looks", type=int, default=20)
    parser.add_argument("--scattered", type=float, default=0.02,
                        help="share of observations made NaN at random for the MineSAR speed run with scattered NaNs")
    args = parser.parse_args()
    network, phase, coherence, ref = make_stack(args.rows, args.cols, args.dates, args.span)
    pixels = args.rows * args.cols
    print(f"stack: {len(network.dates)} dates, {len(network.pairs)} pairs, {args.rows} × {args.cols} = {pixels} px, "
          f"{100 * np.isnan(phase).mean():.1f}% NaN observations; reference pixel {ref}")
    try:
        import mintpy
    except ImportError:
        mintpy = None
        print("MintPy is not installed here: only MineSAR's figures follow.")
    with tempfile.TemporaryDirectory() as folder:
        paths, cc = write_geotiffs(folder, network, phase, coherence)
        ref_xy = (500000 + (ref[1] + 0.5) * 30, 4200000 - (ref[0] + 0.5) * 30)
        stack_file = os.path.join(folder, "ifgramStack.h5")
        if mintpy:
            write_ifgram_stack(stack_file, network, phase, coherence, ref, args.looks)
        for weighted in (False, True):
            label = "weighted (coherence, var)" if weighted else "unweighted"
            ts, vel, seconds, peak, report = run_minesar(paths, cc, folder, ref_xy, weighted, args.looks)
            print(f"\n[{label}] MineSAR: {seconds:.2f} s, {pixels / seconds:,.0f} px/s, peak traced memory "
                  f"{peak / 2 ** 20:.1f} MiB, backend {report.backend}, disconnected px {report.disconnected_pixels}")
            if not mintpy:
                continue
            ts_m, vel_m, seconds_m, peak_m = run_mintpy(stack_file, network, phase, ref, weighted)
            print(f"[{label}] MintPy {mintpy.__version__}: {seconds_m:.2f} s, {pixels / seconds_m:,.0f} px/s, "
                  f"peak traced memory {peak_m / 2 ** 20:.1f} MiB")
            print(f"[{label}] speed-up MineSAR/MintPy: {seconds_m / seconds:.1f}×")
            ts_rms, n = rms(ts, ts_m.reshape(ts.shape))
            vel_rms, _ = rms(vel, vel_m)
            print(f"[{label}] agreement over {n} values: time series RMS {ts_rms:.5f} mm, velocity RMS {vel_rms:.5f} mm/yr")
    if args.scattered:
        scattered_speed(args)
    if mintpy:
        raw_coherence_agreement(args.looks)


def scattered_speed(args):
    """MineSAR's speed when random NaNs give nearly every pixel its own valid-pair pattern
    (MintPy is left out: it solves such pixels one by one, minutes at this size)."""
    network, phase, coherence, ref = make_stack(args.rows, args.cols, args.dates, args.span, scattered=args.scattered)
    pixels = args.rows * args.cols
    print(f"\nscattered NaNs: {100 * args.scattered:.1f}% of observations at random on top of the holes "
          f"({100 * np.isnan(phase).mean():.1f}% NaN in all)")
    with tempfile.TemporaryDirectory() as folder:
        paths, cc = write_geotiffs(folder, network, phase, coherence)
        ref_xy = (500000 + (ref[1] + 0.5) * 30, 4200000 - (ref[0] + 0.5) * 30)
        for weighted in (False, True):
            label = "weighted (coherence, var)" if weighted else "unweighted"
            _, _, seconds, peak, report = run_minesar(paths, cc, folder, ref_xy, weighted, args.looks)
            print(f"[{label}, scattered NaNs] MineSAR: {seconds:.2f} s, {pixels / seconds:,.0f} px/s, peak traced "
                  f"memory {peak / 2 ** 20:.1f} MiB, disconnected px {report.disconnected_pixels}")


def raw_coherence_agreement(looks, rows=20, cols=30, seed=2):
    """Weighted agreement with coherence on MintPy's bin centres and raw (small stack: MintPy's
    weighted inversion is slow). Raw coherence measures the two look-up conventions too: MintPy
    truncates to a 0.005-wide bin, MineSAR interpolates at the value."""
    for snap in (True, False):
        network, phase, coherence, ref = make_stack(rows, cols, 30, 4, seed=seed, snap=snap)
        with tempfile.TemporaryDirectory() as folder:
            paths, cc = write_geotiffs(folder, network, phase, coherence)
            stack_file = os.path.join(folder, "ifgramStack.h5")
            write_ifgram_stack(stack_file, network, phase, coherence, ref, looks)
            ref_xy = (500000 + (ref[1] + 0.5) * 30, 4200000 - (ref[0] + 0.5) * 30)
            ts, vel, *_ = run_minesar(paths, cc, folder, ref_xy, True, looks)
            ts_m, vel_m, *_ = run_mintpy(stack_file, network, phase, ref, True)
        label = "on MintPy's bin centres" if snap else "raw"
        print(f"[weighted, {rows} × {cols}, seed {seed}, coherence {label}] time series RMS "
              f"{rms(ts, ts_m.reshape(ts.shape))[0]:.5f} mm, velocity RMS {rms(vel, vel_m)[0]:.5f} mm/yr")


if __name__ == "__main__":
    main()
