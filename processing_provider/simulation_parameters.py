"""Parameters the simulation algorithms share, and their translation into a core recipe."""
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRange,
    QgsProcessingParameterRasterLayer,
    QgsUnitTypes,
)

from ..core.io.products import SENTINEL1_WAVELENGTH_M
from ..core.simulation.interferograms import SimulationRecipe

RECIPE_HELP = (
    "<b>Physics</b> (SPEC §2, seed 001 eq. 7–10): mining basins are Gaussian surfaces (elliptical, "
    "rotated) and probability-integral-method troughs of rotated panels, with LOS subsidence drawn "
    "log-uniformly from SUBSIDENCE (mm) and radius of influence from RADIUS (m); several per scene, "
    "some adjacent or overlapping. Phase = −4π/λ · LOS displacement, so λ/2 of subsidence is one "
    "fringe. Atmosphere: a turbulent power-law screen (slope −8/3) of up to ATMOSPHERE mm RMS plus "
    "a stratified delay proportional to the DEM (given, or a simulated terrain); or, when GACOS "
    "zenith delays are given, the difference of two of them, taken in a random window. Noise: "
    "coherence-driven decorrelation for LOOKS looks (coherence within COHERENCE), steep fringes and "
    "some basin centres decorrelated, plus uniform noise. Some scenes get an orbital ramp and "
    "non-mining signals (broad groundwater bowls, atmospheric blobs) that are labelled background. "
    "A basin's label is where its own subsidence reaches LABEL_FRACTION of its depth. The same SEED "
    "gives the same output, bit for bit."
)


def _range(name, description, kind, default):
    # Optional because QGIS 3.22 rejects a missing range instead of taking its default (it still
    # shows and uses the default); recipe_from falls back to the same default.
    return QgsProcessingParameterRange(name, description, type=kind, defaultValue=default, optional=True)


def _advanced(parameter):
    parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return parameter


def add_recipe_parameters(algorithm, basin_default: str) -> None:
    number = QgsProcessingParameterNumber
    algorithm.addParameter(number("PIXEL_SIZE", "Pixel size (m)", type=number.Double, minValue=0.1, defaultValue=30.0))
    algorithm.addParameter(number("SEED", "Random seed", type=number.Integer, minValue=0, defaultValue=1))
    algorithm.addParameter(_range("BASINS", "Mining basins per image (min, max)",
                                  QgsProcessingParameterNumber.Integer, basin_default))
    algorithm.addParameter(_range("SUBSIDENCE", "LOS subsidence of a basin (mm, min, max)",
                                  QgsProcessingParameterNumber.Double, "1,150"))
    algorithm.addParameter(number("ATMOSPHERE", "Turbulent atmosphere, largest RMS (mm)", type=number.Double,
                                  minValue=0.0, defaultValue=5.0))
    algorithm.addParameter(QgsProcessingParameterMultipleLayers(
        "GACOS", "GACOS zenith total delay rasters (two or more; replace the simulated atmosphere)",
        layerType=QgsProcessing.TypeFile, optional=True))
    algorithm.addParameter(QgsProcessingParameterRasterLayer(
        "DEM", "DEM for the stratified delay (else a simulated terrain)", optional=True))
    for parameter in (
        _range("RADIUS", "Radius of influence / basin size (m, min, max)", QgsProcessingParameterNumber.Double,
               "100,400"),
        number("STRATIFIED", "Stratified delay, largest gradient (mm per km of height)", type=number.Double,
               minValue=0.0, defaultValue=20.0),
        _range("COHERENCE", "Coherence (min, max)", QgsProcessingParameterNumber.Double, "0.25,0.95"),
        number("LOOKS", "Number of looks of the noise", type=number.Integer, minValue=1, defaultValue=10),
        number("UNIFORM_NOISE", "Uniform noise, largest half-width (rad)", type=number.Double, minValue=0.0,
               defaultValue=0.5),
        number("DISTRACTORS", "Share of images with non-mining signals (0–1)", type=number.Double, minValue=0.0,
               maxValue=1.0, defaultValue=0.5),
        number("RAMPS", "Share of images with an orbital ramp (0–1)", type=number.Double, minValue=0.0,
               maxValue=1.0, defaultValue=0.3),
        number("LABEL_FRACTION", "Label a basin where it reaches this fraction of its depth", type=number.Double,
               minValue=0.01, maxValue=0.9, defaultValue=0.1),
        number("WAVELENGTH", "Radar wavelength (m)", type=number.Double, minValue=0.001,
               defaultValue=SENTINEL1_WAVELENGTH_M),
        number("INCIDENCE", "Incidence angle (degrees)", type=number.Double, minValue=0.0, maxValue=89.0,
               defaultValue=39.0),
    ):
        algorithm.addParameter(_advanced(parameter))


