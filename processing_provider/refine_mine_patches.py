"""minesar:refineminepatches: preliminary patches + image → refined boundaries (seed 003 §2.2.3)."""
from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsMapLayerType,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.segmentation.area_control import ACCUMULATE, PAPER_P_INTSCT, SHADOW_ILLUMINATION
from ..core.segmentation.grid import Grid, burn
from ..core.segmentation.pipeline import preliminary_mask, refine_patches
from ..ui.styles import style_refined_patches
from .base import MineSARAlgorithm, progress_for, qgis_geometry, style_when_loaded, user_errors
from .patch_parameters import (add_band_parameters, add_segmentation_parameters, bands_and_weights, image_layer,
                               segmentation_parameters, shapely_polygons, write_report)


class RefineMinePatchesAlgorithm(MineSARAlgorithm):
    _name = "refineminepatches"
    _display_name = "Refine mine patches"
    _group_id = "patches"
    _help = (
        "Refines the boundaries of preliminary mine patches — from a segmentation network or drawn by hand — "
        "with multiresolution segmentation and total area control (seed 003 §2.2.3). No trained model needed.\n\n"
        "The image is segmented (SCALE, SHAPE, COMPACTNESS as in <i>Multiresolution segmentation</i>). For each "
        "segment, p_intsct is the share of it the PRELIMINARY patches (polygons, or a mask raster where non-zero "
        "= mine) cover. Segments with p_intsct below the threshold are dropped, the rest merge with their "
        "neighbours into patches, so holes and fragments of the preliminary mask are filled where the segments "
        "say the ground is the same. The threshold: calibrated on REFERENCE patches when given (the paper's "
        "total-area-control rule: sort the segments touching the reference by p_intsct, accumulate their "
        "area, take the p_intsct where it comes closest to the reference area), else P_INTSCT (the paper's "
        "0.215). Advanced ACCUMULATE: <i>segment</i> (default) accumulates the areas of the segments kept, the area "
        "the refined patches will have; <i>intersection</i> accumulates only the part the preliminary patches "
        "cover of them (A_intsct, the paper's wording), which can never exceed the preliminary area and so keeps "
        "nearly every segment touched.\n\n"
        "With LANDCOVER (ESA WorldCover codes, any resolution and CRS), segments touching built-up (50), "
        "cropland (40) or water (80) are dropped; patches smaller than MIN_AREA (m², default 50) too.\n\n"
        "With a DEM (heights in metres, any resolution and CRS) and the sun's SUN_AZIMUTH (degrees clockwise from "
        "north) and SUN_ELEVATION at acquisition time (in the image's metadata), a patch of which more than half "
        "lies in terrain shadow loses its mostly shadowed segments: mountain shadows are the main false alarm for "
        "dark coal gangue. A lit mine beside a shadow keeps its own segments; a mine only partly in shadow stays. "
        "A slope is in shadow when its illumination, cos(incidence) / sin(elevation) (1 on flat ground, the "
        "normalised hillshade), is below SHADOW_ILLUMINATION (advanced, default 0.4). Cast shadows are not "
        "traced.\n\n"
        "Output: the refined patches (PATCH_ID, AREA m², PERIMETER m) in the image's CRS, the threshold used "
        "(P_INTSCT), counts, and optionally a JSON REPORT."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Image"))
        self.addParameter(QgsProcessingParameterMapLayer(
            "PRELIMINARY", "Preliminary mine patches (polygons or mask raster)",
            types=[QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeRaster]))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "REFERENCE", "Reference patches to calibrate p_intsct (optional)", [QgsProcessing.TypeVectorPolygon],
            optional=True))
        self.addParameter(QgsProcessingParameterNumber("P_INTSCT", "p_intsct threshold (without reference)",
                                                       QgsProcessingParameterNumber.Double, PAPER_P_INTSCT,
                                                       minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterRasterLayer("LANDCOVER", "Land cover (ESA WorldCover codes, optional)",
                                                            optional=True))
        self.addParameter(QgsProcessingParameterNumber("MIN_AREA", "Minimum patch area (m²)",
                                                       QgsProcessingParameterNumber.Double, 50.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterRasterLayer("DEM", "DEM for terrain shadows (metres, optional)",
                                                            optional=True))
        self.addParameter(QgsProcessingParameterNumber("SUN_AZIMUTH", "Sun azimuth (degrees from north, with DEM)",
                                                       QgsProcessingParameterNumber.Double, None, optional=True,
                                                       minValue=0.0, maxValue=360.0))
        self.addParameter(QgsProcessingParameterNumber("SUN_ELEVATION", "Sun elevation (degrees, with DEM)",
                                                       QgsProcessingParameterNumber.Double, None, optional=True,
                                                       minValue=0.1, maxValue=90.0))
        shadow = QgsProcessingParameterNumber("SHADOW_ILLUMINATION", "Shadow below illumination (1 = flat ground)",
                                              QgsProcessingParameterNumber.Double, SHADOW_ILLUMINATION,
                                              minValue=0.0, maxValue=1.0)
        shadow.setFlags(shadow.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(shadow)
        add_band_parameters(self)
        add_segmentation_parameters(self)
        accumulate = QgsProcessingParameterEnum("ACCUMULATE", "Calibration accumulates", list(ACCUMULATE),
                                                defaultValue=0)
        accumulate.setFlags(accumulate.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(accumulate)
        self.addParameter(QgsProcessingParameterFeatureSink("OUTPUT", "Refined mine patches",
                                                            QgsProcessing.TypeVectorPolygon))
        self.addParameter(QgsProcessingParameterFileDestination("REPORT", "Report", "JSON files (*.json)",
                                                                optional=True, createByDefault=False))
        for name, description in (("P_INTSCT_USED", "p_intsct used"), ("PATCHES", "Refined patches"),
                                  ("SEGMENTS", "Segments"), ("DROPPED_LANDCOVER", "Segments dropped by land cover"),
                                  ("DROPPED_SMALL", "Patches below the minimum area"),
                                  ("DROPPED_SHADOW", "Patches dropped as terrain shadow")):
            self.addOutput(QgsProcessingOutputNumber(name, description))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        layer = image_layer(self, parameters, context)
        bands, weights = bands_and_weights(self, parameters, context)
        params = segmentation_parameters(self, parameters, context, weights)
        preliminary = self.parameterAsLayer(parameters, "PRELIMINARY", context)
        if preliminary is None:
            raise QgsProcessingException("PRELIMINARY: the layer could not be opened.")
        reference_source = self.parameterAsSource(parameters, "REFERENCE", context)
        landcover = self.parameterAsRasterLayer(parameters, "LANDCOVER", context)
        dem = self.parameterAsRasterLayer(parameters, "DEM", context)
        sun = {}
        for name in ("SUN_AZIMUTH", "SUN_ELEVATION"):
            given = parameters.get(name) not in (None, "")
            sun[name] = self.parameterAsDouble(parameters, name, context) if given else None
        if dem is not None and None in sun.values():
            raise QgsProcessingException(f"DEM {dem.source()}: give SUN_AZIMUTH and SUN_ELEVATION too (from the "
                                         "image's metadata); without them the terrain shadows cannot be placed.")
        if dem is None and any(v is not None for v in sun.values()):
            feedback.pushWarning("SUN_AZIMUTH/SUN_ELEVATION are used only with a DEM; none given, so no terrain "
                                 "shadow is removed.")
        with user_errors():
            grid = Grid.of_raster(layer.source())
            if preliminary.type() == QgsMapLayerType.RasterLayer:
                mask = preliminary_mask(grid, raster=preliminary.source())
            else:
                geometries = shapely_polygons(preliminary, layer.crs(), context, "PRELIMINARY")
                mask = preliminary_mask(grid, geometries=geometries)
            reference = None
            if reference_source is not None:
                reference = burn(shapely_polygons(reference_source, layer.crs(), context, "REFERENCE"), grid)
                if not reference.any():
                    raise QgsProcessingException("REFERENCE: no reference patch overlaps the image.")
            result = refine_patches(
                layer.source(), mask, grid, params, bands, reference,
                p_intsct=self.parameterAsDouble(parameters, "P_INTSCT", context),
                accumulate=ACCUMULATE[self.parameterAsEnum(parameters, "ACCUMULATE", context)],
                landcover=landcover.source() if landcover is not None else None,
                min_area=self.parameterAsDouble(parameters, "MIN_AREA", context),
                tile=self.parameterAsInt(parameters, "TILE_SIZE", context), progress=progress_for(feedback),
                dem=dem.source() if dem is not None else None, sun_azimuth_deg=sun["SUN_AZIMUTH"],
                sun_elevation_deg=sun["SUN_ELEVATION"],
                shadow_illumination=self.parameterAsDouble(parameters, "SHADOW_ILLUMINATION", context))
        fields = QgsFields()
        for name, kind in (("PATCH_ID", QVariant.Int), ("AREA", QVariant.Double), ("PERIMETER", QVariant.Double)):
            fields.append(QgsField(name, kind))
        sink, sink_id = self.create_sink(parameters, "OUTPUT", context, fields, QgsWkbTypes.MultiPolygon, layer.crs())
        for patch_id, geometry in result.patches:
            feature = QgsFeature(fields)
            feature.setGeometry(qgis_geometry(geometry))
            feature.setAttributes([int(patch_id), round(geometry.area, 3), round(geometry.length, 3)])
            sink.addFeature(feature, QgsFeatureSink.FastInsert)
        report = dict(result.report, image=layer.source(), preliminary=preliminary.source())
        report_path = write_report(self.parameterAsFileOutput(parameters, "REPORT", context), report)
        how = "calibrated on the reference" if result.calibration is not None else "given"
        feedback.pushInfo(f"p_intsct {report['p_intsct']:.3f} ({how}); {report['segments']} segments, "
                          f"{report['segments_kept']} kept; {report['patches']} patches, "
                          f"{report['area_refined']:.0f} m² (preliminary {report['area_preliminary']:.0f} m²).")
        style_when_loaded(context, sink_id, "Refined mine patches", style_refined_patches)
        outputs = {"OUTPUT": sink_id, "P_INTSCT_USED": report["p_intsct"], "PATCHES": report["patches"],
                   "SEGMENTS": report["segments"], "DROPPED_LANDCOVER": report.get("segments_dropped_landcover", 0),
                   "DROPPED_SMALL": report["patches_dropped_small"],
                   "DROPPED_SHADOW": report.get("patches_dropped_shadow", 0)}
        if report_path:
            outputs["REPORT"] = report_path
        return outputs
