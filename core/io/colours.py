"""GAMMA ``rasmph``-style colour interferograms: phase as hue, one colour cycle per 2π.

``phase_to_rgb`` renders (optionally with brightness from amplitude or coherence, as
``rasmph_pwr`` does with its 0.35 exponent); ``rgb_to_phase`` recovers the phase of such an image
from the hue, which is independent of brightness, so the colour images people label and publish
become phase rasters again. Pixels without colour (black background, grey, white) have no phase.

The wheel: phase 0 is red, +2π/3 green, −2π/3 blue, increasing phase turns red → yellow →
green → cyan → blue → magenta. Eight-bit hue resolves 1/1530 of a cycle (≈ 0.004 rad).
"""
from typing import Optional

import numpy as np

TWO_PI = 2.0 * np.pi
RASMPH_EXPONENT = 0.35


def wrap(phase: np.ndarray) -> np.ndarray:
    """Wrap to (−π, π]."""
    wrapped = np.mod(phase + np.pi, TWO_PI) - np.pi
    # mod maps +π to −π; keep +π so that wrap(π) == π, as angle() does.
    return np.where(wrapped == -np.pi, np.pi, wrapped).astype(np.asarray(phase).dtype, copy=False)


def brightness_from(values: np.ndarray, reference: float, exponent: float = RASMPH_EXPONENT) -> np.ndarray:
    """rasmph_pwr brightness: (value / reference) ** exponent, clipped to [0, 1].

    ``reference`` is the scene mean (of the whole raster, computed once by the caller), so blocks
    of one scene are rendered alike.
    """
    if reference <= 0 or not np.isfinite(reference):
        raise ValueError("brightness reference must be a positive number")
    scaled = np.clip(np.nan_to_num(values, nan=0.0) / reference, 0.0, None) ** exponent
    return np.clip(scaled, 0.0, 1.0)


def phase_to_rgb(phase: np.ndarray, brightness: Optional[np.ndarray] = None) -> np.ndarray:
    """(…, 3) uint8 colours; NaN phase is black."""
    phase = np.asarray(phase, dtype=np.float64)
    valid = np.isfinite(phase)
    hue = np.mod(np.where(valid, phase, 0.0), TWO_PI) / TWO_PI * 6.0  # sextant position 0..6
    sextant = np.floor(hue).astype(np.int64) % 6
    rising = hue - np.floor(hue)
    falling = 1.0 - rising
    ones, zeros = np.ones_like(hue), np.zeros_like(hue)
    # Each sextant holds one channel at 1, one at 0 and one ramping.
    red = np.choose(sextant, [ones, falling, zeros, zeros, rising, ones])
    green = np.choose(sextant, [rising, ones, ones, falling, zeros, zeros])
    blue = np.choose(sextant, [zeros, zeros, rising, ones, ones, falling])
    rgb = np.stack([red, green, blue], axis=-1)
    if brightness is not None:
        rgb *= np.clip(np.asarray(brightness, dtype=np.float64), 0.0, 1.0)[..., None]
    rgb[~valid] = 0.0
    return np.round(rgb * 255.0).astype(np.uint8)


def rgb_to_phase(rgb: np.ndarray, min_saturation: float = 0.25, min_value: int = 8) -> np.ndarray:
    """Phase in radians (−π, π] from (…, 3) colours; NaN where there is no colour to read.

    ``min_saturation`` rejects greys and white (annotations, background), ``min_value`` rejects
    near-black pixels whose hue is dominated by quantisation.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    high = np.max(rgb[..., :3], axis=-1)
    low = np.min(rgb[..., :3], axis=-1)
    delta = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        saturation = np.where(high > 0, delta / high, 0.0)
        safe = np.where(delta > 0, delta, 1.0)
        hue = np.where(
            high == red,
            np.mod((green - blue) / safe, 6.0),
            np.where(high == green, (blue - red) / safe + 2.0, (red - green) / safe + 4.0),
        )
    phase = wrap(hue / 6.0 * TWO_PI)
    valid = (saturation >= min_saturation) & (high >= min_value)
    return np.where(valid, phase, np.nan).astype(np.float32)
