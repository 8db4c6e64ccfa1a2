#!/usr/bin/env python3
"""`make demo`: MineSAR's main job, headless, on the sample data shipped in the repository.

Imports the 17 real GAMMA interferograms (and their coherence) in sample_data/ through the
``minesar:importinterferogram`` Processing algorithm; inverts them into an SBAS time series
(coherence-weighted) and finds Gi* hot and cold spots in its velocity; simulates a wrapped
interferogram scene with its truth polygons and Goldstein-filters it, counting the residues
before and after. Then MineSAR's whole pipeline on a simulated mining area in time, whose truth
is known: a sequence of interferograms over six mines with their own active periods → subsidence
detection with the shipped Light YOLO-Basin on each interferogram → surface activity; the
sequence's small-baseline stack → SBAS → mine activity of each mine patch. Builds a QGIS project
holding everything styled, the sequence's layers playing in the Temporal Controller, with print
layouts of the mining area in time, of all real pairs and of the deformation and simulation
results, and renders them to PNGs. Everything goes to --output, every step through the Processing
algorithms a user would run.
"""
import argparse
import contextlib
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# This checkout's plugin first (the link `make setup` makes), whichever checkout the venv points at.
if os.path.isdir(os.path.join(ROOT, ".build", "plugins", "minesar")):
    sys.path.insert(0, os.path.join(ROOT, ".build", "plugins"))
from headless import start_qgis  # noqa: E402 (scripts/ is on the path of a script run from it)

DEFAULT_DATA = os.path.join(ROOT, "sample_data", "pyrate_small_gamma")


def render_png(layout, path):
    """A layout's first page to PNG, rendered to a QImage and saved by Qt: the exporter's own PNG
    path tries to georeference the file through GDAL, which cannot update PNGs and says so on stderr."""
    from qgis.core import QgsLayoutExporter
    from qgis.PyQt.QtCore import QSize

    image = QgsLayoutExporter(layout).renderPageToImage(0, QSize(), 110)
    if image.isNull() or not image.save(path, "PNG"):
        raise SystemExit(f"Rendering {path} failed.")
    return path


def import_all(data_dir, output_dir):
    """Run the import algorithm on every interferogram and coherence file; returns output paths."""
    import processing
    from qgis.core import QgsProcessingFeedback

    unwrapped = sorted(glob.glob(os.path.join(data_dir, "*.unw")))
    if not unwrapped:
        raise SystemExit(f"No GAMMA .unw files in {data_dir}")
    results = []
    feedback = QgsProcessingFeedback()
    for path in unwrapped:
        pair = os.path.basename(path).split("_")[0]
        outputs = {}
        for kind, source, folder in (("unwrapped", path, "interferograms"), ("coherence", path + ".cc", "coherence")):
            if not os.path.exists(source):
                continue
            target = os.path.join(output_dir, folder, f"{pair}_{kind}.tif")
            result = processing.run(
                "minesar:importinterferogram", {"INPUT": source, "KIND": "auto", "OUTPUT": target}, feedback=feedback
            )
            outputs[kind] = result["OUTPUT"]
        results.append((pair, outputs))
    return results


