"""Native QGIS styles for MineSAR layers.

Wrapped phase gets a cyclic ramp whose colours are those of ``core.io.colours`` (the rasmph
wheel), so a layer and a rendered colour interferogram look the same; unwrapped phase a
diverging ramp over its robust range (2nd–98th percentile stored at import); coherence a grey
stretch over 0–1. NaN nodata is transparent by itself.
"""
import math

import numpy as np
from qgis.core import (
    QgsBasicNumericFormat,
    QgsColorRampLegendNodeSettings,
    QgsColorRampShader,
    QgsContrastEnhancement,
    QgsGradientColorRamp,
    QgsGradientStop,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandGrayRenderer,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtGui import QColor

from ..core.io.colours import phase_to_rgb
from ..core.io.rasters import read_tags
from ..core.errors import MineSARError

# ColorBrewer RdYlBu, reversed so that the high end is red.
_DIVERGING = ["#313695", "#4575b4", "#74add1", "#abd9e9", "#e0f3f8", "#ffffbf",
              "#fee090", "#fdae61", "#f46d43", "#d73027", "#a50026"]
_CYCLIC_STOPS = 36


def _pseudocolor(layer: QgsRasterLayer, values, colours, label_unit: str, band: int = 1) -> None:
    low, high = float(values[0]), float(values[-1])
    ramp = QgsGradientColorRamp(
        colours[0],
        colours[-1],
        False,
        [QgsGradientStop((v - low) / (high - low), c) for v, c in zip(values[1:-1], colours[1:-1])],
    )
    shader = QgsColorRampShader(low, high)
    shader.setColorRampType(QgsColorRampShader.Interpolated)
    shader.setSourceColorRamp(ramp)
    shader.setColorRampItemList(
        [QgsColorRampShader.ColorRampItem(float(v), c, f"{v:.3g} {label_unit}".strip()) for v, c in zip(values, colours)]
    )
    legend = QgsColorRampLegendNodeSettings()
    number_format = QgsBasicNumericFormat()
    number_format.setNumberDecimalPlaces(2)
    legend.setNumericFormat(number_format)
    if label_unit:
        legend.setSuffix(f" {label_unit}")
    shader.setLegendSettings(legend)
    raster_shader = QgsRasterShader(low, high)
    raster_shader.setRasterShaderFunction(shader)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), band, raster_shader)
    renderer.setClassificationMin(low)
    renderer.setClassificationMax(high)
    layer.setRenderer(renderer)


def style_wrapped_phase(layer: QgsRasterLayer) -> None:
    values = np.linspace(-math.pi, math.pi, _CYCLIC_STOPS + 1)
    colours = [QColor(*map(int, rgb)) for rgb in phase_to_rgb(values)]
    _pseudocolor(layer, values, colours, "rad")
    layer.triggerRepaint()


def style_diverging(layer: QgsRasterLayer, low: float, high: float, unit: str = "", band: int = 1) -> None:
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        raise MineSARError(f"{layer.name()}: no value range to style ({low}, {high}).")
    values = np.linspace(low, high, len(_DIVERGING))
    _pseudocolor(layer, values, [QColor(c) for c in _DIVERGING], unit, band)
    layer.triggerRepaint()


def style_coherence(layer: QgsRasterLayer) -> None:
    renderer = QgsSingleBandGrayRenderer(layer.dataProvider(), 1)
    enhancement = QgsContrastEnhancement(layer.dataProvider().dataType(1))
    enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
    enhancement.setMinimumValue(0.0)
    enhancement.setMaximumValue(1.0)
    renderer.setContrastEnhancement(enhancement)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def robust_range(layer: QgsRasterLayer, band_tags=None):
    """(low, high) from the percentiles stored at import, else the layer's statistics."""
    band = read_tags(layer.source())[1] if band_tags is None else band_tags
    try:
        return float(band["MINESAR_P02"]), float(band["MINESAR_P98"])
    except (KeyError, ValueError):
        stats = layer.dataProvider().bandStatistics(1)
        return stats.minimumValue, stats.maximumValue


def style_interferogram(layer: QgsRasterLayer, value_range=None) -> str:
    """Style an imported layer by the kind stored in it; returns the kind."""
    tags, band_tags = read_tags(layer.source())
    kind = tags.get("MINESAR_KIND", "")
    if kind == "wrapped":
        style_wrapped_phase(layer)
    elif kind == "coherence":
        style_coherence(layer)
    elif kind == "unwrapped":
        low, high = value_range or robust_range(layer, band_tags)
        style_diverging(layer, low, high, "rad")
    return kind


def style_truth_polygons(layer) -> None:
    """Simulation truth: mining basins outlined red, non-mining signals dashed grey, no fill."""
    from qgis.core import QgsCategorizedSymbolRenderer, QgsFillSymbol, QgsRendererCategory

    categories = []
    for value, colour, line_style, label in (("mining", "#d7191c", "solid", "mining basin"),
                                             ("background", "#636363", "dash", "non-mining signal")):
        symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": colour, "outline_width": "0.6",
                                             "outline_style": line_style})
        categories.append(QgsRendererCategory(value, symbol, label))
    layer.setRenderer(QgsCategorizedSymbolRenderer("label", categories))

def _paletted(layer: QgsRasterLayer, classes) -> None:
    """Categorized style: ``classes`` = [(value, colour, label)]."""
    from qgis.core import QgsPalettedRasterRenderer

    renderer = QgsPalettedRasterRenderer(
        layer.dataProvider(), 1, [QgsPalettedRasterRenderer.Class(float(v), QColor(c), label) for v, c, label in classes]
    )
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_residues(layer: QgsRasterLayer) -> None:
    """Positive residues red, negative blue; residue-free loops left out (transparent)."""
    _paletted(layer, [(1, "#d7191c", "+1 residue"), (-1, "#2c7bb6", "-1 residue")])


# ArcGIS's hot-spot colours: reds for hot, blues for cold, pale for weaker confidence.
HOTSPOT_COLOURS = {3: "#d62f27", 2: "#ed7551", 1: "#fab984", 0: "#f7f7f2", -1: "#c0ccbe", -2: "#849eba", -3: "#4575b5"}


def style_hotspot_classes(layer: QgsRasterLayer) -> None:
    from ..core.hotspots import CLASS_LABELS

    _paletted(layer, [(level, HOTSPOT_COLOURS[level], CLASS_LABELS[level]) for level in sorted(CLASS_LABELS, reverse=True)])


def style_z_scores(layer: QgsRasterLayer) -> None:
    style_diverging(layer, -3.0, 3.0, "z")


def style_p_values(layer: QgsRasterLayer) -> None:
    renderer = QgsSingleBandGrayRenderer(layer.dataProvider(), 1)
    enhancement = QgsContrastEnhancement(layer.dataProvider().dataType(1))
    enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
    enhancement.setMinimumValue(0.0)
    enhancement.setMaximumValue(0.1)  # everything above the 90 % level is plain white
    renderer.setContrastEnhancement(enhancement)
    layer.setRenderer(renderer)

def style_deformation(layer: QgsRasterLayer, unit: str = "mm", band: int = 0) -> None:
    """Diverging ramp centred on 0 (blue = negative = subsidence), symmetric over the band's 2–98 %
    range, so one extreme pixel does not wash the map out. ``band`` 0 = the last band: for a
    time series, the cumulative displacement of the last epoch (the first is all zeros)."""
    band = band or layer.bandCount()
    low, high = layer.dataProvider().cumulativeCut(band, 0.02, 0.98, sampleSize=250_000)
    half = max(abs(low), abs(high))
    if not math.isfinite(half) or half == 0:
        stats = layer.dataProvider().bandStatistics(band)
        half = max(abs(stats.minimumValue), abs(stats.maximumValue))
    if not math.isfinite(half) or half == 0:
        half = 1.0
    style_diverging(layer, -half, half, unit, band)


def style_activity_days(layer: QgsRasterLayer) -> None:
    """Graduated ramp of cumulative active days (pale = short, red = long); 0 days transparent,
    so that only ground detected at least once covers the map beneath."""
    from qgis.core import QgsRasterTransparency

    stats = layer.dataProvider().bandStatistics(1)
    high = stats.maximumValue if math.isfinite(stats.maximumValue) and stats.maximumValue > 0 else 1.0
    values = np.linspace(0.0, high, 6)
    colours = [QColor(c) for c in ("#f7f7f7", "#2c7bb6", "#00a6ca", "#f9d057", "#f29e2e", "#d7191c")]
    _pseudocolor(layer, values, colours, "days")
    zero = QgsRasterTransparency.TransparentSingleValuePixel()
    zero.min, zero.max, zero.percentTransparent = 0.0, 0.0, 100.0
    transparency = QgsRasterTransparency()
    transparency.setTransparentSingleValuePixelList([zero])
    layer.renderer().setRasterTransparency(transparency)
    layer.triggerRepaint()


def style_categories(layer, field: str, colours, labels=None) -> None:
    """Categorized vector renderer: ``colours`` maps each class value to a colour name,
    ``labels`` (optional) each value to its legend text."""
    from qgis.core import QgsCategorizedSymbolRenderer, QgsRendererCategory, QgsSymbol

    categories = []
    for value, colour in colours.items():
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        symbol.setColor(QColor(colour))
        symbol.setOpacity(0.8)
        categories.append(QgsRendererCategory(value, symbol, (labels or {}).get(value, str(value))))
    layer.setRenderer(QgsCategorizedSymbolRenderer(field, categories))
    layer.triggerRepaint()


# Mine activity (seed 003 §4.2): deformation red/blue as on the velocity ramp (blue = negative =
# away from the satellite, subsidence), grey for stable ground, purple for unmeasurable, and
# patches off the velocity raster hollow in a light grey so they do not read as "stable".
MINE_ACTIVITY_CLASSES = {
    "positive": ("#d73027", "positive: deformation above +threshold (uplift)"),
    "negative": ("#4575b4", "negative: deformation below −threshold (subsidence)"),
    "none": ("#bdbdbd", "none: within ±threshold"),
    "decorrelated": ("#984ea3", "decorrelated: mostly no coherent measurement"),
    "no_data": ("#f0f0f0", "no data: off the velocity raster"),
}


def style_mine_activity(layer, field: str = "ACTIVITY") -> None:
    """Mine patches categorized by activity class, each with its own colour and legend text."""
    style_categories(layer, field, {k: c for k, (c, _) in MINE_ACTIVITY_CLASSES.items()},
                     {k: label for k, (_, label) in MINE_ACTIVITY_CLASSES.items()})


SURFACE_ACTIVITY_CLASSES = {"weak": "#fee08b", "moderate": "#fc8d59", "strong": "#d73027"}


def style_surface_sites(layer, weak_below: float, strong_from: float, field: str = "CLASS") -> None:
    """Active sites categorized weak/moderate/strong, the legend saying the shares used."""
    labels = {"weak": f"weak: active < {weak_below:g} % of the monitored period",
              "moderate": f"moderate: {weak_below:g} – {strong_from:g} %",
              "strong": f"strong: ≥ {strong_from:g} %"}
    style_categories(layer, field, SURFACE_ACTIVITY_CLASSES, labels)


def style_mine_truth(layer, field: str = "true_class") -> None:
    """Mine patches outlined in the colour of their (true) mine-activity class, unfilled so the
    phase beneath shows; the colours are those of ``style_mine_activity``."""
    from qgis.core import QgsCategorizedSymbolRenderer, QgsFillSymbol, QgsRendererCategory

    categories = [
        QgsRendererCategory(value, QgsFillSymbol.createSimple({"style": "no", "outline_color": colour,
                                                               "outline_width": "0.8"}), f"true class: {value}")
        for value, (colour, _) in MINE_ACTIVITY_CLASSES.items()
    ]
    layer.setRenderer(QgsCategorizedSymbolRenderer(field, categories))
    layer.triggerRepaint()


