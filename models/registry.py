"""Architecture names -> networks. Modules import lazily: torchvision loads only when used."""
import importlib

from ..core.errors import MineSARError

# name -> (module under minesar.models, class, default config). Config keys are the class's
# constructor arguments and what checkpoints store.
ARCHITECTURES = {
    "maskrcnn": ("maskrcnn", "MaskRCNNDetector", {"backbone": "resnet50"}),
    "maskrcnn_light": ("maskrcnn", "MaskRCNNDetector", {"backbone": "mobilenet_v3"}),
    "yolobasin": ("yolobasin", "LightYoloBasin", {"scale": "s"}),
}


def build_detector(architecture: str, **config):
    """A fresh (untrained) detector; ``config`` overrides the architecture's defaults."""
    try:
        module_name, class_name, defaults = ARCHITECTURES[architecture]
    except KeyError:
        raise MineSARError(
            f"Unknown architecture '{architecture}': use one of {', '.join(sorted(ARCHITECTURES))}."
        )
    module = importlib.import_module(f"{__package__}.{module_name}")
    detector = getattr(module, class_name)(**{**defaults, **config})
    detector.architecture = architecture
    return detector
