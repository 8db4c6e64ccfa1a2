"""SBAS inversion of a stack of unwrapped interferograms (seed 003 §2.2.4; Berardino et al. 2002).

The maths follows MintPy's conventions so that the two agree numerically (compared, not copied):

- unknowns are interval velocities between consecutive epochs (radians per year); a pair's
  phase is the sum of the velocities it spans times their lengths (``design_matrix``);
- the per-pixel solution is the minimum-norm least-squares one (SVD pseudo-inverse), so a
  network split into several components still gets a solution, the velocity of an interval
  that no pair spans being zero; such pixels are counted and flagged, never silently zeroed;
- optional weights are the inverse phase variance of distributed scatterers for a coherence
  and a number of looks (Tough et al. 1995, eq. 66), like MintPy's default ``var`` weighting;
- phase → range change: d = −λ/(4π)·φ, so negative = away from the satellite (subsidence);
- velocity is the least-squares line through the cumulative series against calendar decimal
  years (year + (day of year − 1)/365.25, MintPy's ``yyyymmdd2years``), its standard deviation
  from the residuals of that fit. That axis steps by 1.25 or 0.25 day at a new year instead of
  1, which moves a velocity by ~1e-4 of itself (0.008 mm/yr RMS on the bench's −60 mm/yr bowl):
  small, but most of the 0.01 mm/yr agreement target, so the fit uses MintPy's axis and the
  inversion the uniform days/365.25 one (as MintPy's inversion does);
- temporal coherence |mean(exp(i·residual))| over valid pairs.

Unlike MintPy, a phase of exactly 0 is a valid observation here: NaN alone marks missing data.
The readers (core.io.interferogram) have already turned the nodata of each product into NaN, zero
included for GAMMA, LiCSAR and HyP3 products, whose processors write 0 where there is no phase;
so 0 survives as a value only in GeoTIFFs without such a convention (MineSAR's own among them).

Pixels are solved in batches. The normal matrix is banded (a pair spans consecutive intervals
only), so every pixel of a block gets its normal matrix from one matrix product and all are solved
together by a banded Cholesky vectorised over pixels (``invert_block``). A pixel whose valid pairs
connect all its epochs has a positive-definite normal matrix and a unique solution; one whose own
network is split fails the factorisation (a zero pivot), and only those pixels are grouped by
valid-pair pattern, to share one SVD of the design (cached across blocks) for the minimum-norm
solution and to count their network's components. Nothing is done per pattern for connected
pixels, so scattered NaNs (a different pattern nearly every pixel) cost no Python loop.
"""
import math
from dataclasses import dataclass, field
from datetime import date
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import MineSARError

DAYS_PER_YEAR = 365.25
# MintPy caps the looks at 80 because the phase PDF is numerically flat beyond; so do we.
MAX_LOOKS = 80
# Coherence below this is treated as this when weighting (MintPy uses the same floor, 0.05).
MIN_WEIGHT_COHERENCE = 0.05


def decimal_years(dates: Sequence[date]) -> np.ndarray:
    """Calendar decimal years (year + (day of year − 1)/365.25, MintPy's ``yyyymmdd2years``)."""
    return np.array([d.year + (d.timetuple().tm_yday - 1) / DAYS_PER_YEAR for d in dates], dtype=np.float64)


def velocity_fit(years: np.ndarray, displacement: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line through each column of ``displacement`` (epochs, pixels) against ``years``.

    Returns the slope (displacement per year), its standard deviation from the fit's residuals
    (NaN with two epochs or fewer) and each column's mean: the line passes through
    (mean of ``years``, mean), so ``mean + slope·(t − mean(years))`` draws it.
    """
    t_centred = years - years.mean()
    sxx = float(np.sum(t_centred ** 2))
    mean = displacement.mean(axis=0)
    slope = (t_centred[:, None] * (displacement - mean)).sum(axis=0) / sxx
    residual = displacement - mean - slope[None, :] * t_centred[:, None]
    dof = max(len(years) - 2, 1)
    std = np.sqrt((residual ** 2).sum(axis=0) / dof / sxx) if len(years) > 2 else np.full_like(slope, np.nan)
    return slope, std, mean


@dataclass(frozen=True)
class Pair:
    date1: date
    date2: date
    bperp_m: Optional[float] = None
    name: str = ""

    @property
    def days(self) -> int:
        return (self.date2 - self.date1).days


@dataclass
class Network:
    """Epochs and pairs of an SBAS stack; pairs index into ``dates``."""

    dates: List[date]
    pairs: List[Tuple[int, int]]

    @classmethod
    def from_pairs(cls, pairs: Sequence[Pair]) -> "Network":
        dates = sorted({p.date1 for p in pairs} | {p.date2 for p in pairs})
        index = {d: i for i, d in enumerate(dates)}
        return cls(dates, [(index[p.date1], index[p.date2]) for p in pairs])

    @property
    def years(self) -> np.ndarray:
        return np.array([(d - self.dates[0]).days for d in self.dates], dtype=np.float64) / DAYS_PER_YEAR

    @property
    def decimal_years(self) -> np.ndarray:
        """Calendar decimal years (year + (day of year − 1)/365.25): the velocity fit's time axis."""
        return decimal_years(self.dates)

    def design_matrix(self) -> np.ndarray:
        """(pairs, epochs − 1): row k holds the interval lengths (years) that pair k spans."""
        intervals = np.diff(self.years)
        matrix = np.zeros((len(self.pairs), len(self.dates) - 1))
        for k, (i, j) in enumerate(self.pairs):
            matrix[k, i:j] = intervals[i:j]
        return matrix

    def components(self, pair_mask: Optional[Sequence[bool]] = None) -> List[List[int]]:
        """Connected groups of epochs (indices) linked by the (selected) pairs."""
        parent = list(range(len(self.dates)))

        def root(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for k, (i, j) in enumerate(self.pairs):
            if pair_mask is None or pair_mask[k]:
                parent[root(i)] = root(j)
        groups: Dict[int, List[int]] = {}
        for i in range(len(self.dates)):
            groups.setdefault(root(i), []).append(i)
        return sorted(groups.values())


def perpendicular_baseline(baseline_tcn_m, look_deg: float) -> float:
    """Perpendicular baseline (m) of a TCN baseline for a look angle (deg), as GAMMA's base_perp."""
    _, cross, normal = baseline_tcn_m
    theta = math.radians(look_deg)
    return cross * math.cos(theta) + normal * math.sin(theta)


def select_pairs(
    pairs: Sequence[Pair], max_days: Optional[float] = None, max_bperp_m: Optional[float] = None
) -> List[int]:
    """Indices of the pairs within the temporal (days) and perpendicular (m) baseline thresholds."""
    if max_bperp_m:
        missing = [p.name or f"{p.date1}_{p.date2}" for p in pairs if p.bperp_m is None]
        if missing:
            raise MineSARError(
                f"The perpendicular-baseline threshold cannot be applied: no baseline in the metadata of "
                f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}. Leave it at 0 or import "
                "the interferograms with their GAMMA base.par / HyP3 metadata."
            )
    kept = [
        k for k, p in enumerate(pairs)
        if (not max_days or p.days <= max_days) and (not max_bperp_m or abs(p.bperp_m) <= max_bperp_m)
    ]
    return kept


# --------------------------------------------------------------------------------------------
# Coherence → weight
# --------------------------------------------------------------------------------------------
_VARIANCE_TABLES: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}


