"""minesar:sbasinversion: unwrapped interferograms → displacement time series, velocity, coherence."""
import os

from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterPoint,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsCoordinateReferenceSystem,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.sbas import SbasOutputs, run_sbas
from ..ui.styles import style_coherence, style_deformation
from ..ui.temporal import make_points_temporal, with_temporal
from .base import MineSARAlgorithm, progress_for, style_when_loaded, user_errors

WEIGHTINGS = ("none", "coherence")
DEVICES = ("auto", "cpu", "cuda")


def _file_paths(algorithm, parameters, name, context):
    """Paths of a MultipleLayers(TypeFile) parameter (files, or layers of the project)."""
    return [path for path in algorithm.parameterAsFileList(parameters, name, context) if path]


def _deformation_style(kind):
    if kind == "coherence":
        return style_coherence
    if kind == "velocity":
        return lambda layer: style_deformation(layer, "mm/yr")
    # The series plays in the Temporal Controller: band by band (QGIS ≥ 3.38), or over its dates (3.22).
    return with_temporal(lambda layer: style_deformation(layer, "mm"))


class _PointWriter:
    """Creates the OUTPUT_POINTS sink once the epochs are known and writes each block's points."""

    def __init__(self, algorithm, parameters, context, crs):
        self.algorithm, self.parameters, self.context, self.crs = algorithm, parameters, context, crs
        self.sink = self.sink_id = None
        self.fields = self.names = None

    def start(self, dates):
        self.names = [f"D{d:%Y%m%d}" for d in dates]
        self.fields = QgsFields()
        self.fields.append(QgsField("CODE", QVariant.String))
        for name in ("VEL", "V_STDEV", "COHERENCE") + tuple(self.names):
            self.fields.append(QgsField(name, QVariant.Double))
        self.sink, self.sink_id = self.algorithm.create_sink(
            self.parameters, "OUTPUT_POINTS", self.context, self.fields, QgsWkbTypes.Point, self.crs)

    def write(self, block, batch=5000):
        series = [block["series"][n] for n in self.names]
        for start in range(0, len(block["code"]), batch):  # a few thousand QgsFeatures at a time
            self._add(block, series, range(start, min(start + batch, len(block["code"]))))

    def _add(self, block, series, indices):
        features = []
        for k in indices:
            feature = QgsFeature(self.fields)
            feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(float(block["x"][k]), float(block["y"][k]))))
            feature.setAttributes(
                [f"{int(block['code'][k]):07d}", float(block["VEL"][k]), float(block["V_STDEV"][k]),
                 float(block["COHERENCE"][k])] + [float(values[k]) for values in series]
            )
            features.append(feature)
        if features and not self.sink.addFeatures(features, QgsFeatureSink.FastInsert):
            raise QgsProcessingException(f"OUTPUT_POINTS: writing points failed ({self.sink_id}).")


