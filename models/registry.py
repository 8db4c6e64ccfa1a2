"""Architecture names -> networks. Modules import lazily: torchvision loads only when used."""
import importlib
from typing import List, NamedTuple, Optional

from ..core.errors import MineSARError

TASKS = ("detection", "segmentation")


class Architecture(NamedTuple):
    module: str      # under minesar.models
    class_name: str
    defaults: dict   # constructor arguments, what checkpoints store as "config"
    task: str        # "detection" (detectors.py contract) or "segmentation" (segmenters.py contract)


ARCHITECTURES = {
    "maskrcnn": Architecture("maskrcnn", "MaskRCNNDetector", {"backbone": "resnet50"}, "detection"),
    "maskrcnn_light": Architecture("maskrcnn", "MaskRCNNDetector", {"backbone": "mobilenet_v3"}, "detection"),
    "yolobasin": Architecture("yolobasin", "LightYoloBasin", {"scale": "s"}, "detection"),
    # Seed 000: subsidence maps from cos/sin phase.
    "ecaunet": Architecture("segnets", "ECAUNet", {"base_width": 32}, "segmentation"),
    "unet": Architecture("segnets", "UNet", {"base_width": 32}, "segmentation"),
    "fcn8s": Architecture("segnets", "FCN", {"variant": "8s"}, "segmentation"),
    "fcn16s": Architecture("segnets", "FCN", {"variant": "16s"}, "segmentation"),
    "fcn32s": Architecture("segnets", "FCN", {"variant": "32s"}, "segmentation"),
    "pspnet": Architecture("segnets", "PSPNet", {"backbone": "resnet50"}, "segmentation"),
    "deeplabv3": Architecture("segnets", "DeepLabV3", {"backbone": "resnet50"}, "segmentation"),
    # Seed 003: mine patches from 4-band GF-2 images.
    "minepatch": Architecture("segnets", "DeepLabV3", {"backbone": "resnet50", "input_kind": "optical"},
                              "segmentation"),
    "minepatch_light": Architecture("segnets", "DeepLabV3",
                                    {"backbone": "mobilenet_v3_large", "input_kind": "optical"}, "segmentation"),
}


def names(task: Optional[str] = None) -> List[str]:
    """Registry names in registry order, of one task or all."""
    if task is not None and task not in TASKS:
        raise MineSARError(f"Unknown task '{task}': use one of {', '.join(TASKS)}.")
    return [name for name, entry in ARCHITECTURES.items() if task is None or entry.task == task]


def entry(architecture: str) -> Architecture:
    try:
        return ARCHITECTURES[architecture]
    except KeyError:
        raise MineSARError(
            f"Unknown architecture '{architecture}': use one of {', '.join(sorted(ARCHITECTURES))}."
        ) from None


def task_of(architecture: str) -> str:
    return entry(architecture).task


def input_kind_of(architecture: str) -> str:
    """What a network reads: "phase" (cos/sin of wrapped phase: every detector) or "optical"."""
    return entry(architecture).defaults.get("input_kind", "phase")


def build_model(architecture: str, **config):
    """A fresh (untrained) network of any task; ``config`` overrides the architecture's defaults."""
    found = entry(architecture)
    module = importlib.import_module(f"{__package__}.{found.module}")
    model = getattr(module, found.class_name)(**{**found.defaults, **config})
    model.architecture = architecture
    return model


def build_detector(architecture: str, **config):
    """A fresh (untrained) detector; ``config`` overrides the architecture's defaults."""
    if task_of(architecture) != "detection":
        raise MineSARError(f"'{architecture}' is a segmentation network, not a detector: use one of "
                           f"{', '.join(names('detection'))}.")
    return build_model(architecture, **config)