def _phase_variance_table(looks: int) -> Tuple[np.ndarray, np.ndarray]:
    """Phase variance (rad²) on a fine coherence grid for distributed scatterers with ``looks``."""
    if looks in _VARIANCE_TABLES:
        return _VARIANCE_TABLES[looks]
    from scipy.special import gammaln, hyp2f1

    # Coherence nodes crowd towards 1, where the variance bends most (linear interpolation
    # between these 500 is within 3e-4 of a 4000-node table for 1–80 looks); the PDF is even
    # in phase, so half the circle suffices. Together ~8× cheaper than a uniform 2000 × 2001.
    coherence = 0.9995 * np.sin(0.5 * math.pi * np.linspace(0.0, 1.0, 500))
    phi = np.linspace(0.0, math.pi, 1001)
    beta = coherence[None, :] * np.cos(phi)[:, None]
    one_minus = 1.0 - coherence[None, :] ** 2
    # Tough et al. (1995) eq. 66 / Hanssen (2001) eq. 4.2.23, in logs where the factors overflow.
    first = np.exp(
        gammaln(looks + 0.5) - gammaln(looks) - 0.5 * math.log(math.pi) + looks * np.log(one_minus)
        - (looks + 0.5) * np.log1p(-beta ** 2)
    ) * beta / 2.0
    second = np.exp(looks * np.log(one_minus)) / (2 * math.pi) * hyp2f1(looks, 1.0, 0.5, beta ** 2)
    pdf = first + second
    pdf /= np.trapz(pdf, phi, axis=0)[None, :]
    variance = np.trapz(phi[:, None] ** 2 * pdf, phi, axis=0)
    _VARIANCE_TABLES[looks] = (coherence, variance)
    return coherence, variance


_LOOKUP_STEP = 1e-4
_LOOKUPS: Dict[int, np.ndarray] = {}


def coherence_to_weight(coherence: np.ndarray, looks: float) -> np.ndarray:
    """Inverse phase variance (1/rad²); NaN coherence gets the weight of the floor coherence.

    The variance table is resampled once onto a uniform 1e-4 coherence step, so that a pixel's
    value is two array look-ups and a linear blend (~6× faster than np.interp's search on a
    stack's worth of values; within 5e-5 of interpolating the table itself).
    """
    looks = int(min(max(round(looks), 1), MAX_LOOKS))
    grid, variance = _phase_variance_table(looks)
    table = _LOOKUPS.get(looks)
    if table is None:
        table = _LOOKUPS[looks] = np.interp(np.arange(0.0, grid[-1] + 2 * _LOOKUP_STEP, _LOOKUP_STEP), grid, variance)
    values = np.clip(np.nan_to_num(coherence, nan=MIN_WEIGHT_COHERENCE), MIN_WEIGHT_COHERENCE, grid[-1])
    position = values.astype(np.float64) * (1.0 / _LOOKUP_STEP)
    index = position.astype(np.intp)
    np.minimum(index, len(table) - 2, out=index)
    position -= index                    # now the fraction of the step
    low = table.take(index)
    blend = table.take(index + 1)
    blend -= low
    blend *= position
    blend += low
    return np.reciprocal(blend, out=blend)


# --------------------------------------------------------------------------------------------
# Block inversion
# --------------------------------------------------------------------------------------------
@dataclass
class _Pattern:
    rows: np.ndarray          # indices of the valid pairs
    pinv: np.ndarray          # (epochs−1, valid pairs) minimum-norm pseudo-inverse
    basis: np.ndarray         # (epochs−1, rank) orthonormal row-space basis
    reduced: np.ndarray       # (valid pairs, rank) design expressed in that basis
    rank: int


