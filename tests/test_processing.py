"""The minesar provider inside QGIS: processing.run, parameters, errors, styled layers."""
import math

import numpy as np
import pytest
from conftest import SAMPLE_DIR, read_big_endian, sample_interferograms, write_geotiff
from osgeo import gdal
from qgis.core import (
    QgsApplication,
    QgsColorRampShader,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
)

UNW = SAMPLE_DIR / "20060619-20061002_utm.unw"


@pytest.fixture
def run(minesar_provider):
    import processing

    def _run(parameters, feedback=None):
        return processing.run("minesar:importinterferogram", parameters, feedback=feedback or QgsProcessingFeedback())

    return _run


def test_provider_is_registered_with_its_algorithm(minesar_provider):
    algorithm = QgsApplication.processingRegistry().algorithmById("minesar:importinterferogram")
    assert algorithm is not None
    assert algorithm.group() == "Import and preprocessing" and algorithm.groupId() == "import"
    assert minesar_provider.longName().startswith("MineSAR 0.")
    assert "GAMMA" in algorithm.shortHelpString()
    names = [p.name() for p in algorithm.parameterDefinitions()]
    assert names == ["INPUT", "KIND", "WIDTH", "PAR", "ALLOW_PIXEL_COORDINATES", "KEEP_COMPLEX", "OUTPUT"]


def test_import_through_processing_run(run, tmp_path):
    result = run({"INPUT": str(UNW), "OUTPUT": str(tmp_path / "a.tif")})
    assert result["KIND"] == "unwrapped"
    assert (result["DATE1"], result["DATE2"]) == ("2006-06-19", "2006-10-02")
    assert result["WAVELENGTH"] == pytest.approx(299_792_458.0 / 5.334694994e9)
    assert result["VALID_PERCENT"] == pytest.approx(97.37, abs=0.01)
    written = gdal.Open(result["OUTPUT"]).ReadAsArray()
    expected = read_big_endian(UNW)
    np.testing.assert_array_equal(written[expected != 0], expected[expected != 0])


def test_kind_is_given_by_name_and_checked(run, tmp_path):
    result = run({"INPUT": str(SAMPLE_DIR / "20060619-20061002_utm.unw.cc"), "KIND": "coherence", "OUTPUT": str(tmp_path / "c.tif")})
    assert result["KIND"] == "coherence"
    with pytest.raises(QgsProcessingException, match="not a coherence"):
        run({"INPUT": str(UNW), "KIND": "coherence", "OUTPUT": str(tmp_path / "bad.tif")})
    assert not (tmp_path / "bad.tif").exists()


def test_batch_of_files_through_one_algorithm(run, tmp_path):
    # What batch mode does: one run per row, each with its own output.
    for path in sample_interferograms()[:3]:
        result = run({"INPUT": str(path), "OUTPUT": str(tmp_path / (path.stem + ".tif"))})
        assert result["DATE1"] == f"{path.name[:4]}-{path.name[4:6]}-{path.name[6:8]}"
    assert len(list(tmp_path.glob("*.tif"))) == 3


@pytest.mark.parametrize(
    "parameters, message",
    [
        ({"INPUT": "/nonexistent/x.unw"}, "x.unw: file not found"),
        ({"INPUT": str(UNW), "WIDTH": 50}, "not a multiple of WIDTH=50"),
        ({"INPUT": str(UNW), "PAR": str(SAMPLE_DIR / "20060619-20061002_base.par")}, "no raster size"),
        ({"INPUT": str(SAMPLE_DIR / "20060619_slc.par")}, "not a raster this plugin can read"),
    ],
)
def test_bad_inputs_raise_processing_exceptions_naming_the_problem(run, tmp_path, parameters, message):
    with pytest.raises(QgsProcessingException, match=message):
        run({**parameters, "OUTPUT": str(tmp_path / "out.tif")})
    assert list(tmp_path.iterdir()) == []


def test_non_geotiff_output_is_refused(run, tmp_path):
    with pytest.raises(QgsProcessingException, match="use a .tif name"):
        run({"INPUT": str(UNW), "OUTPUT": str(tmp_path / "out.png")})


