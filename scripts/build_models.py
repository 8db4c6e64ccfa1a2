#!/usr/bin/env python3
"""Writes the workflow models the MineSAR provider ships (processing_provider/workflows/*.model3).

The models are built with QGIS's own QgsProcessingModelAlgorithm API and saved with toFile, so
they are exactly what the Model Designer would write, and every child parameter is checked
against the algorithm's current definition (a renamed parameter fails here, not in a user's
model). Run it after changing a parameter of a chained algorithm, and commit its output:

    .venv/bin/python scripts/build_models.py            # rewrite the .model3 files
    .venv/bin/python scripts/build_models.py --check    # exit 1 when a file is out of date

Each model's parameters are clones of the child algorithms' own definitions (same defaults,
ranges and options), renamed where the model needs a clearer name.
"""
import argparse
import filecmp
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build", "plugins"))
from headless import start_qgis  # noqa: E402 (scripts/ is on the path of a script run from it)

WORKFLOWS_DIR = os.path.join(ROOT, "processing_provider", "workflows")
GROUP, GROUP_ID = "Workflows", "workflows"


def canonical(path):
    """Rewrite a model file with its attributes in a fixed order: Qt writes them in hash order,
    which changes from run to run and would make every rebuild a diff."""
    import xml.etree.ElementTree as ET

    tree = ET.parse(path)
    rank = {"name": 0, "type": 1, "value": 2}
    for element in tree.iter():
        ordered = sorted(element.attrib.items(), key=lambda item: (rank.get(item[0], 3), item[0]))
        element.attrib.clear()
        element.attrib.update(ordered)
    ET.indent(tree, "  ")
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("<!DOCTYPE model>\n" + ET.tostring(tree.getroot(), encoding="unicode") + "\n")


