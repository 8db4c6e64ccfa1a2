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
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.errors import MineSARError

TASK = "segmentation"
CLASSES = ("background", "positive")
INPUT_KINDS = ("phase", "optical")
PERCENTILES = (2.0, 98.0)


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


def percentile_normalisation(low: Sequence[float], high: Sequence[float], bands: Sequence[str],
                             percentiles: Sequence[float] = PERCENTILES) -> Dict:
    """What a checkpoint's metadata["normalisation"] holds for an optical network."""
    return {"kind": "percentile", "percentiles": [float(p) for p in percentiles],
            "low": [float(v) for v in low], "high": [float(v) for v in high], "bands": list(bands)}


def normalisation_limits(normalisation: Optional[Dict], bands: int, source: str = "normalisation"
                         ) -> Tuple[np.ndarray, np.ndarray]:
    """(low, high) per band from a percentile normalisation, checked against the band count."""
    if not isinstance(normalisation, dict) or normalisation.get("kind") != "percentile":
        raise MineSARError(f"{source}: an optical network needs a per-band percentile normalisation "
                           f"(checkpoint metadata 'normalisation' with kind 'percentile'), not {normalisation!r}.")
    low = np.asarray(normalisation.get("low", ()), dtype=np.float64)
    high = np.asarray(normalisation.get("high", ()), dtype=np.float64)
    if low.shape != (bands,) or high.shape != (bands,):
        raise MineSARError(f"{source}: the normalisation has {low.size} low and {high.size} high value(s) "
                           f"for {bands} band(s).")
    return low, high


def optical_input(block: np.ndarray, normalisation: Dict, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """[B, H, W] raw digital numbers -> the network's float32 input: scaled by the checkpoint's
    percentiles, 0 where there is no data (``valid`` False; by default pixels that are 0 in every
    band, an orthophoto's fill, or not finite in some band), as the contract wants."""
    block = np.asarray(block)
    if block.ndim != 3:
        raise MineSARError(f"An optical block must be [bands, rows, cols], not of shape {block.shape}.")
    low, high = normalisation_limits(normalisation, block.shape[0])
    scaled = optical_normalise(block, low, high)
    if valid is None:
        finite = np.isfinite(block).all(axis=0) if np.issubdtype(block.dtype, np.floating) else True
        valid = np.any(block != 0, axis=0) & finite
    scaled[:, ~np.asarray(valid, dtype=bool)] = 0.0
    return scaled


def segment_maps(model, images):
    """[N, C, H, W] probabilities of a batch: the positive class, and for a network with ``cores``
    a second map of the basins' cores (core.segmentation.basin_cores)."""
    if getattr(model, "cores", False):
        return model.predict_maps(images)
    return model.predict(images)[:, None]


class SegmenterMixin:
    """What ``registry.build_model`` returns for a segmentation architecture, on top of ``torch.nn.Module``.

    ``losses(images, targets) -> Dict[str, Tensor]`` in train mode (targets as above); their sum is
    minimised. ``predict(images) -> Tensor [N, H, W]`` probabilities, in eval mode under no_grad.
    ``config() -> dict`` JSON-able constructor arguments (``build_model(arch, **config)``).
    With ``cores`` set, ``predict_maps(images) -> Tensor [N, 2, H, W]`` adds the basins' cores.
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