class PatternCache:
    """Design-matrix factorisations per valid-pair pattern, reused across blocks."""

    def __init__(self, network: Network, limit: int = 4096):
        self.network = network
        self.design = network.design_matrix()
        self.intervals = np.diff(network.years)
        self.limit = limit
        self._items: Dict[bytes, _Pattern] = {}
        self._connected: Dict[bytes, int] = {}
        # Normal matrix N = Dᵀ diag(w) D of the interval design D. A pair spanning intervals
        # i..j−1 adds w·tₐ·t_b to N[a, b] for a, b in that run only, so N is banded, its
        # half-bandwidth one less than the longest run. Stored by diagonals (LAPACK's lower band
        # layout: band[d, b] = N[b + d, b]), every pixel's band is one product of this
        # (band entries × pairs) matrix with the (pairs × pixels) weights.
        n = self.design.shape[1]
        self.bandwidth = max((j - i for i, j in network.pairs), default=1) - 1
        self.band_design = np.zeros(((self.bandwidth + 1) * n, len(network.pairs)))
        for k, (i, j) in enumerate(network.pairs):
            for a in range(i, j):
                for b in range(i, a + 1):
                    self.band_design[(a - b) * n + b, k] = self.intervals[a] * self.intervals[b]

    def components(self, key: bytes, valid_row: np.ndarray) -> int:
        """Connected groups of epochs in a pattern's network (1 = connected: a unique solution)."""
        count = self._connected.get(key)
        if count is None:
            count = len(self.network.components(valid_row))
            if len(self._connected) >= 16 * self.limit:
                self._connected.pop(next(iter(self._connected)))
            self._connected[key] = count
        return count

    def get(self, key: bytes, valid_row: np.ndarray) -> _Pattern:
        item = self._items.get(key)
        if item is None:
            rows = np.flatnonzero(valid_row)
            sub = self.design[rows]
            u, s, vt = np.linalg.svd(sub, full_matrices=False)
            tolerance = s.max(initial=0.0) * max(sub.shape) * np.finfo(float).eps
            rank = int(np.sum(s > tolerance))
            pinv = (vt[:rank].T / s[:rank]) @ u[:, :rank].T
            item = _Pattern(rows, pinv, vt[:rank].T.copy(), u[:, :rank] * s[:rank], rank)
            if len(self._items) >= self.limit:
                self._items.pop(next(iter(self._items)))
            self._items[key] = item
        return item


