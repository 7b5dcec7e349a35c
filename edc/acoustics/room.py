"""Closed-form room acoustics of the simulator: its bands, image sources, Sabine/Eyring, Barron.

pyroomacoustics (48 kHz) simulates 8 octave bands: the 7 given (125 Hz - 8 kHz) and a
16 kHz band whose wall absorption it extrapolates linearly in log2 frequency from the
4 and 8 kHz values (clipped to [0, 1]) and whose air absorption is 34.8e-3 / m. That band
carries about half of a broadband impulse's energy and, where its absorption clips to 0,
decays only through air (T = 1.16 s): any model of the broadband EDC must include it.

Inputs are the room features in physical units, torch, any float dtype: the paper's 16 columns
``(..., 16)``, or the surfaces layout ``(..., 93)`` (the 9 geometry columns, then per surface west, east,
south, north, floor, ceiling its absorption and scattering at 125 Hz to 8 kHz; docs/data.md). Outputs
keep the leading axes. Times in s, distances in m, energies relative to 1/r^2.
"""
from __future__ import annotations

import functools
import itertools
import math

import torch
from torch.nn import functional as F

from edc.acoustics.simulate import ISM_ORDER, SIM_FS, SPEED_OF_SOUND

# Energy attenuation of air in 1/m per band: pyroomacoustics' default (20 °C, 30-50 % humidity).
AIR_ABSORPTION = (0.1e-3, 0.3e-3, 0.6e-3, 1.0e-3, 1.9e-3, 5.8e-3, 20.3e-3, 34.8e-3)
# Share of a white impulse's energy per band: bandwidth of pyroomacoustics' filter bank at
# 48 kHz (the first band reaches down to 0 Hz, the last up to 24 kHz).
_EDGES = (0.0, 176.8, 353.6, 707.1, 1414.2, 2828.4, 5656.9, 11313.7, 24000.0)
BAND_ENERGY = tuple((hi - lo) / _EDGES[-1] for lo, hi in zip(_EDGES[:-1], _EDGES[1:]))
# Energy of a unit pulse through the simulator's filter bank, split by band pair: the bands'
# filters sum to 1 and neighbours overlap, so a pulse with band amplitudes a carries
# a^T C a with C tridiagonal (its rows sum to BAND_ENERGY). Measured on a 16384-sample pulse.
_COUPLING_DIAG = (0.006851, 0.005706, 0.01153, 0.02295, 0.04600, 0.09196, 0.1839, 0.4941)
_COUPLING_NEIGHBOURS = (0.000534, 0.001083, 0.002151, 0.004318, 0.008636, 0.01726, 0.03451)
DECAY_60_DB = 6.0 * math.log(10.0)  # ln(1e6) = 13.82: energy decays by 60 dB
# Share of the energy of a white pulse in simulator band b (columns, 125 Hz to 16 kHz) that the octave
# filter c of the band curves passes (rows, 125 Hz to 8 kHz; pyfar's order-6 bank): pyroomacoustics'
# band filters overlap their neighbours, so about 11 % of band b reaches octave b + 1. Measured through
# both filter banks (tests/test_physics.py checks it).
OCTAVE_LEAKAGE = (
    (0.6933, 0.0310, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    (0.2079, 0.8669, 0.0147, 0.0, 0.0, 0.0, 0.0, 0.0),
    (0.0004, 0.1113, 0.8850, 0.0149, 0.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 0.1088, 0.8822, 0.0144, 0.0, 0.0, 0.0),
    (0.0, 0.0, 0.0, 0.1116, 0.8804, 0.0138, 0.0, 0.0),
    (0.0, 0.0, 0.0, 0.0, 0.1143, 0.8785, 0.0130, 0.0),
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.1182, 0.8768, 0.0095),
)
# Exact mid-band frequencies of the octave filters (IEC 61260-1, base 10): 125.9 Hz to 7943 Hz.
OCTAVE_MID_HZ = tuple(1000.0 * 10.0 ** (0.3 * k) for k in range(-3, 4))


def _const(values, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=like.dtype, device=like.device)


def geometry(features: torch.Tensor):
    """``(volume m^3, surface m^2, source-receiver distance m)``, each ``(...)``."""
    length, width, height = features[..., 0], features[..., 1], features[..., 2]
    volume = length * width * height
    surface = 2.0 * (length * width + length * height + width * height)
    distance = torch.linalg.vector_norm(features[..., 3:6] - features[..., 6:9], dim=-1)
    return volume, surface, distance


N_SURFACE_FEATURES = 93  # the surfaces layout: 9 geometry columns + 6 surfaces x (7 absorption + 7 scattering)


def has_surfaces(features: torch.Tensor) -> bool:
    """Whether ``features`` are in the surfaces layout ``(..., 93)`` (else the paper's ``(..., 16)``)."""
    return features.shape[-1] == N_SURFACE_FEATURES


def _extrapolate_16k(coeffs: torch.Tensor) -> torch.Tensor:
    """The 7 given bands and the 16 kHz band pyroomacoustics extrapolates, ``clip(2 c_8k - c_4k, 0, 1)``."""
    return torch.cat([coeffs, (2.0 * coeffs[..., 6:7] - coeffs[..., 5:6]).clamp(0.0, 1.0)], dim=-1)