def deformation_and_simulation(results, output_dir):
    """SBAS on the imported pairs, hot spots of its velocity; a simulated scene, filtered."""
    import processing
    from qgis.core import QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    sbas_dir = os.path.join(output_dir, "sbas")
    sbas = processing.run("minesar:sbasinversion", {
        "INPUT": [outputs["unwrapped"] for _, outputs in results],
        "COHERENCE": [outputs["coherence"] for _, outputs in results],
        "WEIGHTING": "coherence",
        "OUTPUT_TIMESERIES": os.path.join(sbas_dir, "timeseries.tif"),
        "OUTPUT_VELOCITY": os.path.join(sbas_dir, "velocity.tif"),
        "OUTPUT_COHERENCE": os.path.join(sbas_dir, "temporal_coherence.tif"),
        "OUTPUT_POINTS": os.path.join(sbas_dir, "points.gpkg"),
    }, feedback=feedback)
    hotspots = processing.run("minesar:deformationhotspots", {
        "INPUT": sbas["OUTPUT_VELOCITY"], "DISTANCE": 300.0,
        "OUTPUT": os.path.join(sbas_dir, "hotspots.tif"),
    }, feedback=feedback)
    sim_dir = os.path.join(output_dir, "simulation")
    scene = processing.run("minesar:simulatescene", {
        "WIDTH": 512, "HEIGHT": 512, "SEED": 7, "BASINS": "4,6", "SUBSIDENCE": "20,120",
        "OUTPUT": os.path.join(sim_dir, "scene.tif"), "OUTPUT_TRUTH": os.path.join(sim_dir, "truth.gpkg"),
    }, feedback=feedback)
    filtered = processing.run("minesar:goldsteinfilter", {
        "INPUT": scene["OUTPUT"], "OUTPUT": os.path.join(sim_dir, "scene_filtered.tif"),
    }, feedback=feedback)
    residues = [processing.run("minesar:phaseresidues", {
        "INPUT": path, "OUTPUT": os.path.join(sim_dir, f"residues_{name}.tif")}, feedback=feedback)["TOTAL"]
        for name, path in (("raw", scene["OUTPUT"]), ("filtered", filtered["OUTPUT"]))]
    return {
        "sbas": sbas, "hotspots": hotspots["OUTPUT"], "scene": scene["OUTPUT"], "truth": scene["OUTPUT_TRUTH"],
        "filtered": filtered["OUTPUT"], "residues": residues,
    }


def mining_area_in_time(output_dir):
    """The whole pipeline on a simulated sequence: detection → surface activity, SBAS → mine activity."""
    import processing
    from qgis.core import QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    folder = os.path.join(output_dir, "sequence")
    sequence = processing.run("minesar:simulatesequence", {
        "WIDTH": 512, "HEIGHT": 384, "SEED": 3, "OUTPUT": folder, "OUTPUT_MINES": os.path.join(folder, "mines.gpkg")},
        feedback=feedback)
    detections = []
    for path in sequence["INTERFEROGRAMS"]:
        pair = os.path.basename(path)[:-4]
        detections.append(processing.run("minesar:detectsubsidence", {
            "INPUT": path, "MODEL": "yolobasin", "DEVICE": "cpu",
            "OUTPUT": os.path.join(folder, "detections", f"{pair}.gpkg")}, feedback=feedback)["OUTPUT"])
    # One layer of every detection, for the map and the Temporal Controller (date1/date2 per feature).
    merged = processing.run("native:mergevectorlayers", {
        "LAYERS": detections, "OUTPUT": os.path.join(folder, "detections", "all_pairs.gpkg")}, feedback=feedback)
    surface = processing.run("minesar:surfaceactivity", {
        "INPUT": detections, "TEMPLATE": sequence["INTERFEROGRAMS"][0],
        "OUTPUT_ACTIVITY": os.path.join(folder, "activity", "surface_activity.tif"),
        "OUTPUT_SITES": os.path.join(folder, "activity", "sites.gpkg")}, feedback=feedback)
    sbas = processing.run("minesar:sbasinversion", {
        "INPUT": sequence["UNWRAPPED"], "COHERENCE": sequence["COHERENCE_STACK"], "WEIGHTING": "coherence",
        "REFERENCE": sequence["REFERENCE"],
        "OUTPUT_TIMESERIES": os.path.join(folder, "sbas", "timeseries.tif"),
        "OUTPUT_VELOCITY": os.path.join(folder, "sbas", "velocity.tif"),
        "OUTPUT_COHERENCE": os.path.join(folder, "sbas", "temporal_coherence.tif")}, feedback=feedback)
    with _quiet_gdal():  # the coherence raster is opened as a layer: see _quiet_gdal
        mines = processing.run("minesar:mineactivity", {
            "INPUT": sequence["OUTPUT_MINES"], "VELOCITY": sbas["OUTPUT_VELOCITY"],
            "COHERENCE": sbas["OUTPUT_COHERENCE"], "OUTPUT": os.path.join(folder, "activity", "mine_activity.gpkg")},
            feedback=feedback)
    return {"folder": folder, "sequence": sequence, "detections": detections, "all_detections": merged["OUTPUT"],
            "surface": surface, "sbas": sbas, "mines": mines}