class ModelBuilder:
    """A thin layer over QgsProcessingModelAlgorithm: inputs from child definitions, children laid
    out left to right, model outputs named once."""

    def __init__(self, name, help_text):
        from qgis.core import QgsProcessingModelAlgorithm

        self.model = QgsProcessingModelAlgorithm(name, GROUP, GROUP_ID)
        self.help = {"ALG_DESC": help_text, "ALG_CREATOR": "MineSAR", "ALG_HELP_CREATOR": "MineSAR"}
        self.inputs = 0
        self.order = []

    def input_from(self, algorithm_id, parameter, name=None, description=None, default=None, optional=None,
                   help_text=""):
        """A model input cloned from ``algorithm_id``'s ``parameter`` definition."""
        from qgis.core import QgsApplication, QgsProcessingModelParameter
        from qgis.PyQt.QtCore import QPointF

        algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
        source = algorithm.parameterDefinition(parameter)
        if source is None:
            raise SystemExit(f"{algorithm_id} has no parameter {parameter}")
        definition = source.clone()
        definition.setName(name or parameter)
        if description:
            definition.setDescription(description)
        if default is not None:
            definition.setDefaultValue(default)
        if optional is not None:
            flags = definition.flags()
            definition.setFlags(flags | definition.FlagOptional if optional else flags & ~definition.FlagOptional)
        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(120 + 230 * (self.inputs % 4), 60 + 70 * (self.inputs // 4)))
        self.inputs += 1
        self.model.addModelParameter(definition, component)
        self.order.append(definition.name())
        if help_text:
            self.help[definition.name()] = help_text
        return definition.name()

    def child(self, child_id, algorithm_id, description, column, sources, outputs=()):
        """``sources``: {parameter: ("input", name) | ("child", child id, output) | ("value", v)};
        ``outputs``: [(child output, model output name, description)]."""
        from qgis.core import (QgsProcessingModelChildAlgorithm, QgsProcessingModelChildParameterSource,
                               QgsProcessingModelOutput)
        from qgis.PyQt.QtCore import QPointF

        child = QgsProcessingModelChildAlgorithm(algorithm_id)
        if child.algorithm() is None:
            raise SystemExit(f"{algorithm_id}: no such algorithm")
        child.setChildId(child_id)
        child.setDescription(description)
        child.setPosition(QPointF(200 + 300 * column, 260 + 90 * column))
        for parameter, source in sources.items():
            if child.algorithm().parameterDefinition(parameter) is None:
                raise SystemExit(f"{algorithm_id} has no parameter {parameter}")
            if source[0] == "input":
                value = QgsProcessingModelChildParameterSource.fromModelParameter(source[1])
            elif source[0] == "child":
                value = QgsProcessingModelChildParameterSource.fromChildOutput(source[1], source[2])
            else:
                value = QgsProcessingModelChildParameterSource.fromStaticValue(source[1])
            child.addParameterSources(parameter, [value])
        # As the Designer does: every other parameter keeps the algorithm's default, stated in
        # the file (a model is then explicit about what it runs with).
        for definition in child.algorithm().parameterDefinitions():
            if definition.name() in sources or definition.isDestination():
                continue
            if definition.defaultValue() is not None:
                child.addParameterSources(definition.name(), [
                    QgsProcessingModelChildParameterSource.fromStaticValue(definition.defaultValue())])
        model_outputs = {}
        for index, (child_output, name, output_description) in enumerate(outputs):
            if child.algorithm().parameterDefinition(child_output) is None:
                raise SystemExit(f"{algorithm_id} has no output parameter {child_output}")
            output = QgsProcessingModelOutput(name, output_description)
            output.setChildId(child_id)
            output.setChildOutputName(child_output)
            output.setPosition(QPointF(420 + 300 * column, 330 + 90 * column + 45 * index))
            model_outputs[name] = output
        child.setModelOutputs(model_outputs)
        self.model.addChildAlgorithm(child)
        return child_id

    def finish(self):
        self.model.setHelpContent(self.help)
        self.model.setParameterOrder(self.order)  # the dialog's order: inputs as the chain uses them
        return self.model


def detect_and_surface_activity():
    build = ModelBuilder(
        "Detect subsidence and surface activity",
        "One interferogram, from its file to mining-subsidence basins and their surface activity: "
        "minesar:importinterferogram (a GAMMA binary with its par files, a LiCSAR/HyP3 product or any GDAL "
        "raster; the dates come from the name or metadata) → minesar:detectsubsidence (the shipped Light "
        "YOLO-Basin by default, or MODEL) → minesar:surfaceactivity on the interferogram's grid: the days "
        "each pixel was detected active and one site per basin with its class.\n\n"
        "For a sequence of interferograms, run detection on each (batch mode) and minesar:surfaceactivity "
        "once on all the detection layers.",
    )
    interferogram = build.input_from(
        "minesar:importinterferogram", "INPUT", "INTERFEROGRAM", "Interferogram (GAMMA file or GeoTIFF)",
        help_text="Any interferogram minesar:importinterferogram reads: wrapped, complex, rasmph colours or "
                  "unwrapped (wrapped again for detection). Its dates (name YYYYMMDD-YYYYMMDD or metadata) "
                  "give the activity its days.")
    model = build.input_from("minesar:detectsubsidence", "MODEL",
                             help_text="yolobasin (shipped Light YOLO-Basin), maskrcnn, or a checkpoint from "
                                       "minesar:trainmodel.")
    device = build.input_from("minesar:detectsubsidence", "DEVICE",
                              help_text="auto (CUDA when present), cpu or cuda:N.")
    tile = build.input_from("minesar:detectsubsidence", "TILE_SIZE",
                            help_text="Pixels per tile side; lower it, or BATCH_SIZE, when the GPU runs out of "
                                      "memory.")
    batch = build.input_from("minesar:detectsubsidence", "BATCH_SIZE", help_text="Tiles run through the network "
                             "at once.")
    score = build.input_from("minesar:detectsubsidence", "SCORE_THRESHOLD",
                             help_text="Detections scoring below it are dropped; empty: the threshold stored in "
                                       "the model (chosen on validation data).")
    build.child("import", "minesar:importinterferogram", "Import interferogram", 0,
                {"INPUT": ("input", interferogram), "KIND": ("value", "auto")})
    build.child("detect", "minesar:detectsubsidence", "Detect mining subsidence", 1,
                {"INPUT": ("child", "import", "OUTPUT"), "MODEL": ("input", model), "DEVICE": ("input", device),
                 "TILE_SIZE": ("input", tile), "BATCH_SIZE": ("input", batch),
                 "SCORE_THRESHOLD": ("input", score)},
                [("OUTPUT", "BASINS", "Subsidence basins")])
    build.child("activity", "minesar:surfaceactivity", "Surface activity", 2,
                {"INPUT": ("child", "detect", "OUTPUT"), "TEMPLATE": ("child", "import", "OUTPUT")},
                [("OUTPUT_ACTIVITY", "ACTIVITY", "Surface activity (days)"),
                 ("OUTPUT_SITES", "SITES", "Active sites")])
    return build.finish()


def sbas_and_mine_activity():
    build = ModelBuilder(
        "SBAS and mine activity",
        "A stack of unwrapped interferograms to the activity of each mine patch: minesar:sbasinversion "
        "(displacement time series, velocity and temporal coherence) → minesar:mineactivity with the SBAS "
        "velocity and, as its coherence, the SBAS temporal coherence: a pixel whose time series does not "
        "fit its interferograms (temporal coherence below MIN_COHERENCE, default 0.7 as MintPy's "
        "minTempCoh) counts as decorrelated.",
    )
    interferograms = build.input_from(
        "minesar:sbasinversion", "INPUT", "INTERFEROGRAMS",
        help_text="Unwrapped interferograms on one grid in a projected CRS (GAMMA .unw, MineSAR imports, LiCSAR or "
                  "HyP3 GeoTIFFs); dates from the names or metadata.")
    coherence = build.input_from(
        "minesar:sbasinversion", "COHERENCE",
        help_text="Optional: one coherence raster per interferogram, same order; picks the reference pixel and, "
                  "with WEIGHTING coherence, weights the inversion.")
    weighting = build.input_from("minesar:sbasinversion", "WEIGHTING",
                                 help_text="none, or coherence (inverse phase variance; needs COHERENCE).")
    patches = build.input_from("minesar:mineactivity", "INPUT", "PATCHES", "Mine patches",
                               help_text="Mine-patch polygons, e.g. from minesar:refineminepatches.")
    buffer = build.input_from("minesar:mineactivity", "BUFFER",
                              help_text="Deformation within this distance (m) of a patch is attributed to it.")
    threshold = build.input_from("minesar:mineactivity", "THRESHOLD",
                                 help_text="|velocity| above it (mm/yr) is deformation.")
    min_coherence = build.input_from(
        "minesar:mineactivity", "MIN_COHERENCE", description="Minimum temporal coherence of a measured pixel",
        default=0.7, help_text="Pixels of lower SBAS temporal coherence count as decorrelated (0.7 as MintPy's "
                               "minTempCoh; the step alone defaults to 0.3, meant for interferometric coherence).")
    build.child("sbas", "minesar:sbasinversion", "SBAS deformation time series", 0,
                {"INPUT": ("input", interferograms), "COHERENCE": ("input", coherence),
                 "WEIGHTING": ("input", weighting)},
                [("OUTPUT_TIMESERIES", "TIMESERIES", "Displacement time series (mm)"),
                 ("OUTPUT_VELOCITY", "VELOCITY", "Velocity (mm/yr)"),
                 ("OUTPUT_COHERENCE", "TEMPORAL_COHERENCE", "Temporal coherence")])
    build.child("activity", "minesar:mineactivity", "Mine activity from deformation", 1,
                {"INPUT": ("input", patches), "VELOCITY": ("child", "sbas", "OUTPUT_VELOCITY"),
                 "COHERENCE": ("child", "sbas", "OUTPUT_COHERENCE"), "BUFFER": ("input", buffer),
                 "THRESHOLD": ("input", threshold), "MIN_COHERENCE": ("input", min_coherence)},
                [("OUTPUT", "MINE_ACTIVITY", "Mine activity")])
    return build.finish()


MODELS = {"detect_surface_activity.model3": detect_and_surface_activity,
          "sbas_mine_activity.model3": sbas_and_mine_activity}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    arguments = parser.parse_args()
    app, provider = start_qgis(with_workflows=False)  # the models are being written, not read
    stale = []
    with tempfile.TemporaryDirectory() as scratch:
        for file_name, build in MODELS.items():
            model = build()
            ok, problems = model.validate()
            if not ok:
                raise SystemExit(f"{file_name}: " + "; ".join(problems))
            written = os.path.join(scratch, file_name)
            if not model.toFile(written):
                raise SystemExit(f"{written}: could not be written")
            canonical(written)
            target = os.path.join(WORKFLOWS_DIR, file_name)
            if os.path.exists(target) and filecmp.cmp(written, target, shallow=False):
                continue
            stale.append(target)
            if not arguments.check:
                os.makedirs(WORKFLOWS_DIR, exist_ok=True)
                shutil.copyfile(written, target)
    for target in stale:
        print(("out of date: " if arguments.check else "wrote ") + os.path.relpath(target, ROOT))
    del provider
    app.exitQgis()
    return 1 if arguments.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