def surface_coefficients(features: torch.Tensor):
    """``(absorption, scattering)`` per surface (west, east, south, north, floor, ceiling) and simulated
    band, ``(..., 6, 8)`` each; the paper's layout: f1..f7 on every surface, scattering 0."""
    if not has_surfaces(features):
        alpha = band_absorption(features)[..., None, :].expand(*features.shape[:-1], 6, 8)
        return alpha, torch.zeros_like(alpha)
    per_surface = features[..., 9:].unflatten(-1, (6, 14))
    return _extrapolate_16k(per_surface[..., :7]), _extrapolate_16k(per_surface[..., 7:])


def surface_areas(features: torch.Tensor) -> torch.Tensor:
    """Areas (m^2) of west, east, south, north, floor and ceiling, ``(..., 6)``."""
    length, width, height = features[..., 0], features[..., 1], features[..., 2]
    return torch.stack([width * height, width * height, length * height, length * height,
                        length * width, length * width], -1)


def band_absorption(features: torch.Tensor) -> torch.Tensor:
    """Wall energy absorption per simulated band, ``(..., 8)``: f1..f7 and the 16 kHz band
    pyroomacoustics extrapolates, ``clip(2 f7 - f6, 0, 1)``; in the surfaces layout the area-weighted
    mean over the six surfaces (Eyring's)."""
    if has_surfaces(features):
        alpha, _ = surface_coefficients(features)
        areas = surface_areas(features)
        return (areas[..., None] * alpha).sum(-2) / areas.sum(-1, keepdim=True)
    return _extrapolate_16k(features[..., 9:16])


def band_scattering(features: torch.Tensor) -> torch.Tensor:
    """Area-weighted mean scattering per simulated band, ``(..., 8)`` (0 in the paper's layout)."""
    _, scattering = surface_coefficients(features)
    areas = surface_areas(features)
    return (areas[..., None] * scattering).sum(-2) / areas.sum(-1, keepdim=True)


def reverberation_time(features: torch.Tensor, formula: str = "eyring") -> torch.Tensor:
    """Reverberation time per band (s), ``(..., 8)``, with air absorption.

    Sabine: ``T = 24 ln10 V / (c (S a + 4 m V))``; Eyring: ``S a`` becomes ``-S ln(1 - a)``.
    """
    volume, surface, _ = geometry(features)
    alpha = band_absorption(features)
    if formula == "sabine":
        absorption_area = surface[..., None] * alpha
    elif formula == "eyring":
        absorption_area = -surface[..., None] * torch.log1p(-alpha.clamp(max=0.999))
    else:
        raise ValueError(f"formula must be 'sabine' or 'eyring', got {formula!r}")
    total = absorption_area + 4.0 * _const(AIR_ABSORPTION, features) * volume[..., None]
    return 4.0 * DECAY_60_DB * volume[..., None] / (SPEED_OF_SOUND * total)


def _sphere_directions(n: int, like: torch.Tensor) -> torch.Tensor:
    """``(n, 3)`` near-uniform unit directions (Fibonacci sphere), folded into the first octant."""
    i = torch.arange(n, dtype=like.dtype, device=like.device) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = math.pi * (1.0 + math.sqrt(5.0)) * i
    r = (1.0 - z * z).sqrt()
    return torch.stack([r * phi.cos(), r * phi.sin(), z], -1).abs()


AXIS_ORDERS = tuple(itertools.permutations(range(3)))  # the 6 ways to name a shoebox's axes


def _symmetric_directions(n: int, like: torch.Tensor) -> torch.Tensor:
    """About ``n`` near-uniform folded directions that every order of the axes maps onto themselves, ``(m, 3)``:
    those of :func:`_sphere_directions` with ``x >= y >= z`` and their 6 permutations (126 of 128, 36 of 32),
    so that a room and the same box with its axes swapped get the same quadrature."""
    folded = _sphere_directions(n, like)
    core = folded[(folded[:, 0] >= folded[:, 1]) & (folded[:, 1] >= folded[:, 2])]
    return torch.cat([core[:, list(order)] for order in AXIS_ORDERS])


def _gauss_quadrature(samples: torch.Tensor, n_nodes: int, weights: torch.Tensor | None = None):
    """Gauss quadrature of the distribution of ``samples`` ``(..., n)`` (equal weights, or ``weights``, summing
    to 1): nodes and weights ``(..., n_nodes)``, exact for polynomials up to degree ``2 n_nodes - 1`` (Lanczos on
    ``diag(samples)`` from ``sqrt(weights)``, then the eigen-decomposition of the Jacobi matrix, Golub-Welsch)."""
    q = torch.full_like(samples, samples.shape[-1] ** -0.5) if weights is None else weights.sqrt().expand_as(samples)
    q_prev, beta = torch.zeros_like(q), torch.zeros_like(samples[..., 0])
    diag, off = [], []
    for j in range(n_nodes):
        v = samples * q
        a = (q * v).sum(-1)
        v = v - a[..., None] * q - beta[..., None] * q_prev
        diag.append(a)
        if j < n_nodes - 1:
            beta = v.norm(dim=-1)
            off.append(beta)
            q_prev, q = q, v / beta[..., None]
    jacobi = torch.diag_embed(torch.stack(diag, -1))
    if off:
        jacobi = jacobi + torch.diag_embed(torch.stack(off, -1), 1) + torch.diag_embed(torch.stack(off, -1), -1)
    nodes, vectors = torch.linalg.eigh(jacobi)
    return nodes, vectors[..., 0, :] ** 2


