"""One checkpoint format for every MineSAR model: weights plus the metadata needed to run them.

A file is a plain dict of tensors, strings, numbers, lists and dicts, so ``torch.load`` reads it
with ``weights_only=True``: opening a model file never executes code.

    format        "minesar-checkpoint"
    version       1
    architecture  registry name ("yolobasin", "maskrcnn", ...)
    config        constructor arguments (registry.build_model(architecture, **config))
    state_dict    tensors (fp16 allowed for float weights; loaded back into the model's dtype)
    metadata      task ("detection" or "segmentation"), input bands and their meaning,
                  normalisation, tile size, classes, training data and command, metrics, created
"""
import datetime
import os
import tempfile
from typing import Optional, Tuple

from ..core.errors import MineSARError

FORMAT = "minesar-checkpoint"
VERSION = 1
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")


def save_checkpoint(path: str, model, metadata: dict, half: bool = False) -> str:
    """Writes ``model`` with ``metadata`` to ``path`` atomically (temporary name, then rename)."""
    import torch

    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        state[key] = tensor.clone()
    content = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": model.architecture,
        "config": dict(model.config()),
        "state_dict": state,
        "metadata": {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     **metadata},
    }
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".minesar-", suffix=".pt.part", dir=folder)
    os.close(handle)
    try:
        torch.save(content, temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would hide shared weights from other users
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def read_checkpoint(path: str) -> dict:
    """The checkpoint's dict, checked; clear errors for a missing, foreign or corrupt file."""
    import torch

    if not os.path.isfile(path):
        raise MineSARError(f"{path}: checkpoint not found.")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and weights_only refusals all mean "not ours"
        raise MineSARError(f"{path}: not a readable MineSAR checkpoint ({error}).")
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise MineSARError(f"{path}: not a MineSAR checkpoint (no '{FORMAT}' format tag).")
    if content.get("version", 0) > VERSION:
        raise MineSARError(f"{path}: checkpoint version {content['version']} is newer than this plugin reads "
                           f"({VERSION}); update MineSAR.")
    for key in ("architecture", "config", "state_dict", "metadata"):
        if key not in content:
            raise MineSARError(f"{path}: checkpoint lacks '{key}'.")
    return content


def load_model(path: str, device=None) -> Tuple[object, dict]:
    """(network of any task in eval mode on ``device``, metadata) from a checkpoint file."""
    from .registry import build_model

    return _load(path, device, build_model)


def load_detector(path: str, device=None) -> Tuple[object, dict]:
    """``load_model`` for a detector: a segmentation checkpoint is refused by name."""
    from .registry import build_detector

    return _load(path, device, build_detector)


def _load(path: str, device, build) -> Tuple[object, dict]:
    content = read_checkpoint(path)
    try:
        model = build(content["architecture"], **content["config"])
    except MineSARError as error:
        raise MineSARError(f"{path}: {error}")
    except (TypeError, ValueError) as error:
        raise MineSARError(f"{path}: its configuration does not build a '{content['architecture']}' network ({error}).")
    reference = model.state_dict()
    state = {key: value.to(reference[key].dtype) if key in reference else value
             for key, value in content["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise MineSARError(f"{path}: weights do not fit a '{content['architecture']}' network ({error}).")
    model.eval()
    if device is not None:
        model.to(device)
    return model, content["metadata"]


def shipped_checkpoint(name: str) -> Optional[str]:
    """Path of a default weights file shipped in models/weights, or None."""
    path = os.path.join(WEIGHTS_DIR, f"{name}.pt")
    return path if os.path.isfile(path) else None


def checkpoint_for(model: str) -> str:
    """What a MODEL parameter names: a registry name -> its shipped weights (an existing file of that
    name wins), anything else -> a checkpoint path (checked when read)."""
    from .registry import ARCHITECTURES

    model = (model or "").strip()
    if not model:
        raise MineSARError(f"MODEL: give {', '.join(sorted(ARCHITECTURES))} or the path of a checkpoint (.pt).")
    if model in ARCHITECTURES and not os.path.isfile(model):
        path = shipped_checkpoint(model)
        if path is None:
            raise MineSARError(f"MODEL: no '{model}' weights are shipped with this version of MineSAR yet "
                               f"(models/weights/{model}.pt); train one with minesar:trainmodel and give its .pt file.")
        return path
    return model


def model_label(model: str, checkpoint: str) -> str:
    """How an output names the model: the registry name, or the checkpoint's file name."""
    from .registry import ARCHITECTURES

    model = (model or "").strip()
    return model if model in ARCHITECTURES else os.path.basename(checkpoint)
