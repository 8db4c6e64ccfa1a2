"""The preprocessing and hot-spot algorithms inside QGIS: processing.run, chaining, errors, styles."""
import numpy as np
import pytest
from conftest import write_geotiff
from osgeo import gdal
from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
)

from minesar.core.io.colours import rgb_to_phase, wrap
from minesar.core.preprocess.residues import count_residues

NEW_ALGORITHMS = {
    "goldsteinfilter": "import", "multilook": "import", "estimatecoherence": "import",
    "phaseresidues": "import", "renderinterferogram": "import", "deformationhotspots": "deformation",
}
DATES = {"MINESAR_KIND": "wrapped", "DATE1": "2020-01-01", "DATE2": "2020-01-13"}


def read(path):
    dataset = gdal.Open(str(path))
    return dataset.GetRasterBand(1).ReadAsArray()


def data_type(path):
    dataset = gdal.Open(str(path))  # held while its band is asked
    return dataset.GetRasterBand(1).DataType


@pytest.fixture
def run(minesar_provider):
    import processing

    def _run(name, parameters, context=None):
        return processing.run(f"minesar:{name}", parameters, context=context, feedback=QgsProcessingFeedback())

    return _run


@pytest.fixture
def noisy_ifg(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:120, 0:100].astype(np.float64)
    phase = -2 * np.pi * 2.5 * np.exp(-((x - 50) ** 2 + (y - 60) ** 2) / (2 * 25.0 ** 2))
    noisy = wrap(phase + rng.normal(0, 1.0, phase.shape)).astype(np.float32)
    return write_geotiff(tmp_path / "20200101_20200113.tif", noisy, gdal.GDT_Float32, metadata=DATES), noisy


def test_algorithms_are_registered_in_their_groups(minesar_provider):
    registry = QgsApplication.processingRegistry()
    for name, group in NEW_ALGORITHMS.items():
        algorithm = registry.algorithmById(f"minesar:{name}")
        assert algorithm is not None, name
        assert algorithm.groupId() == group and algorithm.shortHelpString()


def test_filter_residues_multilook_coherence_chain(run, tmp_path, noisy_ifg):
    path, noisy = noisy_ifg
    before = run("phaseresidues", {"INPUT": path, "OUTPUT": str(tmp_path / "r0.tif")})
    assert before["TOTAL"] == count_residues(noisy).total > 100
    filtered = run("goldsteinfilter", {"INPUT": path, "OUTPUT": str(tmp_path / "f.tif")})["OUTPUT"]  # α = 0.5
    after = run("phaseresidues", {"INPUT": filtered, "OUTPUT": str(tmp_path / "r1.tif")})
    assert after["TOTAL"] < 0.2 * before["TOTAL"]
    classic = run("goldsteinfilter", {"INPUT": path, "BLENDING": "triangular", "OUTPUT": str(tmp_path / "t.tif")})
    assert "blending=triangular" in gdal.Open(classic["OUTPUT"]).GetMetadataItem("MINESAR_FILTER")
    assert run("phaseresidues", {"INPUT": classic["OUTPUT"], "OUTPUT": str(tmp_path / "r2.tif")})["TOTAL"] < 0.2 * before["TOTAL"]
    looked = run("multilook", {"INPUT": filtered, "RANGE_LOOKS": 2, "AZIMUTH_LOOKS": 4, "OUTPUT": str(tmp_path / "m.tif")})
    assert (looked["WIDTH"], looked["HEIGHT"]) == (50, 30)
    dataset = gdal.Open(looked["OUTPUT"])
    assert dataset.GetGeoTransform()[1] == 60.0 and dataset.GetGeoTransform()[5] == -120.0
    assert dataset.GetMetadataItem("DATE1") == "2020-01-01"
    coherence = run("estimatecoherence", {"INPUT": filtered, "WINDOW": 5, "OUTPUT": str(tmp_path / "c.tif")})
    assert "phase-only" in coherence["ESTIMATOR"]
    raw = run("estimatecoherence", {"INPUT": path, "WINDOW": 5, "OUTPUT": str(tmp_path / "c0.tif")})
    # Filtered phase is smooth: its phase-only coherence is far above the noisy input's and the
    # noise level 1/5 (medians measured: 0.81 against 0.59 at α = 0.5).
    assert np.nanmedian(read(coherence["OUTPUT"])) > 0.75 and np.nanmedian(read(raw["OUTPUT"])) < 0.65


