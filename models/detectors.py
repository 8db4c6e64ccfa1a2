"""The contract every subsidence detector keeps, so training, evaluation and whole-scene detection
have one code path whatever the network.

Input: a float32 tensor [N, 2, H, W] made by ``encode_phase`` from wrapped phase in radians:
channels cos φ and sin φ, both 0 where the phase is NaN (no data carries no fringe). The encoding
is continuous across the ±π wrap, which raw phase is not, and the same for every input format
(wrapped phase, complex values and rasmph colours are all read as phase by core.io).

Targets (training): one dict per image with
    boxes  float32 [K, 4] pixel xyxy (x1, y1, x2, y2), x to the right, y down
    masks  uint8   [K, H, W] instance masks (1 inside the basin)
Predictions: one dict per image with
    boxes  float32 [K, 4] xyxy, scores float32 [K] in [0, 1],
    masks  float32 [K, H, W] probabilities, or absent for box-only detectors.
"""
from typing import Dict, List

import numpy as np

INPUT_BANDS = ("cos_phase", "sin_phase")
CLASSES = ("background", "mining subsidence")


def encode_phase(phase: np.ndarray) -> np.ndarray:
    """[H, W] wrapped phase (radians, NaN = no data) -> [2, H, W] float32 cos/sin, 0 at no data."""
    phase = np.asarray(phase, dtype=np.float32)
    valid = np.isfinite(phase)
    filled = np.where(valid, phase, 0.0)
    encoded = np.stack([np.cos(filled), np.sin(filled)]).astype(np.float32)
    encoded[:, ~valid] = 0.0
    return encoded


class DetectorMixin:
    """What ``build_detector`` returns on top of ``torch.nn.Module``.

    ``losses(images, targets) -> Dict[str, Tensor]`` in train mode; their sum is minimised.
    ``predict(images) -> List[Dict[str, Tensor]]`` in eval mode under ``torch.no_grad``, before any
    score threshold (the caller thresholds), boxes already de-duplicated by NMS within the image.
    ``config() -> dict`` JSON-able constructor arguments: ``build_detector(arch, **config)``
    rebuilds the same network from a checkpoint.
    """

    architecture: str = ""
    task: str = "detection"
    has_masks: bool = False

    def losses(self, images, targets: List[Dict]):
        raise NotImplementedError

    def predict(self, images) -> List[Dict]:
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError

    def set_nms_iou(self, iou: float) -> None:
        """The IoU above which the lower-scored of two boxes is dropped (kept in ``config()``)."""
        raise NotImplementedError