def specular_decay_rates(features: torch.Tensor, n_nodes: int = 3, n_directions: int = 128):
    """Energy decay rates (1/s) of the specular late field, ``(..., 8, n_nodes)``, and their
    weights ``(..., n_nodes)`` (sum 1).

    The simulator's rays reflect specularly (no scattering), so a ray along the unit
    direction ``u`` meets walls ``g = |u_x| / L + |u_y| / W + |u_z| / H`` times per metre
    and its energy decays at ``c (-ln(1 - a_b) g + m_b)``. The late field is the mixture
    over directions: ``E(t) = sum_q w_q exp(-k_q t)`` with a Gauss quadrature of ``g`` over
    the sphere. Its mean ``g`` is ``S / 4V``, so the weighted mean rate is Eyring's.
    """
    if has_surfaces(features):
        return _surface_decay_rates(features, n_directions, n_nodes)
    directions = _sphere_directions(n_directions, features)  # (n, 3)
    air = _const(AIR_ABSORPTION, features)
    hits = (directions / features[..., None, 0:3]).sum(-1)  # (..., n) wall hits per metre
    nodes, weights = _gauss_quadrature(hits, n_nodes)
    wall = -torch.log1p(-band_absorption(features).clamp(max=0.999))  # (..., 8)
    return SPEED_OF_SOUND * (wall[..., None] * nodes[..., None, :] + air[:, None]), weights


def _surface_decay_rates(features: torch.Tensor, n_directions: int, n_nodes: int):
    """:func:`specular_decay_rates` for a material per surface: rates ``(..., 8, n_nodes)`` and weights
    ``(..., 8, n_nodes)``, one quadrature per band.

    A ray along ``u`` crosses the room along axis ``a`` ``|u_a| / D_a`` times per metre, meeting the axis'
    two walls in turn: it loses ``(w_lo + w_hi) / 2`` per crossing, ``w = -ln(1 - a)``, so its rate is
    ``k_u = c (sum_a |u_a| / D_a (w_lo + w_hi) / 2 + m)``. The simulator turns a reflected ray towards a
    random (Lambertian) direction by the wall's scattering (:func:`turning_moves`), so a ray's energy moves
    between directions as it decays: ``de/dt = (G - diag(k)) e`` over the directions, ``G`` the turning, ``e``
    uniform at first (rays start in every direction). The late energy ``E(t) = 1^T exp((G - diag(k)) t) e(0)``
    is a mixture of decays (:func:`_slow_modes`), its time constants ``1 / k`` summed by a Gauss quadrature:
    exact for the mixture's integrals ``int t^j E(t) dt`` up to ``j = 2 n_nodes - 2``, which weigh the slow
    decays that the curves' late part holds. Without scattering ``G = 0``: each direction keeps its own rate.
    """
    f = features.double()  # float64: turning rates of 1e3 per second beside decays of 1 per second
    alpha, _ = surface_coefficients(f)
    loss = -torch.log1p(-alpha.clamp(max=0.999))  # (..., 6, 8)
    per_axis = (loss[..., 0::2, :] + loss[..., 1::2, :]) / 2.0  # (..., 3, 8): x, y, z
    crossings = _symmetric_directions(n_directions, f) / f[..., None, 0:3]  # (..., n, 3)
    # + 1e-6 per wall crossing: rates that differ by direction even where no wall absorbs (the quadrature
    # needs a spread), changing none by more than 1e-6 of the crossing rate
    rates = SPEED_OF_SOUND * ((crossings @ (per_axis + 1e-6)).transpose(-1, -2)
                              + _const(AIR_ABSORPTION, f)[:, None])  # (..., 8, n)
    with torch.no_grad():  # eig's gradient is undefined for complex eigenvectors: the one kept is below
        time_constants, amplitudes, slowest = _slow_modes(rates, turning_moves(f), _direction_cells(n_directions))
        nodes, weights = _gauss_quadrature(time_constants, n_nodes, amplitudes)
    late = 1.0 / nodes
    if rates.requires_grad:  # (the design search) every rate moves as the slowest decay's directions' mean rate
        mean = (slowest * rates).sum(-1, keepdim=True)
        late = late * mean / mean.detach()
    return late.to(features.dtype), weights.to(features.dtype)


CHAIN_KRYLOV = 6  # shift-invert Arnoldi steps of :func:`_slow_modes`