def _sequence_summary(steps):
    """(basins detected, sites, mines whose activity class matches the truth, mines) from the outputs."""
    from qgis.core import QgsVectorLayer

    basins = QgsVectorLayer(steps["all_detections"], "basins", "ogr").featureCount()
    layer = QgsVectorLayer(steps["mines"]["OUTPUT"], "mines", "ogr")
    rows = [(f["ACTIVITY"], f["true_class"]) for f in layer.getFeatures()]
    return basins, steps["surface"]["SITES"], sum(found == truth for found, truth in rows), len(rows)


@contextlib.contextmanager
def _quiet_gdal():
    """QGIS gives a multi-band raster a default renderer stretched over each band's histogram
    before MineSAR's style replaces it; on a constant band (the series' first epoch, all zeros)
    GDAL complains on stderr about a histogram it does not need."""
    from osgeo import gdal

    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        yield
    finally:
        gdal.PopErrorHandler()


def _overview_layout(project, panels, output_dir):
    """A second print layout: one map per (title, layers) panel, side by side, rendered to PNG."""
    from qgis.core import (
        QgsLayoutItemLabel,
        QgsLayoutItemMap,
        QgsLayoutPoint,
        QgsLayoutSize,
        QgsPrintLayout,
        QgsUnitTypes,
    )
    from qgis.PyQt.QtGui import QColor, QFont

    layout = QgsPrintLayout(project)
    layout.initializeDefaults()
    layout.setName("Deformation and simulation")
    page_w, page_h = 420.0, 160.0
    layout.pageCollection().page(0).setPageSize(QgsLayoutSize(page_w, page_h, QgsUnitTypes.LayoutMillimeters))
    cell_w = (page_w - 20) / len(panels)
    for index, (title, layers) in enumerate(panels):
        extent = layers[-1].extent()
        map_w = cell_w - 8
        map_h = min(page_h - 30, map_w * extent.height() / extent.width())
        map_w = map_h * extent.width() / extent.height()
        x = 10 + index * cell_w + (cell_w - map_w) / 2
        item = QgsLayoutItemMap(layout)
        item.attemptMove(QgsLayoutPoint(x, 18, QgsUnitTypes.LayoutMillimeters))
        item.attemptResize(QgsLayoutSize(map_w, map_h, QgsUnitTypes.LayoutMillimeters))
        item.setLayers(layers)
        item.setKeepLayerSet(True)
        item.setCrs(layers[-1].crs())  # the simulated scene is in UTM, the project in degrees
        item.setExtent(extent)
        item.setFrameEnabled(True)
        item.setBackgroundColor(QColor(205, 205, 205))
        layout.addLayoutItem(item)
        label = QgsLayoutItemLabel(layout)
        label.setText(title)
        label.setFont(QFont("DejaVu Sans", 10))
        label.attemptMove(QgsLayoutPoint(10 + index * cell_w, 8, QgsUnitTypes.LayoutMillimeters))
        label.attemptResize(QgsLayoutSize(cell_w, 8, QgsUnitTypes.LayoutMillimeters))
        layout.addLayoutItem(label)
    project.layoutManager().addLayout(layout)
    return render_png(layout, os.path.join(output_dir, "minesar_overview.png"))


