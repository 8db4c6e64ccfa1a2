"""minesar:builddataset: real interferograms + label polygons → a training dataset folder."""
from qgis.core import (
    QgsCoordinateTransform,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsRectangle,
)
from shapely import wkb

from ..core.dataset.tiling import PRESETS, LabelledRaster, build_dataset, step_for
from .base import MineSARAlgorithm, progress_for, user_errors
from .dataset_parameters import DATASET_LAYOUT_HELP, add_split_parameters, split_fractions

PRESET_OPTIONS = tuple(PRESETS) + ("custom",)


class BuildDatasetAlgorithm(MineSARAlgorithm):
    _name = "builddataset"
    _display_name = "Build training dataset from interferograms and labels"
    _group_id = "training"
    _help = (
        "Cuts real interferograms (INPUT, e.g. imported with 'Import interferogram') and the basins "
        "drawn over them (LABELS, polygons in any CRS) into a training dataset, the papers' ways:\n"
        "<b>seed001</b>: 800 × 800 tiles at 34% overlap (Mask R-CNN); <b>seed002</b>: 416 × 416 "
        "(Light YOLO-Basin); <b>seed003</b>: 256 × 256 every 128 pixels with 90/180/270° rotations; "
        "<b>custom</b>: TILE_SIZE and OVERLAP. FLIPS and ROTATIONS add mirrored and rotated copies. "
        "Tiles of the last row and column are moved back inside the raster so every tile is whole; a "
        "raster smaller than a tile gives one tile padded with NaN. Unwrapped phase is wrapped. "
        "Tiles with less than MIN_VALID_PERCENT valid pixels are skipped, and tiles without a label "
        "too unless KEEP_EMPTY.\n\n" + DATASET_LAYOUT_HELP
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        number = QgsProcessingParameterNumber
        self.addParameter(QgsProcessingParameterMultipleLayers("INPUT", "Interferograms",
                                                               layerType=QgsProcessing.TypeRaster))
        self.addParameter(QgsProcessingParameterFeatureSource("LABELS", "Mining subsidence polygons",
                                                              [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterEnum(
            "PRESET", "Tiling (by name: seed001, seed002, seed003, custom)", options=list(PRESET_OPTIONS),
            defaultValue="seed002", usesStaticStrings=True))
        self.addParameter(number("TILE_SIZE", "Tile size for custom tiling (pixels)", type=number.Integer,
                                 minValue=16, defaultValue=256))
        self.addParameter(number("OVERLAP", "Overlap for custom tiling (%)", type=number.Double, minValue=0.0,
                                 maxValue=95.0, defaultValue=20.0))
        self.addParameter(QgsProcessingParameterBoolean("ROTATIONS", "Add 90/180/270° rotations",
                                                        defaultValue=False))
        self.addParameter(QgsProcessingParameterBoolean("FLIPS", "Add mirrored copies", defaultValue=False))
        self.addParameter(QgsProcessingParameterBoolean("KEEP_EMPTY", "Keep tiles without a label",
                                                        defaultValue=True))
        self.addParameter(number("MIN_VALID_PERCENT", "Skip tiles with fewer valid pixels (%)", type=number.Double,
                                 minValue=0.0, maxValue=100.0, defaultValue=10.0))
        self.addParameter(number("SPLIT_SEED", "Seed of the train/validation/test split", type=number.Integer,
                                 minValue=0, defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean("RGB", "Also write rasmph-style colour images",
                                                        defaultValue=False))
        add_split_parameters(self)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Dataset folder"))
        self.addOutput(QgsProcessingOutputNumber("IMAGES", "Images written"))
        self.addOutput(QgsProcessingOutputNumber("INSTANCES", "Labelled basins"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        layers = self.parameterAsLayerList(parameters, "INPUT", context)
        if not layers:
            raise QgsProcessingException("INPUT: give at least one interferogram raster.")
        labels = self.parameterAsSource(parameters, "LABELS", context)
        if labels is None:
            raise QgsProcessingException("LABELS: the polygon layer could not be opened.")
        preset = self.parameterAsEnumString(parameters, "PRESET", context) or "seed002"
        if preset == "custom":
            tile = self.parameterAsInt(parameters, "TILE_SIZE", context)
            step = step_for(tile, self.parameterAsDouble(parameters, "OVERLAP", context) / 100.0)
            rotations = False
        else:
            tile, step, rotations = PRESETS[preset].tile_size, PRESETS[preset].step, PRESETS[preset].rotations
        rotations = rotations or self.parameterAsBool(parameters, "ROTATIONS", context)

        rasters = []
        for layer in layers:
            if not layer.crs().isValid():
                raise QgsProcessingException(f"{layer.source()}: the raster has no CRS, so labels cannot be placed.")
            transform = QgsCoordinateTransform(labels.sourceCrs(), layer.crs(), context.transformContext())
            polygons, attributes = [], []
            extent = layer.extent()
            for feature in labels.getFeatures():
                if feedback.isCanceled():
                    raise QgsProcessingException("Cancelled.")
                geometry = feature.geometry()
                if geometry.isEmpty():
                    continue
                geometry.transform(transform)
                if not geometry.boundingBox().intersects(QgsRectangle(extent)):
                    continue
                polygons.append(wkb.loads(bytes(geometry.asWkb())))
                attributes.append({"label_id": int(feature.id())})
            feedback.pushInfo(f"{layer.name()}: {len(polygons)} label polygons over it.")
            rasters.append(LabelledRaster(layer.source(), polygons, attributes))
        if not any(r.polygons for r in rasters):
            feedback.pushWarning("No label polygon lies over any input raster: every tile is background.")

        folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
        with user_errors():
            description = build_dataset(
                folder, rasters, tile, step, rotations=rotations,
                flips=self.parameterAsBool(parameters, "FLIPS", context),
                keep_empty=self.parameterAsBool(parameters, "KEEP_EMPTY", context),
                min_valid_fraction=self.parameterAsDouble(parameters, "MIN_VALID_PERCENT", context) / 100.0,
                split_seed=self.parameterAsInt(parameters, "SPLIT_SEED", context),
                split_fractions=split_fractions(self, parameters, context),
                rgb=self.parameterAsBool(parameters, "RGB", context),
                preset=preset,
                progress=progress_for(feedback),
            )
        counts = description["split_counts"]
        feedback.pushInfo(
            f"{description['images']} tiles of {tile} px (step {step}), {description['instances']} labelled "
            f"basins, {description['skipped_tiles']} tiles skipped; train {counts['train']}, validation "
            f"{counts['val']}, test {counts['test']}."
        )
        return {"OUTPUT_FOLDER": folder, "IMAGES": description["images"], "INSTANCES": description["instances"]}
