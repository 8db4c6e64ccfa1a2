"""Block-wise reading and writing: big rasters never sit whole in memory, outputs are atomic."""
import os
import tracemalloc

import numpy as np
import pytest
from osgeo import gdal

from minesar.core.errors import Cancelled, MineSARError
from minesar.core.importer import import_interferogram
from minesar.core.io.interferogram import open_interferogram
from minesar.core.io.rasters import AtomicGeoTiff, Window, rows_per_strip, strip_windows, tile_windows
from minesar.core.progress import Progress


def write_gamma_complex(folder, width, lines, seed=0):
    """A geocoded GAMMA complex interferogram with its dem_par, written strip by strip."""
    path = folder / "20230301_20230313.geo.diff"
    rng = np.random.default_rng(seed)
    with open(path, "wb") as handle:
        for start in range(0, lines, 500):
            rows = min(500, lines - start)
            block = np.exp(1j * rng.uniform(-np.pi, np.pi, (rows, width))).astype(">c8")
            handle.write(block.tobytes())
    (folder / "scene.dem_par").write_text(
        f"DEM_projection: EQA\nwidth: {width}\nnlines: {lines}\ncorner_lat: 36.0\ncorner_lon: 112.0\n"
        "post_lat: -1.0e-04\npost_lon: 1.0e-04\nellipsoid_name: WGS 84\n"
    )
    return path


def test_windows_cover_the_raster_exactly_once():
    covered = np.zeros((103, 77), int)
    for window in tile_windows(77, 103, 32, 20):
        covered[window.slices] += 1
    assert (covered == 1).all()
    strips = list(strip_windows(77, 103, 10))
    assert [w.height for w in strips] == [10] * 10 + [3]
    assert rows_per_strip(10_000, 4, 32 * 1024 * 1024) == 838


def test_import_reads_in_strips_no_taller_than_the_budget(tmp_path):
    path = write_gamma_complex(tmp_path, width=1300, lines=1100)
    heights = []
    with open_interferogram(str(path)) as source:
        original = source.read
        source.read = lambda window: heights.append(window.height) or original(window)
        budget = 1300 * (8 + 16) * 64  # room for 64 rows
        import_interferogram(source, str(tmp_path / "out.tif"), block_bytes=budget)
    assert max(heights) == 64 and sum(heights) == 1100 and len(heights) == 18
    expected = np.angle(np.fromfile(path, ">c8").reshape(1100, 1300))
    written = gdal.Open(str(tmp_path / "out.tif")).ReadAsArray()
    np.testing.assert_allclose(written, expected, atol=1e-6)


def test_windowed_reads_equal_the_whole(tmp_path):
    path = write_gamma_complex(tmp_path, width=301, lines=257, seed=5)
    with open_interferogram(str(path)) as source:
        whole = source.read(Window(0, 0, 301, 257))
        mosaic = np.full_like(whole, np.nan)
        for window in tile_windows(301, 257, 64, 50):
            mosaic[window.slices] = source.read(window)
    np.testing.assert_array_equal(mosaic, whole)


def test_memory_stays_bounded_on_a_raster_ten_times_the_block_budget(tmp_path):
    width, lines = 4000, 3000  # 96 MB of complex64 on disk
    path = write_gamma_complex(tmp_path, width, lines)
    budget = 4 * 1024 * 1024
    with open_interferogram(str(path)) as source:
        tracemalloc.start()
        import_interferogram(source, str(tmp_path / "out.tif"), block_bytes=budget)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    file_size = os.path.getsize(path)
    assert file_size > 20 * budget
    # numpy reports its buffers to tracemalloc: the peak is a few blocks, not the raster.
    assert peak < 3 * budget, f"peak {peak / 1e6:.1f} MB for a {file_size / 1e6:.0f} MB input"


def test_failure_leaves_no_output_and_no_partial_file(tmp_path):
    target = tmp_path / "out.tif"
    with pytest.raises(RuntimeError):
        with AtomicGeoTiff(str(target), 10, 10) as output:
            output.write(np.zeros((5, 10), np.float32), 0)
            raise RuntimeError("disk on fire")
    assert os.listdir(tmp_path) == []


