"""Training any registered network on a dataset folder, through its contract's ``losses``:
detectors and phase segmenters on interferogram datasets (models/data.py), optical segmenters on
folders of GF-2 scenes (models/optical_data.py), chosen by the model's task and input kind.

A cancel is not a failure here: hours of training are worth keeping, so the weights reached so far
are written to the checkpoint (marked as cancelled) and the call returns normally.
"""
import math
import os
import random
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch

from ..core.errors import Cancelled, MineSARError
from ..core.progress import SILENT, Progress
from .checkpoint import save_checkpoint
from .data import SubsidenceDataset, collate, contract_targets, tile_size_of
from .detectors import CLASSES, INPUT_BANDS
from .device import resolve_device
from .optical_data import TILE_SIZE

OPTIMIZERS = ("adamw", "sgd")
NORMALISATION = {
    "encoding": "cos/sin of wrapped phase (models.detectors.encode_phase), 0 at no data",
    "input_range": [-1.0, 1.0],
    "network_mean": [0.0, 0.0],
    "network_std": [0.7071, 0.7071],
}
INPUT_MEANING = {
    "cos_phase": "cosine of the wrapped interferometric phase (radians), 0 where no data",
    "sin_phase": "sine of the wrapped interferometric phase (radians), 0 where no data",
}
SEGMENTATION_CLASSES = {"phase": ["background", "mining subsidence"], "optical": ["background", "mine patch"]}


@dataclass
class TrainingResult:
    checkpoint_path: str
    final_loss: float
    iterations: int
    epochs_completed: int
    cancelled: bool
    wall_time_s: float
    loss_history: List[float] = field(default_factory=list)
    metadata: Dict = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Same seed, same weights and same batches (on one device; CUDA kernels may still differ in
    the last bits)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _recipe_summary(description: Dict) -> Dict:
    """The parts of dataset.json that say what the network has seen, without the long lists."""
    keys = ("title", "source", "created_by", "seed", "recipe", "preset", "pixel_size_m", "wavelength_m",
            "images", "instances", "split_counts", "crs")
    return {key: description[key] for key in keys if key in description}