def test_render_png_and_hotspots(run, tmp_path, noisy_ifg):
    path, noisy = noisy_ifg
    result = run("renderinterferogram", {"INPUT": path, "OUTPUT": str(tmp_path / "colour.png")})
    assert result["BRIGHTNESS_USED"] == "none"
    rgb = gdal.Open(str(tmp_path / "colour.png")).ReadAsArray()
    assert np.abs(wrap(rgb_to_phase(np.moveaxis(rgb, 0, -1)) - noisy)).max() < 0.01

    rate = np.zeros((60, 60), np.float32)
    rate[::2] = 0.5  # stripes: a background with spread but no cluster
    rate[20:30, 30:40] = 20.0
    rate_path = write_geotiff(tmp_path / "rate.tif", rate, gdal.GDT_Float32)
    result = run("deformationhotspots", {
        "INPUT": rate_path, "DISTANCE": 90.0, "OUTPUT": str(tmp_path / "gi.tif"), "Z_SCORES": str(tmp_path / "z.tif"),
    })
    classes = read(result["OUTPUT"])
    assert (classes[20:30, 30:40] == 3).all() and result["HOT_99_PIXELS"] == int((classes == 3).sum())
    assert result["COLD_99_PIXELS"] == 0
    assert np.isfinite(read(result["Z_SCORES"])).all()


@pytest.mark.parametrize(
    "name, parameters, message",
    [
        ("goldsteinfilter", {"ALPHA": 0.5, "PATCH_SIZE": 24}, "PATCH_SIZE = 24"),
        ("estimatecoherence", {"WINDOW": 6}, "WINDOW = 6"),
        ("multilook", {"RANGE_LOOKS": 500}, "smaller than one"),
    ],
)
def test_bad_parameters_raise_processing_exceptions(run, tmp_path, noisy_ifg, name, parameters, message):
    with pytest.raises(QgsProcessingException, match=message):
        run(name, {"INPUT": noisy_ifg[0], **parameters, "OUTPUT": str(tmp_path / "out.tif")})
    assert not (tmp_path / "out.tif").exists()


def test_outputs_are_styled_when_loaded(minesar_provider, tmp_path, noisy_ifg, qgis_new_project):
    from processing.gui.Postprocessing import handleAlgorithmResults

    rate = np.zeros((40, 40), np.float32)
    rate[::2] = 1.0
    rate[10:16, 10:16] = 30.0
    rate_path = write_geotiff(tmp_path / "rate.tif", rate, gdal.GDT_Float32)
    cases = [
        ("goldsteinfilter", {"INPUT": noisy_ifg[0]}, "filtered 20200101–20200113", "singlebandpseudocolor"),
        ("phaseresidues", {"INPUT": noisy_ifg[0]}, "residues 20200101–20200113", "paletted"),
        ("estimatecoherence", {"INPUT": noisy_ifg[0]}, "coherence 20200101–20200113", "singlebandgray"),
        ("deformationhotspots", {"INPUT": rate_path, "DISTANCE": 60.0}, "Gi* hot and cold spots", "paletted"),
    ]
    for name, parameters, layer_name, renderer in cases:
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        output = str(tmp_path / f"{name}.tif")
        context.addLayerToLoadOnCompletion(output, QgsProcessingContext.LayerDetails("x", QgsProject.instance(), "OUTPUT"))
        algorithm = QgsApplication.processingRegistry().createAlgorithmById(f"minesar:{name}")
        results, ok = algorithm.run({**parameters, "OUTPUT": output}, context, QgsProcessingFeedback())
        assert ok
        assert handleAlgorithmResults(algorithm, context, QgsProcessingFeedback(), False, results)
        layers = QgsProject.instance().mapLayersByName(layer_name)
        assert len(layers) == 1, name
        assert layers[0].renderer().type() == renderer, name
    hot = QgsProject.instance().mapLayersByName("Gi* hot and cold spots")[0].renderer().classes()
    assert [(c.value, c.label) for c in hot][0] == (3.0, "Hot spot, 99% confidence")


