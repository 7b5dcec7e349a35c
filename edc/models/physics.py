"""The default network: the simulator's physics in closed form with learned corrections."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from edc.acoustics import room
from edc.acoustics.simulate import ISM_ORDER, SIM_FS, SPEED_OF_SOUND
from edc.errors import EdcInputError
from edc.models.mlp import mlp
from edc.models.scaling import Scaler
from edc.models.surrogate import EdcNet


class PhysicsEDC(EdcNet):
    """The simulator's physics with learned corrections and a monotone dB residual.

    The EDC is the image sources' part (exact, order <= 3, their pulses added coherently as
    the simulator adds them, see :func:`edc.acoustics.room.coherent_image_energy`) plus, per
    simulated band ``b`` (8, see :mod:`edc.acoustics.room`), a late part held until about the first
    4th-order arrival and decaying after it as the specular field does: a mixture of
    exponentials over ray directions (:func:`edc.acoustics.room.specular_decay_rates`, mean rate
    Eyring's; with a material per surface, the rays turned between directions as they decay), at Barron's
    level. The sum is normalised to 0 dB at t = 0.

    Learned on top, from derived physics only (volume, surface, distances, first 4th-order
    arrival; per band absorption, decay time, image energies), never the coordinates, so
    that they carry over to new rooms:
    - one MLP shared by the bands (it sees one band's absorption, never the others') corrects
      the decay time, the level and the onset; the late bands are mixed with learned shares;
    - a second MLP adds corrections to the per-sample decrements (softplus keeps them
      positive), on knots every ``early_step_ms`` up to ``early_ms`` and evenly spaced after.
    The model also remembers the training rooms' geometries (up to ``memory_size``): for a
    room of one of them it adds what it learned of that geometry (on the knots and the band
    corrections); other rooms get nothing from it. In training, a share ``memory_dropout`` of the
    rooms go without it each step, so that the networks alone learn what a new geometry needs.
    Output: ``(batch, n_out)`` level in dB, non-increasing, from 0 dB (its config sets
    ``model.target: db``).

    With ``n_curves=8`` it also predicts the 7 octave-band curves (docs/data.md): per octave, the image
    sources as the octave filter passes them (their band energies through the simulator's
    overlapping bands, :data:`edc.acoustics.room.OCTAVE_LEAKAGE`, added with the octave's coherence,
    :func:`edc.acoustics.room.coherent_octave_image_energy`), the late parts of the simulator bands it
    passes, and the filter's spread in time (:func:`edc.acoustics.room.octave_energy_kernels`); the
    residual and the memory then hold one correction per curve. Output ``(batch, n_curves, n_out)``.

    Once every image has left the filters and every ramp has ended (:meth:`fine_samples`), the curves are
    computed every ``LATE_STEP`` samples and interpolated in dB (docs/model.md#speed).
    """

    N_GLOBAL, N_BAND, N_BANDS = 5, 6, 8
    N_SURFACE_BAND = 2 + 3 * 6  # the surfaces layout's band inputs (:func:`surface_band_inputs`)
    LATE_STEP = 16  # samples per cell of the grid past the early part (:meth:`fine_samples`)
    CACHED_ROOMS = 64  # rooms whose curves prediction fills at once (4 to 6 MB: in the cache until copied back)
    FILTER_SPREAD_S = 0.07  # the octave filters spread energy over up to this long (99.9 % at 125 Hz)
    FILTER_COHERENCE_S = 0.05  # and keep two pulses coherent over lags up to about this (0.06 at 125 Hz, 32 ms)
    SURFACES_VERSION = 3  # the surfaces layout's inputs and prior (2: the same for a room's mirror images, 2026-12-07;
    # 3: the late decay of the rays' turning between directions as they decay, 2026-12-08)

    def __init__(self, n_features: int, n_out: int, fs: float, band_hidden=(128, 128, 128),
                 hidden=(128, 128, 128), n_knots: int = 100, early_ms: float = 100.0, early_step_ms: float = 2.0,
                 floor_db: float = -100.0, dropout: float = 0.0, direction_nodes: int = 3,
                 memory_size: int = 512, memory_dropout: float = 0.0, n_curves: int = 1):
        super().__init__()
        if not 0.0 <= memory_dropout < 1.0:
            raise EdcInputError(f"model.net.memory_dropout={memory_dropout}: the share of training rooms predicted "
                                "without the memory each step must be in [0, 1). Fix: for example 0.25, or 0 for none.")
        self.memory_dropout = memory_dropout  # training rooms that, per step, are left to the networks alone
        self._late_decays = {}  # a training room's late decay by its features' bytes (:meth:`late_decay`)
        self.direction_nodes = direction_nodes  # quadrature nodes of the specular late decay (1: Eyring)
        self.n_out, self.fs, self.floor_db, self.n_curves = n_out, float(fs), floor_db, n_curves
        # a material per surface (the surfaces layout): more inputs per band, its mean scattering, how unevenly
        # the three axes absorb, and each surface's absorption, scattering and share of the area
        self.n_band = self.N_BAND + self.N_SURFACE_BAND * (n_features == room.N_SURFACE_FEATURES)
        n_in = self.N_GLOBAL + self.n_band + self.N_BANDS
        self.feature_scaler = Scaler("standard", n_in)
        # log T, log A, log t0, log ramp width; in the surfaces layout also the logit of the late rates' spread
        self.n_corrections = 4 + (self.n_band > self.N_BAND)
        if self.n_band > self.N_BAND:  # kept in the checkpoint: one trained on other inputs is refused (below)
            self.register_buffer("surfaces_version", torch.tensor(self.SURFACES_VERSION))
        self.band_net = mlp(n_in, band_hidden, self.n_corrections, dropout)
        self.residual_net = mlp(self.N_GLOBAL + self.n_band * self.N_BANDS, hidden, n_curves * n_knots, dropout)
        for last in (self.band_net[-1], self.residual_net[-1]):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.band_logit = nn.Parameter(torch.tensor(room.BAND_ENERGY).log())
        # the training rooms' geometries (L W H, source, receiver; NaN: free slot) and a learned
        # residual per geometry: what its rooms share beyond the physics (see forward)
        self.register_buffer("memory_rooms", torch.full((memory_size, 9), float("nan")))
        self.memory = nn.Parameter(torch.zeros(memory_size, n_curves * n_knots))  # on the residual's knots
        self.memory_bands = nn.Parameter(torch.zeros(memory_size, self.N_BANDS, self.n_corrections))  # band corrections
        self.register_buffer("knots", _knot_matrix(n_out, fs, n_knots, early_ms, early_step_ms), persistent=False)
        self.register_buffer("t", torch.arange(n_out) / self.fs, persistent=False)
        self.early_s = early_ms / 1000.0 + 2 * early_step_ms / 1000.0  # past the residual's early knots
        if n_curves > 1:  # filled by fit_features (pyfar), kept in the checkpoint: inference needs no pyfar
            self.register_buffer("octave_kernels", torch.zeros(n_curves - 1, int(self.FILTER_SPREAD_S * self.fs) + 1))
            self.register_buffer("octave_coherence", torch.zeros(n_curves - 1, int(self.FILTER_COHERENCE_S * SIM_FS) + 1))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        version = state_dict.get(prefix + "surfaces_version", torch.tensor(1))
        if hasattr(self, "surfaces_version") and int(version) != self.SURFACES_VERSION:
            errors.append(f"its physics model of the surfaces layout has inputs and prior version {int(version)}, "
                          f"this edc's are version {self.SURFACES_VERSION}")
            state_dict[prefix + "surfaces_version"] = self.surfaces_version  # one message, not a missing key too
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)

    def band_inputs(self, raw):
        """Unscaled inputs ``(b, 8, 19)`` (39 for the surfaces layout) of the band MLP and the physics the
        forward pass needs."""
        volume, surface, distance = room.geometry(raw)
        decay = room.reverberation_time(raw, "eyring")  # (b, 8)
        arrival_4 = room.first_arrival(raw, ISM_ORDER + 1)
        images = room.image_energies(raw)
        sample, ism = room.image_sources(raw, self.fs, images=images)  # (b, k), (b, k, 8)
        alpha = room.band_absorption(raw)
        air = torch.as_tensor(room.AIR_ABSORPTION, dtype=raw.dtype, device=raw.device)
        mean_free_path = 4.0 * volume / surface
        glob = torch.stack([volume.log(), surface.log(), distance.log(), mean_free_path.log(), arrival_4.log()], -1)
        early = min(round(0.02 * self.fs), self.n_out - 1)
        band = torch.stack([alpha, torch.log(-torch.log1p(-alpha.clamp(max=0.999)) + 1e-3),
                            (air * mean_free_path[:, None]).log(), decay.log(),
                            (ism.sum(1) * distance[:, None] ** 2).log(),  # all images, then those from 20 ms
                            ((ism * (sample >= early)[..., None]).sum(1) * distance[:, None] ** 2 + 1e-9).log()], -1)
        if self.n_band > self.N_BAND:
            band = torch.cat([band, surface_band_inputs(raw)], -1)
        onehot = torch.eye(self.N_BANDS, dtype=raw.dtype, device=raw.device).expand(len(raw), -1, -1)
        inputs = torch.cat([glob[:, None, :].expand(-1, self.N_BANDS, -1), band, onehot], -1)
        return inputs, decay, volume, distance, arrival_4, images

    def fit_features(self, raw: torch.Tensor) -> None:
        """Fit the input scaler on the training rooms' raw features ``(n, 16)`` (4096 rooms at a time),
        remember their geometries, and compute the octave filters' spread in time."""
        with torch.no_grad():
            inputs = torch.cat([self.band_inputs(chunk.double())[0] for chunk in raw.split(4096)])
            self.feature_scaler.fit(inputs.flatten(0, 1))
            if self.n_curves > 1:
                self.octave_kernels.copy_(room.octave_energy_kernels(self.fs, self.octave_kernels.shape[-1]))
                self.octave_coherence.copy_(room.octave_filter_coherence(self.FILTER_COHERENCE_S))
            rooms = torch.unique(raw[:, :9].float(), dim=0)[:len(self.memory_rooms)]
            self.memory_rooms.fill_(float("nan"))
            self.memory_rooms[:len(rooms)] = rooms

    def remembered(self, raw):
        """What the model learned of each room's geometry if a training room had it (to 1 mm), else 0 (in
        training, 0 too for a random share ``memory_dropout`` of the rooms): ``(b, n_curves * n_knots)`` on the
        residual's knots and ``(b, 8, n_corrections)`` on the band corrections."""
        if not len(self.memory_rooms):  # memory_size 0: the model without a memory
            return raw.new_zeros(len(raw), self.memory.shape[1]), raw.new_zeros(len(raw), *self.memory_bands.shape[1:])
        rooms, geometry = self.memory_rooms.double().nan_to_num(nan=1e9), raw[:, :9].double()  # a free slot: far away
        gap = torch.addmm(rooms.square().sum(-1), geometry, rooms.T, alpha=-2.0)  # squared distances by one product
        nearest, slot = gap.add_(geometry.square().sum(-1, keepdim=True)).min(-1)  # (b,)
        known = (nearest < 1e-6).to(raw.dtype)
        if self.training and self.memory_dropout > 0.0:  # as a room of an unseen geometry is predicted
            known = known * (torch.rand_like(known) >= self.memory_dropout)
        return self.memory[slot] * known[:, None], self.memory_bands[slot] * known[:, None, None]

    def forward(self, x, raw):
        level_db, n_fine = self.grid_level(raw)
        if n_fine == self.n_out - 1:
            return level_db
        nodes = level_db[..., n_fine:]
        return torch.cat([level_db[..., :n_fine], self._late_cells(nodes), nodes[..., -1:]], -1)

    @torch.no_grad()
    def predict_energy(self, raw, out=None, batch_size: int = 256):
        """Linear-energy curves ``(b, C, n_out)`` float32, ``10^(level / 10)`` of :meth:`forward`, written into
        ``out`` where given. The physics of every room is computed at once; the curves then go ``batch_size``
        rooms at a time in the order of the samples each needs one by one (:meth:`fine_end`), so that a room
        with long ramps makes only rooms like it compute long early parts (docs/model.md#speed); each batch's
        curves are filled ``CACHED_ROOMS`` rooms at a time and copied to their rows while in the cache."""
        head = self.physics_head(raw)
        end = self.fine_end(head)
        out = raw.new_empty(len(raw), self.n_curves, self.n_out, dtype=torch.float32) if out is None else out
        if len(raw) <= batch_size:
            return self._energy(*self.level_on_grid(head, self.fine_samples(float(end.amax()))), out)
        part = out.new_empty(self.CACHED_ROOMS, *out.shape[1:])  # a few rooms' curves, then copied to their rows
        for rows in end.argsort().split(batch_size):
            level_db, n_fine = self.level_on_grid(head.take(rows), self.fine_samples(float(end[rows].amax())))
            for few, level in zip(rows.split(self.CACHED_ROOMS), level_db.split(self.CACHED_ROOMS)):
                out.index_copy_(0, few, self._energy(level, n_fine, part[:len(few)]))
        return out

    def _energy(self, level_db, n_fine: int, out):
        """``10^(level / 10)`` at every sample into ``out`` ``(b, C, n_out)``, from the level on the grid: the late
        cells linear in dB as in :meth:`forward` (:meth:`_late_cells`), each sample's ``exp`` written to its row."""
        log_energy = level_db.mul_(math.log(10.0) / 10.0)
        if n_fine == self.n_out - 1:
            return torch.exp(log_energy, out=out)
        torch.exp(log_energy[..., :n_fine], out=out[..., :n_fine])
        nodes = log_energy[..., n_fine:]
        torch.exp(self._late_cells(nodes), out=out[..., n_fine:-1])
        torch.exp(nodes[..., -1], out=out[..., -1])
        return out

    def _late_cells(self, nodes):
        """Every sample of the late cells, ``(..., cells * LATE_STEP)``, linear between the values ``nodes``
        ``(..., cells + 1)`` at their ends (dB, or log energy): each cell's start and rise times 1 and the samples'
        place in it, one small matrix product (a broadcast over cells of 16 takes three times as long)."""
        step = torch.arange(self.LATE_STEP, dtype=nodes.dtype, device=nodes.device) / self.LATE_STEP
        start_rise = torch.stack([nodes[..., :-1], torch.diff(nodes, dim=-1)], -1)  # (..., cells, 2)
        return (start_rise @ torch.stack([torch.ones_like(step), step])).flatten(-2)

    def grid_level(self, raw):
        """The curves' level in dB ``(b, C, cells + 1)`` at the ends of the cells of :meth:`cell_lengths`
        (non-increasing, from 0 dB) and ``n_fine`` (the batch's latest room deciding)."""
        return self.level_on_grid(*self.batch_physics(raw))

    def batch_physics(self, raw) -> tuple[_Physics, int]:
        """The rooms' physics (:meth:`physics_head`) and the samples their grid keeps one by one, the
        batch's latest room deciding (:meth:`fine_samples`)."""
        head = self.physics_head(raw)
        return head, self.fine_samples(float(self.fine_end(head).amax()))

    def level_on_grid(self, head: _Physics, n_fine: int):
        """:meth:`grid_level` from the rooms' physics and ``n_fine``."""
        energy, z = self.prior_energy(head, n_fine), head.z  # at the ends of the cells of :meth:`cell_lengths`
        prior = torch.log10((energy / energy[..., :1]).clamp(min=10.0 ** (self.floor_db / 10.0)))  # bels
        cells = self.cell_lengths(n_fine).to(prior)
        slope = torch.diff(prior, dim=-1) * (10.0 / cells)  # dB per sample (<= 0): minus the decrements
        inv = torch.log(-torch.expm1(slope.clamp(max=-1e-4))) - slope  # softplus^-1 of the decrements
        bands_physics = z[..., self.N_GLOBAL:self.N_GLOBAL + self.n_band].flatten(1)
        knots = self.residual_net(torch.cat([z[:, 0, :self.N_GLOBAL], bands_physics], -1)) + head.residual
        correction = banded_matmul(knots.view(len(z), self.n_curves, -1), self.cell_knots(n_fine))  # (b, C, cells)
        level_db = -torch.cumsum(F.softplus(inv + correction) * cells, dim=-1)
        return torch.cat([torch.zeros_like(level_db[..., :1]), level_db], -1).clamp(min=self.floor_db), n_fine

    def cell_lengths(self, n_fine: int) -> torch.Tensor:
        """Samples per cell of the grid where the forward pass computes the curves: one each up to ``n_fine``,
        then ``LATE_STEP`` each to the last sample (``n_fine`` as :meth:`fine_samples` chooses it)."""
        n_late = (self.n_out - 1 - n_fine) // self.LATE_STEP
        return torch.tensor([1.0] * n_fine + [float(self.LATE_STEP)] * n_late, device=self.t.device)

    def cell_knots(self, n_fine: int) -> torch.Tensor:
        """``(cells, n_knots)``: the residual's knots to its mean over each cell of the grid."""
        if n_fine == self.n_out - 1:
            return self.knots
        late = self.knots[n_fine:].unflatten(0, (-1, self.LATE_STEP)).mean(1)
        return torch.cat([self.knots[:n_fine], late])

    def fine_end(self, head: _Physics) -> torch.Tensor:
        """``(b,)`` s: when every image has arrived and every late part's ramp has ended (to 1e-4 of a neper),
        per room; past it (and the octave filters' spread) its curves are sums of exponentials."""
        with torch.no_grad():
            ramp = head.width * torch.log(head.rates.amax(-1) * head.width / 1e-4).clamp(min=0.0)  # s(t) - t < 1e-4 / rate
            return torch.maximum(head.sample.amax(-1) / self.fs, (head.onset + ramp).amax(-1))

    def fine_samples(self, end_s: float) -> int:
        """Samples the grid keeps one by one, for rooms that end by ``end_s`` (:meth:`fine_end`): past them every
        image has left the octave filters (``FILTER_SPREAD_S``) and the residual's early knots are passed, so
        every curve is a sum of exponentials, smooth enough to be computed every ``LATE_STEP`` samples and
        interpolated (within 0.1 dB above -60 dB: tests/test_models.py)."""
        spread = self.octave_kernels.shape[-1] if self.n_curves > 1 else 1
        n_fine = max(math.ceil(end_s * self.fs) + spread, math.ceil(self.early_s * self.fs))
        steps = (self.n_out - 1 - n_fine) // self.LATE_STEP  # whole late cells that fit after it
        return self.n_out - 1 - steps * self.LATE_STEP if steps >= 2 else self.n_out - 1

    def band_energies(self, raw):
        """``(b, 7)``: the whole energy of each octave curve (a unit white pulse's share, relative to 1/r^2;
        :func:`edc.acoustics.room.octave_band_energy`), the level the normalised curves leave out: the
        physics prior's, with the learned band corrections (the dB residual reshapes the curves only)."""
        if self.n_curves == 1:
            raise ValueError("a broadband model has no octave-band curves")
        return self.prior_energy(*self.batch_physics(raw))[:, 1:, 0]

    def late_decay(self, raw):
        """The late decay's rates and weights (:func:`edc.acoustics.room.specular_decay_rates`), remembered per
        training room while training: a room's are the same every epoch, and the surfaces layout's turning of the
        rays costs about 0.4 ms a room (2 cores), 4 s an epoch of ``rooms12000``."""
        if not self.training or raw.requires_grad:
            return room.specular_decay_rates(raw, self.direction_nodes)
        keys = [row.tobytes() for row in raw.detach().cpu().numpy()]
        new = sorted({i for i, key in enumerate(keys) if key not in self._late_decays})
        if new:
            for i, *late in zip(new, *room.specular_decay_rates(raw[new], self.direction_nodes)):
                self._late_decays.setdefault(keys[i], late)
        return tuple(torch.stack(part).to(raw.device) for part in zip(*(self._late_decays[key] for key in keys)))

    def physics_head(self, raw) -> _Physics:
        """What the physics prior needs of each room before the grid (:class:`_Physics`): the scaled band
        inputs, the learned corrections of decay, level, onset and ramp, the late parts' rates and levels, the
        images."""
        raw = raw.float()
        inputs, decay, volume, distance, arrival_4, images = self.band_inputs(raw)
        z = self.feature_scaler(inputs)
        residual, bands = self.remembered(raw)
        o = self.band_net(z) + bands  # (b, 8, 4 or 5)
        decay = decay * torch.exp(o[..., 0])
        level = 312.0 * decay / volume[:, None] * torch.exp(o[..., 1])  # Barron's 31200 T / V per 100 / r^2
        rates, shares = self.late_decay(raw)  # (b, 8, q), (b, q) or (b, 8, q)
        if self.n_corrections > 4:
            rates = learned_spread(rates, shares, o[..., 4])
        rates = rates * torch.exp(-o[..., :1])  # the learned correction of T scales every direction's rate
        # late energy left after t, per band and direction: exp(log_energy - k (t + r / c)) from the onset on
        weights = torch.softmax(self.band_logit, 0)  # the bands' energy shares
        shares = shares if shares.dim() == 3 else shares[:, None, :]  # per band in the surfaces layout
        log_energy = (torch.log(weights * level)[..., None] + shares.log()
                      - rates * (distance / SPEED_OF_SOUND)[:, None, None])
        sample, coherent = room.coherent_image_energy(raw, self.fs, images=images)
        return _Physics(raw, z, residual, arrival_4[:, None] * torch.exp(o[..., 2]), 0.002 * torch.exp(o[..., 3]),
                        rates, log_energy, sample, coherent, images)

    def prior_energy(self, head: _Physics, n_fine: int):
        """The physics part: energy left after each sample of the grid ``(b, C, n_fine + 1 + late cells)``
        (not normalised; :meth:`cell_lengths`)."""
        weights = torch.softmax(self.band_logit, 0)
        hist = head.coherent.new_zeros(len(head.coherent), n_fine + 2).scatter_add(
            -1, head.sample.clamp(max=n_fine + 1), head.coherent)
        late = self.late_energy(head.log_energy, head.rates, head.onset, head.width, self.t[:n_fine + 1])  # (b, 8, n_fine + 1)
        broadband = room.backward_integral(hist)[:, :n_fine + 1] + late.sum(1)
        energy = broadband[:, None] if self.n_curves == 1 else \
            torch.cat([broadband[:, None], self.octave_energy(head.raw, weights, late, head.images)], 1)
        if n_fine < self.n_out - 1:  # (b, C, n_fine + 1) and the late cells' ends
            tail = self.exponential_tail(head.log_energy, head.rates, self.t[n_fine + self.LATE_STEP::self.LATE_STEP])
            energy = torch.cat([energy, tail], -1)
        return energy

    def octave_energy(self, raw, weights, late, images=None):
        """Energy left after each of the first ``n`` samples in each octave, ``(b, 7, n)``: the images as the
        octave passes them and the late parts (``late``, ``(b, 8, n)`` per simulator band) through the
        octave, then spread in time as its filter spreads it."""
        sample, energy = room.coherent_octave_image_energy(raw, self.fs, weights, self.octave_coherence,
                                                           images=images)  # (b, k), (b, 7, k)
        n_bands, n = energy.shape[1], late.shape[-1]
        index = sample.clamp(max=n)[:, None, :].expand(-1, n_bands, -1)
        hist = energy.new_zeros(len(energy), n_bands, n + 1).scatter_add(-1, index, energy)
        leakage = torch.as_tensor(room.OCTAVE_LEAKAGE, dtype=late.dtype, device=late.device)
        energy = room.backward_integral(hist)[..., :n] + leakage @ late  # (7, 8) @ (b, 8, n)
        return spread_in_time(energy, self.octave_kernels.to(energy.dtype))

    def exponential_tail(self, log_energy, rates, t):
        """Energy left at times ``t`` (s, ``(m,)``) past :meth:`fine_samples`, ``(b, C, m)``: the late parts'
        exponentials ``exp(log_energy - rates t)`` (``(b, 8, q)`` each) summed, and per octave through the
        simulator bands' leakage and the filter's spread, which for an exponential is a gain:
        ``sum_k kernel[k] exp(rate k / fs)``."""
        exponent = torch.addcmul(log_energy[..., None], rates[..., None], t, value=-1.0)  # (b, 8, q, m)
        terms = exponent.clamp_(min=-80.0).exp_().flatten(1, 2)  # e^-80: 350 dB down, yet no subnormal float32
        broadband = terms.sum(1, keepdim=True)
        if self.n_curves == 1:
            return broadband
        kernels = self.octave_kernels.to(rates.dtype)
        delay = torch.arange(kernels.shape[-1], dtype=rates.dtype, device=rates.device) / self.fs
        gain = (rates[..., None] * delay).clamp(max=80.0).exp() @ kernels.T  # (b, 8, q, 7): past e^80 its term is 0
        leakage = torch.as_tensor(room.OCTAVE_LEAKAGE, dtype=rates.dtype, device=rates.device)  # (7, 8)
        weight = (leakage.T[:, None, :] * gain).flatten(1, 2).transpose(1, 2)  # (b, 7, 8 q)
        return torch.cat([broadband, weight @ terms], 1)

    def late_energy(self, log_energy, rates, onset, width, t):
        """Late energy left at times ``t`` (s, ``(n,)``) per simulator band, ``(b, 8, n)``: the sum over
        directions of ``exp(log_energy - k s)`` with ``s = onset + width softplus((t - onset) / width)``,
        i.e. held until the onset and decaying after it."""
        onset, width = onset[..., None], width[..., None]
        ramp = F.softplus(torch.addcmul(-onset / width, t, width.reciprocal()))  # (t - onset) / width, one pass
        held = torch.addcmul(onset, width, ramp)
        log_terms = torch.addcmul(log_energy[..., None], rates[..., None], held[..., None, :], value=-1.0)
        return log_terms.clamp_(min=-80.0).exp_().sum(2)  # e^-80: 350 dB down, yet no subnormal float32


class _Physics(NamedTuple):
    """A batch's physics before the grid (:meth:`PhysicsEDC.physics_head`), every field per room: raw features
    ``(b, F)``, scaled band inputs ``z`` ``(b, 8, n_in)``, the memory's residual ``(b, C * n_knots)``, the late
    parts' onset and ramp width ``(b, 8)`` s, rates ``(b, 8, q)`` 1/s and log energies ``(b, 8, q)``, the
    broadband images' grid sample and coherent energy ``(b, k)``, and ``images``
    (:func:`edc.acoustics.room.image_energies`)."""

    raw: torch.Tensor
    z: torch.Tensor
    residual: torch.Tensor
    onset: torch.Tensor
    width: torch.Tensor
    rates: torch.Tensor
    log_energy: torch.Tensor
    sample: torch.Tensor
    coherent: torch.Tensor
    images: tuple

    def take(self, rows: torch.Tensor) -> _Physics:
        """The rooms ``rows`` (indices)."""
        distance, order, energy = self.images  # the images' order is the same for every room
        return _Physics(*(field[rows] for field in self[:-1]), (distance[rows], order, energy[rows]))


SLOWEST_RATE = 0.5  # 1/s: the late rates' floor after the learned spread (a T60 of 28 s; sampled rooms reach 6 s)


def learned_spread(rates: torch.Tensor, weights: torch.Tensor, logit: torch.Tensor):
    """The late rates ``(b, 8, q)`` (weights ``(b, 8, q)``, :func:`edc.acoustics.room.specular_decay_rates`) with
    their spread about the weighted mean scaled by ``2 sigmoid(logit)``, ``logit`` ``(b, 8)`` learned: from every
    direction at the mean rate (very negative) through the prior's (0) to twice its spread, at least
    :data:`SLOWEST_RATE`. A Gauss quadrature moves with an affine map of its variable, so this is the quadrature
    of the late decay's rates so moved."""
    mean = (weights * rates).sum(-1, keepdim=True)
    return (mean + 2.0 * torch.sigmoid(logit)[..., None] * (rates - mean)).clamp(min=SLOWEST_RATE)


def surface_band_inputs(raw: torch.Tensor) -> torch.Tensor:
    """The surfaces layout's inputs per simulated band, ``(b, 8, 20)``: the area-weighted scattering, the axes'
    imbalance (:func:`axis_imbalance`), then per surface, in :func:`surface_order`, its absorption, its
    scattering and its share of the room's surface."""
    alpha, scattering = room.surface_coefficients(raw)  # (b, 6, 8)
    areas = room.surface_areas(raw)
    order = surface_order(alpha, scattering, areas)
    share = (areas / areas.sum(-1, keepdim=True)).gather(-1, order)[:, None, :].expand(-1, alpha.shape[-1], -1)
    alpha, scattering = (x.gather(-2, order[..., None].expand_as(x)) for x in (alpha, scattering))
    return torch.cat([room.band_scattering(raw)[..., None], axis_imbalance(alpha)[..., None],
                      alpha.transpose(1, 2), scattering.transpose(1, 2), share], -1)


def surface_order(alpha: torch.Tensor, scattering: torch.Tensor, areas: torch.Tensor) -> torch.Tensor:
    """``(b, 6)`` indices of the surfaces (west, east, south, north, floor, ceiling) in the order the networks
    see them: the three pairs of opposite surfaces from the largest to the smallest, and in each pair the one
    absorbing more (mean over the bands; then scattering more) first. The simulator does not tell a room
    from its mirror image or from the same box with its axes swapped (rays start in every direction, the
    images are summed), so the networks get the same inputs for all of them, 48 rooms from one: what they
    learn of a west wall holds for every wall. ``alpha``, ``scattering`` ``(b, 6, 8)``; ``areas`` ``(b, 6)``."""
    a, s = alpha.mean(-1), scattering.mean(-1)
    odd_first = (a[:, 1::2] > a[:, 0::2]) | ((a[:, 1::2] == a[:, 0::2]) & (s[:, 1::2] > s[:, 0::2]))  # (b, 3)
    even = torch.arange(0, 6, 2, device=alpha.device)
    pairs = torch.stack([even + odd_first, even + ~odd_first], -1)  # (b, 3, 2)
    axes = areas[:, 0::2].argsort(dim=-1, descending=True, stable=True)  # (b, 3)
    return pairs.gather(1, axes[..., None].expand(-1, -1, 2)).flatten(1)


def axis_imbalance(alpha: torch.Tensor) -> torch.Tensor:
    """``log(max / mean)`` over the x, y, z axes of the absorption exponent a ray loses crossing the room
    (``-ln(1 - a)`` of the axis' two walls, averaged), ``(b, 8)``, from the surfaces' absorption ``(b, 6, 8)``
    (:func:`edc.acoustics.room.surface_coefficients`): 0 where every axis absorbs alike."""
    loss = -torch.log1p(-alpha.clamp(max=0.999))
    per_axis = (loss[..., 0::2, :] + loss[..., 1::2, :]) / 2.0  # (b, 3, 8)
    return torch.log((per_axis.amax(-2) + 1e-6) / (per_axis.mean(-2) + 1e-6))  # 0, not NaN, where none absorbs


def spread_in_time(energy: torch.Tensor, kernels: torch.Tensor, block: int = 64) -> torch.Tensor:
    """Curves ``energy`` ``(b, C, n)`` spread in time as the kernels ``(C, taps)`` spread them
    (:func:`edc.acoustics.room.octave_energy_kernels`): ``sum_l kernel[l] e[t - l]``, ``e`` held at ``e[0]`` before
    t = 0 (the energy left before the sound), ``(b, C, n)``. The samples the held energy reaches are one product
    with :func:`spread_matrix`; past them each ``block`` samples are their window's product with one Toeplitz
    matrix of the kernels. Small matrix products take a fraction of the time of the same sums as a grouped
    ``conv1d`` on this project's CPUs (docs/model.md#speed)."""
    n, n_taps = energy.shape[-1], kernels.shape[-1]
    first = min(n, max(2 * block, n_taps))
    out = torch.einsum("bcj,cjt->bct", energy[..., :first], spread_matrix(kernels, first))
    if first == n:
        return out
    n_blocks = -(-(n - first) // block)
    rest = F.pad(energy[..., first - n_taps + 1:], (0, n_blocks * block - (n - first)))  # each window: its block
    windows = rest.unfold(-1, n_taps - 1 + block, block)  # and the taps - 1 samples before it, (b, C, blocks, w)
    blocks = torch.einsum("bcmj,cjt->bcmt", windows, _toeplitz(kernels, n_taps - 1 + block, block, n_taps - 1))
    return torch.cat([out, blocks.flatten(-2)[..., :n - first]], -1)


def spread_matrix(kernels: torch.Tensor, n: int) -> torch.Tensor:
    """``(C, n, n)`` matrices ``M`` that spread the first ``n`` samples of curves ``e`` (:func:`spread_in_time`):
    ``sum_j e[j] M[j, t] = sum_l kernel[l] e[t - l]``, ``e`` held at ``e[0]`` before t = 0."""
    held = kernels.flip(-1).cumsum(-1).flip(-1)  # what reaches t from before t = 0: sum_{l >= t} kernel[l]
    held = F.pad(held, (0, max(n - kernels.shape[-1], 0)))[:, :n]
    return torch.cat([held[:, None, :], _toeplitz(kernels, n, n)[:, 1:]], 1)


def _toeplitz(kernels: torch.Tensor, n_rows: int, n_cols: int, offset: int = 0) -> torch.Tensor:
    """``(C, n_rows, n_cols)``: ``[c, j, t] = kernels[c, t - j + offset]``, 0 outside the taps."""
    padded = F.pad(kernels, (n_rows - 1 - offset, n_cols + offset))  # kernel[i] at index i + n_rows - 1 - offset
    return padded.unfold(-1, n_cols, 1)[:, :n_rows].flip(1)


def banded_matmul(x: torch.Tensor, matrix: torch.Tensor, rows: int = 64) -> torch.Tensor:
    """``x @ matrix.T``, ``(..., m)``, for ``x`` ``(..., n)`` and ``matrix`` ``(m, n)`` whose rows each weigh a
    few neighbouring columns, later rows later columns (an interpolation such as :meth:`PhysicsEDC.cell_knots`):
    each block of ``rows`` rows is multiplied by only the columns it weighs (for the residual's knots, a fifth
    of the dense products or less)."""
    weighed = matrix != 0
    first = weighed.int().argmax(1).tolist()
    end = (weighed.shape[1] - weighed.flip(1).int().argmax(1)).tolist()  # one past the last column weighed
    parts = []
    for r in range(0, len(matrix), rows):
        c0, c1 = min(first[r:r + rows]), max(end[r:r + rows])
        parts.append(x[..., c0:c1] @ matrix[r:r + rows, c0:c1].T)
    return torch.cat(parts, -1)


def _knot_matrix(n_out: int, fs: float, n_knots: int, early_ms: float, early_step_ms: float) -> torch.Tensor:
    """``(n_out - 1, n_knots)`` linear interpolation from knots to the decrements' times (ms)."""
    end_ms = (n_out - 1) * 1000.0 / fs
    early = torch.arange(0.0, min(early_ms, end_ms), early_step_ms)
    knots = torch.cat([early, torch.linspace(early_ms, end_ms, max(n_knots - len(early), 2))])[:n_knots]
    times = torch.arange(1, n_out) * 1000.0 / fs
    right = torch.searchsorted(knots, times).clamp(1, len(knots) - 1)
    frac = ((times - knots[right - 1]) / (knots[right] - knots[right - 1])).clamp(0.0, 1.0)
    matrix = torch.zeros(n_out - 1, n_knots)
    rows = torch.arange(n_out - 1)
    matrix[rows, right - 1] = 1.0 - frac
    matrix[rows, right] = frac
    return matrix
