"""Physical fields of a simulated interferogram (SPEC §2, seed 001 eq. 7–10), in physical units.

Coordinates are metres on the image grid: x grows with the column, y with the row, and a pixel's
centre is at ((col + ½)·p, (row + ½)·p). Displacements are millimetres along the line of sight,
positive towards the satellite, so subsidence is negative (the MintPy convention). The
interferometric phase of a LOS displacement d is φ = −4π/λ·d: subsidence of λ/2 gives one
fringe (2π).
"""
import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import scipy.fft
from scipy.special import erf

SQRT_PI = math.sqrt(math.pi)


def phase_from_los_mm(los_mm: np.ndarray, wavelength_m: float) -> np.ndarray:
    """Interferometric phase (radians) of a LOS displacement in mm (positive towards the radar)."""
    return (-4.0 * math.pi / (wavelength_m * 1000.0)) * los_mm


def grid_coordinates(rows: int, cols: int, pixel_size_m: float, row0: int = 0, col0: int = 0):
    """Pixel-centre coordinates (x, y) in metres of a block starting at (row0, col0), broadcastable."""
    y = (np.arange(row0, row0 + rows, dtype=np.float64) + 0.5)[:, None] * pixel_size_m
    x = (np.arange(col0, col0 + cols, dtype=np.float64) + 0.5)[None, :] * pixel_size_m
    return x, y


@dataclass(frozen=True)
class Basin:
    """One deformation source: a mining basin or a distractor.

    ``kind``: "gaussian" (seed 001 eq. 8, with an elliptical, rotated variance), "pim" (the
    probability-integral-method trough of a rotated rectangular panel), "groundwater" (a broad
    bowl) or "atmosphere" (a localised delay blob). ``depth_mm`` is the LOS magnitude at the
    deepest point (positive); ``sign`` −1 moves away from the radar (subsidence), +1 towards.
    Gaussian-like kinds use ``sigma_x_m``/``sigma_y_m``; "pim" uses the panel half sizes
    ``half_length_m``/``half_width_m`` and the radius of influence ``radius_m``.
    """

    kind: str
    x_m: float
    y_m: float
    depth_mm: float
    angle_rad: float = 0.0
    sigma_x_m: float = 0.0
    sigma_y_m: float = 0.0
    half_length_m: float = 0.0
    half_width_m: float = 0.0
    radius_m: float = 0.0
    sign: float = -1.0

    @property
    def is_mining(self) -> bool:
        return self.kind in ("gaussian", "pim")

    def reach_m(self) -> float:
        """Distance from the centre beyond which the field is below 10⁻⁴ of its depth."""
        if self.kind == "pim":
            # erf tail: 1 − erf(√π·t) < 1e-4 for t > 1.55 radii beyond the panel edge.
            return math.hypot(self.half_length_m, self.half_width_m) + 1.6 * self.radius_m
        return 4.3 * max(self.sigma_x_m, self.sigma_y_m)

    def _local(self, x, y):
        """Coordinates in the source's own frame (u along the angle, v across)."""
        dx, dy = x - self.x_m, y - self.y_m
        c, s = math.cos(self.angle_rad), math.sin(self.angle_rad)
        return dx * c + dy * s, -dx * s + dy * c

    def shape(self, x, y) -> np.ndarray:
        """The field normalised to 1 at its deepest point (0…1)."""
        u, v = self._local(x, y)
        if self.kind == "pim":
            return pim_trough(u, v, self.half_length_m, self.half_width_m, self.radius_m)
        return np.exp(-0.5 * ((u / self.sigma_x_m) ** 2 + (v / self.sigma_y_m) ** 2))

    def los_mm(self, x, y) -> np.ndarray:
        return self.sign * self.depth_mm * self.shape(x, y)


def pim_trough(u, v, half_length: float, half_width: float, radius: float) -> np.ndarray:
    """Probability-integral-method trough of a panel [−L/2, L/2] × [−W/2, W/2], scaled to 1 at the centre.

    W(u,v) = ¼·[erf(√π(x2−u)/r) − erf(√π(x1−u)/r)]·[erf(√π(y2−v)/r) − erf(√π(y1−v)/r)] reaches
    erf(√π·L/(2r))·erf(√π·W/(2r)) < 1 at the centre of a panel narrower than about r, so the
    field is divided by that: the requested depth is then the real maximum.
    """
    k = SQRT_PI / radius
    along = erf(k * (half_length - u)) - erf(k * (-half_length - u))
    across = erf(k * (half_width - v)) - erf(k * (-half_width - v))
    peak = math.erf(k * half_length) * math.erf(k * half_width)
    return 0.25 * along * across / peak