def _slow_modes(rates: torch.Tensor, moves: torch.Tensor, cells: torch.Tensor, steps: int = CHAIN_KRYLOV):
    """The decays of ``E(t) = 1^T exp(A t) e(0)``, ``A = G - diag(rates)`` over ``n`` directions, ``e(0)`` uniform
    (sums to 1): time constants (s) and amplitudes ``(..., 8, steps)`` (amplitudes >= 0, sum 1), and the
    slowest decay's energy per direction ``(..., 8, n)`` (>= 0, sum 1).

    ``rates`` ``(..., 8, n)`` 1/s per direction; ``moves`` ``(..., m, m)`` 1/s from cell ``i`` to cell ``j``
    (``[j, i]``, zero diagonal), a ray arriving in a cell at any of its directions (``cells`` ``(n,)``, the cell
    of each). ``(-A)^-1`` is applied through the cells (``m`` unknowns, Woodbury) and ``steps`` of Arnoldi on it
    give the slowest decays first; the few complex or negative parts of a turning that is not reversible are
    dropped (their real parts kept, amplitudes clipped at 1e-9).
    """
    count = torch.bincount(cells, minlength=moves.shape[-1]).to(rates)
    spread = count[cells]  # (n,): a ray arriving in a cell lands on each of its directions alike
    leave = rates + moves.sum(-2)[..., None, cells]  # (..., 8, n): what leaves a direction, 1/s

    def to_cells(x):  # (..., 8, n) -> (..., 8, m): summed over each cell's directions
        return x.new_zeros(x.shape[:-1] + (len(count),)).index_add(-1, cells, x)

    # (-A)^-1 r = (r + B y) / leave with y = M C (-A)^-1 r (C sums a cell's directions, B spreads over them), so
    # (I - M C diag(1 / leave) B) y = M C (r / leave): one m x m inverse per band for every step
    inverse = torch.linalg.inv(torch.eye(len(count), dtype=rates.dtype)
                               - moves[..., None, :, :] * (to_cells(1.0 / leave) / count)[..., None, :])

    def solve(r):
        y = (inverse @ (to_cells(r / leave) @ moves.transpose(-1, -2))[..., None])[..., 0]
        return (r + y[..., cells] / spread) / leave

    n = len(cells)
    basis = [rates.new_full(rates.shape, n ** -0.5)]
    hessenberg = rates.new_zeros(rates.shape[:-1] + (steps, steps))
    for j in range(steps):
        w = solve(basis[j])
        for i, v in enumerate(basis):
            h = (v * w).sum(-1)
            hessenberg[..., i, j] = h
            w = w - h[..., None] * v
        if j + 1 < steps:
            norm = w.norm(dim=-1).clamp(min=1e-300)
            hessenberg[..., j + 1, j] = norm
            basis.append(w / norm[..., None])
    # (-A)^-1 ~ V H V^T: E(t) ~ |e(0)| 1^T V exp(-H^-1 t) e_1, H = Y diag(tau) Y^-1
    tau, y = torch.linalg.eig(hessenberg)
    vectors = torch.stack(basis, -1).to(y.dtype) @ y  # (..., 8, n, steps): the modes over the directions, V y_k
    first = torch.linalg.solve(y, torch.eye(steps, dtype=y.dtype)[:, :1].expand(y.shape[:-1] + (1,)))[..., 0]
    # every mode kept (at least 1e-9 of the energy) and apart (by 1e-6 of its time constant), so that a Gauss
    # quadrature of up to ``steps`` nodes exists where the mixture is one decay or a pair of modes shares its real part
    amplitudes = (n ** -0.5 * vectors.sum(-2) * first).real.clamp(min=1e-9)  # |e(0)| (1^T V y_k) (Y^-1 e_1)_k
    apart = 1.0 + 1e-6 * torch.arange(steps, dtype=rates.dtype)
    slowest = vectors.gather(-1, tau.real.argmax(-1)[..., None, None].expand(*vectors.shape[:-1], 1))[..., 0]
    slowest = slowest.real * slowest.real.sum(-1, keepdim=True).sign()  # its sign, as an energy's
    slowest = slowest.clamp(min=0.0) + 1e-12
    return (tau.real.clamp(min=1e-6) * apart, amplitudes / amplitudes.sum(-1, keepdim=True),
            slowest / slowest.sum(-1, keepdim=True))


BLEND_CELLS = 36  # direction cells of :func:`turning_moves` (:func:`_cell_centres`)
BLEND_SHARES = torch.linspace(0.0, 1.0, 11, dtype=torch.float64)  # scattering grid of its kernels


@functools.cache
@torch.inference_mode(False)  # a normal tensor even when first made under inference mode, as _image_indices
def _blend_kernels(samples_per_cell: int = 512) -> torch.Tensor:
    """``(3, 11, n, n)`` float64: the share of rays of direction cell ``i`` that a reflection off a wall of axis
    ``a`` sends to cell ``j``, the simulator's way (``normalize(s L + (1 - s) R)``, ``L`` Lambertian about the
    wall's normal, Malley's method), for ``s`` in :data:`BLEND_SHARES`; drawn once, with a fixed seed."""
    generator = torch.Generator().manual_seed(0)
    rays = torch.randn(BLEND_CELLS * samples_per_cell, 3, generator=generator, dtype=torch.float64)
    rays = (rays / rays.norm(dim=-1, keepdim=True)).abs()  # folded: a shoebox's walls see |u| only
    cell = _nearest_cell(rays)
    kernels = torch.zeros(3, len(BLEND_SHARES), BLEND_CELLS, BLEND_CELLS, dtype=torch.float64)
    for axis in range(3):  # rays drawn per axis, then averaged over the axes' orders (below)
        radius = torch.rand(len(rays), generator=generator, dtype=rays.dtype).sqrt()
        angle = 2.0 * math.pi * torch.rand(len(rays), generator=generator, dtype=rays.dtype)
        lambertian = torch.zeros_like(rays)
        lambertian[:, axis] = (1.0 - radius.square()).sqrt()
        lambertian[:, (axis + 1) % 3] = radius * angle.cos()  # signs at random against the ray's: folded
        lambertian[:, (axis + 2) % 3] = radius * angle.sin()
        for k, share in enumerate(BLEND_SHARES):
            blended = share * lambertian + (1.0 - share) * rays
            moved = kernels[axis, k].index_put_((cell, _nearest_cell(blended)), torch.ones_like(angle), accumulate=True)
            moved /= moved.sum(-1, keepdim=True).clamp(min=1.0)
    return _axis_symmetric(kernels)


