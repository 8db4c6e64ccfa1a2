"""minesar:trainmodel: train a registered detector or segmenter on a dataset folder into a checkpoint."""

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..models.registry import ARCHITECTURES
from .base import MineSARAlgorithm, progress_for, require_torch, user_errors

ARCHITECTURE_NAMES = tuple(ARCHITECTURES)
# Interferogram segmenters whose networks can map basin cores (models.segnets.UNet).
CORE_ARCHITECTURES = ("ecaunet", "unet")


def _command(name, parameters) -> str:
    """How this run can be repeated: stored in the checkpoint's metadata."""
    shown = {key: value for key, value in parameters.items() if not key.startswith("_")}
    return f"processing.run('minesar:{name}', {shown!r})"


class TrainModelAlgorithm(MineSARAlgorithm):
    _name = "trainmodel"
    _display_name = "Train model"
    _group_id = "detection"
    _help = (
        "Trains a network (ARCHITECTURE) on the train split of DATASET into a checkpoint.\n\n"
        "Detectors (basins as boxes or outlines with a score): maskrcnn = Mask R-CNN ResNet50-FPN of seed "
        "001, maskrcnn_light = MobileNetV3-FPN, lighter and quick enough for a CPU, yolobasin = Light "
        "YOLO-Basin of seed 002.\n"
        "Subsidence segmenters (a probability per pixel, seed 000): ecaunet = ECA-UNet, unet = U-Net, "
        "fcn8s / fcn16s / fcn32s = FCN on VGG-16, pspnet = PSPNet (ResNet-50, pyramid pooling 1/2/3/6), "
        "deeplabv3 = DeepLabv3 (ResNet-50, ASPP).\n"
        "For all of these DATASET is a folder written by 'Simulate interferograms' or 'Build training "
        "dataset'; images are read as wrapped phase and fed as cos/sin (0 at no data).\n"
        "Mine-patch segmenters (seed 003): minepatch = DeepLabV3 ResNet-50, minepatch_light = DeepLabV3 "
        "MobileNetV3-Large (lighter). DATASET is then a folder of 4-band 16-bit GF-2 scenes with their "
        "truth (images/, masks/, split.json: e.g. from 'Simulate optical scenes'), cut into TILE_SIZE "
        "(256) tiles every TILE_STEP pixels (default half the tile: 128); each band is scaled between "
        "the 2nd and 98th percentiles of the training scenes, and those percentiles are stored in the "
        "checkpoint.\n\n"
        "Random flips and quarter turns augment the tiles. AdamW with a linear warm-up and a cosine decay "
        "of LEARNING_RATE over EPOCHS; the progress bar moves every iteration and the log shows the loss "
        "(segmenters: BCE + soft Dice).\n\n"
        "OUTPUT is a .pt checkpoint holding the weights and what is needed to run them (architecture, "
        "task, input bands, normalisation, tile size, classes, training data, command, final loss, "
        "training time); it opens without executing code. Cancel stops training and still writes the "
        "weights reached so far.\n\n"
        "START_FROM (optional): fine-tune instead of starting untrained — a shipped model's name (ecaunet, "
        "yolobasin, maskrcnn, minepatch_light) or the path of a checkpoint of the same ARCHITECTURE, e.g. the "
        "shipped network on one's own labelled interferograms. Its configuration (width, tile size) and, for "
        "optical networks, its band scaling are kept; the checkpoint's name goes into the new one's metadata.\n\n"
        "CALIBRATE (advanced, on): after training, detectors and subsidence segmenters are run over the "
        "dataset's val split and the score (or probability) threshold with the best basin-level F1 is stored "
        "in the checkpoint; detection, segmentation and evaluation use it when their threshold is left empty. "
        "Without a val split, after a cancel, or for mine-patch networks the threshold stays 0.5.\n\n"
        "CORES (advanced, on): ecaunet and unet get a second output, the core of each basin (the inner half "
        "of its extent). Two basins that touch are one region of the subsidence map; the cores stay apart, "
        "so segmentsubsidence and evaluatemodel split such a region between its cores and count two basins. "
        "The probability map is unchanged. Off: the paper's network alone.\n\n"
        "DEVICE: auto (CUDA GPU when present, else CPU), cpu, cuda or cuda:N. Without pretrained weights "
        "(none are downloaded) expect tens of epochs over thousands of images for useful results."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        number = QgsProcessingParameterNumber
        self.addParameter(QgsProcessingParameterFile("DATASET", "Dataset folder",
                                                     behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterEnum(
            "ARCHITECTURE", "Architecture", options=list(ARCHITECTURE_NAMES), defaultValue="maskrcnn_light",
            usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterString(
            "START_FROM", "Start from these weights (a checkpoint path or a shipped model name; empty: untrained)",
            defaultValue="", optional=True))
        self.addParameter(number("EPOCHS", "Epochs", type=number.Integer, minValue=1, defaultValue=20))
        self.addParameter(number("BATCH_SIZE", "Batch size", type=number.Integer, minValue=1, defaultValue=4))
        self.addParameter(number("LEARNING_RATE", "Learning rate", type=number.Double, minValue=1e-8,
                                 maxValue=1.0, defaultValue=1e-3))
        self.addParameter(QgsProcessingParameterString("DEVICE", "Device (auto, cpu, cuda, cuda:N)",
                                                       defaultValue="auto"))
        advanced = [
            number("SEED", "Random seed", type=number.Integer, minValue=0, defaultValue=0),
            number("TILE_SIZE", "Tile size (optical scenes)", type=number.Integer, minValue=32, defaultValue=256),
            number("TILE_STEP", "Tile step (optical scenes; 0 = half the tile)", type=number.Integer, minValue=0,
                   defaultValue=0),
            QgsProcessingParameterBoolean("CALIBRATE", "Choose the decision threshold on the val split",
                                          defaultValue=True),
            QgsProcessingParameterBoolean("CORES", "U-Net and ECA-UNet: also map basin cores, to part touching "
                                                   "basins", defaultValue=True),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Checkpoint",
                                                                fileFilter="PyTorch checkpoint (*.pt)"))
        self.addOutput(QgsProcessingOutputNumber("FINAL_LOSS", "Final training loss"))
        self.addOutput(QgsProcessingOutputNumber("ITERATIONS", "Iterations run"))
        self.addOutput(QgsProcessingOutputNumber("TRAINING_TIME", "Training time (s)"))
        self.addOutput(QgsProcessingOutputNumber("THRESHOLD", "Decision threshold stored in the checkpoint"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        require_torch("Training")
        from ..models.device import resolve_device
        from ..models.registry import build_model, input_kind_of
        from ..models.training import seed_everything, train
        folder = self.parameterAsFile(parameters, "DATASET", context)
        architecture = self.parameterAsEnumString(parameters, "ARCHITECTURE", context) or "maskrcnn_light"
        output = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        seed = self.parameterAsInt(parameters, "SEED", context)
        tile_size = self.parameterAsInt(parameters, "TILE_SIZE", context)
        tile_step = self.parameterAsInt(parameters, "TILE_STEP", context) or tile_size // 2
        with user_errors(self):
            device = resolve_device(self.parameterAsString(parameters, "DEVICE", context))
            if input_kind_of(architecture) == "optical":
                from ..models.optical_data import OpticalFolder

                scenes = OpticalFolder(folder).scenes("train")
                if not scenes:
                    raise QgsProcessingException(f"{folder}: the train split has no scenes.")
                if tile_step > tile_size:
                    raise QgsProcessingException(f"TILE_STEP {tile_step} is larger than TILE_SIZE {tile_size}: "
                                                 "parts of the scenes would never be seen.")
                feedback.pushInfo(f"Training {architecture} on {len(scenes)} scenes of {folder} ({tile_size} px "
                                  f"tiles every {tile_step} px) on {device}.")
                size_config = {}
            else:
                from ..models.data import open_dataset

                tiles = open_dataset(folder).images("train")
                if not tiles:
                    raise QgsProcessingException(f"{folder}: the train split has no images.")
                feedback.pushInfo(f"Training {architecture} on {len(tiles)} images of {folder} on {device}.")
                size_config = self._size_config(architecture, tiles[0])
                if architecture in CORE_ARCHITECTURES and self.parameterAsBool(parameters, "CORES", context):
                    size_config["cores"] = True
                    feedback.pushInfo("The network also learns each basin's core: a zone holding two cores is "
                                      "split into two basins.")
            seed_everything(seed)
            start = (self.parameterAsString(parameters, "START_FROM", context) or "").strip()
            if start:
                model, started_from, normalisation = self._start_from(start, architecture, size_config, feedback)
            else:
                model, started_from, normalisation = build_model(architecture, **size_config), {}, None
            result = train(
                model, folder,
                epochs=self.parameterAsInt(parameters, "EPOCHS", context),
                batch_size=self.parameterAsInt(parameters, "BATCH_SIZE", context),
                learning_rate=self.parameterAsDouble(parameters, "LEARNING_RATE", context),
                checkpoint_path=output, device=device, seed=seed, progress=progress_for(feedback),
                metadata={"command": _command(self._name, parameters), **started_from}, tile_size=tile_size,
                tile_step=tile_step, calibrate=self.parameterAsBool(parameters, "CALIBRATE", context),
                normalisation=normalisation,
            )
        if result.cancelled:
            feedback.pushWarning(f"Cancelled after {result.iterations} iterations; the weights reached so far "
                                 f"are in {output}.")
        feedback.pushInfo(f"{result.iterations} iterations in {result.wall_time_s:.1f} s, final loss "
                          f"{result.final_loss:.4f}: {output}")
        from ..models.calibration import threshold_of

        return {"OUTPUT": output, "FINAL_LOSS": result.final_loss, "ITERATIONS": result.iterations,
                "TRAINING_TIME": result.wall_time_s, "THRESHOLD": threshold_of(result.metadata)}

    @staticmethod
    def _start_from(start: str, architecture: str, size_config: dict, feedback):
        """(network with the weights of START_FROM, its metadata entry, the optical normalisation to keep).
        Fine-tuning a shipped or earlier network on one's own data starts far closer than an untrained one."""
        import os

        from ..models.checkpoint import checkpoint_for, load_model

        checkpoint = checkpoint_for(start)
        model, metadata = load_model(checkpoint, "cpu")
        if model.architecture != architecture:
            raise QgsProcessingException(f"START_FROM {start} is {model.architecture}, not the ARCHITECTURE "
                                         f"{architecture}: choose {model.architecture} or other weights.")
        if size_config.get("cores"):
            from ..models.segnets import with_cores

            model = with_cores(model)  # its extent map kept, the core map to learn (as it is if it has one)
        feedback.pushInfo(f"Starting from the weights of {checkpoint}.")
        started_from = {"started_from": {"checkpoint": os.path.basename(checkpoint),
                                         "command": metadata.get("command")}}
        # An optical network keeps the band scaling it learnt with.
        optical = getattr(model, "input_kind", "phase") == "optical"
        return model, started_from, metadata.get("normalisation") if optical else None

    @staticmethod
    def _size_config(architecture, image) -> dict:
        """The tile size goes into the network's config where the network takes one."""
        defaults = ARCHITECTURES[architecture].defaults
        if architecture.startswith("maskrcnn") or "tile_size" in defaults:
            return {"tile_size": int(max(image["width"], image["height"]))}
        return {}