class SbasInversionAlgorithm(MineSARAlgorithm):
    _name = "sbasinversion"
    _display_name = "SBAS deformation time series"
    _group_id = "deformation"
    _help = (
        "Inverts a stack of unwrapped interferograms into a cumulative displacement time series with "
        "the Small BAseline Subset method (Berardino et al. 2002; seed 003 §2.2.4), agreeing with MintPy's "
        "ifgram_inversion: interval velocities, least squares per pixel (minimum norm where missing data "
        "split a pixel's network), NaN observations dropped per pixel, optional weights = inverse phase "
        "variance from coherence and number of independent looks. NaN (or the band's nodata) marks a "
        "missing observation. In GeoTIFFs written by MineSAR or other tools without a zero convention a "
        "phase of exactly 0 is a valid observation; in GAMMA, LiCSAR and HyP3 products 0 is those "
        "processors' nodata and is dropped (as MintPy does).\n\n"
        "<b>INPUT</b>: unwrapped interferograms (GAMMA .unw, MineSAR imports, LiCSAR/HyP3 GeoTIFFs) on one "
        "grid; dates from the names (YYYYMMDD-YYYYMMDD) or metadata. <b>COHERENCE</b>: one raster per "
        "interferogram, same order. <b>MAX_DAYS</b>/<b>MAX_BPERP</b> (0 = no limit) select the pairs; "
        "the perpendicular baseline needs baselines in the metadata. <b>REFERENCE</b>: a point valid in "
        "every pair; empty = the pixel valid in every pair with the highest mean coherence. "
        "<b>WAVELENGTH</b> 0 = from the metadata: interferograms that state different wavelengths are refused "
        "(one stack, one sensor). All rasters stay open during the run (two per pair with coherence): on "
        "Linux/macOS the process's open-file limit is raised as needed up to the system's hard limit; where it "
        "cannot be, the stack is bounded by it (~500 pairs with coherence at the common limit of 1024).\n\n"
        "<b>Outputs</b>: time series (mm, one band per epoch named DYYYYMMDD, first epoch = 0), velocity "
        "(mm/yr, least-squares line over calendar decimal years, as MintPy), temporal coherence (band 1) and the number of connected parts of "
        "each pixel's own network (band 2; > 1 = split by missing data, reported), optional points in "
        "MintPy's save_qgis layout (CODE, VEL, V_STDEV, COHERENCE, DYYYYMMDD…) for InSAR Explorer, written "
        "block by block as the inversion runs; unlike save_qgis, CODE is the decimal pixel index "
        "row × width + column (zero-padded) and there are no HEIGHT, H_STDEV or EFF_AREA fields (no DEM "
        "or geocoding lookup is involved); VEL and V_STDEV in mm/yr, series in mm. "
        "Sign as MintPy: d = −λ/(4π)·φ, negative = away from the satellite (subsidence). With INCIDENCE "
        "(degrees, or a raster) the line-of-sight values are divided by cos(incidence) (vertical)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterMultipleLayers("INPUT", "Unwrapped interferograms", QgsProcessing.TypeFile))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "COHERENCE", "Coherence rasters (one per interferogram, same order)", QgsProcessing.TypeFile, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            "MAX_DAYS", "Maximum temporal baseline (days, 0 = all pairs)", QgsProcessingParameterNumber.Double, 0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            "MAX_BPERP", "Maximum perpendicular baseline (m, 0 = all pairs)", QgsProcessingParameterNumber.Double, 0, minValue=0))
        self.addParameter(QgsProcessingParameterPoint("REFERENCE", "Reference point (empty = automatic)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            "WAVELENGTH", "Radar wavelength (m, 0 = from metadata, else Sentinel-1)", QgsProcessingParameterNumber.Double, 0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            "INCIDENCE", "Incidence angle for LOS → vertical (degrees, empty = keep line of sight)",
            QgsProcessingParameterNumber.Double, None, optional=True, minValue=0, maxValue=89.9))
        self.addParameter(QgsProcessingParameterEnum(
            "WEIGHTING", "Weighting (none, coherence)", options=list(WEIGHTINGS), defaultValue="none", usesStaticStrings=True))
        advanced = [
            QgsProcessingParameterRasterLayer("INCIDENCE_RASTER", "Incidence angle raster (degrees or radians)", optional=True),
            QgsProcessingParameterNumber("LOOKS", "Number of looks of the coherence (weighting)",
                                         QgsProcessingParameterNumber.Double, 20, minValue=1),
            QgsProcessingParameterEnum("DEVICE", "Device (auto, cpu, cuda)", options=list(DEVICES),
                                       defaultValue="auto", usesStaticStrings=True),
            QgsProcessingParameterNumber("POINTS_MIN_COHERENCE", "Points: minimum temporal coherence",
                                         QgsProcessingParameterNumber.Double, 0.7, minValue=0, maxValue=1),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT_TIMESERIES", "Displacement time series (mm)"))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT_VELOCITY", "Velocity (mm/yr)"))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT_COHERENCE", "Temporal coherence"))
        self.addParameter(QgsProcessingParameterFeatureSink(
            "OUTPUT_POINTS", "Points (MintPy save_qgis layout)", QgsProcessing.TypeVectorPoint,
            optional=True, createByDefault=False))
        for name, text in (("EPOCHS", "Epochs"), ("PAIRS", "Pairs used"), ("COMPONENTS", "Connected parts of the network"),
                           ("DISCONNECTED_PIXELS", "Pixels whose own network is split"),
                           ("PIXELS_PER_SECOND", "Inversion speed (px/s)")):
            self.addOutput(QgsProcessingOutputNumber(name, text))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        paths = _file_paths(self, parameters, "INPUT", context)
        coherence = _file_paths(self, parameters, "COHERENCE", context) or None
        if not paths:
            raise QgsProcessingException("INPUT: no interferograms given.")
        outputs = SbasOutputs(
            self.parameterAsOutputLayer(parameters, "OUTPUT_TIMESERIES", context),
            self.parameterAsOutputLayer(parameters, "OUTPUT_VELOCITY", context),
            self.parameterAsOutputLayer(parameters, "OUTPUT_COHERENCE", context),
        )
        for path in (outputs.timeseries, outputs.velocity, outputs.coherence):
            if os.path.splitext(path)[1].lower() not in (".tif", ".tiff"):
                raise QgsProcessingException(f"{path}: MineSAR writes GeoTIFF; use a .tif name.")
        incidence = None
        if parameters.get("INCIDENCE") not in (None, ""):
            incidence = self.parameterAsDouble(parameters, "INCIDENCE", context)
        incidence_layer = self.parameterAsRasterLayer(parameters, "INCIDENCE_RASTER", context)
        if incidence_layer is not None:
            incidence = incidence_layer.source()

        from ..core.io.interferogram import open_interferogram

        with user_errors():
            with open_interferogram(paths[0], kind="unwrapped") as first:
                crs = QgsCoordinateReferenceSystem.fromWkt(first.crs_wkt or "")
        reference = None
        if parameters.get("REFERENCE") not in (None, ""):
            point = self.parameterAsPoint(parameters, "REFERENCE", context, crs)
            reference = (point.x(), point.y())

        # The point layer's fields are the dates, known once the pairs are selected: run_sbas
        # reports them before the first block, the sink is created then, and each block's points
        # are written as soon as the block is solved (memory bounded by one block's records).
        writer = _PointWriter(self, parameters, context, crs) if parameters.get("OUTPUT_POINTS") else None
        with user_errors(self):
            report = run_sbas(
                paths, outputs, coherence_paths=coherence,
                max_days=self.parameterAsDouble(parameters, "MAX_DAYS", context) or None,
                max_bperp_m=self.parameterAsDouble(parameters, "MAX_BPERP", context) or None,
                reference_xy=reference,
                wavelength_m=self.parameterAsDouble(parameters, "WAVELENGTH", context) or None,
                incidence=incidence,
                weighting=self.parameterAsEnumString(parameters, "WEIGHTING", context) or "none",
                looks=self.parameterAsDouble(parameters, "LOOKS", context),
                device=self.parameterAsEnumString(parameters, "DEVICE", context) or "auto",
                points=writer.write if writer else None,
                on_network=writer.start if writer else None,
                points_min_coherence=self.parameterAsDouble(parameters, "POINTS_MIN_COHERENCE", context),
                progress=progress_for(feedback),
            )
        feedback.pushInfo(
            f"Network: {len(report.dates)} epochs ({report.dates[0]} … {report.dates[-1]}), "
            f"{len(report.pairs_used)} pairs used, {len(report.pairs_dropped)} dropped by the thresholds, "
            f"{report.network_components} connected part(s)."
        )
        feedback.pushInfo(
            f"Reference pixel row {report.reference_pixel[0]}, column {report.reference_pixel[1]} "
            f"({report.reference_xy[0]:.8g}, {report.reference_xy[1]:.8g}), {report.reference_chosen}; "
            f"wavelength {report.wavelength_m:.6g} m; {'vertical' if report.vertical else 'line of sight'}; "
            f"{report.solved_pixels} px solved on {report.backend} at {report.pixels_per_second:.0f} px/s."
        )
        for note in report.notes:
            feedback.pushWarning(note)

        results = {
            "OUTPUT_TIMESERIES": outputs.timeseries, "OUTPUT_VELOCITY": outputs.velocity,
            "OUTPUT_COHERENCE": outputs.coherence, "EPOCHS": len(report.dates), "PAIRS": len(report.pairs_used),
            "COMPONENTS": report.network_components, "DISCONNECTED_PIXELS": report.disconnected_pixels,
            "PIXELS_PER_SECOND": report.pixels_per_second,
        }
        if writer is not None:
            results["OUTPUT_POINTS"] = writer.sink_id
            writer.sink = None  # flushes a file sink (QgsFeatureSink writes on deletion)

        for key, kind, name in (("OUTPUT_TIMESERIES", "timeseries", "SBAS time series (mm)"),
                                ("OUTPUT_VELOCITY", "velocity", "SBAS velocity (mm/yr)"),
                                ("OUTPUT_COHERENCE", "coherence", "SBAS temporal coherence")):
            style_when_loaded(context, results[key], name, _deformation_style(kind))
        if writer is not None:
            style_when_loaded(context, results["OUTPUT_POINTS"], "SBAS points", make_points_temporal)
        return results
