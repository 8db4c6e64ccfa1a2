"""minesar:mineactivity: mine patches + velocity → deformation class per patch (seed 003 §4.2)."""
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
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QVariant

from ..core.activity import CLASSES, DEFORMATION_THRESHOLD_MM_YR, MIN_SHARE, mine_activity
from ..ui.styles import style_mine_activity
from .base import MineSARAlgorithm, progress_for, style_when_loaded, user_errors


class MineActivityAlgorithm(MineSARAlgorithm):
    _name = "mineactivity"
    _display_name = "Mine activity from deformation"
    _group_id = "deformation"
    _help = (
        "Mine activity (seed 003 §4.2): deformation within BUFFER (default 500 m) of each mine patch is "
        "attributed to that patch. A velocity pixel (mm/yr, e.g. from SBAS deformation time series) is "
        "no deformation when |v| ≤ THRESHOLD (5 mm/yr), positive above, negative below −THRESHOLD, and "
        "decorrelated where it has no value or its coherence is below MIN_COHERENCE.\n\n"
        "Per patch, from the pixels whose centre lies within BUFFER of it: <b>no_data</b> when there is no "
        "velocity pixel there at all (the patch is off the raster) or the patch has no geometry; "
        "<b>decorrelated</b> when at least DECORRELATED_SHARE (0.5) of those pixels have no coherent value "
        "(NaN/nodata inside the raster or coherence below MIN_COHERENCE); <b>positive</b> or "
        "<b>negative</b> when at least MIN_SHARE (default 10 %) of the measured pixels exceed +THRESHOLD or "
        "−THRESHOLD (both: the more numerous side; a tie: the side with the larger mean |v|); else "
        "<b>none</b>. A share rather than a single pixel because a buffer of ~1000 pixels always holds a few "
        "beyond ±5 mm/yr from noise or unwrapping errors, which would leave almost no patch \"none\".\n\n"
        "Output: the patches with ACTIVITY, the pixel counts per class (N_POS, N_NEG, N_NONE, N_DECOR), "
        "N_PIXELS and V_MIN/V_MAX/V_MEAN (mm/yr), and the number of patches per class (COUNT_POSITIVE, "
        "COUNT_NEGATIVE, COUNT_NONE, COUNT_DECORRELATED, COUNT_NO_DATA). The velocity raster must be in a "
        "projected CRS (metres), north-up or south-up; the coherence raster on the same grid and CRS."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterFeatureSource("INPUT", "Mine patches", [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterRasterLayer("VELOCITY", "Velocity raster (mm/yr)"))
        self.addParameter(QgsProcessingParameterRasterLayer("COHERENCE", "Coherence raster (optional)", optional=True))
        self.addParameter(QgsProcessingParameterNumber("BUFFER", "Buffer around each patch (m)",
                                                       QgsProcessingParameterNumber.Double, 500.0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber("THRESHOLD", "Deformation threshold (mm/yr)",
                                                       QgsProcessingParameterNumber.Double, DEFORMATION_THRESHOLD_MM_YR,
                                                       minValue=0))
        for parameter in (
            QgsProcessingParameterNumber("MIN_COHERENCE", "Minimum coherence of a measured pixel",
                                         QgsProcessingParameterNumber.Double, 0.3, minValue=0, maxValue=1),
            QgsProcessingParameterNumber("MIN_SHARE", "Share of measured pixels deforming for a positive/negative patch",
                                         QgsProcessingParameterNumber.Double, MIN_SHARE, minValue=0.001, maxValue=1),
            QgsProcessingParameterNumber("DECORRELATED_SHARE", "Share of decorrelated pixels for a decorrelated patch",
                                         QgsProcessingParameterNumber.Double, 0.5, minValue=0, maxValue=1),
        ):
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterFeatureSink("OUTPUT", "Mine activity", QgsProcessing.TypeVectorPolygon))
        for name in CLASSES:
            self.addOutput(QgsProcessingOutputNumber(f"COUNT_{name.upper()}", f"Patches: {name.replace('_', ' ')}"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        from shapely import wkb

        source = self.parameterAsSource(parameters, "INPUT", context)
        velocity = self.parameterAsRasterLayer(parameters, "VELOCITY", context)
        coherence = self.parameterAsRasterLayer(parameters, "COHERENCE", context)
        if source is None or velocity is None:
            raise QgsProcessingException("INPUT and VELOCITY are required.")
        if velocity.crs().isGeographic():
            raise QgsProcessingException(
                f"{velocity.source()}: the velocity raster is in degrees ({velocity.crs().authid()}); the buffer is "
                "in metres — warp it to a projected CRS (e.g. UTM) first.")
        transform = QgsCoordinateTransform(source.sourceCrs(), velocity.crs(), context.transformContext())
        features = list(source.getFeatures())
        patches = []
        for feature in features:
            geometry = QgsGeometry(feature.geometry())
            if geometry.isEmpty():
                patches.append(None)
                continue
            geometry.transform(transform)
            patches.append(wkb.loads(bytes(geometry.asWkb())))
        with user_errors():
            results = mine_activity(
                patches, velocity.source(), coherence.source() if coherence else None,
                buffer_m=self.parameterAsDouble(parameters, "BUFFER", context),
                threshold=self.parameterAsDouble(parameters, "THRESHOLD", context),
                min_coherence=self.parameterAsDouble(parameters, "MIN_COHERENCE", context),
                min_share=self.parameterAsDouble(parameters, "MIN_SHARE", context),
                decorrelated_share=self.parameterAsDouble(parameters, "DECORRELATED_SHARE", context),
                progress=progress_for(feedback),
            )
        fields = QgsFields(source.fields())
        added = (("ACTIVITY", QVariant.String), ("N_POS", QVariant.Int), ("N_NEG", QVariant.Int), ("N_NONE", QVariant.Int),
                 ("N_DECOR", QVariant.Int), ("N_PIXELS", QVariant.Int), ("V_MIN", QVariant.Double),
                 ("V_MAX", QVariant.Double), ("V_MEAN", QVariant.Double))
        for name, kind in added:
            fields.append(QgsField(name, kind))
        sink, sink_id = self.create_sink(parameters, "OUTPUT", context, fields, source.wkbType(), source.sourceCrs())
        totals = {name: 0 for name in CLASSES}
        for feature, result in zip(features, results):
            totals[result.activity_class] += 1
            out = QgsFeature(fields)
            out.setGeometry(feature.geometry())
            c = result.counts
            out.setAttributes(list(feature.attributes()) + [
                result.activity_class, c.get("positive", 0), c.get("negative", 0), c.get("none", 0),
                c.get("decorrelated", 0), result.pixels,
                *(None if v != v else round(v, 3) for v in (result.v_min, result.v_max, result.v_mean)),
            ])
            sink.addFeature(out, QgsFeatureSink.FastInsert)
        feedback.pushInfo(", ".join(f"{n}: {k}" for k, n in totals.items()) + " patches")
        style_when_loaded(context, sink_id, "Mine activity", style_mine_activity)
        return {"OUTPUT": sink_id, **{f"COUNT_{k.upper()}": v for k, v in totals.items()}}
