"""Agreement with MintPy's ifgram_inversion on one synthetic stack with NaN holes.

MintPy (GPL) is optional and never a dependency: without it this test skips. Run it with the
separate venv described in README ("SBAS benchmark").
"""
import importlib.util
import math

import numpy as np
import pytest
from conftest import ROOT

pytest.importorskip("mintpy")
pytest.importorskip("h5py")


def _bench():
    spec = importlib.util.spec_from_file_location("sbas_vs_mintpy", ROOT / "bench" / "sbas_vs_mintpy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_inversion_agrees_with_mintpy(tmp_path, weighted):
    """Same stack, same reference, same looks: ≤ 0.05 mm time series, ≤ 0.01 mm/yr velocity RMS.

    Weighted: the stack's coherence lies on MintPy's look-up bin centres (see the bench's
    ``on_lut_centres``), where its table and MineSAR's variance mean the same coherence.
    """
    bench = _bench()
    network, phase, coherence, ref = bench.make_stack(20, 25, 30, 4, seed=2)
    phase[5, 2:12, 3:15] = np.nan  # a hole wider than the random ones
    paths, cc = bench.write_geotiffs(str(tmp_path), network, phase, coherence)
    stack_file = str(tmp_path / "ifgramStack.h5")
    bench.write_ifgram_stack(stack_file, network, phase, coherence, ref, 20)
    ref_xy = (500000 + (ref[1] + 0.5) * 30, 4200000 - (ref[0] + 0.5) * 30)
    ts, vel, *_ = bench.run_minesar(paths, cc, str(tmp_path), ref_xy, weighted, 20)
    ts_m, vel_m, *_ = bench.run_mintpy(stack_file, network, phase, ref, weighted)
    ts_rms, n = bench.rms(ts, ts_m.reshape(ts.shape))
    assert n == ts.size and ts_rms <= 0.05
    assert bench.rms(vel, vel_m)[0] <= 0.01
    assert not math.isclose(float(np.nanstd(vel)), 0.0)


def test_weighted_agreement_with_raw_coherence(tmp_path):
    """Raw coherence (not on MintPy's bin centres): the look-up conventions differ too — MintPy
    truncates to a 0.005-wide bin, MineSAR interpolates at the value — so agreement is looser:
    measured 0.018 mm time series and 0.024 mm/yr velocity RMS on this stack. This pins that
    figure (README) rather than hiding it behind the snapped comparison."""
    bench = _bench()
    network, phase, coherence, ref = bench.make_stack(20, 30, 30, 4, seed=2, snap=False)
    paths, cc = bench.write_geotiffs(str(tmp_path), network, phase, coherence)
    stack_file = str(tmp_path / "ifgramStack.h5")
    bench.write_ifgram_stack(stack_file, network, phase, coherence, ref, 20)
    ref_xy = (500000 + (ref[1] + 0.5) * 30, 4200000 - (ref[0] + 0.5) * 30)
    ts, vel, *_ = bench.run_minesar(paths, cc, str(tmp_path), ref_xy, True, 20)
    ts_m, vel_m, *_ = bench.run_mintpy(stack_file, network, phase, ref, True)
    ts_rms = bench.rms(ts, ts_m.reshape(ts.shape))[0]
    vel_rms = bench.rms(vel, vel_m)[0]
    assert 0.005 < vel_rms <= 0.03 and ts_rms <= 0.025