def recipe_from(algorithm, parameters, context, rows: int, cols: int) -> SimulationRecipe:
    def pair(name, cast):
        values = algorithm.parameterAsRange(parameters, name, context)
        if not values:
            values = [float(v) for v in str(algorithm.parameterDefinition(name).defaultValue()).split(",")]
        if len(values) != 2:
            raise QgsProcessingException(f"{name}: give a minimum and a maximum.")
        return cast(values[0]), cast(values[1])

    number = lambda name: algorithm.parameterAsDouble(parameters, name, context)  # noqa: E731
    return SimulationRecipe(
        rows=rows,
        cols=cols,
        pixel_size_m=number("PIXEL_SIZE"),
        wavelength_m=number("WAVELENGTH"),
        incidence_deg=number("INCIDENCE"),
        basin_count=pair("BASINS", int),
        subsidence_mm=pair("SUBSIDENCE", float),
        radius_m=pair("RADIUS", float),
        atmosphere_mm=number("ATMOSPHERE"),
        stratified_mm_per_km=number("STRATIFIED"),
        coherence=pair("COHERENCE", float),
        looks=algorithm.parameterAsInt(parameters, "LOOKS", context),
        uniform_noise_rad=number("UNIFORM_NOISE"),
        distractor_share=number("DISTRACTORS"),
        ramp_share=number("RAMPS"),
        label_fraction=number("LABEL_FRACTION"),
    )


def auxiliary_paths(algorithm, parameters, context):
    """(GACOS file paths, DEM path or None)."""
    gacos = [p for p in (algorithm.parameterAsFileList(parameters, "GACOS", context) or []) if p]
    dem_layer = algorithm.parameterAsRasterLayer(parameters, "DEM", context)
    dem = dem_layer.source() if dem_layer is not None else None
    return gacos, dem


DEFAULT_CRS = "EPSG:32649"  # UTM 49N, over China's coal basins
DEFAULT_ORIGIN = (300_000.0, 4_100_000.0)


def simulation_grid(algorithm, parameters, context):
    """(crs, origin) of a simulated raster from CRS and ORIGIN: a projected CRS in metres (the
    pixel size is in metres), UTM 49N and a fixed origin when not given."""
    crs = algorithm.parameterAsCrs(parameters, "CRS", context)
    if not crs.isValid() and not parameters.get("CRS"):
        crs = QgsCoordinateReferenceSystem(DEFAULT_CRS)
    if not crs.isValid() or crs.isGeographic() or crs.mapUnits() != QgsUnitTypes.DistanceMeters:
        raise QgsProcessingException(f"CRS {crs.authid() or crs.description() or '?'}: choose a projected CRS in "
                                     "metres; the simulation's pixel size is in metres.")
    origin = DEFAULT_ORIGIN
    if parameters.get("ORIGIN"):
        point = algorithm.parameterAsPoint(parameters, "ORIGIN", context, crs)
        origin = (point.x(), point.y())
    return crs, origin