def _axis_symmetric(kernels: torch.Tensor) -> torch.Tensor:
    """``(3, k, n, n)`` cell-to-cell kernels per wall axis averaged over the 6 orders of the axes: a kernel of axis
    ``order[m]`` moves the permuted cells as the kernel of axis ``m`` moves the cells (the draws' noise then
    treats no axis differently)."""
    out = torch.zeros_like(kernels)
    for order, cell in zip(AXIS_ORDERS, _permuted_cells()):
        for m in range(3):
            out[m][:, cell[:, None], cell[None, :]] += kernels[order[m]] / len(AXIS_ORDERS)
    return out


@functools.cache
@torch.inference_mode(False)
def _permuted_cells() -> tuple[torch.Tensor, ...]:
    """Per order of :data:`AXIS_ORDERS`, the cell each cell becomes when the axes are so renamed, ``(n,)``: a
    permutation of the cells (:func:`_cell_centres` are closed under it)."""
    return tuple(_nearest_cell(_cell_centres()[:, list(order)]) for order in AXIS_ORDERS)


@functools.cache
@torch.inference_mode(False)
def _cell_centres() -> torch.Tensor:
    """The :data:`BLEND_CELLS` direction cells' centres, ``(n, 3)`` float64 (:func:`_symmetric_directions` of 32)."""
    return _symmetric_directions(32, torch.zeros(1, dtype=torch.float64))


def _nearest_cell(directions: torch.Tensor) -> torch.Tensor:
    """Index of the nearest of the :data:`BLEND_CELLS` folded directions, ``(n,)`` for ``(n, 3)`` (any sign)."""
    centres = _cell_centres().to(directions)
    return (directions.abs() / directions.norm(dim=-1, keepdim=True) @ centres.T).argmax(-1)


@functools.cache
@torch.inference_mode(False)
def _direction_cells(n_directions: int) -> torch.Tensor:
    """The cell of each of the quadrature's ``n_directions`` (:func:`_symmetric_directions`), ``(m,)``."""
    return _nearest_cell(_symmetric_directions(n_directions, torch.zeros(1, dtype=torch.float64)))


def turning_moves(features: torch.Tensor) -> torch.Tensor:
    """How fast the simulator's turning moves rays between direction cells, ``(..., BLEND_CELLS, BLEND_CELLS)``:
    ``[j, i]`` per second from cell ``i`` to cell ``j`` (zero diagonal).

    A ray along ``u`` meets the walls of axis ``a`` ``c |u_a| / D_a`` times a second, and each turns it towards
    a Lambertian direction by that wall's scattering averaged over the bands (:func:`_blend_kernels`, linear
    between its shares). With only the ceiling scattering (0.9), rays settle steeper on average (mean ``|u_z|``
    0.57 against 0.5) and grazing ones 5 times rarer than uniform.
    """
    _, scattering = surface_coefficients(features)
    blend = scattering.mean(-1)  # (..., 6): the simulator's average_scatter per surface
    grid = _const(BLEND_SHARES, blend)
    hat = (1.0 - (blend[..., None] - grid).abs() * (len(grid) - 1)).clamp(min=0.0)  # (..., 6, 11): linear in s
    # per axis: each of its walls met half the time, c / D_a of the crossings a second; |u_a| is in the kernels
    per_axis = 0.5 * SPEED_OF_SOUND * (hat[..., 0::2, :] + hat[..., 1::2, :]) / features[..., 0:3, None]
    moves = per_axis.flatten(-2) @ _turning_kernels().to(blend)
    return moves.unflatten(-1, (BLEND_CELLS, BLEND_CELLS))


@functools.cache
@torch.inference_mode(False)
def _turning_kernels() -> torch.Tensor:
    """``(3 * 11, n * n)`` float64: :func:`_blend_kernels` times ``|u_a|`` of the cell a ray leaves (its crossings
    of axis ``a`` per metre, less the room's ``1 / D_a``), transposed (to cell ``j`` from cell ``i``), without
    the stays in a cell: one matrix product gives :func:`turning_moves` every room's moves."""
    centres = _cell_centres()  # (n, 3)
    kernels = _blend_kernels() * centres.T[:, None, :, None]  # (3, 11, i, j)
    kernels = kernels * (1.0 - torch.eye(BLEND_CELLS, dtype=kernels.dtype))
    return kernels.transpose(-1, -2).flatten(0, 1).flatten(1)


@functools.cache
def _image_indices(min_order: int, max_order: int) -> torch.Tensor:
    """``(k, 3)`` integer image indices ``n`` with ``min_order <= |n|_1 <= max_order`` (cached: made as a
    normal tensor even under inference mode, so that a later pass with gradients may use it)."""
    r = range(-max_order, max_order + 1)
    with torch.inference_mode(False):
        return torch.tensor([n for n in itertools.product(r, r, r) if min_order <= sum(map(abs, n)) <= max_order])


