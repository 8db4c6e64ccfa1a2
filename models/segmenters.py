"""The contract every segmentation network keeps (seed 000's subsidence maps, seed 003's mine
patches), so training, evaluation and whole-raster segmentation have one code path.

Input: float32 [N, C, H, W] of any H and W (odd sizes too; the network pads inside and crops back).
    input_kind "phase":   C = 2, ``detectors.encode_phase`` (cos/sin of wrapped phase, 0 at no data)
    input_kind "optical": C = bands (4 for GF-2: B, G, R, NIR), each band scaled by the per-band
                          percentiles stored in the checkpoint (``optical_normalise``), 0 at no data
Targets (training): one dict per image, as the detectors get them from a dataset folder, with
    masks  uint8 [K, H, W] instance masks; the network's target is their union (1 = subsidence or
           mine patch, 0 = background)
    or semantic uint8 [H, W] directly (optical scenes: the truth raster > 0)
Prediction: float32 [N, H, W] probability of the positive class.
"""
from typing import Dict, List, Sequence

import numpy as np

TASK = "segmentation"
CLASSES = ("background", "positive")


def semantic_target(target: Dict, shape) -> np.ndarray:
    """The 0/1 map a segmenter learns from one target dict (instance masks or a semantic map)."""
    if "semantic" in target:
        return (np.asarray(target["semantic"]) > 0).astype(np.uint8)
    masks = target.get("masks")
    if masks is None or len(masks) == 0:
        return np.zeros(shape, dtype=np.uint8)
    return (np.asarray(masks).max(axis=0) > 0).astype(np.uint8)


def optical_normalise(block: np.ndarray, low: Sequence[float], high: Sequence[float]) -> np.ndarray:
    """[B, H, W] raw digital numbers -> float32 scaled so each band's low/high percentile maps to
    0/1 (values beyond are kept, not clipped: a bright pit is still brighter); NaN -> 0."""
    block = np.asarray(block, dtype=np.float32)
    low = np.asarray(low, dtype=np.float32)[:, None, None]
    span = np.maximum(np.asarray(high, dtype=np.float32)[:, None, None] - low, 1e-6)
    scaled = (block - low) / span
    scaled[~np.isfinite(scaled)] = 0.0
    return scaled


class SegmenterMixin:
    """What ``registry.build_model`` returns for a segmentation architecture, on top of ``torch.nn.Module``.

    ``losses(images, targets) -> Dict[str, Tensor]`` in train mode (targets as above); their sum is
    minimised. ``predict(images) -> Tensor [N, H, W]`` probabilities, in eval mode under no_grad.
    ``config() -> dict`` JSON-able constructor arguments (``build_model(arch, **config)``).
    """

    architecture: str = ""
    task: str = TASK
    input_kind: str = "phase"
    has_masks: bool = True

    def losses(self, images, targets: List[Dict]):
        raise NotImplementedError

    def predict(self, images):
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError
