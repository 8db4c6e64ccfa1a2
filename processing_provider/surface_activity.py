"""minesar:surfaceactivity: detections on sequential interferograms → active days and sites."""
import os
from datetime import date, datetime

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.activity import STRONG_FROM_PERCENT, WEAK_BELOW_PERCENT, Detections, surface_activity
from ..core.errors import MineSARError
from ..core.io.products import dates_from_name
from ..ui.styles import style_activity_days, style_surface_sites
from ..ui.temporal import with_temporal
from .base import MineSARAlgorithm, progress_for, style_when_loaded, user_errors


def _to_date(value):
    """A date from a field value: QDate, QDateTime, datetime, date, 'YYYY-MM-DD' or 'YYYYMMDD'."""
    if value is None:
        return None
    if hasattr(value, "isNull") and value.isNull():  # NULL QVariant, null QDate/QDateTime
        return None
    if hasattr(value, "toPyDateTime"):  # QDateTime (checked first: it has no toPyDate)
        value = value.toPyDateTime()
    elif hasattr(value, "toPyDate"):
        value = value.toPyDate()
    if isinstance(value, datetime):  # a datetime is a date too: drop the time of day
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if len(text) >= 10 and text[4] == "-" and text[7] == "-":
        text = text[:4] + text[5:7] + text[8:10]  # ISO, perhaps followed by a time
    if len(text) >= 8 and text[:8].isdigit() and (len(text) == 8 or not text[8].isdigit()):
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError:
            return None
    return None


def _field_date(layer, feature, index, field_name):
    value = feature.attribute(index)
    parsed = _to_date(value)
    if parsed is None and value is not None and not (hasattr(value, "isNull") and value.isNull()) and str(value).strip():
        raise MineSARError(
            f"{layer.name()} ({layer.source()}): feature {feature.id()} has {field_name} = '{value}', not a date "
            "(use a date field or text YYYY-MM-DD / YYYYMMDD)."
        )
    return parsed


def layer_detections(layer, target_crs, context):
    """Detections of one layer: dates from its name, its file name, or date1/date2 fields.

    Every (date1, date2) met registers its interferogram, even through a feature whose geometry
    is empty: an interferogram in which nothing was detected still counts in the monitored
    period. Layers holding parts of the same interferogram (e.g. per tile) are merged later, by
    dates, in core.activity.
    """
    from shapely import wkb

    transform = QgsCoordinateTransform(layer.crs(), target_crs, context.transformContext())
    source_name = os.path.basename(layer.source().split("|")[0])
    date1, date2 = dates_from_name(layer.name())
    if date1 is None:
        date1, date2 = dates_from_name(source_name)
    names = [f.name().lower() for f in layer.fields()]
    by_dates = {}
    for feature in layer.getFeatures():
        d1, d2 = date1, date2
        if "date1" in names and "date2" in names:
            d1 = _field_date(layer, feature, names.index("date1"), "date1") or d1
            d2 = _field_date(layer, feature, names.index("date2"), "date2") or d2
        if d1 is None or d2 is None:
            raise MineSARError(
                f"{layer.name()} ({source_name}): no interferogram dates — name the layer or file "
                "YYYYMMDD_YYYYMMDD, or give date1/date2 fields."
            )
        geometries = by_dates.setdefault((d1, d2), [])
        geometry = QgsGeometry(feature.geometry())
        if geometry.isEmpty():
            continue
        geometry.transform(transform)
        geometries.append(wkb.loads(bytes(geometry.asWkb())))
    if not by_dates and date1 is not None:
        by_dates[(date1, date2)] = []  # an interferogram with no detection still counts as monitored
    if not by_dates:
        raise MineSARError(f"{layer.name()}: no features and no dates in the name.")
    return [Detections(f"{layer.name()} {d1:%Y%m%d}_{d2:%Y%m%d}", d1, d2, geoms) for (d1, d2), geoms in by_dates.items()]