def test_cancel_through_feedback_leaves_nothing(run, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run({"INPUT": str(UNW), "OUTPUT": str(tmp_path / "out.tif")}, feedback)
    assert list(tmp_path.iterdir()) == []


def test_loaded_result_is_named_by_dates_and_styled(minesar_provider, tmp_path, qgis_new_project):
    from processing.gui.Postprocessing import handleAlgorithmResults

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    output = str(tmp_path / "a.tif")
    parameters = {"INPUT": str(UNW), "OUTPUT": output}
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("minesar:importinterferogram")
    # What the toolbox does: run, then load the outputs marked for loading and post-process them.
    context.addLayerToLoadOnCompletion(output, QgsProcessingContext.LayerDetails("Imported", QgsProject.instance(), "OUTPUT"))
    results, ok = algorithm.run(parameters, context, QgsProcessingFeedback())
    assert ok
    assert handleAlgorithmResults(algorithm, context, QgsProcessingFeedback(), False, results)
    layers = QgsProject.instance().mapLayersByName("unwrapped 20060619–20061002")
    assert len(layers) == 1
    renderer = layers[0].renderer()
    assert renderer.type() == "singlebandpseudocolor"


def _style(path):
    from minesar.ui.styles import style_interferogram

    layer = QgsRasterLayer(path, "x")
    assert layer.isValid()
    kind = style_interferogram(layer)
    return kind, layer


def test_wrapped_phase_style_is_the_cyclic_rasmph_wheel(run, tmp_path):
    from minesar.core.io.colours import phase_to_rgb

    rng = np.random.default_rng(0)
    z = np.exp(1j * rng.uniform(-math.pi, math.pi, (20, 20))).astype(np.complex64)
    source = write_geotiff(tmp_path / "20200101_20200113.tif", z, gdal.GDT_CFloat32)
    result = run({"INPUT": source, "OUTPUT": str(tmp_path / "w.tif")})
    kind, layer = _style(result["OUTPUT"])
    assert kind == "wrapped"
    shader = layer.renderer().shader().rasterShaderFunction()
    items = shader.colorRampItemList()
    assert shader.colorRampType() == QgsColorRampShader.Interpolated
    assert items[0].value == pytest.approx(-math.pi) and items[-1].value == pytest.approx(math.pi)
    # Cyclic: both ends have the same colour, and every stop is the colour the renderer uses.
    assert items[0].color == items[-1].color
    for item in items:
        expected = phase_to_rgb(np.array([item.value]))[0]
        assert (item.color.red(), item.color.green(), item.color.blue()) == tuple(expected)


def test_unwrapped_and_coherence_styles(run, tmp_path):
    result = run({"INPUT": str(UNW), "OUTPUT": str(tmp_path / "u.tif")})
    kind, layer = _style(result["OUTPUT"])
    assert kind == "unwrapped"
    dataset = gdal.Open(result["OUTPUT"])  # held: a band outliving its dataset crashes GDAL
    band = dataset.GetRasterBand(1).GetMetadata()
    assert layer.renderer().classificationMin() == pytest.approx(float(band["MINESAR_P02"]))
    assert layer.renderer().classificationMax() == pytest.approx(float(band["MINESAR_P98"]))
    result = run({"INPUT": str(SAMPLE_DIR / "20060619-20061002_utm.unw.cc"), "OUTPUT": str(tmp_path / "c.tif")})
    kind, layer = _style(result["OUTPUT"])
    assert kind == "coherence" and layer.renderer().type() == "singlebandgray"
    enhancement = layer.renderer().contrastEnhancement()
    assert (enhancement.minimumValue(), enhancement.maximumValue()) == (0.0, 1.0)


def test_algorithm_runs_inside_a_processing_model(minesar_provider, tmp_path):
    """What the graphical modeler builds: a model input wired to the algorithm, its output exposed."""
    import processing
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFile,
    )

    model = QgsProcessingModelAlgorithm("import chain", "MineSAR tests")
    model.addModelParameter(QgsProcessingParameterFile("ifg", "Interferogram"), QgsProcessingModelParameter("ifg"))
    child = QgsProcessingModelChildAlgorithm("minesar:importinterferogram")
    child.setChildId("import")
    child.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("ifg")])
    child.addParameterSources("KIND", [QgsProcessingModelChildParameterSource.fromStaticValue("auto")])
    output = QgsProcessingModelOutput("imported", "Imported")
    output.setChildOutputName("OUTPUT")
    child.setModelOutputs({"imported": output})
    model.addChildAlgorithm(child)
    result = processing.run(model, {"ifg": str(UNW), "import:imported": str(tmp_path / "m.tif")})
    written = gdal.Open(result["import:imported"]).ReadAsArray()
    expected = read_big_endian(UNW)
    np.testing.assert_array_equal(written[expected != 0], expected[expected != 0])


def test_batch_dialog_opens_for_the_import(minesar_provider, qgis_iface):
    import minesar

    plugin = minesar.classFactory(qgis_iface)
    plugin.open_batch("minesar:importinterferogram")
    dialog = plugin._batch_dialog
    assert dialog.algorithm().id() == "minesar:importinterferogram"
    dialog.close()