class _NumpyBackend:
    name = "cpu (numpy)"

    def put(self, array):
        return array

    def get(self, array):
        return array

    def index(self, indices):
        return indices

    def solve(self, matrices, rhs):
        try:
            return np.linalg.solve(matrices, rhs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            # One numerically singular matrix fails the whole batch: pseudo-inverse each instead
            # (the minimum-norm answer; identical where the matrix is regular).
            return (np.linalg.pinv(matrices) @ rhs[..., None])[..., 0]


class _TorchBackend:
    def __init__(self, device):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.name = f"torch {self.device}"

    def put(self, array):
        return self.torch.as_tensor(np.ascontiguousarray(array), dtype=self.torch.float64, device=self.device)

    def get(self, tensor):
        return tensor.detach().cpu().numpy()

    def index(self, indices):
        return self.torch.as_tensor(indices, dtype=self.torch.long, device=self.device)

    def solve(self, matrices, rhs):
        try:
            return self.torch.linalg.solve(matrices, rhs[..., None])[..., 0]
        except RuntimeError:  # torch.linalg.LinAlgError: singular in the batch, as numpy above
            return (self.torch.linalg.pinv(matrices) @ rhs[..., None])[..., 0]


def make_backend(device: str = "cpu"):
    """``cpu`` → numpy; ``auto`` → CUDA through torch when available, else numpy; ``cuda[:N]``
    or ``torch`` (torch on the CPU, for testing the GPU code path without a GPU)."""
    name = (device or "cpu").strip().lower()
    if name == "cpu":
        return _NumpyBackend()
    if name == "torch":
        return _TorchBackend("cpu")
    try:
        import torch
    except ImportError:
        if name == "auto":
            return _NumpyBackend()
        raise MineSARError(f"Device '{device}' needs PyTorch, which is not installed; use cpu.")
    if name == "auto":
        return _TorchBackend("cuda:0") if torch.cuda.is_available() else _NumpyBackend()
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MineSARError(f"Device '{device}' requested but PyTorch sees no CUDA GPU; use auto or cpu.")
        return _TorchBackend(name)
    raise MineSARError(f"Unknown device '{device}': use auto, cpu or cuda.")


@dataclass
class BlockResult:
    displacement: np.ndarray        # (epochs, pixels) radians of phase, cumulative, NaN = unsolved
    temporal_coherence: np.ndarray  # (pixels,)
    components: np.ndarray          # (pixels,) connected components of the pixel's own network (0 = none)


def invert_block(
    phase: np.ndarray,
    cache: PatternCache,
    weights: Optional[np.ndarray] = None,
    backend=None,
    pixel_chunk: Optional[int] = None,
) -> BlockResult:
    """Invert (pairs, pixels) phase (NaN = missing) into cumulative phase per epoch.

    ``weights`` (pairs, pixels) turns on weighted least squares (inverse variances).

    Every pixel with an observation is solved from its banded normal equations, all together
    (weights 0/1 when unweighted). A pixel whose valid pairs connect all epochs succeeds; one
    whose own network is split (rank-deficient) fails with a zero pivot and gets the
    minimum-norm solution instead, pattern by pattern, from the pattern's SVD.
    """
    backend = backend or _NumpyBackend()
    n_pairs, n_pixels = phase.shape
    n_intervals = cache.design.shape[1]
    if pixel_chunk is None:
        pixel_chunk = max(1024, SOLVE_CHUNK_BYTES // _solve_bytes_per_pixel(cache))
    valid = np.isfinite(phase)
    if weights is not None:
        valid &= np.isfinite(weights) & (weights > 0)
    velocity = np.full((n_intervals, n_pixels), np.nan)
    components = np.zeros(n_pixels, dtype=np.int32)

    # Every pixel with an observation goes through the banded Cholesky first. Its normal matrix
    # is positive definite exactly when its valid pairs connect all epochs (one component), so
    # the pivots sort the pixels with no per-pixel or per-pattern Python work: with scattered
    # NaNs nearly every pixel has its own valid-pair pattern, and counting components pattern by
    # pattern would be a Python loop over pixels. Only the pixels whose factorisation fails (a
    # split network, or a numerically singular one) need their pattern: see below.
    # Everything (pairs × pixels) beyond ``valid`` is built per batch of pixels, so the block's
    # own arrays (phase, weights, valid) are the only full-size ones: see _BYTES_PER_PAIR.
    observed = np.flatnonzero(valid.any(axis=0))
    every = len(observed) == n_pixels  # the common case: slices, no index copies
    band_design = backend.put(cache.band_design)
    design_t = backend.put(np.ascontiguousarray(cache.design.T))
    unsolved = []
    for start in range(0, len(observed), pixel_chunk):
        chunk = slice(start, start + pixel_chunk) if every else observed[start:start + pixel_chunk]
        ok = valid[:, chunk]
        w = backend.put(ok.astype(np.float64) if weights is None else np.where(ok, weights[:, chunk], 0.0))
        band = (band_design @ w).reshape(cache.bandwidth + 1, n_intervals, -1)
        rhs = design_t @ (w * backend.put(np.where(ok, phase[:, chunk], 0.0)))
        solution, regular = _banded_cholesky_solve(band, rhs, return_regular=True)
        solution, regular = backend.get(solution), backend.get(regular)
        regular &= np.all(np.isfinite(solution), axis=0)
        pixels = np.arange(n_pixels)[chunk]
        velocity[:, pixels[regular]] = solution[:, regular]
        components[pixels[regular]] = 1
        if not regular.all():
            unsolved.append(pixels[~regular])

    # Split (rank-deficient) networks: minimum norm per valid-pair pattern, from its SVD; the
    # components are counted for these patterns only.
    rest = np.concatenate(unsolved) if unsolved else np.zeros(0, dtype=np.intp)
    if len(rest):
        packed = np.packbits(valid[:, rest], axis=0)  # (ceil(pairs/8), pixels): one key per pixel
        keys = np.ascontiguousarray(packed.T).view(np.dtype((np.void, packed.shape[0]))).ravel()
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        order = np.argsort(inverse, kind="stable")
        groups, starts = np.unique(inverse[order], return_index=True)
        for g, members in zip(groups, np.split(order, starts[1:])):
            pixels = rest[members]
            key, row = unique[g].tobytes(), valid[:, rest[first[g]]]
            components[pixels] = cache.components(key, row)
            pattern = cache.get(key, row)
            for start in range(0, len(pixels), pixel_chunk):
                chunk = np.ix_(pattern.rows, pixels[start:start + pixel_chunk])
                y = backend.put(phase[chunk])  # all valid: that is the pattern
                if weights is None:
                    solution = backend.put(pattern.pinv) @ y
                else:
                    solution = _weighted_solve(backend, pattern, y, backend.put(weights[chunk]))
                velocity[:, chunk[1].ravel()] = backend.get(solution)

    steps = velocity * cache.intervals[:, None]
    displacement = np.vstack([np.where(np.isnan(steps[:1]), np.nan, 0.0), np.cumsum(steps, axis=0)])

    coherence = np.full(n_pixels, np.nan)
    for start in range(0, n_pixels, pixel_chunk):
        chunk = slice(start, start + pixel_chunk)
        ok = valid[:, chunk]
        residual = np.where(ok, phase[:, chunk] - cache.design @ np.nan_to_num(velocity[:, chunk]), 0.0)
        count = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            coherence[chunk] = np.hypot((np.cos(residual) * ok).sum(0), (np.sin(residual) * ok).sum(0)) / count
    coherence[valid.sum(axis=0) == 0] = np.nan
    return BlockResult(displacement, coherence, components)


# Working memory of one batch of the normal-equation solve; bounds it whatever the block size.
SOLVE_CHUNK_BYTES = 32 * 1024 * 1024


def _solve_bytes_per_pixel(cache: "PatternCache") -> int:
    """Bytes a pixel holds in the solve: its band, weights, phase, their product, right-hand side."""
    return 8 * (cache.band_design.shape[0] + 3 * cache.design.shape[0] + cache.design.shape[1])


# A pivot² below this share of its column's diagonal is rounding noise of a singular matrix (a
# split network gives exactly 0 there, which rounding turns into ±1e-16 of the diagonal), not
# information. Genuine networks stay far above: weights span < 1e6 and the ratio does not depend
# on the interval lengths. A false alarm only sends a pixel to the (exact, slower) SVD path.
_REGULAR_PIVOT_RATIO = 1e-9


def _banded_cholesky_solve(band, rhs, return_regular=False):
    """Solve N x = rhs for many symmetric positive-definite banded N at once, in place.

    ``band`` (bandwidth + 1, n, pixels) holds N by diagonals (band[d, b] = N[b + d, b]); ``rhs``
    (n, pixels). Each step is one array operation over all pixels, so the cost is n·bandwidth
    vector operations instead of a dense factorisation (n³/3 flops) per pixel. Works on numpy
    arrays and torch tensors alike. A pixel whose N is not positive definite comes out NaN.
    With ``return_regular`` also a (pixels,) boolean: every pivot² above _REGULAR_PIVOT_RATIO of
    its diagonal, i.e. N regular beyond rounding (a near-singular N can factor with tiny
    positive pivots and give a finite but meaningless solution).
    """
    depth, n = band.shape[0], band.shape[1]
    diagonal = band[0] * 1.0  # a copy, numpy or torch
    if isinstance(band, np.ndarray):
        with np.errstate(invalid="ignore", divide="ignore"):
            solution = _banded_cholesky_steps(band, rhs, depth, n)
            regular = (band[0] ** 2 > _REGULAR_PIVOT_RATIO * diagonal).all(0)
    else:
        solution = _banded_cholesky_steps(band, rhs, depth, n)
        regular = (band[0] ** 2 > _REGULAR_PIVOT_RATIO * diagonal).all(0)
    return (solution, regular) if return_regular else solution


def _banded_cholesky_steps(band, rhs, depth, n):
    for j in range(n):  # Cholesky N = L Lᵀ, right-looking: column j, then update the band below
        pivot = band[0, j] ** 0.5
        band[0, j] = pivot
        m = min(depth - 1, n - 1 - j)
        if m:
            column = band[1:m + 1, j] / pivot
            band[1:m + 1, j] = column
            for b in range(m):
                band[0:m - b, j + 1 + b] -= column[b:m] * column[b]
    for j in range(n):  # forward: L z = rhs
        rhs[j] /= band[0, j]
        m = min(depth - 1, n - 1 - j)
        if m:
            rhs[j + 1:j + 1 + m] -= band[1:m + 1, j] * rhs[j]
    for j in range(n - 1, -1, -1):  # back: Lᵀ x = z
        m = min(depth - 1, n - 1 - j)
        if m:
            rhs[j] -= (band[1:m + 1, j] * rhs[j + 1:j + 1 + m]).sum(0)
        rhs[j] /= band[0, j]
    return rhs


def _weighted_solve(backend, pattern: _Pattern, y, w):
    """Minimum-norm weighted least squares for pixels sharing one valid-pair pattern.

    The solution is sought in the row space of the pattern's design (where any minimum-norm
    solution lies, whatever the positive weights), where the reduced design has full rank and
    the normal equations are regular.
    """
    reduced = pattern.reduced
    rank = pattern.rank
    upper_i, upper_j = np.triu_indices(rank)
    outer = backend.put(reduced[:, upper_i] * reduced[:, upper_j])       # (pairs, r(r+1)/2)
    flat = w.T @ outer                                                       # (pixels, r(r+1)/2)
    n_pix = flat.shape[0]
    if isinstance(flat, np.ndarray):
        normal = np.empty((n_pix, rank, rank))
    else:
        normal = backend.torch.empty((n_pix, rank, rank), dtype=flat.dtype, device=flat.device)
    normal[:, upper_i, upper_j] = flat
    normal[:, upper_j, upper_i] = flat
    rhs = (backend.put(reduced).T @ (w * y)).T                               # (pixels, r)
    z = backend.solve(normal, rhs)                                           # (pixels, r)
    return backend.put(pattern.basis) @ z.T


# --------------------------------------------------------------------------------------------
# Whole stack: readers → blocks → writers
# --------------------------------------------------------------------------------------------
@dataclass
class SbasOutputs:
    timeseries: str
    velocity: str
    coherence: str


@dataclass
class SbasReport:
    dates: List[date]
    pairs_used: List[str]
    pairs_dropped: List[str]
    network_components: int
    reference_pixel: Tuple[int, int]
    reference_xy: Tuple[float, float]
    reference_chosen: str
    wavelength_m: float
    vertical: bool
    disconnected_pixels: int
    solved_pixels: int
    backend: str
    seconds: float
    notes: List[str] = field(default_factory=list)

    @property
    def pixels_per_second(self) -> float:
        return self.solved_pixels / self.seconds if self.seconds > 0 else float("nan")


# Bytes per pixel and pair that a block holds at once: float64 phase and weights, the valid
# mask and its transient companions (the solve works in batches of SOLVE_CHUNK_BYTES).
_BYTES_PER_PAIR = 8 + 8 + 4
# Per pixel and epoch: displacement, its mm copy, velocities, interval steps, fit residuals.
_BYTES_PER_EPOCH = 6 * 8
DEFAULT_SBAS_BLOCK_BYTES = 128 * 1024 * 1024


def _same_grid(first, other) -> Optional[str]:
    if (first.width, first.height) != (other.width, other.height):
        return f"{other.width} × {other.height} px instead of {first.width} × {first.height}"
    if first.geotransform and other.geotransform and not np.allclose(
        first.geotransform, other.geotransform, rtol=0, atol=1e-9 * max(1.0, abs(first.geotransform[1]))
    ):
        return f"geotransform {other.geotransform} differs from {first.geotransform}"
    if first.crs_wkt and other.crs_wkt:
        from osgeo import osr

        a, b = osr.SpatialReference(), osr.SpatialReference()
        a.ImportFromWkt(first.crs_wkt)
        b.ImportFromWkt(other.crs_wkt)
        if not a.IsSame(b):
            return "coordinate reference system differs"
    return None


def _allow_open_files(count: int) -> None:
    """Every interferogram and coherence raster stays open for the whole run (each block reads
    a window of each). Linux's usual soft limit of 1024 descriptors would stop a stack near 500
    pairs with coherence: raise the soft limit towards the hard one where the OS allows it
    (POSIX). Where it cannot be raised the stack is bounded by it, as the help says."""
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 256  # GDAL, QGIS and Python's own files besides the stack
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


def open_stack(paths: Sequence[str], coherence_paths: Optional[Sequence[str]] = None, look_deg: Optional[float] = None):
    """Open unwrapped interferograms (and matching coherence) and check that they form a stack.

    Returns (sources, coherence_sources or None, pairs, signs): a pair given late→early has its
    phase negated so that every pair runs forward in time.
    """
    from .io.interferogram import open_interferogram

    if len(paths) < 1:
        raise MineSARError("No interferograms given.")
    if coherence_paths and len(coherence_paths) != len(paths):
        raise MineSARError(
            f"COHERENCE: {len(coherence_paths)} coherence rasters for {len(paths)} interferograms; "
            "give one per interferogram, in the same order."
        )
    _allow_open_files(len(paths) + len(coherence_paths or []))
    sources, coherences, pairs, signs = [], [], [], []
    try:
        for path in paths:
            source = open_interferogram(path, kind="unwrapped")
            sources.append(source)
            meta = source.metadata
            if meta.date1 is None or meta.date2 is None:
                raise MineSARError(
                    f"{path}: no acquisition dates (name it YYYYMMDD-YYYYMMDD… or import it with its metadata)."
                )
            if meta.date1 == meta.date2:
                raise MineSARError(f"{path}: both acquisitions are on {meta.date1}.")
            problem = _same_grid(sources[0], source)
            if problem:
                raise MineSARError(f"{path}: not on the grid of {paths[0]}: {problem}.")
            bperp = None
            if meta.baseline_tcn_m:
                bperp = perpendicular_baseline(meta.baseline_tcn_m, look_deg or meta.incidence_deg or 37.0)
            early, late = sorted((meta.date1, meta.date2))
            signs.append(1.0 if meta.date1 < meta.date2 else -1.0)
            pairs.append(Pair(early, late, bperp, name=path))
        seen = {}
        for path, pair in zip(paths, pairs):
            key = (pair.date1, pair.date2)
            if key in seen:
                raise MineSARError(f"{path}: same pair {pair.date1}–{pair.date2} as {seen[key]}.")
            seen[key] = path
        for path, coherence_path, pair in zip(paths, coherence_paths or [], pairs):
            source = open_interferogram(coherence_path, kind="coherence")
            coherences.append(source)
            problem = _same_grid(sources[0], source)
            if problem:
                raise MineSARError(f"{coherence_path}: not on the grid of {paths[0]}: {problem}.")
            meta = source.metadata
            if meta.date1 and meta.date2 and sorted((meta.date1, meta.date2)) != [pair.date1, pair.date2]:
                raise MineSARError(
                    f"{coherence_path}: dates {meta.date1}–{meta.date2} do not match the interferogram "
                    f"{path} ({pair.date1}–{pair.date2}); the coherence list must follow the same order."
                )
    except Exception:
        for source in sources + coherences:
            source.close()
        raise
    return sources, (coherences or None), pairs, signs


def stack_wavelength(sources) -> Tuple[float, Optional[str]]:
    """The stack's radar wavelength from its metadata, and a note when part of it is assumed.

    Interferograms of different wavelengths cannot be summed into one series: those whose
    metadata state a wavelength must agree (to 1e-6), else the first that differs is named.
    """
    known = [s for s in sources if not s.metadata.wavelength_source.startswith("Sentinel-1 default")]
    if not known:
        return sources[0].metadata.wavelength_m, None
    first = known[0]
    for source in known[1:]:
        if not math.isclose(source.metadata.wavelength_m, first.metadata.wavelength_m, rel_tol=1e-6):
            raise MineSARError(
                f"{source.path}: wavelength {source.metadata.wavelength_m:.6g} m ({source.metadata.wavelength_source}) "
                f"differs from {first.metadata.wavelength_m:.6g} m of {first.path} ({first.metadata.wavelength_source}): "
                "one SBAS stack is one sensor; invert each wavelength separately."
            )
    note = None
    unknown = len(sources) - len(known)
    if unknown:
        note = (f"{unknown} interferogram(s) state no wavelength; the {first.metadata.wavelength_m:.6g} m of "
                f"{first.path} ({first.metadata.wavelength_source}) is used for the whole stack.")
    return first.metadata.wavelength_m, note


def _pixel_of(geotransform, x: float, y: float) -> Tuple[int, int]:
    from osgeo import gdal

    inverse = gdal.InvGeoTransform(list(geotransform))
    col, row = gdal.ApplyGeoTransform(inverse, x, y)
    return int(math.floor(row)), int(math.floor(col))


def _pixel_centre(geotransform, row: int, col: int) -> Tuple[float, float]:
    g = geotransform
    return (g[0] + (col + 0.5) * g[1] + (row + 0.5) * g[2], g[3] + (col + 0.5) * g[4] + (row + 0.5) * g[5])


def choose_reference(sources, coherences, windows, progress) -> Tuple[int, int]:
    """A pixel valid in every pair: the highest mean coherence, else the one nearest the centre."""
    best_score, best = -np.inf, None
    height, width = sources[0].height, sources[0].width
    windows = list(windows)
    for b, window in enumerate(windows):
        valid = np.ones((window.height, window.width), dtype=bool)
        for source in sources:
            valid &= np.isfinite(source.read(window))
        if coherences:
            score = np.zeros(valid.shape)
            for source in coherences:
                score += np.nan_to_num(source.read(window), nan=0.0)
            score /= len(coherences)
        else:
            rows, cols = np.mgrid[window.row:window.row + window.height, 0:window.width]
            score = -np.hypot(rows - height / 2.0, cols - width / 2.0)
        score = np.where(valid, score, -np.inf)
        index = int(np.argmax(score))
        if score.flat[index] > best_score:
            best_score = score.flat[index]
            best = (window.row + index // window.width, window.col + index % window.width)
        progress.update((b + 1) / len(windows))
    if best is None or not np.isfinite(best_score):
        raise MineSARError(
            "No pixel is valid in every interferogram, so none can be the reference: give REFERENCE, "
            "or drop the interferograms that are empty where the others have data."
        )
    return best


class IncidenceRaster:
    """Incidence angle (degrees) per pixel from a raster on the stack's grid."""

    def __init__(self, path: str, grid_source):
        from .io.rasters import describe, open_raster

        self.path = path
        self.dataset = open_raster(path)
        info = describe(self.dataset)
        if (info.width, info.height) != (grid_source.width, grid_source.height):
            raise MineSARError(
                f"{path}: incidence raster is {info.width} × {info.height} px, the interferograms "
                f"{grid_source.width} × {grid_source.height} px."
            )
        self.nodata = info.nodata[0]

    def read_block(self, window) -> np.ndarray:
        from .io.rasters import read_window

        values = read_window(self.dataset, window).astype(np.float64)
        if self.nodata is not None:
            values[values == self.nodata] = np.nan
        if np.nanmax(np.abs(values), initial=0.0) <= math.pi / 2 + 1e-6 and np.nanmax(values, initial=0) > 0:
            values = np.degrees(values)  # GAMMA/ISCE store radians; a plausible incidence in radians is < π/2
        return values


def run_sbas(
    paths: Sequence[str],
    outputs: SbasOutputs,
    coherence_paths: Optional[Sequence[str]] = None,
    max_days: Optional[float] = None,
    max_bperp_m: Optional[float] = None,
    reference_xy: Optional[Tuple[float, float]] = None,
    wavelength_m: Optional[float] = None,
    incidence=None,
    weighting: str = "none",
    looks: float = 20,
    device: str = "cpu",
    points=None,
    points_min_coherence: float = 0.7,
    block_bytes: int = DEFAULT_SBAS_BLOCK_BYTES,
    progress=None,
    on_network=None,
) -> SbasReport:
    """Invert a stack of unwrapped interferograms and write time series, velocity, coherence.

    ``incidence``: None (line of sight), an angle in degrees, or the path of a raster of angles.
    ``points``: a callable receiving per-block dicts of point records (see ``_point_records``),
    called as each block is solved, so that a caller can write them at once and hold no more
    than one block's records whatever the raster size.
    ``on_network``: a callable receiving the epochs (dates) once the network is known and before
    the first block is inverted, e.g. to create the point layer whose fields are those dates.
    """
    import time

    from .io.rasters import AtomicGeoTiff, rows_per_strip, strip_windows
    from .progress import SILENT

    progress = progress or SILENT
    if weighting not in ("none", "coherence"):
        raise MineSARError(f"Unknown weighting '{weighting}': use none or coherence.")
    if weighting == "coherence" and not coherence_paths:
        raise MineSARError("WEIGHTING=coherence needs the COHERENCE rasters, one per interferogram.")
    look_deg = incidence if isinstance(incidence, (int, float)) else None
    sources, coherences, all_pairs, signs = open_stack(paths, coherence_paths, look_deg)
    notes = []
    try:
        kept = select_pairs(all_pairs, max_days, max_bperp_m)
        dropped = [all_pairs[k].name for k in range(len(all_pairs)) if k not in set(kept)]
        if len(kept) < 1:
            raise MineSARError("No interferogram is within the baseline thresholds.")
        pairs = [all_pairs[k] for k in kept]
        network = Network.from_pairs(pairs)
        if len(network.dates) < 2:
            raise MineSARError("Fewer than 2 epochs: an SBAS time series needs at least two dates.")
        n_components = len(network.components())
        if n_components > 1:
            notes.append(
                f"The network has {n_components} disconnected groups of epochs; they are bridged by the "
                "minimum-norm velocity solution (zero velocity across an unobserved interval)."
            )
        used_sources = [sources[k] for k in kept]
        used_coherence = [coherences[k] for k in kept] if coherences else None
        used_signs = np.array([signs[k] for k in kept])
        grid = sources[0]
        metadata_wavelength, wavelength_note = stack_wavelength(used_sources)
        if wavelength_note and not wavelength_m:
            notes.append(wavelength_note)
        wavelength = float(wavelength_m) if wavelength_m else metadata_wavelength
        incidence_source = None
        if isinstance(incidence, str) and incidence:
            incidence_source = IncidenceRaster(incidence, grid)
        elif isinstance(incidence, (int, float)) and not 0 <= float(incidence) < 90:
            raise MineSARError(f"INCIDENCE {incidence}°: an incidence angle lies between 0 and 90 degrees.")

        bytes_per_pixel = len(kept) * _BYTES_PER_PAIR + len(network.dates) * _BYTES_PER_EPOCH
        rows = rows_per_strip(grid.width, bytes_per_pixel, block_bytes)
        windows = list(strip_windows(grid.width, grid.height, rows))

        if reference_xy is not None:
            if not grid.geotransform:
                raise MineSARError(f"{grid.path}: no georeference, so a map reference point cannot be placed.")
            ref = _pixel_of(grid.geotransform, *reference_xy)
            if not (0 <= ref[0] < grid.height and 0 <= ref[1] < grid.width):
                raise MineSARError(
                    f"REFERENCE ({reference_xy[0]:.6g}, {reference_xy[1]:.6g}) lies outside the interferograms' grid "
                    f"({grid.width} × {grid.height} px)."
                )
            how = "given"
            invert_progress = progress.span(0.0, 1.0)
        else:
            ref = choose_reference(used_sources, used_coherence, windows, progress.span(0.0, 0.2))
            how = "chosen automatically (valid in every pair" + (", highest mean coherence)" if used_coherence else ", nearest the centre)")
            invert_progress = progress.span(0.2, 1.0)
        from .io.rasters import Window

        ref_window = Window(ref[1], ref[0], 1, 1)
        ref_phase = np.array([float(s.read(ref_window)[0, 0]) for s in used_sources])
        bad = [s.path for s, v in zip(used_sources, ref_phase) if not np.isfinite(v)]
        if bad:
            raise MineSARError(
                f"The reference pixel (row {ref[0]}, column {ref[1]}) has no data in {len(bad)} interferogram(s), "
                f"e.g. {bad[0]}: choose a reference that is valid in every pair."
            )

        backend = make_backend(device)
        cache = PatternCache(network)
        if on_network is not None:
            on_network(list(network.dates))
        phase_to_mm = -wavelength / (4 * math.pi) * 1000.0
        band_names = [f"D{d:%Y%m%d}" for d in network.dates]
        years = network.decimal_years
        ref_xy = _pixel_centre(grid.geotransform, *ref) if grid.geotransform else (float(ref[1]), float(ref[0]))
        tags = {
            "MINESAR_KIND": "timeseries",
            "UNITS": "mm",
            "REFERENCE_ROW": str(ref[0]), "REFERENCE_COL": str(ref[1]),
            "REFERENCE_X": f"{ref_xy[0]:.10g}", "REFERENCE_Y": f"{ref_xy[1]:.10g}",
            "WAVELENGTH_M": f"{wavelength:.9g}",
            "DIRECTION": "vertical" if incidence is not None else "line of sight",
            "SIGN": "negative = away from the satellite (subsidence)",
            "DATES": " ".join(f"{d:%Y%m%d}" for d in network.dates),
            "WEIGHTING": weighting,
        }
        # The outputs are written in TIFF strips of exactly the processing strip's rows, one band
        # after the other: every write completes whole compressed blocks. With the usual 256 × 256
        # tiles a strip of a few rows would leave each tile of every band half written, for GDAL's
        # cache to hold (an epoch band of a 5000-wide tile row is 5 MiB) or to decompress and
        # recompress on each strip: slow and unbounded in memory for a big stack.
        options = ("TILED=NO", f"BLOCKYSIZE={rows}", "INTERLEAVE=BAND", "COMPRESS=DEFLATE", "ZLEVEL=4",
                   "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS")
        common = dict(width=grid.width, height=grid.height, geotransform=grid.geotransform, crs_wkt=grid.crs_wkt,
                      options=options)
        solved = disconnected = 0
        started = time.perf_counter()
        with AtomicGeoTiff(outputs.timeseries, bands=len(band_names), band_descriptions=band_names,
                           metadata=tags, **common) as ts_out, \
             AtomicGeoTiff(outputs.velocity, metadata={**tags, "MINESAR_KIND": "velocity", "UNITS": "mm/yr"},
                           band_descriptions=["VELOCITY"], **common) as vel_out, \
             AtomicGeoTiff(outputs.coherence, bands=2, nodata=math.nan,
                           metadata={**tags, "MINESAR_KIND": "temporal_coherence", "UNITS": "0-1"},
                           band_descriptions=["TEMPORAL_COHERENCE", "NETWORK_COMPONENTS"], **common) as coh_out:
            for b, window in enumerate(windows):
                # Filled pair by pair: no list of reads, no stacked copies (see _BYTES_PER_PAIR).
                size = window.height * window.width
                phase = np.empty((len(used_sources), size))
                weights = np.empty((len(used_sources), size)) if weighting == "coherence" else None
                for k, source in enumerate(used_sources):
                    phase[k] = source.read(window).ravel()
                    phase[k] -= ref_phase[k]
                    phase[k] *= used_signs[k]
                    if weights is not None:
                        weights[k] = coherence_to_weight(used_coherence[k].read(window).ravel(), looks)
                result = invert_block(phase, cache, weights, backend)
                del phase, weights
                mm = result.displacement * phase_to_mm
                if incidence is not None:
                    angle = (incidence_source.read_block(window) if incidence_source is not None
                             else np.full(window.height * window.width, float(incidence)))
                    mm = mm / np.cos(np.radians(angle.ravel()))[None, :]
                velocity, v_std, _ = velocity_fit(years, mm)
                shape = (window.height, window.width)
                for band in range(mm.shape[0]):
                    ts_out.write(mm[band].reshape(shape), window, band=band + 1)
                vel_out.write(velocity.reshape(shape), window)
                coh_out.write(result.temporal_coherence.reshape(shape), window, band=1)
                components = result.components.astype(np.float32)
                components[components == 0] = np.nan
                coh_out.write(components.reshape(shape), window, band=2)
                solved += int(np.isfinite(velocity).sum())
                disconnected += int((result.components > 1).sum())
                if points is not None:
                    points(_point_records(grid, window, mm, velocity, v_std, result.temporal_coherence,
                                          band_names, points_min_coherence))
                invert_progress.update((b + 1) / len(windows))
            seconds = time.perf_counter() - started
    finally:
        for source in sources + (coherences or []):
            source.close()
    if disconnected:
        notes.append(
            f"{disconnected} pixel(s) have a network split by missing data (NETWORK_COMPONENTS > 1 in the "
            "coherence output): their series jump across the gap with the minimum-norm solution."
        )
    if not max_bperp_m and any(p.bperp_m is None for p in all_pairs):
        notes.append("No perpendicular baselines in the metadata: a Bperp threshold could not be applied.")
    return SbasReport(
        dates=network.dates,
        pairs_used=[p.name for p in pairs],
        pairs_dropped=dropped,
        network_components=n_components,
        reference_pixel=ref,
        reference_xy=ref_xy,
        reference_chosen=how,
        wavelength_m=wavelength,
        vertical=incidence is not None,
        disconnected_pixels=disconnected,
        solved_pixels=solved,
        backend=backend.name,
        seconds=seconds,
        notes=notes,
    )


def _point_records(grid, window, mm, velocity, v_std, coherence, band_names, min_coherence) -> dict:
    """Arrays of the pixels worth a point (MintPy save_qgis fields), for one block."""
    keep = np.isfinite(velocity) & (np.nan_to_num(coherence) >= min_coherence)
    index = np.flatnonzero(keep)
    rows = window.row + index // window.width
    cols = window.col + index % window.width
    g = grid.geotransform or (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    x = g[0] + (cols + 0.5) * g[1] + (rows + 0.5) * g[2]
    y = g[3] + (cols + 0.5) * g[4] + (rows + 0.5) * g[5]
    return {
        "code": rows.astype(np.int64) * grid.width + cols,
        "x": x, "y": y,
        "VEL": velocity[index], "V_STDEV": v_std[index], "COHERENCE": coherence[index],
        "series": {name: mm[k, index] for k, name in enumerate(band_names)},
    }