def image_distances(features: torch.Tensor, min_order: int = 0, max_order: int = ISM_ORDER):
    """Image sources of a shoebox: ``(distance to the receiver m (..., k), order (k,))``.

    Along each axis of length ``L`` image ``n`` lies at ``n L + x_s`` (``n`` even) or
    ``(n + 1) L - x_s`` (``n`` odd) and has met ``|n|`` walls; its order is ``|n|_1``.
    """
    n = _image_indices(min_order, max_order).to(features.device)
    dims, source, receiver = features[..., None, 0:3], features[..., None, 3:6], features[..., None, 6:9]
    even = n % 2 == 0
    images = torch.where(even, n * dims + source, (n + 1) * dims - source)
    return (images - receiver).square().sum(-1).sqrt(), n.abs().sum(-1)  # (vector_norm is slow here)


def _image_energy(features: torch.Tensor, distance: torch.Tensor, order: torch.Tensor,
                  reflection: torch.Tensor | None = None) -> torch.Tensor:
    """Energy per band ``(..., k, 8)`` of images at ``distance`` (..., k) of ``order`` ``(k,)``:
    ``(1 - a_b)^order exp(-m_b d) / d^2``, or with ``reflection`` ``(..., k, 8)`` (a material per
    surface, :func:`image_reflection`) in place of ``(1 - a_b)^order``."""
    if reflection is None:
        kept = 1.0 - band_absorption(features)  # (..., 8); its powers 0 to the highest order by products,
        powers = [torch.ones_like(kept)]  # then one gather: a sixth of the time of pow
        for _ in range(int(order.max())):
            powers.append(powers[-1] * kept)
        reflection = torch.stack(powers, -2).index_select(-2, order)
    return reflection * torch.exp(-_const(AIR_ABSORPTION, features) * distance[..., None]) / distance[..., None] ** 2