def power_law_screen(
    shape: Tuple[int, int], pixel_size_m: float, rng: np.random.Generator, slope: float = -8.0 / 3.0,
) -> np.ndarray:
    """A zero-mean, unit-RMS random field whose 2-D power spectrum falls as |k|^slope.

    White noise filtered in the Fourier domain by |k|^(slope/2) (Hanssen 2001): slope −8/3 is the
    Kolmogorov turbulence of the troposphere at kilometre scales. The FFT grid is padded and
    cropped so the screen does not wrap around from one edge to the opposite one; float32 FFTs
    keep a 8k × 8k scene within a few GB.
    """
    rows, cols = shape
    big_rows, big_cols = _padded(rows), _padded(cols)
    ky = np.fft.fftfreq(big_rows, d=pixel_size_m).astype(np.float32)[:, None]
    kx = np.fft.rfftfreq(big_cols, d=pixel_size_m).astype(np.float32)[None, :]
    k = np.hypot(kx, ky)
    k[0, 0] = 1.0
    amplitude = k ** np.float32(slope / 2.0)
    amplitude[0, 0] = 0.0
    half = (big_rows, big_cols // 2 + 1)
    spectrum = rng.standard_normal(half, dtype=np.float32) + 1j * rng.standard_normal(half, dtype=np.float32)
    spectrum *= amplitude
    # One FFT thread: datasets run images in parallel threads already (scipy.fft.set_workers raises it).
    field = scipy.fft.irfft2(spectrum.astype(np.complex64), s=(big_rows, big_cols))[:rows, :cols]
    field = field - field.mean(dtype=np.float64)
    rms = float(field.std(dtype=np.float64))
    return (field / rms if rms > 0 else field).astype(np.float32)


def _padded(length: int) -> int:
    return scipy.fft.next_fast_len(length + max(length // 4, min(length, 512)))


def radial_power_spectrum(field: np.ndarray, pixel_size_m: float, bins: int = 24):
    """(wavenumber in cycles/m, mean power) in logarithmic bins: the check of a screen's slope."""
    rows, cols = field.shape
    window = np.outer(np.hanning(rows), np.hanning(cols))  # keeps edge jumps out of the spectrum
    spectrum = np.abs(np.fft.fft2((field - field.mean()) * window)) ** 2
    k = np.hypot(np.fft.fftfreq(cols, d=pixel_size_m)[None, :], np.fft.fftfreq(rows, d=pixel_size_m)[:, None])
    k_low, k_high = 1.0 / (min(rows, cols) * pixel_size_m / 4.0), 0.5 / pixel_size_m
    edges = np.geomspace(k_low, k_high, bins + 1)
    index = np.digitize(k.ravel(), edges) - 1
    inside = (index >= 0) & (index < bins)
    power = np.bincount(index[inside], weights=spectrum.ravel()[inside], minlength=bins)
    counts = np.bincount(index[inside], minlength=bins)
    centres = np.sqrt(edges[:-1] * edges[1:])
    keep = counts > 0
    return centres[keep], power[keep] / counts[keep]


def simulated_dem(shape: Tuple[int, int], pixel_size_m: float, rng: np.random.Generator, relief_m: float) -> np.ndarray:
    """A fractal terrain (spectral slope −4, smoother than the atmosphere), heights 0…relief_m."""
    surface = power_law_screen(shape, pixel_size_m, rng, slope=-4.0)
    low, high = float(surface.min()), float(surface.max())
    return ((surface - low) / max(high - low, 1e-9) * relief_m).astype(np.float32)


def stratified_delay_mm(dem_m: np.ndarray, mm_per_km: float) -> np.ndarray:
    """Height-correlated tropospheric delay difference, proportional to height above the scene mean."""
    return ((dem_m - float(np.nanmean(dem_m))) * (mm_per_km / 1000.0)).astype(np.float32)


def ramp_mm(shape: Tuple[int, int], pixel_size_m: float, gradient_mm_per_km: Tuple[float, float]) -> np.ndarray:
    """Orbital ramp: a plane through zero at the scene centre."""
    rows, cols = shape
    x, y = grid_coordinates(rows, cols, pixel_size_m)
    x = x - cols * pixel_size_m / 2.0
    y = y - rows * pixel_size_m / 2.0
    return ((gradient_mm_per_km[0] * x + gradient_mm_per_km[1] * y) / 1000.0).astype(np.float32)


def decorrelation_noise(coherence: np.ndarray, looks: int, rng: np.random.Generator) -> np.ndarray:
    """Phase noise (radians) of a multilooked interferogram of the given coherence.

    Each look is a pair of circular Gaussian signals correlated by γ; the phase of their averaged
    product has exactly the distribution of InSAR phase for γ and L looks (Just & Bamler 1994),
    so low coherence gives near-uniform phase and high coherence a narrow spread.
    """
    gamma = np.clip(coherence, 0.0, 1.0).astype(np.float32)
    shape = gamma.shape
    total = np.zeros(shape, dtype=np.complex64)
    partner = np.sqrt(1.0 - gamma**2)
    for _ in range(max(1, int(looks))):
        first = _circular_gaussian(rng, shape)
        independent = _circular_gaussian(rng, shape)
        second = gamma * first + partner * independent
        total += first * np.conj(second)
    return np.angle(total).astype(np.float32)


def _circular_gaussian(rng: np.random.Generator, shape) -> np.ndarray:
    values = rng.standard_normal((2,) + tuple(shape), dtype=np.float32)
    return (values[0] + 1j * values[1]).astype(np.complex64) * np.float32(math.sqrt(0.5))


def phase_gradient(phase: np.ndarray) -> np.ndarray:
    """Magnitude of the (unwrapped) phase gradient in radians per pixel."""
    grad_row, grad_col = np.gradient(phase)
    return np.hypot(grad_row, grad_col)