def _learning_rate(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up (from-scratch detectors diverge on a full first step), then cosine to 1%."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def train(
    model,
    dataset_folder: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    checkpoint_path: str,
    device="auto",
    progress: Progress = SILENT,
    seed: int = 0,
    optimizer: str = "adamw",
    weight_decay: float = 1e-4,
    max_iterations: Optional[int] = None,
    augment: bool = True,
    metadata: Optional[Dict] = None,
    tile_size: int = TILE_SIZE,
    tile_step: Optional[int] = None,
    calibrate: bool = True,
    normalisation: Optional[Dict] = None,
) -> TrainingResult:
    """Train ``model`` on the ``train`` split of ``dataset_folder`` and write ``checkpoint_path``.

    ``max_iterations`` stops earlier than ``epochs`` (the schedule spans whichever is shorter).
    ``metadata`` is merged into the checkpoint's (e.g. the command that ran this).
    ``tile_size`` and ``tile_step`` (default half the tile) cut optical scenes into training tiles;
    interferogram datasets are tiled already. ``normalisation`` (optical networks) keeps a band
    scaling, e.g. of the checkpoint being fine-tuned, instead of the train split's percentiles.
    ``calibrate``: after training, detectors and phase segmenters choose their decision threshold
    on the dataset's ``val`` split (models/calibration.py) and store it; a cancelled run, an
    optical network or a dataset without a val split keeps 0.5.
    """
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise MineSARError(f"Epochs ({epochs}) and batch size ({batch_size}) must be at least 1 and the "
                           f"learning rate ({learning_rate}) positive.")
    if optimizer not in OPTIMIZERS:
        raise MineSARError(f"Unknown optimizer '{optimizer}': use one of {', '.join(OPTIMIZERS)}.")
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    task = getattr(model, "task", "detection")
    optical = task == "segmentation" and getattr(model, "input_kind", "phase") == "optical"
    if optical:
        from .optical_data import OpticalSceneDataset

        dataset = OpticalSceneDataset(dataset_folder, "train", bands=model.bands, tile_size=tile_size, step=tile_step,
                                      augment=augment, normalisation=normalisation)
        if dataset.scene_count == 0:
            raise MineSARError(f"{dataset_folder}: the train split has no scenes.")
        description = dataset.description
    else:
        dataset = SubsidenceDataset(dataset_folder, "train", augment=augment)
        if len(dataset) == 0:
            raise MineSARError(f"{dataset_folder}: the train split has no images.")
        description = dataset.index.description

    seed_everything(seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate,
                                         num_workers=0, drop_last=len(dataset) > batch_size,
                                         generator=torch.Generator().manual_seed(seed))
    per_epoch = len(loader)
    total = epochs * per_epoch if max_iterations is None else min(epochs * per_epoch, max(1, max_iterations))
    warmup = min(100, max(1, total // 10))
    model.to(device)
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(parameters, lr=learning_rate, momentum=0.9, weight_decay=weight_decay)
    else:
        opt = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)

    if task == "segmentation":
        base_metadata = _segmentation_metadata(model, dataset, optical)
    else:
        base_metadata = {
            "task": "detection",
            "input_bands": list(INPUT_BANDS),
            "input_meaning": INPUT_MEANING,
            "normalisation": NORMALISATION,
            "tile_size": tile_size_of(dataset),
            "classes": list(CLASSES),
            "iou_type": "mask" if getattr(model, "has_masks", False) else "box",
        }
    calibrating = calibrate and not optical
    training_progress = progress.span(0.0, 0.9) if calibrating else progress
    history: List[float] = []
    step, epochs_done, cancelled = 0, 0, False
    started = time.monotonic()
    try:
        for epoch in range(epochs):
            for images, targets in loader:
                if step >= total:
                    break
                for group in opt.param_groups:
                    group["lr"] = _learning_rate(step, total, learning_rate, warmup)
                images = images.to(device)
                losses = model.losses(images, contract_targets(targets))
                loss = sum(losses.values())
                if not torch.isfinite(loss):
                    raise MineSARError(
                        f"Training diverged at iteration {step + 1} (loss {loss.item()}): lower the learning rate "
                        f"(now {learning_rate:g}).")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                # From-scratch detection heads produce rare huge gradients early on: clip, not diverge.
                torch.nn.utils.clip_grad_norm_(parameters, 10.0)
                opt.step()
                step += 1
                history.append(float(loss.item()))
                if step <= 10 or step % max(1, total // 100) == 0 or step == total:
                    parts = ", ".join(f"{k} {v.item():.3f}" for k, v in losses.items())
                    progress.info(f"epoch {epoch + 1}/{epochs}, iteration {step}/{total}: loss "
                                  f"{history[-1]:.4f} ({parts})")
                training_progress.update(step / total)
            else:
                epochs_done = epoch + 1
                continue
            break
    except Cancelled:
        cancelled = True
        progress.info(f"Cancelled after {step} iterations: saving the weights reached so far.")
    wall = time.monotonic() - started
    # The mean over the last epoch (or what there is of it) is steadier than the last batch.
    recent = history[-per_epoch:] if history else []
    final_loss = float(np.mean(recent)) if recent else float("nan")
    base_metadata["training"] = {
        "dataset": os.path.basename(os.path.normpath(dataset_folder)),
        "dataset_description": _recipe_summary(description),
        "split": "train",
        "images": len(dataset),
        **({"scenes": dataset.scene_count, "tile_step": dataset.step} if optical else {}),
        "epochs": epochs,
        "epochs_completed": epochs_done,
        "iterations": step,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "optimizer": optimizer,
        "weight_decay": weight_decay,
        "schedule": f"linear warm-up {warmup} iterations, cosine to 1%",
        "augmentation": "random flips and quarter turns" if augment else "none",
        "seed": seed,
        "device": str(device),
        "torch": str(torch.__version__),  # TorchVersion is not among the types weights_only loads
        "wall_time_s": round(wall, 3),
        "cancelled": cancelled,
        "final_loss": final_loss,
    }
    base_metadata["final_loss"] = final_loss
    model.eval()
    full_metadata = {**base_metadata, **(metadata or {})}
    # Written before calibrating too: hours of training must not hang on the threshold sweep.
    save_checkpoint(checkpoint_path, model, full_metadata)
    if calibrating and not cancelled:
        base_metadata.update(_calibration(model, dataset_folder, device, batch_size, progress.span(0.9, 1.0)) or {})
        full_metadata = {**base_metadata, **(metadata or {})}
        save_checkpoint(checkpoint_path, model, full_metadata)
    progress.finish()
    return TrainingResult(checkpoint_path, final_loss, step, epochs_done, cancelled, wall, history, full_metadata)


def _calibration(model, dataset_folder, device, batch_size, progress) -> Optional[Dict]:
    from .calibration import calibrated_metadata

    try:
        entries = calibrated_metadata(model, dataset_folder, device, batch_size, progress)
    except Cancelled:
        # The weights are worth more than the threshold: keep them with the default one.
        progress.info("Threshold calibration cancelled: the checkpoint keeps the default threshold 0.5.")
        return None
    if entries is None:
        progress.info("No val split: the checkpoint keeps the default threshold 0.5.")
        return None
    calibration = entries["threshold_calibration"]
    if calibration["threshold"] is None:
        progress.info(f"No threshold finds a basin of the val split ({calibration['images']} images): the checkpoint "
                      "keeps the default threshold 0.5.")
        return entries
    progress.info(f"Threshold {calibration['threshold']:g} chosen on the val split ({calibration['images']} images): "
                  f"basin-level P {calibration['precision']:.3f}, R {calibration['recall']:.3f}, "
                  f"F1 {calibration['F1']:.3f}.")
    return entries


PROBE_WARM_UP = 5
STEP_MARGIN = 0.9


def steps_within(minutes: float, model, dataset_folder: str, batch_size: int, learning_rate: float,
                 scratch_path: str, device="auto", probe_steps: int = 20, seed: int = 0) -> int:
    """How many training steps of ``model`` fit in ``minutes``, timed on a throw-away copy of it
    (a resumed detector proposes more boxes than a fresh one, so a fresh stand-in would time it
    short). Only the steps after the first ``PROBE_WARM_UP`` are timed: loading the data, the first
    allocations and a GPU's start-up made the first steps several times slower (5.5 s a step
    against 1.5 s in the run that followed), and the plan short by as much. ``STEP_MARGIN`` keeps
    the plan a little short, for the checkpoints written along the way."""
    import copy

    probe_steps = max(probe_steps, PROBE_WARM_UP + 5)
    stamps = {}

    def stamp(fraction: float) -> None:
        stamps[int(round(fraction * probe_steps))] = time.perf_counter()

    # As many epochs as steps, so that even a split smaller than one batch a step gives all of them.
    train(copy.deepcopy(model), dataset_folder, epochs=probe_steps, batch_size=batch_size,
          learning_rate=learning_rate, checkpoint_path=scratch_path, device=device, max_iterations=probe_steps,
          seed=seed, calibrate=False, progress=Progress(callback=stamp))
    if os.path.exists(scratch_path):
        os.remove(scratch_path)
    per_step = (stamps[probe_steps] - stamps[PROBE_WARM_UP]) / (probe_steps - PROBE_WARM_UP)
    return max(probe_steps, int(STEP_MARGIN * minutes * 60 / per_step))


def _segmentation_metadata(model, dataset, optical: bool) -> Dict:
    """What a segmentation checkpoint needs to be run on a new raster: the input and its scaling
    (for optical networks the training split's per-band percentiles), tiles, classes, output."""
    kind = "optical" if optical else "phase"
    metadata = {
        "task": "segmentation",
        "input_kind": kind,
        "input_bands": list(model.bands),
        "classes": SEGMENTATION_CLASSES[kind],
        "output": f"probability of {SEGMENTATION_CLASSES[kind][1]} per pixel",
        "threshold": 0.5,
    }
    if optical:
        low, high = dataset.normalisation["low"], dataset.normalisation["high"]
        metadata.update({
            "input_meaning": {band: f"{band} digital number, scaled so the training split's "
                                    f"{dataset.normalisation['percentiles'][0]:g}th/"
                                    f"{dataset.normalisation['percentiles'][1]:g}th percentiles ({lo:g}/{hi:g}) "
                                    "are 0/1; 0 where every band is 0 (no data)"
                              for band, lo, hi in zip(model.bands, low, high)},
            "normalisation": dataset.normalisation,
            "tile_size": dataset.tile_size,
            "tile_step": dataset.step,
        })
    else:
        metadata.update({"input_meaning": INPUT_MEANING, "normalisation": NORMALISATION,
                         "tile_size": tile_size_of(dataset)})
    return metadata