# Mine patches by kind (seed 003's four mine types), outlined so the image shows through: mines
# in solid outlines, what merely looks like a mine (simulated confusers) in dashed ones.
MINE_KIND_OUTLINES = {
    "coal_gangue": ("#e41a1c", "solid", "coal gangue dump"),
    "iron_ore": ("#ff7f00", "solid", "iron-ore pit"),
    "clay": ("#377eb8", "solid", "clay pit"),
    "sandstone": ("#984ea3", "solid", "sandstone pit"),
    "wind_pad": ("#4d4d4d", "dash", "wind-farm pad (confuser)"),
    "road": ("#878787", "dash", "road (confuser)"),
    "building": ("#e7298a", "dash", "building (confuser)"),
    "cropland": ("#4daf4a", "dash", "cropland (confuser)"),
    "water": ("#1f78b4", "dash", "water (confuser)"),
}


def style_patches_by_kind(layer, field: str = "kind") -> None:
    """Mine-patch polygons outlined, no fill, the outline's colour by ``field`` (kind); any other
    value falls in a thin grey catch-all class."""
    from qgis.core import QgsCategorizedSymbolRenderer, QgsFillSymbol, QgsRendererCategory

    def outline(colour, line_style, width="0.7"):
        return QgsFillSymbol.createSimple({"style": "no", "outline_color": colour, "outline_width": width,
                                           "outline_style": line_style})

    categories = [QgsRendererCategory(kind, outline(colour, line_style), label)
                  for kind, (colour, line_style, label) in MINE_KIND_OUTLINES.items()]
    categories.append(QgsRendererCategory("", outline("#bababa", "solid", "0.4"), "other"))  # "" = all other values
    layer.setRenderer(QgsCategorizedSymbolRenderer(field, categories))
    layer.triggerRepaint()


# Detected basins: outline and a light fill by confidence, so weak detections read as tentative.
BASIN_SCORE_CLASSES = ((0.0, 0.7, "#fecc5c", "score < 0.7"), (0.7, 0.9, "#fd8d3c", "0.7 – 0.9"),
                       (0.9, 1.0001, "#e31a1c", "≥ 0.9"))


def style_detected_basins(layer) -> None:
    """Detected basins graduated by score, labelled with it."""
    from qgis.core import (QgsFillSymbol, QgsGraduatedSymbolRenderer, QgsPalLayerSettings, QgsRendererRange,
                           QgsVectorLayerSimpleLabeling)

    ranges = []
    for low, high, colour, label in BASIN_SCORE_CLASSES:
        fill = QColor(colour)
        symbol = QgsFillSymbol.createSimple({"color": f"{fill.red()},{fill.green()},{fill.blue()},70",
                                             "outline_color": colour,
                                             "outline_width": "0.6"})
        ranges.append(QgsRendererRange(low, high, symbol, label))
    layer.setRenderer(QgsGraduatedSymbolRenderer("score", ranges))
    labels = QgsPalLayerSettings()
    labels.fieldName = "format_number(score, 2)"
    labels.isExpression = True
    layer.setLabeling(QgsVectorLayerSimpleLabeling(labels))
    layer.setLabelsEnabled(True)
    layer.triggerRepaint()
def _outline_style(layer, outline: str, width: str, fill: str = None) -> None:
    from qgis.core import QgsFillSymbol, QgsSingleSymbolRenderer

    properties = {"outline_color": outline, "outline_width": width}
    properties.update({"color": fill, "style": "solid"} if fill else {"style": "no"})
    layer.setRenderer(QgsSingleSymbolRenderer(QgsFillSymbol.createSimple(properties)))
    layer.triggerRepaint()


def style_segments(layer) -> None:
    """Segments: thin yellow outlines, no fill, so the image shows through."""
    _outline_style(layer, "#ffff00", "0.2")


