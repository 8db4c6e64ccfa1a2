"""QGIS desktop itself, under Xvfb: the plugin enabled as a user enables it, the MineSAR dock detecting
on a phase layer, the Time series dock plotting a click (scripts/desktop-screenshot)."""
import json
import shutil
import subprocess

import pytest
from conftest import ROOT
from qgis.PyQt.QtGui import QImage

pytestmark = pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")


def test_real_desktop_runs_the_docks(tmp_path):
    shot = tmp_path / "desktop.png"
    completed = subprocess.run([str(ROOT / "scripts" / "desktop-screenshot"), str(shot)],
                               capture_output=True, text=True, timeout=900)
    # QGIS aborting while loading PyTorch (triton's LLVM against Mesa's) shows up here first.
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    summary = json.loads(shot.with_suffix(".json").read_text())
    assert summary["errors"] == [] and summary["saved"]
    detections = summary["detections"]
    assert len(detections) == 1
    (found,) = detections.values()
    assert found["features"] >= 1 and found["renderer"] == "graduatedSymbol"
    # Clicks on M1 (subsiding all period) and M2 (early, then still): two curves, both subsiding.
    assert len(summary["curves"]) == 2 and all(c.startswith("SBAS time series (mm) (row") for c in summary["curves"])
    assert all(v is not None and v < -50 for v in summary["velocities"]), summary["velocities"]
    image = QImage(str(shot))
    assert (image.width(), image.height()) == tuple(summary["size"]) and image.width() >= 1200
    colours = {image.pixel(x, y) for x in range(0, image.width(), 9) for y in range(0, image.height(), 9)}
    assert len(colours) > 500  # the phase, the plot and the docks, not a blank window
