"""bench/segmentation_table.py end to end on a tiny dataset: every network is trained with the same
steps and scored on the same held-out split, and the table has a row per network."""
import importlib.util
import math
import os

import pytest

pytest.importorskip("torch")

from minesar.core.simulation.generate import simulate_dataset  # noqa: E402
from minesar.core.simulation.interferograms import SimulationRecipe  # noqa: E402

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "segmentation_table.py")


def test_the_table_trains_and_scores_each_network_alike(tmp_path, capsys, one_torch_thread):
    spec = importlib.util.spec_from_file_location("segmentation_table", BENCH)
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    folder = str(tmp_path / "ds")
    recipe = SimulationRecipe(rows=64, cols=64, basin_count=(1, 2), subsidence_mm=(40.0, 120.0), distractor_share=0.0)
    simulate_dataset(folder, recipe, count=6, seed=3, split_fractions={"train": 0.67, "val": 0.0, "test": 0.33})
    networks = ["ecaunet", "unet", "fcn32s"]
    rows = table.main(["--models", *networks, "--iterations", "2", "--batch", "2", "--threads", "1",
                       "--device", "cpu", "--train-folder", folder, "--held-out-folder", folder,
                       "--keep", str(tmp_path / "keep")])
    assert [row[0] for row in rows] == networks
    for name, parameters, iterations, minutes, scores in rows:
        assert iterations == 2 and parameters > 0 and minutes > 0
        assert scores["images"] == 2 and 0.0 <= scores["PA"] <= 1.0 and not math.isnan(scores["MIoU"])
        assert os.path.exists(tmp_path / "keep" / f"{name}.pt")
    printed = capsys.readouterr().out.splitlines()
    header = next(index for index, line in enumerate(printed) if line.startswith("network"))
    assert [line.split()[0] for line in printed[header + 1: header + 4]] == networks
    # By default the table holds seed 000's seven networks.
    assert table.SEGMENTERS == ("ecaunet", "unet", "fcn8s", "fcn16s", "fcn32s", "pspnet", "deeplabv3")