def test_success_replaces_an_earlier_output_and_its_stale_statistics(tmp_path):
    target = tmp_path / "out.tif"
    for value in (1.0, 2.0):
        (tmp_path / "out.tif.aux.xml").write_text("<PAMDataset/>")
        with AtomicGeoTiff(str(target), 4, 3) as output:
            output.write(np.full((3, 4), value, np.float32), 0)
    assert gdal.Open(str(target)).ReadAsArray().mean() == 2.0
    assert sorted(os.listdir(tmp_path)) == ["out.tif"]


def test_cancel_stops_within_a_block_and_leaves_nothing(tmp_path):
    path = write_gamma_complex(tmp_path, width=500, lines=400)
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 3

    reported = []
    progress = Progress(reported.append, cancelled)
    with open_interferogram(str(path)) as source:
        with pytest.raises(Cancelled):
            import_interferogram(source, str(tmp_path / "out.tif"), progress, block_bytes=500 * 24 * 20)
    assert len(calls) == 4 and reported == sorted(reported) and reported[-1] < 0.5
    assert sorted(os.listdir(tmp_path)) == ["20230301_20230313.geo.diff", "scene.dem_par"]


def test_all_nodata_input_is_refused_without_output(tmp_path):
    zeros = np.zeros((20, 30), ">f4")
    zeros.tofile(tmp_path / "20200101_20200113.unw")
    with open_interferogram(str(tmp_path / "20200101_20200113.unw"), width=30, allow_pixel_coordinates=True) as source:
        with pytest.raises(MineSARError, match="no valid pixels"):
            import_interferogram(source, str(tmp_path / "out.tif"))
    assert not (tmp_path / "out.tif").exists()


def test_progress_spans_nest_into_one_monotone_figure():
    seen = []
    outer = Progress(seen.append)
    first, second = outer.span(0.0, 0.25), outer.span(0.25, 1.0)
    for fraction in (0.0, 0.5, 1.0):
        first.update(fraction)
    for fraction in (0.0, 0.5, 1.0):
        second.update(fraction)
    assert seen == pytest.approx([0.0, 0.125, 0.25, 0.25, 0.625, 1.0])


def test_cancel_in_the_last_block_publishes_nothing(tmp_path):
    path = write_gamma_complex(tmp_path, width=300, lines=40)
    checks = []

    def cancelled():  # the user presses Cancel while the only block is being written
        checks.append(1)
        return len(checks) > 1

    with open_interferogram(str(path)) as source:
        with pytest.raises(Cancelled):
            import_interferogram(source, str(tmp_path / "out.tif"), Progress(None, cancelled))
    assert not (tmp_path / "out.tif").exists()


FULL_DISK = """
import os, resource, signal, sys
import numpy as np
from minesar.core.errors import MineSARError
from minesar.core.io.rasters import AtomicGeoTiff
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # files may not grow past 200 kB
try:
    with AtomicGeoTiff(os.path.join(sys.argv[1], "out.tif"), 1000, 1000) as output:
        for row in range(0, 1000, 100):
            output.write(np.random.default_rng(row).standard_normal((100, 1000)).astype(np.float32), row)
except MineSARError as error:
    print("refused:", error)
"""


def test_a_write_that_fails_on_flush_publishes_nothing(tmp_path):
    # GTiff writes its cached blocks when closed: a full disk is only seen there.
    import subprocess
    import sys

    completed = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path)], capture_output=True, text=True)
    assert "refused:" in completed.stdout and "writing failed" in completed.stdout, completed.stdout + completed.stderr
    assert os.listdir(tmp_path) == []


def test_a_file_that_cannot_be_put_in_place_leaves_no_temporary(tmp_path):
    from minesar.core.errors import MineSARError
    from minesar.core.io.rasters import AtomicGeoTiff

    target = tmp_path / "out.tif"
    target.mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(MineSARError, match="cannot be put in place"):
        with AtomicGeoTiff(str(target), 8, 4) as output:
            output.write(np.zeros((4, 8), np.float32), 0)
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"] and target.is_dir()