class _Warnings(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.warnings = []

    def pushWarning(self, text):  # noqa: N802 (QGIS API)
        self.warnings.append(text)
        super().pushWarning(text)


def test_keep_complex_import_feeds_complex_multilook_coherence_and_amplitude_rendering(run, tmp_path):
    """A raw GAMMA .diff reaches the amplitude paths: import with KEEP_COMPLEX, then multilook
    averages complex values and estimatecoherence uses |Σz|/Σ|z|."""
    import processing
    from test_preprocess import write_gamma_diff

    rng = np.random.default_rng(21)
    rows, cols = 40, 30
    amplitude = rng.uniform(0.2, 5.0, (rows, cols))
    phase = rng.uniform(-np.pi, np.pi, (rows, cols))
    z = (amplitude * np.exp(1j * phase)).astype(np.complex64)
    z[0, 0] = 0  # nodata: left out of its box
    diff = write_gamma_diff(tmp_path, z)
    imported = run("importinterferogram", {"INPUT": diff, "KEEP_COMPLEX": True, "OUTPUT": str(tmp_path / "ifg.tif")})
    assert data_type(imported["OUTPUT"]) == gdal.GDT_CFloat32
    assert imported["KIND"] == "wrapped" and imported["DATE1"] == "2020-01-01"

    looked = run("multilook", {"INPUT": imported["OUTPUT"], "RANGE_LOOKS": 3, "AZIMUTH_LOOKS": 4,
                               "OUTPUT": str(tmp_path / "ml.tif")})
    boxes = z.astype(np.complex128).reshape(rows // 4, 4, cols // 3, 3)
    weighted = np.angle(boxes.sum(axis=(1, 3)))  # a zero adds nothing to the complex sum
    unit = np.where(boxes != 0, boxes / np.where(boxes != 0, np.abs(boxes), 1), 0)
    phase_only = np.angle(unit.sum(axis=(1, 3)))
    result = read(looked["OUTPUT"])
    np.testing.assert_allclose(wrap(result - weighted), 0.0, atol=1e-5)
    assert np.median(np.abs(wrap(result - phase_only))) > 0.1  # so the test tells the two apart
    assert gdal.Open(looked["OUTPUT"]).GetMetadataItem("MINESAR_LOOKS_AVERAGED") == "complex values"

    coherence = run("estimatecoherence", {"INPUT": imported["OUTPUT"], "WINDOW": 5, "OUTPUT": str(tmp_path / "cc.tif")})
    assert "amplitude-weighted" in coherence["ESTIMATOR"]
    box = z[10:15, 10:15].astype(np.complex128)
    assert read(coherence["OUTPUT"])[12, 12] == pytest.approx(abs(box.sum()) / np.abs(box).sum(), abs=1e-5)

    rendered = run("renderinterferogram", {"INPUT": imported["OUTPUT"], "AMPLITUDE_BRIGHTNESS": True,
                                            "OUTPUT": str(tmp_path / "rgb.tif")})
    assert rendered["BRIGHTNESS_USED"].startswith("interferogram amplitude")

    # KEEP_COMPLEX on a file without amplitudes: a warning, and the usual float32 import.
    feedback = _Warnings()
    plain = processing.run("minesar:importinterferogram", {
        "INPUT": looked["OUTPUT"], "KEEP_COMPLEX": True, "OUTPUT": str(tmp_path / "plain.tif")}, feedback=feedback)
    assert data_type(plain["OUTPUT"]) == gdal.GDT_Float32
    assert any("KEEP_COMPLEX, but the file holds wrapped values without amplitudes" in w for w in feedback.warnings)