class SurfaceActivityAlgorithm(MineSARAlgorithm):
    _name = "surfaceactivity"
    _display_name = "Surface activity from sequential detections"
    _group_id = "deformation"
    _help = (
        "Surface activity (seed 001 §IV-D): how long the ground moved, from subsidence detections on "
        "sequential interferograms (N scenes → N−1 interferograms, no time overlap).\n\n"
        "<b>INPUT</b>: polygon layers of detections, one per interferogram (dates from the layer name or "
        "file name YYYYMMDD_YYYYMMDD), or layers with date1/date2 fields. <b>TEMPLATE</b>: a raster whose "
        "grid the result takes; otherwise <b>EXTENT</b> and <b>PIXEL_SIZE</b> (metres, in the first layer's CRS, "
        "which must then be projected). Several layers with the same dates (e.g. per tile) are one "
        "interferogram; a feature with dates but no geometry registers its interferogram as monitored.\n\n"
        "<b>OUTPUT_ACTIVITY</b>: per pixel the sum of the time spans (days) of the interferograms in which it "
        "is detected (pixel centre inside a detection). <b>OUTPUT_SITES</b>: one feature per site k1…kN (the "
        "merged footprint of overlapping detections) with first/last active date, active days, share of the "
        "monitored period (days the interferograms cover, gaps excluded), class (weak below "
        f"{WEAK_BELOW_PERCENT}% as in the paper, strong from STRONG_FROM, default {STRONG_FROM_PERCENT}%), and "
        "the timeline of interferograms in which it was detected. Ground never detected has 0 days (drawn "
        "transparent).\n\nThe strong boundary: the paper calls < 15.3 % weak and quotes 61.1 % as strong "
        "but states no moderate/strong boundary, and its examples do not fit a single one; the default 30.6 % "
        "(twice the weak boundary) is MineSAR's choice — set STRONG_FROM to your own."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterMultipleLayers("INPUT", "Detection layers", QgsProcessing.TypeVectorPolygon))
        self.addParameter(QgsProcessingParameterRasterLayer("TEMPLATE", "Template raster (grid of the result)", optional=True))
        self.addParameter(QgsProcessingParameterExtent("EXTENT", "Extent (without template)", optional=True))
        self.addParameter(QgsProcessingParameterNumber("PIXEL_SIZE", "Pixel size (without template)",
                                                       QgsProcessingParameterNumber.Double, 30.0, minValue=0))
        for parameter in (
            QgsProcessingParameterNumber("WEAK_BELOW", "Weak below (% of the monitored period)",
                                         QgsProcessingParameterNumber.Double, WEAK_BELOW_PERCENT, minValue=0, maxValue=100),
            QgsProcessingParameterNumber("STRONG_FROM", "Strong from (% of the monitored period)",
                                         QgsProcessingParameterNumber.Double, STRONG_FROM_PERCENT, minValue=0, maxValue=100),
        ):
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT_ACTIVITY", "Surface activity (days)"))
        self.addParameter(QgsProcessingParameterFeatureSink("OUTPUT_SITES", "Active sites", QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputNumber("SITES", "Sites"))
        self.addOutput(QgsProcessingOutputNumber("MONITORED_DAYS", "Monitored days"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        layers = self.parameterAsLayerList(parameters, "INPUT", context)
        if not layers:
            raise QgsProcessingException("INPUT: no detection layers given.")
        template = self.parameterAsRasterLayer(parameters, "TEMPLATE", context)
        if template is not None:
            crs = template.crs()
            extent = template.extent()
            width, height = template.width(), template.height()
            geotransform = (extent.xMinimum(), extent.width() / width, 0.0, extent.yMaximum(), 0.0, -extent.height() / height)
        else:
            crs = layers[0].crs()
            if parameters.get("EXTENT") in (None, ""):
                raise QgsProcessingException("Give a TEMPLATE raster, or an EXTENT and a PIXEL_SIZE.")
            if crs.isGeographic():
                # PIXEL_SIZE is in the grid's units; in degrees "30" would be one pixel for the scene.
                raise QgsProcessingException(
                    f"{layers[0].name()} ({layers[0].source()}): its CRS {crs.authid()} is geographic (degrees), "
                    "so PIXEL_SIZE cannot be metres; give a TEMPLATE raster or reproject the detections to a "
                    "projected CRS (e.g. UTM) first.")
            extent = self.parameterAsExtent(parameters, "EXTENT", context, crs)
            size = self.parameterAsDouble(parameters, "PIXEL_SIZE", context)
            if size <= 0 or extent.isEmpty():
                raise QgsProcessingException("EXTENT must not be empty and PIXEL_SIZE must be > 0.")
            width, height = max(1, round(extent.width() / size)), max(1, round(extent.height() / size))
            geotransform = (extent.xMinimum(), size, 0.0, extent.yMaximum(), 0.0, -size)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT_ACTIVITY", context)
        weak_below = self.parameterAsDouble(parameters, "WEAK_BELOW", context)
        strong_from = self.parameterAsDouble(parameters, "STRONG_FROM", context)
        with user_errors():
            detections = [d for layer in layers for d in layer_detections(layer, crs, context)]
            report = surface_activity(detections, geotransform, width, height, crs.toWkt(), output, weak_below,
                                      strong_from, progress_for(feedback))
        fields = QgsFields()
        for name, kind in (("CODE", QVariant.String), ("FIRST", QVariant.String), ("LAST", QVariant.String),
                           ("ACTIVE_DAYS", QVariant.Int), ("SHARE_PCT", QVariant.Double), ("CLASS", QVariant.String),
                           ("N_IFG", QVariant.Int), ("TIMELINE", QVariant.String)):
            fields.append(QgsField(name, kind))
        sink, sink_id = self.create_sink(parameters, "OUTPUT_SITES", context, fields, QgsWkbTypes.MultiPolygon, crs)
        for site in report.sites:
            feature = QgsFeature(fields)
            geometry = QgsGeometry.fromWkt(site.footprint.wkt)
            geometry.convertToMultiType()
            feature.setGeometry(geometry)
            feature.setAttributes([
                site.code, site.first_date.isoformat(), site.last_date.isoformat(), site.active_days,
                round(site.share_percent, 3), site.activity_class, len(site.timeline),
                ";".join(f"{a:%Y%m%d}_{b:%Y%m%d}" for a, b in site.timeline),
            ])
            sink.addFeature(feature, QgsFeatureSink.FastInsert)
        feedback.pushInfo(
            f"{report.interferograms} interferograms covering {report.monitored_days} days; "
            f"{len(report.sites)} sites; longest activity {report.max_days:.0f} days."
        )
        style_when_loaded(context, output, "Surface activity (days)", style_activity_days)
        style_when_loaded(context, sink_id, "Active sites",
                          with_temporal(lambda layer: style_surface_sites(layer, weak_below, strong_from)))
        return {"OUTPUT_ACTIVITY": output, "OUTPUT_SITES": sink_id, "SITES": len(report.sites),
                "MONITORED_DAYS": report.monitored_days}