def style_refined_patches(layer) -> None:
    """Refined mine patches: red outline over a translucent orange fill."""
    _outline_style(layer, "#d7191c", "0.6", "253,174,97,90")


def style_patch_scores(layer) -> None:
    """Reference patches by whether the extraction found them: green identified, red missed."""
    style_categories(layer, "IDENTIFIED", {True: "#1a9641", False: "#d7191c"})


# Probability of the positive class: transparent-ish pale at 0 through yellow to dark red at 1.
_PROBABILITY = ["#ffffcc", "#ffeda0", "#feb24c", "#f03b20", "#bd0026"]


def style_probability(layer: QgsRasterLayer) -> None:
    """Segmentation probability 0…1 on a sequential ramp, fixed limits (comparable across rasters).
    0 is fully transparent and the ramp turns opaque by 0.25: the image under it stays visible
    where the network sees nothing, instead of under a pale veil."""
    values = np.linspace(0.0, 1.0, len(_PROBABILITY))
    colours = [QColor(c) for c in _PROBABILITY]
    colours[0].setAlpha(0)
    _pseudocolor(layer, values, colours, "")
    layer.setOpacity(0.8)
    layer.triggerRepaint()


def style_segmentation_mask(layer: QgsRasterLayer, label: str = "subsidence") -> None:
    """Segmentation mask: the positive class in red, background left transparent."""
    _paletted(layer, [(1, "#e31a1c", label)])


def style_segmented_zones(layer) -> None:
    """Segmented zones (subsidence or preliminary mine patches): outlines graduated by mean probability."""
    from qgis.core import QgsFillSymbol, QgsGraduatedSymbolRenderer, QgsRendererRange

    ranges = []
    for low, high, colour in ((0.0, 0.6, "#feb24c"), (0.6, 0.8, "#f03b20"), (0.8, 1.0001, "#bd0026")):
        symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": colour, "outline_width": "0.6"})
        ranges.append(QgsRendererRange(low, high, symbol, f"mean probability {low:.1f}–{min(high, 1.0):.1f}"))
    layer.setRenderer(QgsGraduatedSymbolRenderer("mean_prob", ranges))
    layer.triggerRepaint()


def style_true_colour(layer: QgsRasterLayer) -> bool:
    """Red, green and blue from the bands' colour interpretation (GF-2 stores blue, green, red,
    nir), stretched as QGIS stretches by default. QGIS 3.22 ignores the interpretation and shows
    bands 1-2-3, blue as red. True when the layer had such bands and was restyled."""
    from osgeo import gdal
    from qgis.core import QgsMultiBandColorRenderer, QgsRaster

    if layer.providerType() != "gdal" or layer.bandCount() < 3:
        return False
    wanted = {QgsRaster.RedBand: None, QgsRaster.GreenBand: None, QgsRaster.BlueBand: None}
    for band in range(1, layer.bandCount() + 1):
        interpretation = layer.dataProvider().colorInterpretation(band)
        if interpretation in wanted and wanted[interpretation] is None:
            wanted[interpretation] = band
    if None in wanted.values():
        return False
    red, green, blue = (wanted[key] for key in (QgsRaster.RedBand, QgsRaster.GreenBand, QgsRaster.BlueBand))
    renderer = layer.renderer()
    if isinstance(renderer, QgsMultiBandColorRenderer) and (
            renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (red, green, blue):
        return False
    layer.setRenderer(QgsMultiBandColorRenderer(layer.dataProvider(), red, green, blue))
    layer.setDefaultContrastEnhancement()
    layer.triggerRepaint()
    return True


def style_added_scenes(layers) -> None:
    """For QgsProject.layersAdded: a GF-2 scene that says which band is red opens in true colour on
    QGIS 3.22 too; once per layer, so a style the user or a project sets later stays theirs."""
    for layer in layers:
        if isinstance(layer, QgsRasterLayer) and not layer.customProperty("minesar/true_colour_checked"):
            layer.setCustomProperty("minesar/true_colour_checked", True)
            style_true_colour(layer)