def image_reflection(features: torch.Tensor, min_order: int = 0, max_order: int = ISM_ORDER):
    """What the walls leave of each image's energy per band, ``(..., k, 8)`` (images as in
    :func:`image_distances`), in the surfaces layout; None in the paper's (``(1 - a)^order`` there).

    Image ``n`` along an axis met the axis' upper wall ``ceil(n / 2)`` and its lower wall ``floor(n / 2)``
    times (``n > 0``; the other way round for ``n < 0``). Each reflection keeps ``(1 - a)`` and, where any
    surface scatters, ``(1 - s)``: the simulator leaves the scattered part to its rays.
    """
    if not has_surfaces(features):
        return None
    n = _image_indices(min_order, max_order).to(features.device)
    upper = torch.where(n > 0, (n + 1) // 2, (-n) // 2)  # (k, 3) hits of east, north, ceiling
    lower = n.abs() - upper  # hits of west, south, floor
    hits = torch.stack([lower, upper], -1).flatten(-2).to(features.dtype)  # (k, 6): west, east, south, ...
    alpha, scattering = surface_coefficients(features)
    kept = (1.0 - alpha) * (1.0 - scattering) if bool((scattering > 0).any()) else 1.0 - alpha  # (..., 6, 8)
    return (kept[..., None, :, :] ** hits[..., None]).prod(-2)  # (..., k, 8); 0^0 = 1: a wall not met


def _samples_after(distance: torch.Tensor, direct: torch.Tensor, fs: float) -> torch.Tensor:
    """Grid sample at or before each arrival after the direct sound: ``floor((d - r) fs / c)``."""
    return torch.floor((distance - direct) * fs / SPEED_OF_SOUND + 1e-9).long()


def image_energies(features: torch.Tensor, max_order: int = ISM_ORDER):
    """Image sources up to ``max_order``: ``(distance (..., k) m, order (k,), energy (..., k, 8))``,
    ``energy`` per band ``(1 - a_b)^order exp(-m_b d) / d^2`` (a material per surface:
    :func:`image_reflection` in place of ``(1 - a_b)^order``). The functions below take them as
    ``images`` where a caller has them already."""
    distance, order = image_distances(features, 0, max_order)
    return distance, order, _image_energy(features, distance, order, image_reflection(features, 0, max_order))


def image_sources(features: torch.Tensor, fs: float, max_order: int = ISM_ORDER, images=None):
    """Image sources up to ``max_order``: ``(sample (..., k), energy (..., k, 8))``.

    ``sample`` is the grid sample at or before the image's arrival after the direct sound,
    ``floor((d - r) fs / c)``; ``energy`` per band is ``(1 - a_b)^order exp(-m_b d) / d^2``
    (the direct sound: ``exp(-m_b r) / r^2`` at sample 0); ``images``: :func:`image_energies`.
    """
    distance, _, energy = images if images is not None else image_energies(features, max_order)
    return _samples_after(distance, distance.amin(-1, keepdim=True), fs), energy


def band_coupling(like: torch.Tensor) -> torch.Tensor:
    """``(8, 8)`` band-pair energies ``C`` of a unit pulse (see ``_COUPLING_DIAG``)."""
    diag, off = _const(_COUPLING_DIAG, like), _const(_COUPLING_NEIGHBOURS, like)
    return torch.diag(diag) + torch.diag(off, 1) + torch.diag(off, -1)


def coherent_image_energy(features: torch.Tensor, fs: float, max_order: int = ISM_ORDER, neighbours: int = 7,
                          images=None):
    """Broadband energy of the image sources as the simulator adds them: ``(sample, energy)``,
    ``(..., k)`` each, images sorted by arrival (``sample`` as in :func:`image_sources`).

    The simulator adds the images' pressure pulses (band-limited to its 24 kHz Nyquist), so
    images arriving within a sample of each other add coherently: images that coincide by
    symmetry (a receiver mirroring the source, a room of twice its height) carry up to
    ``n^2`` instead of ``n`` times one image's energy. Image ``i`` is credited with
    ``sum_j a_i^T C a_j sinc(fs_sim (d_j - d_i) / c)`` (``a``: band amplitudes, ``C``:
    :func:`band_coupling`; ``sinc`` is the autocorrelation of a band-limited pulse), over
    itself and its ``neighbours`` nearest in arrival on either side (``images``: :func:`image_energies`).
    """
    distance, _, energy = images if images is not None else image_energies(features, max_order)
    distance, rank = distance.sort(-1)
    energy = energy.gather(-2, rank[..., None].expand(*rank.shape, energy.shape[-1]))
    # band amplitudes, whitened by C = L L^T so that a_i^T C a_j = pulse_i . pulse_j
    # (..., 8, k): the bands first, so that the sums over them run along the images
    pulse = (energy.sqrt() @ torch.linalg.cholesky(band_coupling(features))).transpose(-1, -2).contiguous()
    delay = distance * (SIM_FS / SPEED_OF_SOUND)  # samples at 48 kHz
    energy = pulse.square().sum(-2)
    cross = torch.zeros_like(energy)
    for k in range(1, min(neighbours, distance.shape[-1] - 1) + 1):
        pair = (pulse[..., k:] * pulse[..., :-k]).sum(-2) * torch.sinc(delay[..., k:] - delay[..., :-k])
        cross[..., k:] += pair
        cross[..., :-k] += pair
    return _samples_after(distance, distance[..., :1], fs), energy + cross


def backward_integral(hist: torch.Tensor) -> torch.Tensor:
    """Schroeder's backward sum along the last axis: ``out[i] = sum_{j >= i} hist[j]``."""
    return hist.flip(-1).cumsum(-1).flip(-1)


def image_source_edc(features: torch.Tensor, fs: float, n_samples: int, max_order: int = ISM_ORDER) -> torch.Tensor:
    """The image sources' part of the EDC per band, ``(..., 8, n_samples)``, not normalised:
    each image's energy counts at every sample at or before its arrival."""
    sample, energy = image_sources(features, fs, max_order)
    lead = features.shape[:-1]
    hist = torch.zeros(*lead, 8, n_samples + 1, dtype=features.dtype, device=features.device)
    hist.scatter_add_(-1, sample.clamp(max=n_samples)[..., None, :].expand(*lead, 8, -1), energy.transpose(-1, -2))
    return backward_integral(hist)[..., :n_samples]


def first_arrival(features: torch.Tensor, order: int) -> torch.Tensor:
    """Delay (s) after the direct sound of the first image of exactly ``order``, ``(...)``."""
    distance, _ = image_distances(features, order, order)
    return (distance.amin(-1) - geometry(features)[2]) / SPEED_OF_SOUND


def barron_edc(features: torch.Tensor, fs: float, n_samples: int, formula: str = "eyring") -> torch.Tensor:
    """Broadband EDC from Barron's revised theory, ``(..., n_samples)``, E(0) = 1.

    Per band ``b`` (weighted by its share of the impulse's energy): the direct sound carries
    ``100 / r^2 exp(-m_b r)`` at t = 0 (the onset), the reflected energy left after time t
    is ``(31200 T_b / V) exp(-13.82 (t + r / c) / T_b)``. The bands are summed.
    """
    volume, _, distance = geometry(features)
    decay = reverberation_time(features, formula)  # (..., 8)
    t = torch.arange(n_samples, dtype=features.dtype, device=features.device) / fs
    delay = (distance / SPEED_OF_SOUND)[..., None, None]
    reflected = (31200.0 * decay / volume[..., None])[..., None] * torch.exp(
        -DECAY_60_DB * (t + delay) / decay[..., None])  # (..., 8, n)
    direct = 100.0 / distance[..., None] ** 2 * torch.exp(-_const(AIR_ABSORPTION, features) * distance[..., None])
    weight = _const(BAND_ENERGY, features)
    energy = (weight[:, None] * reflected).sum(-2)
    energy = torch.cat([energy[..., :1] + (weight * direct).sum(-1, keepdim=True), energy[..., 1:]], dim=-1)
    return energy / energy[..., :1]


def barron_band_energy(features: torch.Tensor) -> torch.Tensor:
    """``(..., 7)``: the whole energy of each octave (:func:`octave_band_energy`, relative to 1/r^2) by
    Barron's revised theory per simulated band: the direct sound ``exp(-m_b r) / r^2`` and the reflected
    ``312 T_b / V exp(-13.82 r / (c T_b))`` (Eyring's T), with the simulator bands' shares of a pulse."""
    volume, _, distance = geometry(features)
    decay = reverberation_time(features, "eyring")  # (..., 8)
    direct = torch.exp(-_const(AIR_ABSORPTION, features) * distance[..., None]) / distance[..., None] ** 2
    reflected = 312.0 * decay / volume[..., None] * torch.exp(-DECAY_60_DB * distance[..., None] / (SPEED_OF_SOUND * decay))
    return octave_band_energy(direct + reflected, _const(BAND_ENERGY, features))


def octave_band_energy(energy: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Energies ``(..., 7)`` in the octaves of the band curves of a pulse whose energy per simulator band
    is ``weights * energy`` (``energy`` ``(..., 8)``; ``weights`` (8,), the bands' shares of the pulse)."""
    return (energy * weights) @ _const(OCTAVE_LEAKAGE, energy).T


def coherent_octave_image_energy(features: torch.Tensor, fs: float, weights: torch.Tensor,
                                 coherence: torch.Tensor, max_order: int = ISM_ORDER, images=None):
    """The image sources' energy in each octave of the band curves: ``(sample (b, k), energy (b, 7, k))``
    for features ``(b, 16)`` (``sample`` as in :func:`image_sources`).

    An octave filter rings, so images within a few of its periods (tens of ms at 125 Hz) interfere:
    image ``i`` is credited with ``sum_j a_i a_j rho(d_j - d_i)`` over every image ``j``, ``a`` its octave
    amplitude (:func:`octave_band_energy` with the simulator bands' shares ``weights``) and ``rho`` the
    filter's normalised autocorrelation, ``coherence`` ``(7, n_lags)`` at the simulator's rate
    (:func:`octave_filter_coherence`; lags beyond it count 0); ``images``: :func:`image_energies`.
    """
    distance, _, energy = images if images is not None else image_energies(features, max_order)
    # (b, k, 7); floored: an image a fully absorbing wall removed has no amplitude, and sqrt(0) no gradient
    amplitude = octave_band_energy(energy, weights).clamp(min=1e-30).sqrt()
    n_bands = amplitude.shape[-1]
    # padded with a band of zeros: 8 floats a pair fill the vector registers (a sixth less time than 7)
    table = F.pad(coherence.T, (0, 1))  # (n_lags, 8); its last lag is 0
    amplitude = F.pad(amplitude, (0, 1))
    coherent = []
    # 32 rooms at a time; the lags are whole samples (no gradient), computed in place, and so are the products
    # where no gradient is wanted (in training, autograd would keep a copy of rho to undo them: slower)
    for d, a in zip(distance.detach().split(32), amplitude.split(32)):
        lag = (d[:, :, None] - d[:, None, :]).abs_().mul_(SIM_FS / SPEED_OF_SOUND).round_().clamp_(max=len(table) - 1)
        rho = table.index_select(0, lag.int().view(-1)).view(*lag.shape, -1)  # (32, k, k, 8)
        weighted = rho * a[:, None] if a.requires_grad else rho.mul_(a[:, None])
        coherent.append(a * weighted.sum(2))  # rho is 1 on the diagonal: a_i^2 + the cross terms
    energy = torch.cat(coherent)[..., :n_bands].transpose(1, 2)
    return _samples_after(distance, distance.amin(-1, keepdim=True), fs), energy


def octave_filter_coherence(max_lag_s: float = 0.05) -> torch.Tensor:
    """``(7, n_lags)``: the normalised autocorrelation of each octave filter of the band curves at lags
    0, 1, ... samples of the simulator's rate up to ``max_lag_s`` (pyfar's order-6 Butterworth bank; at
    125 Hz it falls to 0.06 by 32 ms), the last lag set to 0."""
    import numpy as np
    import pyfar

    from edc.acoustics.decay_curves import octave_filter_bank

    rate, n_lags = int(SIM_FS), int(max_lag_s * SIM_FS) + 1
    response = octave_filter_bank(rate).process(pyfar.signals.impulse(4 * n_lags, sampling_rate=rate)).time[:, 0]
    spectrum = np.abs(np.fft.rfft(response, 2 * response.shape[-1])) ** 2
    correlation = np.fft.irfft(spectrum)[:, :n_lags]
    correlation = correlation / correlation[:, :1]
    correlation[:, -1] = 0.0
    return torch.as_tensor(correlation, dtype=torch.float32)


def octave_energy_kernels(fs: float, n_taps: int) -> torch.Tensor:
    """``(7, n_taps)``: how each octave filter of the band curves spreads energy in time, on a grid of
    ``fs`` Hz: its impulse response's energy per grid interval (the first from the impulse on), normalised
    to 1. Convolving an energy curve with it gives the curve of the filtered signal (for incoherent energy)."""
    import numpy as np
    import pyfar

    from edc.acoustics.decay_curves import octave_filter_bank

    rate = int(SIM_FS)
    response = octave_filter_bank(rate).process(pyfar.signals.impulse(int(n_taps * rate / fs), sampling_rate=rate))
    energy = response.time[:, 0, :] ** 2  # (7, n)
    step = rate / fs
    edges = np.minimum(np.round(np.arange(n_taps + 1) * step).astype(int), energy.shape[-1])
    binned = np.add.reduceat(energy, edges[:-1], axis=-1) if step >= 1 else energy
    return torch.as_tensor(binned / binned.sum(-1, keepdims=True), dtype=torch.float32)