def add_deformation_and_simulation(project, extra, output_dir):
    from qgis.core import QgsRasterLayer, QgsVectorLayer

    from minesar.ui.styles import (
        style_coherence,
        style_deformation,
        style_hotspot_classes,
        style_truth_polygons,
        style_wrapped_phase,
    )

    root = project.layerTreeRoot()
    loaded = {}

    def add(group, path, name, style, provider="gdal"):
        with _quiet_gdal():
            layer = QgsRasterLayer(path, name) if provider == "gdal" else QgsVectorLayer(path, name, provider)
        if not layer.isValid():
            raise SystemExit(f"QGIS cannot open {path}")
        style(layer)
        project.addMapLayer(layer, False)
        group.insertLayer(0, layer)
        loaded[name] = layer
        return layer

    sbas_group = root.insertGroup(0, "SBAS (17 real pairs)")
    sbas = extra["sbas"]
    add(sbas_group, sbas["OUTPUT_COHERENCE"], "SBAS temporal coherence", style_coherence)
    add(sbas_group, sbas["OUTPUT_TIMESERIES"], "SBAS time series (mm)", lambda l: style_deformation(l, "mm"))
    add(sbas_group, sbas["OUTPUT_VELOCITY"], "SBAS velocity (mm/yr)", lambda l: style_deformation(l, "mm/yr"))
    add(sbas_group, extra["hotspots"], "Gi* hot and cold spots", style_hotspot_classes)
    sim_group = root.insertGroup(1, "Simulation")
    add(sim_group, extra["scene"], "simulated interferogram", style_wrapped_phase)
    add(sim_group, extra["filtered"], "simulated interferogram, Goldstein-filtered", style_wrapped_phase)
    add(sim_group, extra["truth"], "simulation truth", style_truth_polygons, provider="ogr")
    for name in ("SBAS temporal coherence", "SBAS time series (mm)", "Gi* hot and cold spots"):
        root.findLayer(loaded[name].id()).setItemVisibilityChecked(False)
    return _overview_layout(project, [
        ("SBAS velocity (mm/yr), 17 real pairs", [loaded["SBAS velocity (mm/yr)"]]),
        ("Gi* hot (red) and cold (blue) spots of the velocity", [loaded["Gi* hot and cold spots"]]),
        ("Simulated interferogram and its truth", [loaded["simulation truth"], loaded["simulated interferogram"]]),
        ("The same, Goldstein-filtered (α = 0.5)",
         [loaded["simulation truth"], loaded["simulated interferogram, Goldstein-filtered"]]),
    ], output_dir)


def _label(layer, field):
    from qgis.core import QgsPalLayerSettings, QgsTextBufferSettings, QgsTextFormat, QgsVectorLayerSimpleLabeling
    from qgis.PyQt.QtGui import QColor, QFont

    settings = QgsPalLayerSettings()
    settings.fieldName = field
    # Above the patch, where a detection's score label does not sit.
    settings.placement = QgsPalLayerSettings.OverPoint
    settings.quadOffset = QgsPalLayerSettings.QuadrantAboveRight
    settings.xOffset, settings.yOffset = 2.0, -2.0
    settings.displayAll = True
    text = QgsTextFormat()
    text.setFont(QFont("DejaVu Sans", 9, QFont.Bold))
    buffer = QgsTextBufferSettings()
    buffer.setEnabled(True)
    buffer.setColor(QColor("white"))
    text.setBuffer(buffer)
    settings.setFormat(text)
    layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
    layer.setLabelsEnabled(True)


def _drop_unused_categories(layer):
    """Categories no feature has (no mine is "no_data") would only lengthen the legend."""
    renderer = layer.renderer()
    present = set(layer.uniqueValues(layer.fields().indexOf(renderer.classAttribute())))
    for index in reversed(range(len(renderer.categories()))):
        if renderer.categories()[index].value() not in present:
            renderer.deleteCategory(index)


