"""minesar:simulatesequence: interferograms over one mining area in time, with the mines' truth."""
from datetime import date

from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputString,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDateTime,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterPoint,
    QgsProcessingParameterRange,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.io.products import SENTINEL1_WAVELENGTH_M
from ..core.simulation.sequence import FIRST_DATE, SequenceRecipe, simulate_sequence
from ..ui.styles import style_deformation, style_mine_truth, style_wrapped_phase
from ..ui.temporal import make_raster_temporal
from .base import MineSARAlgorithm, progress_for, qgis_geometry, style_when_loaded, user_errors
from .simulation_parameters import simulation_grid

MINE_FIELDS = (("name", QVariant.String), ("kind", QVariant.String), ("rate_mm_day", QVariant.Double),
               ("active_from", QVariant.String), ("active_to", QVariant.String), ("active_days", QVariant.Int),
               ("share_pct", QVariant.Double), ("surf_class", QVariant.String), ("vel_true", QVariant.Double),
               ("true_class", QVariant.String), ("timeline", QVariant.String))


def mine_fields() -> QgsFields:
    fields = QgsFields()
    for name, kind in MINE_FIELDS:
        fields.append(QgsField(name, kind))
    return fields


def _style_pair(layer) -> None:
    style_wrapped_phase(layer)
    make_raster_temporal(layer)


