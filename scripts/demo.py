#!/usr/bin/env python3
"""`make demo`: MineSAR's main job, headless, on the sample data shipped in the repository.

Imports the 17 real GAMMA interferograms (and their coherence) in sample_data/ through the
``minesar:importinterferogram`` Processing algorithm; inverts them into an SBAS time series
(coherence-weighted) and finds Gi* hot and cold spots in its velocity; simulates a wrapped
interferogram scene with its truth polygons and Goldstein-filters it, counting the residues
before and after. Builds a QGIS project holding everything styled, with print layouts of all
pairs and of the deformation and simulation results, and renders them to PNGs. Everything goes
to --output, every step through the Processing algorithms a user would run.
"""
import argparse
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(ROOT, "sample_data", "pyrate_small_gamma")


def start_qgis():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))
    from processing.core.Processing import Processing

    Processing.initialize()
    from minesar.processing_provider.provider import MineSARProvider

    # Python must hold the provider: the registry does not keep its Python side alive.
    provider = MineSARProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    return app, provider


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


def _overview_layout(project, panels, output_dir):
    """A second print layout: one map per (title, layers) panel, side by side, rendered to PNG."""
    from qgis.core import (
        QgsLayoutExporter,
        QgsLayoutItemLabel,
        QgsLayoutItemMap,
        QgsLayoutPoint,
        QgsLayoutSize,
        QgsPrintLayout,
        QgsUnitTypes,
    )
    from qgis.PyQt.QtCore import QSize
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
    path = os.path.join(output_dir, "minesar_overview.png")
    image = QgsLayoutExporter(layout).renderPageToImage(0, QSize(), 110)
    if image.isNull() or not image.save(path, "PNG"):
        raise SystemExit(f"Rendering {path} failed.")
    return path


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


def build_project(results, output_dir, extra=None):
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsLayerTree,
        QgsLayoutExporter,
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
    from qgis.PyQt.QtCore import QSize
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

    project_path = os.path.join(output_dir, "minesar_demo.qgz")
    if not project.write(project_path):
        raise SystemExit(f"Could not write {project_path}: {project.error()}")
    png_path = os.path.join(output_dir, "minesar_demo.png")
    # Rendered to a QImage and saved by Qt: the exporter's own PNG path tries to georeference the
    # file through GDAL, which cannot update PNGs and says so on stderr.
    image = QgsLayoutExporter(layout).renderPageToImage(0, QSize(), 110)
    if image.isNull() or not image.save(png_path, "PNG"):
        raise SystemExit(f"Rendering {png_path} failed.")
    return project_path, png_path, overview


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
    project_path, png_path, overview = build_project(results, output_dir, extra)
    count = sum(len(outputs) for _, outputs in results)
    print(f"MineSAR demo finished in {time.time() - started:.1f} s: {count} rasters imported.")
    print(f"  GeoTIFFs : {os.path.join(output_dir, 'interferograms')}/, {os.path.join(output_dir, 'coherence')}/")
    print(f"  Project  : {project_path}  (open it in QGIS)")
    sbas = extra["sbas"]
    print(f"  SBAS     : {os.path.join(output_dir, 'sbas')}/  ({sbas['EPOCHS']} epochs, {sbas['PAIRS']} pairs, "
          f"{sbas['COMPONENTS']} connected network(s)); Gi* hot spots of the velocity")
    print(f"  Simulated: {os.path.join(output_dir, 'simulation')}/  (residues {extra['residues'][0]} raw → "
          f"{extra['residues'][1]} after the Goldstein filter)")
    print(f"  Map      : {png_path}")
    print(f"  Overview : {overview}")
    from qgis.core import QgsProject

    QgsProject.instance().clear()
    app.exitQgis()


if __name__ == "__main__":
    main()
