"""minesar:builddataset: real interferograms + label polygons → a training dataset folder."""
from qgis.core import (
    QgsCoordinateTransform,
    QgsCsException,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsRectangle,
)
from shapely import wkb

from ..core.dataset.tiling import PRESETS, LabelledRaster, build_dataset, step_for
from .base import MineSARAlgorithm, progress_for, user_errors
from .dataset_parameters import DATASET_LAYOUT_HELP, add_dataset_folder_parameters, split_fractions

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
        "too unless KEEP_EMPTY. A 'label' field in LABELS (as in the truth layer of 'Simulate "
        "interferogram scene') keeps only the features labelled 'mining'.\n\n"
        "The split is spatial: the ground is cut into blocks of 4 × 4 tiles, each block draws its "
        "split, and tiles straddling blocks of different splits are left out, so overlapping tiles "
        "never end up on both sides.\n\n" + DATASET_LAYOUT_HELP
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
        add_dataset_folder_parameters(self)

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

        # A truth layer of minesar:simulatescene also outlines non-mining signals: only mining ones count.
        label_field = labels.fields().lookupField("label")
        if label_field >= 0:
            feedback.pushInfo("LABELS has a 'label' field: only features labelled 'mining' are basins.")
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
                if label_field >= 0 and str(feature[label_field]).strip().lower() != "mining":
                    continue
                geometry = feature.geometry()
                if geometry.isEmpty():
                    continue
                try:
                    geometry.transform(transform)
                except QgsCsException as error:
                    raise QgsProcessingException(
                        f"LABELS feature {feature.id()}: cannot be transformed to the CRS of {layer.name()} "
                        f"({layer.crs().authid()}): {error}") from error
                if not geometry.boundingBox().intersects(QgsRectangle(extent)):
                    continue
                polygons.append(wkb.loads(bytes(geometry.asWkb())))
                attributes.append({"label_id": int(feature.id())})
            feedback.pushInfo(f"{layer.name()}: {len(polygons)} label polygons over it.")
            # A layer's source may carry provider options after "|"; GDAL wants the file alone.
            rasters.append(LabelledRaster(layer.source().split("|")[0], polygons, attributes))
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
            f"basins, {description['skipped_tiles']} tiles skipped, {description['border_tiles_left_out']} left "
            f"out on split borders; train {counts['train']}, validation {counts['val']}, test {counts['test']}."
        )
        if not counts["val"] or not counts["test"]:
            feedback.pushWarning(
                f"The split is spatial, by blocks of {description['split_block_m']:g} map units: with this little "
                "ground, validation or test is empty. Add rasters of other areas, or split by hand.")
        return {"OUTPUT_FOLDER": folder, "IMAGES": description["images"], "INSTANCES": description["instances"]}