class SimulateSequenceAlgorithm(MineSARAlgorithm):
    _name = "simulatesequence"
    _display_name = "Simulate interferogram sequence of a mining area (with truth in time)"
    _group_id = "training"
    _help = (
        "A sequence of interferograms over one mining area whose truth is known in time, for demonstrations "
        "and tests of the whole chain (detection → surface activity, SBAS → mine activity). Six mines on a 3 × 2 "
        "layout of the scene (WIDTH × HEIGHT pixels of PIXEL_SIZE m; at least 9.6 × 6.4 km): three subsiding "
        "(M1 all the period, M2 about a quarter of it early, M3 one interval late — strong, moderate and weak "
        "surface activity from 8 epochs on), an open pit that is incoherent in every pair (M4, decorrelated), a "
        "closed mine "
        "rising as the groundwater returns (M5, positive) and a dormant one (M6, none). EPOCHS acquisitions "
        "INTERVAL days apart from FIRST_DATE.\n\n"
        "Every pair is one run of the scene simulator (minesar:simulatescene's physics: phase = −4π/λ·d, "
        "coherence within COHERENCE, decorrelation noise for LOOKS looks, steep fringes decorrelating) with the "
        "mines active in that pair as basins, depth = rate × active days; the atmosphere is one zenith delay per "
        "epoch (ATMOSPHERE mm RMS turbulence plus a stratified delay over one terrain), a pair getting the "
        "difference of its epochs' delays, so the stack closes. Pixels with coherence below MASK_COHERENCE (the "
        "pit) are NaN in every product, as processors mask them.\n\n"
        "OUTPUT (a folder): interferograms/YYYYMMDD_YYYYMMDD.tif — the consecutive wrapped interferograms, "
        "with dates and wavelength in the metadata (detection fills date1/date2 from them); stack/ — the "
        "unwrapped pairs (each epoch to the next PAIR_SPAN epochs, radians; the true phase plus the pair's "
        "noise as an ideal unwrapper leaves it) and their coherence, for minesar:sbasinversion; truth/"
        "true_velocity.tif — the least-squares LOS velocity of the true series (mm/yr). REFERENCE: a point "
        "beyond every mine's reach with the highest mean coherence, for minesar:sbasinversion's REFERENCE (left "
        "alone, the inversion takes the most coherent pixel anywhere, perhaps on a mine's flank). OUTPUT_MINES: "
        "the mine "
        "patches (footprints where a mine's shape reaches 10 % of its depth) with their rate (LOS mm/day, "
        "negative = subsidence), active period (active_from, active_to, active_days, share_pct, timeline of "
        "interferograms), true surface-activity class (surf_class: weak/moderate/strong as "
        "minesar:surfaceactivity defines them) and true mine-activity class (true_class: positive/negative/"
        "none/decorrelated as minesar:mineactivity defines them, from vel_true, the true velocity at the "
        "mine's deepest point). The same SEED gives the same output."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        number = QgsProcessingParameterNumber
        defaults = SequenceRecipe()
        self.addParameter(number("WIDTH", "Width (pixels)", type=number.Integer, minValue=32,
                                 defaultValue=defaults.cols))
        self.addParameter(number("HEIGHT", "Height (pixels)", type=number.Integer, minValue=32,
                                 defaultValue=defaults.rows))
        self.addParameter(number("PIXEL_SIZE", "Pixel size (m)", type=number.Double, minValue=1.0,
                                 defaultValue=defaults.pixel_size_m))
        self.addParameter(number("EPOCHS", "Acquisitions", type=number.Integer, minValue=4, maxValue=100,
                                 defaultValue=defaults.epochs))
        self.addParameter(number("INTERVAL", "Days between acquisitions", type=number.Integer, minValue=1,
                                 defaultValue=defaults.interval_days))
        self.addParameter(QgsProcessingParameterDateTime(
            "FIRST_DATE", "First acquisition", type=QgsProcessingParameterDateTime.Date,
            defaultValue=FIRST_DATE.isoformat(), optional=True))
        self.addParameter(number("PAIR_SPAN", "Stack: pair each epoch with the next … epochs", type=number.Integer,
                                 minValue=1, maxValue=10, defaultValue=defaults.pair_span))
        self.addParameter(number("SEED", "Random seed", type=number.Integer, minValue=0, defaultValue=1))
        self.addParameter(number("ATMOSPHERE", "Turbulent delay of one epoch, RMS (mm)", type=number.Double,
                                 minValue=0.0, defaultValue=defaults.atmosphere_mm))
        for parameter in (
            number("STRATIFIED", "Stratified delay, largest gradient (mm per km of height)", type=number.Double,
                   minValue=0.0, defaultValue=defaults.stratified_mm_per_km),
            # Optional: QGIS 3.22 rejects a missing range instead of taking its default.
            QgsProcessingParameterRange("COHERENCE", "Coherence (min, max)", type=number.Double,
                                        defaultValue="0.4,0.95", optional=True),
            number("LOOKS", "Number of looks of the noise", type=number.Integer, minValue=1,
                   defaultValue=defaults.looks),
            number("MASK_COHERENCE", "No data below this coherence", type=number.Double, minValue=0.0, maxValue=0.99,
                   defaultValue=defaults.mask_coherence),
            number("WAVELENGTH", "Radar wavelength (m)", type=number.Double, minValue=0.001,
                   defaultValue=SENTINEL1_WAVELENGTH_M),
            QgsProcessingParameterCrs("CRS", "Coordinate reference system (default UTM 49N)",
                                      defaultValue="EPSG:32649", optional=True),
            QgsProcessingParameterPoint("ORIGIN", "Top-left corner (default 300000, 4100000)", optional=True),
        ):
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addParameter(QgsProcessingParameterFeatureSink("OUTPUT_MINES", "Mine patches with their truth",
                                                            type=QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputMultipleLayers("INTERFEROGRAMS", "Consecutive wrapped interferograms"))
        self.addOutput(QgsProcessingOutputMultipleLayers("UNWRAPPED", "Unwrapped stack"))
        self.addOutput(QgsProcessingOutputMultipleLayers("COHERENCE_STACK", "Coherence of the stack"))
        self.addOutput(QgsProcessingOutputRasterLayer("TRUE_VELOCITY", "True LOS velocity (mm/yr)"))
        self.addOutput(QgsProcessingOutputString("FIRST", "First acquisition"))
        self.addOutput(QgsProcessingOutputString("LAST", "Last acquisition"))
        self.addOutput(QgsProcessingOutputNumber("PAIRS", "Pairs in the stack"))
        self.addOutput(QgsProcessingOutputString("REFERENCE",
                                                 "A stable, coherent reference point for the SBAS inversion"))

    def _recipe(self, parameters, context) -> SequenceRecipe:
        number = lambda name: self.parameterAsDouble(parameters, name, context)  # noqa: E731
        integer = lambda name: self.parameterAsInt(parameters, name, context)  # noqa: E731
        first = FIRST_DATE
        if parameters.get("FIRST_DATE") not in (None, ""):
            value = self.parameterAsDateTime(parameters, "FIRST_DATE", context)
            if not value.isValid():
                raise QgsProcessingException(f"FIRST_DATE: '{parameters['FIRST_DATE']}' is not a date.")
            day = value.date()
            first = date(day.year(), day.month(), day.day())
        coherence = self.parameterAsRange(parameters, "COHERENCE", context) or [0.4, 0.95]
        if len(coherence) != 2:
            raise QgsProcessingException("COHERENCE: give a minimum and a maximum.")
        return SequenceRecipe(
            rows=integer("HEIGHT"), cols=integer("WIDTH"), pixel_size_m=number("PIXEL_SIZE"), epochs=integer("EPOCHS"),
            interval_days=integer("INTERVAL"), first_date=first, pair_span=integer("PAIR_SPAN"),
            atmosphere_mm=number("ATMOSPHERE"), stratified_mm_per_km=number("STRATIFIED"),
            coherence=(float(coherence[0]), float(coherence[1])), looks=integer("LOOKS"),
            mask_coherence=number("MASK_COHERENCE"), wavelength_m=number("WAVELENGTH"),
        )

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        recipe = self._recipe(parameters, context)
        crs, origin = simulation_grid(self, parameters, context)
        folder = self.parameterAsString(parameters, "OUTPUT", context)
        with user_errors():
            result = simulate_sequence(folder, recipe, self.parameterAsInt(parameters, "SEED", context),
                                       origin=origin, crs_wkt=crs.toWkt(),
                                       progress=progress_for(feedback).span(0.0, 0.95))
        sink, sink_id = self.create_sink(parameters, "OUTPUT_MINES", context, mine_fields(), QgsWkbTypes.MultiPolygon,
                                         crs)
        for mine in result.mines:
            feature = QgsFeature(mine_fields())
            geometry = qgis_geometry(mine.footprint)
            geometry.convertToMultiType()
            feature.setGeometry(geometry)
            timeline = ";".join(f"{result.dates[k]:%Y%m%d}_{result.dates[k + 1]:%Y%m%d}" for k in mine.active_intervals)
            feature.setAttributes([
                mine.name, mine.kind, float(mine.rate_mm_per_day),
                mine.first_date.isoformat() if mine.first_date else None,
                mine.last_date.isoformat() if mine.last_date else None,
                int(mine.active_days), round(float(mine.share_percent), 3), mine.surface_class,
                round(float(mine.velocity_mm_yr), 3), mine.activity_class, timeline,
            ])
            sink.addFeature(feature, QgsFeatureSink.FastInsert)
        feedback.pushInfo(
            f"{len(result.interferograms)} consecutive interferograms and a stack of {len(result.pairs)} pairs, "
            f"{result.dates[0]} … {result.dates[-1]}; mines: "
            + ", ".join(f"{m.name} {m.activity_class}" + (f" ({m.first_date}–{m.last_date})" if m.first_date else "")
                        for m in result.mines))
        # A toolbox run shows the sequence: the wrapped pairs (playing in the Temporal Controller),
        # the true velocity and the mines; the stack stays in its folder for the SBAS inversion.
        if context.project() is not None and context.willLoadLayerOnCompletion(sink_id):
            for path in result.interferograms + [result.true_velocity]:
                name = "true LOS velocity (mm/yr)" if path == result.true_velocity else \
                    "simulated " + path.replace("\\", "/").rsplit("/", 1)[-1][:-4]
                context.addLayerToLoadOnCompletion(path, QgsProcessingContext.LayerDetails(
                    name, context.project(), name))
                style = (lambda layer: style_deformation(layer, "mm/yr")) if path == result.true_velocity \
                    else _style_pair
                style_when_loaded(context, path, name, style)
        style_when_loaded(context, sink_id, "mine patches (truth)", style_mine_truth)
        return {
            "OUTPUT": folder, "OUTPUT_MINES": sink_id, "INTERFEROGRAMS": result.interferograms,
            "UNWRAPPED": result.unwrapped, "COHERENCE_STACK": result.coherence, "TRUE_VELOCITY": result.true_velocity,
            "FIRST": result.dates[0].isoformat(), "LAST": result.dates[-1].isoformat(), "PAIRS": len(result.pairs),
            "REFERENCE": f"{result.reference_xy[0]:.3f},{result.reference_xy[1]:.3f}"
                         + (f" [{crs.authid()}]" if crs.authid() else ""),
        }