def add_mining_area(project, steps):
    """The sequence's layers, styled and temporal, in one group; the project's time range."""
    from datetime import date

    from qgis.core import QgsRasterLayer, QgsVectorLayer

    from minesar.core.activity import STRONG_FROM_PERCENT, WEAK_BELOW_PERCENT
    from minesar.ui.styles import (
        style_activity_days,
        style_coherence,
        style_deformation,
        style_detected_basins,
        style_diverging,
        style_mine_activity,
        style_mine_truth,
        style_surface_sites,
        style_wrapped_phase,
    )
    from minesar.ui.temporal import epoch_layers, make_temporal, per_band_supported, set_project_time

    sequence = steps["sequence"]
    group = project.layerTreeRoot().insertGroup(0, "Mining area in time (simulated, truth known)")
    loaded = {}

    def add(parent, path, name, style, vector=False, visible=True):
        with _quiet_gdal():
            layer = QgsVectorLayer(path, name, "ogr") if vector else QgsRasterLayer(path, name)
        if not layer.isValid():
            raise SystemExit(f"QGIS cannot open {path}")
        style(layer)
        make_temporal(layer)  # a no-op for layers without dates
        project.addMapLayer(layer, False)
        parent.addLayer(layer).setItemVisibilityChecked(visible)
        loaded[name] = layer
        return layer

    def mine_activity_style(layer):
        style_mine_activity(layer)
        _drop_unused_categories(layer)
        layer.setOpacity(0.75)

    def truth_style(layer):
        style_mine_truth(layer)
        _drop_unused_categories(layer)
        _label(layer, "name")

    add(group, sequence["OUTPUT_MINES"], "mine patches, true class", truth_style, vector=True)
    add(group, steps["mines"]["OUTPUT"], "mine activity", mine_activity_style, vector=True)
    add(group, steps["surface"]["OUTPUT_SITES"], "active sites",
        lambda layer: style_surface_sites(layer, WEAK_BELOW_PERCENT, STRONG_FROM_PERCENT), vector=True)
    add(group, steps["all_detections"], "detected basins", style_detected_basins, vector=True)
    add(group, steps["surface"]["OUTPUT_ACTIVITY"], "surface activity (days)", style_activity_days)
    sbas = steps["sbas"]
    add(group, sbas["OUTPUT_VELOCITY"], "SBAS velocity (mm/yr), simulated stack",
        lambda layer: style_deformation(layer, "mm/yr"))
    add(group, sbas["OUTPUT_TIMESERIES"], "SBAS time series (mm), simulated stack",
        lambda layer: style_deformation(layer, "mm"), visible=False)
    add(group, sbas["OUTPUT_COHERENCE"], "SBAS temporal coherence, simulated stack", style_coherence, visible=False)
    add(group, sequence["TRUE_VELOCITY"], "true LOS velocity (mm/yr)", lambda layer: style_deformation(layer, "mm/yr"),
        visible=False)
    if not per_band_supported():
        # QGIS < 3.38 cannot give bands their own dates: one band view per epoch plays the series.
        series = loaded["SBAS time series (mm), simulated stack"]
        renderer = series.renderer()
        low, high = renderer.classificationMin(), renderer.classificationMax()
        epochs = group.addGroup("SBAS displacement by epoch (mm; plays in the Temporal Controller)")
        epochs.setItemVisibilityChecked(False)
        for layer in epoch_layers(series, lambda layer: style_diverging(layer, low, high, "mm")):
            project.addMapLayer(layer, False)
            epochs.addLayer(layer)
            loaded[layer.name()] = layer
    pairs = group.addGroup("Wrapped interferograms (play them in the Temporal Controller)")
    for path in sequence["INTERFEROGRAMS"]:
        add(pairs, path, "interferogram " + os.path.basename(path)[:-4].replace("_", " → "), style_wrapped_phase)
    first, last = date.fromisoformat(sequence["FIRST"]), date.fromisoformat(sequence["LAST"])
    set_project_time(project, first, last, (last - first).days // (len(sequence["INTERFEROGRAMS"])))
    return loaded


def _mining_layout(project, loaded, steps, output_dir):
    """"Mining area in time": one interferogram with its detections (a temporal map frame), the
    surface activity with its sites, the SBAS velocity with the mine activity; rendered to PNG."""
    from qgis.core import (
        QgsLayerTree,
        QgsLayoutItemLabel,
        QgsLayoutItemLegend,
        QgsLayoutItemMap,
        QgsLayoutPoint,
        QgsLayoutSize,
        QgsPrintLayout,
        QgsUnitTypes,
    )
    from qgis.PyQt.QtGui import QColor, QFont

    from minesar.core.io.products import dates_from_name
    from minesar.ui.temporal import date_range

    sequence = steps["sequence"]
    shown = 2  # the third interval: M1 and M2 both at work
    first, second = dates_from_name(sequence["INTERFEROGRAMS"][shown])
    frame = date_range(first, second)
    pair = f"{first} → {second}"
    truth = loaded["mine patches, true class"]
    panels = [
        (f"Interferogram {pair} and the basins detected in it (a map frame at that time)",
         [truth, loaded["detected basins"]] + [loaded[n] for n in loaded if n.startswith("interferogram ")], frame),
        (f"Surface activity: days detected, {sequence['FIRST']} … {sequence['LAST']}, and the active sites",
         [truth, loaded["active sites"], loaded["surface activity (days)"]], None),
        ("SBAS velocity of the stack (mm/yr) and mine activity of each patch",
         [truth, loaded["mine activity"], loaded["SBAS velocity (mm/yr), simulated stack"]], None),
    ]
    layout = QgsPrintLayout(project)
    layout.initializeDefaults()
    layout.setName("Mining area in time")
    extent = loaded["surface activity (days)"].extent()  # the sequence's grid
    cell_w = 400.0 / len(panels)
    map_w = cell_w - 8
    map_h = map_w * extent.height() / extent.width()
    page_w, page_h = 420.0, 26 + map_h + 52
    layout.pageCollection().page(0).setPageSize(QgsLayoutSize(page_w, page_h, QgsUnitTypes.LayoutMillimeters))

    def text(content, size, x, y, width, height):
        label = QgsLayoutItemLabel(layout)
        label.setText(content)
        label.setFont(QFont("DejaVu Sans", size))
        label.attemptMove(QgsLayoutPoint(x, y, QgsUnitTypes.LayoutMillimeters))
        label.attemptResize(QgsLayoutSize(width, height, QgsUnitTypes.LayoutMillimeters))
        layout.addLayoutItem(label)

    text("MineSAR demo: a simulated mining area in time (six mines, truth known) — detection, surface activity, "
         "SBAS and mine activity", 14, 10, 5, page_w - 20, 10)
    for index, (caption, layers, span) in enumerate(panels):
        x = 10 + index * cell_w + 4
        item = QgsLayoutItemMap(layout)
        item.attemptMove(QgsLayoutPoint(x, 26, QgsUnitTypes.LayoutMillimeters))
        item.attemptResize(QgsLayoutSize(map_w, map_h, QgsUnitTypes.LayoutMillimeters))
        item.setLayers(layers)
        item.setKeepLayerSet(True)
        item.setCrs(truth.crs())
        item.setExtent(extent)
        item.setFrameEnabled(True)
        item.setBackgroundColor(QColor(235, 235, 235))
        if span is not None:  # the map at one time: only what the Temporal Controller shows then
            item.setIsTemporal(True)
            item.setTemporalRange(span)
        layout.addLayoutItem(item)
        text(caption, 9, x, 16, map_w, 9)
    legend = QgsLayoutItemLegend(layout)
    legend.setTitle("")
    legend.setAutoUpdateModel(False)
    tree = QgsLayerTree()
    for name in ("detected basins", "active sites", "mine activity", "mine patches, true class"):
        tree.addLayer(loaded[name])
    legend.model().setRootGroup(tree)
    legend.setColumnCount(4)
    legend.setSplitLayer(True)
    legend.setEqualColumnWidth(True)
    legend.attemptMove(QgsLayoutPoint(14, 26 + map_h + 3, QgsUnitTypes.LayoutMillimeters))
    layout.addLayoutItem(legend)
    text("Mines labelled M1–M6 and outlined in the colour of their true activity class (M4, an open pit, is no data "
         "in every pair). Open minesar_demo.qgz and the Temporal Controller to play the interferograms, the "
         "detections and the sites in time.", 8, 10, page_h - 9, page_w - 20, 7)
    project.layoutManager().addLayout(layout)
    return render_png(layout, os.path.join(output_dir, "minesar_demo.png"))


def build_project(results, output_dir, extra=None, steps=None):
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsLayerTree,
        QgsLayoutItemLabel,
        QgsLayoutItemLegend,
        QgsLayoutItemMap,
        QgsLegendRenderer,
        QgsLegendStyle,
        QgsMapLayerLegendUtils,
        QgsLayoutPoint,
        QgsLayoutSize,
        QgsPrintLayout,
        QgsProject,
        QgsRasterLayer,
        QgsUnitTypes,
    )
    from qgis.PyQt.QtGui import QColor, QFont

    from minesar.ui.styles import robust_range, style_interferogram

    project = QgsProject.instance()
    project.clear()
    project.setTitle("MineSAR demo: real GAMMA interferograms")
    project.setCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    root = project.layerTreeRoot()
    unwrapped_group = root.addGroup("Unwrapped interferograms (rad)")
    coherence_group = root.addGroup("Coherence")

    layers = []
    for pair, outputs in results:
        layer = QgsRasterLayer(outputs["unwrapped"], f"unwrapped {pair}")
        if not layer.isValid():
            raise SystemExit(f"QGIS cannot open {outputs['unwrapped']}")
        layers.append((pair, layer))
    # One colour scale for every panel, symmetric about zero, so the pairs compare by eye.
    extreme = max(max(abs(v) for v in robust_range(layer)) for _, layer in layers)
    for pair, layer in layers:
        style_interferogram(layer, (-extreme, extreme))
        project.addMapLayer(layer, False)
        unwrapped_group.addLayer(layer).setItemVisibilityChecked(pair == layers[0][0])
    for pair, outputs in results:
        if "coherence" in outputs:
            layer = QgsRasterLayer(outputs["coherence"], f"coherence {pair}")
            style_interferogram(layer)
            project.addMapLayer(layer, False)
            coherence_group.addLayer(layer).setItemVisibilityChecked(False)

    layout = QgsPrintLayout(project)
    layout.initializeDefaults()
    layout.setName("All pairs")
    page_w, page_h = 420.0, 297.0  # A3 landscape, mm
    layout.pageCollection().page(0).setPageSize(QgsLayoutSize(page_w, page_h, QgsUnitTypes.LayoutMillimeters))
    title = QgsLayoutItemLabel(layout)
    title.setText(
        "MineSAR demo: 17 ENVISAT interferograms over Sydney (GAMMA, PyRate test data), unwrapped phase in radians"
    )
    title.setFont(QFont("DejaVu Sans", 16))
    title.attemptMove(QgsLayoutPoint(10, 6, QgsUnitTypes.LayoutMillimeters))
    title.attemptResize(QgsLayoutSize(page_w - 20, 12, QgsUnitTypes.LayoutMillimeters))
    layout.addLayoutItem(title)

    columns, rows = 6, 3
    cell_w, cell_h = (page_w - 20) / columns, (page_h - 30) / rows
    extent = layers[0][1].extent()
    aspect = extent.width() / extent.height()
    map_h = cell_h - 10
    map_w = min(cell_w - 6, map_h * aspect)
    map_h = map_w / aspect
    for index, (pair, layer) in enumerate(layers):
        x = 10 + (index % columns) * cell_w + (cell_w - map_w) / 2
        y = 22 + (index // columns) * cell_h
        item = QgsLayoutItemMap(layout)
        item.attemptMove(QgsLayoutPoint(x, y, QgsUnitTypes.LayoutMillimeters))
        item.attemptResize(QgsLayoutSize(map_w, map_h, QgsUnitTypes.LayoutMillimeters))
        item.setLayers([layer])
        item.setKeepLayerSet(True)
        item.setExtent(layer.extent())
        item.setFrameEnabled(True)
        item.setBackgroundColor(QColor(205, 205, 205))  # nodata shows grey, not page white
        layout.addLayoutItem(item)
        label = QgsLayoutItemLabel(layout)
        label.setText(pair.replace("-", " – "))
        label.setFont(QFont("DejaVu Sans", 9))
        label.attemptMove(QgsLayoutPoint(x, y + map_h + 1, QgsUnitTypes.LayoutMillimeters))
        label.attemptResize(QgsLayoutSize(map_w + 6, 6, QgsUnitTypes.LayoutMillimeters))
        layout.addLayoutItem(label)

    legend = QgsLayoutItemLegend(layout)
    legend.setTitle("Unwrapped phase (rad)")
    legend.setSymbolWidth(8)
    legend.setSymbolHeight(14)
    legend.setAutoUpdateModel(False)
    legend_tree = QgsLayerTree()
    legend_node = legend_tree.addLayer(layers[0][1])
    legend.model().setRootGroup(legend_tree)
    # Show the colour bar only, not the "Band 1: …" line above it.
    QgsMapLayerLegendUtils.setLegendNodeOrder(legend_node, [1])
    legend.model().refreshLayerLegend(legend_node)
    QgsLegendRenderer.setNodeLegendStyle(legend_node, QgsLegendStyle.Hidden)
    slot = len(layers)
    legend.attemptMove(
        QgsLayoutPoint(10 + (slot % columns) * cell_w + 4, 22 + (slot // columns) * cell_h, QgsUnitTypes.LayoutMillimeters)
    )
    layout.addLayoutItem(legend)
    project.layoutManager().addLayout(layout)
    overview = add_deformation_and_simulation(project, extra, output_dir) if extra else None
    mining_png = None
    if steps:
        loaded = add_mining_area(project, steps)
        mining_png = _mining_layout(project, loaded, steps, output_dir)

    project_path = os.path.join(output_dir, "minesar_demo.qgz")
    if not project.write(project_path):
        raise SystemExit(f"Could not write {project_path}: {project.error()}")
    png_path = render_png(layout, os.path.join(output_dir, "minesar_pairs.png"))
    return project_path, png_path, overview, mining_png


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=os.path.join(ROOT, "demo-output"))
    parser.add_argument("--data", default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    output_dir = os.path.abspath(args.output)
    os.makedirs(output_dir, exist_ok=True)

    started = time.time()
    app, _provider = start_qgis()
    results = import_all(args.data, output_dir)
    extra = deformation_and_simulation(results, output_dir)
    steps = mining_area_in_time(output_dir)
    project_path, pairs_png, overview, mining_png = build_project(results, output_dir, extra, steps)
    count = sum(len(outputs) for _, outputs in results)
    print(f"MineSAR demo finished in {time.time() - started:.1f} s: {count} rasters imported.")
    print(f"  GeoTIFFs : {os.path.join(output_dir, 'interferograms')}/, {os.path.join(output_dir, 'coherence')}/")
    print(f"  Project  : {project_path}  (open it in QGIS)")
    sbas = extra["sbas"]
    print(f"  SBAS     : {os.path.join(output_dir, 'sbas')}/  ({sbas['EPOCHS']} epochs, {sbas['PAIRS']} pairs, "
          f"{sbas['COMPONENTS']} connected network(s)); Gi* hot spots of the velocity")
    print(f"  Simulated: {os.path.join(output_dir, 'simulation')}/  (residues {extra['residues'][0]} raw → "
          f"{extra['residues'][1]} after the Goldstein filter)")
    basins, sites, right, mines = _sequence_summary(steps)
    sequence = steps["sequence"]
    print(f"  Mining   : {steps['folder']}/  (simulated, truth known: {len(sequence['INTERFEROGRAMS'])} interferograms "
          f"{sequence['FIRST']} … {sequence['LAST']} in interferograms/, a {sequence['PAIRS']}-pair stack in stack/, "
          f"the mines in mines.gpkg)")
    print(f"             detections/: {basins} basins found by the shipped Light YOLO-Basin; activity/: {sites} active "
          f"sites, mine activity right for {right} of {mines} mines; sbas/: the stack's SBAS")
    print(f"  Map      : {mining_png}  (the mining area in time)")
    print(f"  Pairs    : {pairs_png}")
    print(f"  Overview : {overview}")
    from qgis.core import QgsProject

    QgsProject.instance().clear()
    app.exitQgis()


if __name__ == "__main__":
    main()
