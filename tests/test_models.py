"""The physics model's own machinery, against brute force."""
import math

import numpy as np
import pytest
import torch

from edc.acoustics import iso3382, room
from edc.models import PhysicsEDC
from edc.models.physics import SLOWEST_RATE, learned_spread

pytestmark = pytest.mark.unit


def paper_rooms(n: int, gen: torch.Generator) -> torch.Tensor:
    """``(n, 16)`` rooms of the paper's ranges: 3-6 m, source and receiver 0.5 m or more from the walls,
    absorption 0.02-0.9 per band."""
    dims = 3.0 + 3.0 * torch.rand(n, 3, generator=gen)
    source, receiver = (0.5 + (dims - 1.0) * torch.rand(n, 3, generator=gen) for _ in range(2))
    return torch.cat([dims, source, receiver, 0.02 + 0.88 * torch.rand(n, 7, generator=gen)], -1)


def surfaces_rooms(n: int, gen: torch.Generator) -> torch.Tensor:
    """``(n, 93)`` rooms of the rooms sampler's sizes (3-15 x 3-12 x 2.5-6 m) with an absorption (0.02-0.9)
    and a scattering (0-1) per surface and band."""
    dims = torch.tensor([3.0, 3.0, 2.5]) + torch.tensor([12.0, 9.0, 3.5]) * torch.rand(n, 3, generator=gen)
    source, receiver = (0.5 + (dims - 1.0) * torch.rand(n, 3, generator=gen) for _ in range(2))
    surfaces = torch.cat([0.02 + 0.88 * torch.rand(n, 6, 7, generator=gen), torch.rand(n, 6, 7, generator=gen)], -1)
    return torch.cat([dims, source, receiver, surfaces.flatten(1)], -1)


@pytest.mark.parametrize("layout, n_curves", [(paper_rooms, 1), (paper_rooms, 8), (surfaces_rooms, 8)],
                         ids=["broadband", "octave bands", "a material per surface"])
@pytest.mark.parametrize("ramp_ms", [2.0, 25.0], ids=["sharp ramps", "smooth ramps"])
def test_late_cells_match_every_sample(layout, n_curves, ramp_ms, monkeypatch):
    """Past the early part the forward pass computes every LATE_STEP-th sample (the late exponentials in
    closed form through the octave filters) and interpolates. Computed at every sample instead (the filters
    as a convolution), the curves agree to 0.1 dB above -60 dB (0.06 dB at most here), and C50 exactly."""
    gen = torch.Generator().manual_seed(0)
    raw = layout(64, gen)
    model = PhysicsEDC(raw.shape[1], 3000, 1000.0, n_curves=n_curves)
    model.fit_features(raw)
    with torch.no_grad():  # learned corrections: band corrections and ramps of about ramp_ms, a dB residual
        for last in (model.band_net[-1], model.residual_net[-1]):
            last.weight.copy_(0.05 * torch.randn(last.weight.shape, generator=gen))
            last.bias.copy_(0.1 * torch.randn(last.bias.shape, generator=gen))
        model.band_net[-1].bias[3] = math.log(ramp_ms / 2.0)
        n_fine, fine_samples = [], model.fine_samples
        monkeypatch.setattr(model, "fine_samples", lambda *args: n_fine.append(fine_samples(*args)) or n_fine[-1])
        ours = model(raw, raw)
        monkeypatch.setattr(model, "fine_samples", lambda *args: model.n_out - 1)
        every = model(raw, raw)
    assert 100 < n_fine[0] < 1000  # the late cells were used
    above = every > -60.0
    assert (ours - every).abs()[above].max() < 0.1
    assert torch.all(ours.diff(dim=-1) <= 0)
    c50 = (iso3382.c50(10.0 ** (x.double() / 10.0), 1000.0) for x in (ours, every))
    torch.testing.assert_close(*c50)


def test_prediction_in_batches_of_rooms_alike_matches_every_sample(monkeypatch):
    """The physics model predicts energy itself, in batches of rooms ordered by how long their early part is
    (each batch computes as many samples one by one as its latest room needs). Rooms of 20 to 600 m^3 with
    ramps of 2 to 50 ms: every room's curves, back in its own row, agree with the level computed at every
    sample to 0.03 dB above -60 dB, and C50 to 0.01 dB; a single batch's energy is 10^(level / 10) of the
    forward pass (one rounding)."""
    from edc.models import Scaler, Surrogate, TargetTransform, predict_in_batches

    gen = torch.Generator().manual_seed(2)
    raw = surfaces_rooms(48, gen)
    model = PhysicsEDC(raw.shape[1], 3000, 1000.0, n_curves=8)
    model.fit_features(raw)
    with torch.no_grad():  # ramps of 2 to 50 ms, depending on the room (its scaled inputs)
        model.band_net[-1].weight[3].copy_(0.3 * torch.randn(model.band_net[-1].weight.shape[1], generator=gen))
        model.band_net[-1].bias[3] = math.log(5.0)
    surrogate = Surrogate(model, Scaler("standard", raw.shape[1]), TargetTransform("db", "none", 8 * 3000), 1000.0)
    assert surrogate.sorts_rooms
    n_fine, fine_samples = [], model.fine_samples
    monkeypatch.setattr(model, "fine_samples", lambda *args: n_fine.append(fine_samples(*args)) or n_fine[-1])
    monkeypatch.setattr(model, "CACHED_ROOMS", 3)  # each batch's curves filled 3, 3 and 2 rooms at a time
    ours = torch.as_tensor(predict_in_batches(surrogate, raw, batch_size=8, workers=1))
    assert len(n_fine) == 6 and n_fine == sorted(n_fine) and n_fine[0] < n_fine[-1]  # 6 batches, shortest first
    with torch.no_grad():
        alone = torch.as_tensor(predict_in_batches(surrogate, raw[:8], batch_size=8))
        torch.testing.assert_close(alone, 10.0 ** (model(raw[:8], raw[:8]) / 10.0), rtol=1e-5, atol=0)
        monkeypatch.setattr(model, "fine_samples", lambda *args: model.n_out - 1)
        every = model(raw, raw)
    level = 10.0 * torch.log10(ours)
    above = every > -60.0
    assert (level - every).abs()[above].max() < 0.03
    c50 = (iso3382.c50(x.double(), 1000.0) for x in (ours, 10.0 ** (every / 10.0)))
    torch.testing.assert_close(*c50, rtol=0, atol=0.01)


def test_banded_product_of_the_knots_is_the_dense_product():
    """The residual's knots reach the grid through a matrix whose rows weigh 2 or 3 neighbouring knots: taken
    block by block over only the knots each block weighs, the product is the dense one (a grid with late
    cells, every sample, and a matrix whose blocks weigh every column)."""
    from edc.models.physics import banded_matmul

    model = PhysicsEDC(16, 2000, 1000.0, n_curves=8)
    knots = torch.randn(5, 8, model.knots.shape[1], generator=torch.Generator().manual_seed(4))
    for n_fine in (model.fine_samples(0.15), model.n_out - 1):
        cell_knots = model.cell_knots(n_fine)
        torch.testing.assert_close(banded_matmul(knots, cell_knots), knots @ cell_knots.T, rtol=1e-6, atol=1e-6)
    dense = torch.rand(70, 100)
    torch.testing.assert_close(banded_matmul(knots, dense, rows=16), knots @ dense.T)


def test_prediction_flushes_subnormal_floats_on_its_own_threads_only(monkeypatch):
    """Prediction computes on threads of its own that read and write floats below 1.2e-38 as 0 (on Intel CPUs
    a hundred times faster); the caller's thread keeps computing them, before and after, with one worker or two."""
    from edc.models import Scaler, Surrogate, TargetTransform, predict_in_batches

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormal floats")
    def subnormal() -> float:  # 1e-40, or 0 where flushed
        return (torch.tensor([1e-30]) * torch.tensor([1e-10])).item()

    assert subnormal() > 0.0
    raw = surfaces_rooms(6, torch.Generator().manual_seed(3))
    model = PhysicsEDC(raw.shape[1], 500, 1000.0, n_curves=8)
    model.fit_features(raw)
    seen, predict_energy = [], model.predict_energy
    monkeypatch.setattr(model, "predict_energy", lambda *a, **k: seen.append(subnormal()) or predict_energy(*a, **k))
    surrogate = Surrogate(model, Scaler("standard", raw.shape[1]), TargetTransform("db", "none", 8 * 500), 1000.0)
    for workers in (1, 2):
        curves = predict_in_batches(surrogate, raw, batch_size=3, workers=workers)
        assert np.isfinite(curves).all() and curves.shape == (6, 8, 500)
    assert seen == [0.0] * 3  # the 6 rooms on one worker, then 3 on each of two
    assert subnormal() > 0.0


def test_spread_in_time_is_the_filters_convolution_of_the_held_curve():
    """The octave filters' spread in time, as products of matrices (one for the first samples, then one per
    block), is numpy's full convolution of each curve with its kernel, the curve held at its first value for
    a kernel's length before t = 0: curves shorter than the kernels, as long as the first product, and longer
    by whole blocks and by part of one."""
    from edc.models.physics import spread_in_time

    generator = np.random.default_rng(5)
    kernels = generator.random((7, 71))
    for n in (1, 30, 71, 135, 200):
        curves = generator.random((3, 7, n))
        held = np.concatenate([np.repeat(curves[..., :1], 70, -1), curves], -1)
        expected = np.array([[np.convolve(c, k)[70:70 + n] for c, k in zip(room, kernels)] for room in held])
        spread = spread_in_time(torch.as_tensor(curves), torch.as_tensor(kernels), block=16)
        np.testing.assert_allclose(spread.numpy(), expected, rtol=1e-12)


def test_memory_answers_only_for_the_training_geometries():
    model = PhysicsEDC(16, 2000, 1000.0, memory_size=4)
    rooms = torch.tensor([[3.0, 4.0, 2.5, 1.0, 1.0, 1.5, 2.0, 2.0, 1.5] + [0.2] * 7,
                          [4.0, 6.0, 3.0, 2.0, 1.0, 1.5, 1.0, 3.0, 1.5] + [0.1] * 7])
    model.fit_features(torch.cat([rooms, rooms + torch.cat([torch.zeros(9), torch.full((7,), 0.1)])]))  # 2 geometries
    assert torch.isfinite(model.memory_rooms).all(-1).sum() == 2
    with torch.no_grad():
        model.memory.copy_(torch.arange(1.0, 5.0)[:, None].expand(-1, model.memory.shape[1]))
    slots = model.remembered(rooms)[0][:, 0]  # each room finds its own slot, whatever its absorption
    assert sorted(slots.tolist()) == [1.0, 2.0]
    moved = rooms.clone()
    moved[:, 3] += 0.01  # 1 cm off: a new room
    residual, bands = model.remembered(moved)
    assert not residual.any() and not bands.any()


def test_memory_dropout_leaves_training_rooms_without_the_memory_in_training_only():
    rooms = torch.tensor([[3.0, 4.0, 2.5, 1.0, 1.0, 1.5, 2.0, 2.0, 1.5] + [0.2] * 7]).repeat(2000, 1)
    model = PhysicsEDC(16, 2000, 1000.0, memory_size=4, memory_dropout=0.25)
    model.fit_features(rooms)
    with torch.no_grad():
        model.memory.fill_(1.0)
        model.memory_bands.fill_(1.0)
    torch.manual_seed(0)
    residual, bands = model.train().remembered(rooms)
    kept = residual[:, 0]
    assert set(kept.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(bands[:, 0, 0], kept)  # a room goes without both parts of the memory, or keeps both
    assert abs(kept.mean().item() - 0.75) < 0.03  # 3 standard deviations of 2000 draws: 0.029
    residual, bands = model.eval().remembered(rooms)
    assert residual.eq(1.0).all() and bands.eq(1.0).all()


@pytest.mark.parametrize("share", [-0.1, 1.0])
def test_a_memory_dropout_outside_0_to_1_names_the_key(share):
    from edc.errors import EdcInputError

    with pytest.raises(EdcInputError, match=r"model\.net\.memory_dropout=.*\[0, 1\)"):
        PhysicsEDC(16, 2000, 1000.0, memory_size=4, memory_dropout=share)


def test_memory_size_0_is_the_model_with_an_empty_memory():
    rooms = torch.tensor([[3.0, 4.0, 2.5, 1.0, 1.0, 1.5, 2.0, 2.0, 1.5] + [0.2] * 7,
                          [4.0, 6.0, 3.0, 2.0, 1.0, 1.5, 1.0, 3.0, 1.5] + [0.1] * 7])
    curves = []
    for memory_size in (0, 4):
        torch.manual_seed(0)  # the memory's parameters come last: the same networks either way
        model = PhysicsEDC(16, 2000, 1000.0, memory_size=memory_size)
        model.fit_features(rooms)
        with torch.no_grad():
            curves.append(model(rooms, rooms))
    torch.testing.assert_close(curves[0], curves[1], rtol=0, atol=0)  # a fresh memory adds exactly nothing


@pytest.mark.parametrize("representation", ["linear", "db"])
def test_predicting_in_batches_decodes_each_batch_in_place_as_it_would_alone(representation):
    """Batched prediction decodes each batch in place into one array; every batch's curves equal that batch
    predicted and decoded on its own (a new tensor), the last, shorter batch included."""
    from edc.models import Scaler, Surrogate, TargetTransform, predict_in_batches

    gen = torch.Generator().manual_seed(1)
    raw = paper_rooms(37, gen)
    model = PhysicsEDC(raw.shape[1], 400, 1000.0, n_curves=8)
    surrogate = Surrogate(model, Scaler("standard", 16), TargetTransform(representation, "standard", 8 * 400), 1000.0)
    with torch.no_grad():  # fitted on the untrained physics model's own curves (its output is the level in dB)
        model.fit_features(raw)
        surrogate.fit_scalers(raw, 10.0 ** (model(surrogate.feature_scaler.fit(raw)(raw), raw) / 10.0))
    batched = predict_in_batches(surrogate, raw, batch_size=16, workers=1)  # as many torch threads as alone
    with torch.inference_mode():
        alone = torch.cat([surrogate.predict_edc(raw[i : i + 16]) for i in range(0, len(raw), 16)]).numpy()
    assert batched.shape == (37, 8, 400) and batched.dtype == alone.dtype
    assert np.isfinite(alone).all() and (batched == alone).all()
    assert (batched[:, :, 0] > 10 * batched[:, :, -1]).all()  # decaying curves, not a zeroed or shared buffer


def test_prediction_on_worker_threads_gives_every_room_its_own_curves(monkeypatch):
    """On the CPU the rooms are shared among Python threads that each compute with one torch thread: every
    worker predicts (from its own thread), every room's curves land in its own row, agreeing with one thread's
    prediction as rooms predicted with other rooms do (within 0.03 dB above -60 dB: where a batch's grid turns
    coarse), and torch's thread count is set back."""
    import threading

    from edc.models import Scaler, Surrogate, TargetTransform, predict_in_batches

    gen = torch.Generator().manual_seed(3)
    raw = paper_rooms(50, gen)
    model = PhysicsEDC(raw.shape[1], 400, 1000.0, n_curves=8)
    model.fit_features(raw)
    surrogate = Surrogate(model, Scaler("standard", 16), TargetTransform("db", "none", 8 * 400), 1000.0)
    one = predict_in_batches(surrogate, raw, batch_size=8, workers=1)
    callers, predict_edc = set(), surrogate.predict_edc
    monkeypatch.setattr(surrogate, "predict_edc", lambda *a, **k: callers.add(threading.get_ident()) or predict_edc(*a, **k))
    threads = torch.get_num_threads()
    shared = predict_in_batches(surrogate, raw, batch_size=8, workers=3)
    assert len(callers) == 3 and torch.get_num_threads() == threads
    level, reference = 10.0 * np.log10(shared), 10.0 * np.log10(one)
    above = reference > -60.0
    assert np.abs(level - reference)[above].max() < 0.03 and above.mean() > 0.5


@pytest.mark.parametrize("representation", ["linear", "db"])
def test_an_identity_target_scaler_decodes_as_the_representation_alone(representation):
    """``target_scaler: none`` skips the per-sample affine pass: the curves are the representation's inverse
    (10^(dB/10) for db), in a new tensor or written into ``out``, as a scaler of shift 0 and scale 1 gives them."""
    from edc.models import TargetTransform

    y = -60.0 * torch.rand(3, 8, 50, generator=torch.Generator().manual_seed(2))
    y = y if representation == "db" else 10.0 ** (y / 10.0)
    expected = 10.0 ** (y / 10.0) if representation == "db" else y
    plain = TargetTransform(representation, "none", 8 * 50)
    unit = TargetTransform(representation, "standard", 8 * 50)  # unfitted: shift 0, scale 1
    out = torch.empty_like(y)
    torch.testing.assert_close(plain.decode(y), expected, rtol=1e-6, atol=0.0)
    assert plain.decode(y, out=out) is out
    assert torch.equal(out, unit.decode(y))


def test_learned_spread_moves_the_late_rates_between_the_mean_and_twice_the_priors_spread():
    """The learned correction of the late rates' spread: at 0 the prior's rates, very negative every node at
    the weighted mean rate, very positive twice the prior's distance from it (at least ``SLOWEST_RATE``); the
    weighted mean rate, the late decay's Eyring-like mean, stays wherever no rate is clipped."""
    raw = surfaces_rooms(16, torch.Generator().manual_seed(3)).double()
    rates, weights = room.specular_decay_rates(raw)  # (16, 8, 3) each
    zero = torch.zeros(16, 8, dtype=raw.dtype)
    mean = (weights * rates).sum(-1, keepdim=True)
    torch.testing.assert_close(learned_spread(rates, weights, zero), rates)
    torch.testing.assert_close(learned_spread(rates, weights, zero - 50.0), mean.expand_as(rates))
    doubled = learned_spread(rates, weights, zero + 50.0)
    torch.testing.assert_close(doubled, (2.0 * rates - mean).clamp(min=SLOWEST_RATE))
    kept = (doubled > SLOWEST_RATE).all(-1, keepdim=True)
    assert kept.any() and not kept.all()  # rooms with and without a clipped node
    torch.testing.assert_close((weights * doubled).sum(-1, keepdim=True)[kept], mean[kept])


def mirrored(raw: torch.Tensor, axis: int) -> torch.Tensor:
    """The rooms ``(n, 93)`` mirrored across the middle of ``axis``: its coordinates ``D - x``, its two surfaces
    swapped."""
    out = raw.clone()
    out[:, [3 + axis, 6 + axis]] = raw[:, axis, None] - raw[:, [3 + axis, 6 + axis]]
    surfaces = out[:, 9:].view(-1, 6, 14)
    surfaces[:, [2 * axis, 2 * axis + 1]] = surfaces[:, [2 * axis + 1, 2 * axis]].clone()
    return out


def axes_swapped(raw: torch.Tensor, first: int, second: int) -> torch.Tensor:
    """The same boxes ``(n, 93)`` with two axes' names swapped: dimensions, coordinates and pairs of surfaces."""
    out, pair = raw.clone(), [first, second]
    for start in (0, 3, 6):
        out[:, [start + first, start + second]] = raw[:, [start + second, start + first]]
    surfaces, before = out[:, 9:].view(-1, 6, 14), raw[:, 9:].view(-1, 6, 14)
    for a, b in (pair, pair[::-1]):
        surfaces[:, [2 * a, 2 * a + 1]] = before[:, [2 * b, 2 * b + 1]]
    return out


@pytest.mark.parametrize("change", [lambda r: mirrored(r, 0), lambda r: mirrored(mirrored(r, 1), 2),
                                    lambda r: axes_swapped(r, 0, 2), lambda r: axes_swapped(mirrored(r, 0), 0, 1)],
                         ids=["mirror x", "mirror y and z", "swap x and z", "mirror x, swap x and y"])
def test_a_room_its_mirror_image_and_its_axes_swapped_get_the_same_curves(change):
    """The simulator cannot tell these rooms apart (rays start in every direction, images are summed), nor can
    the physics model of the surfaces layout: its inputs, prior and networks (with weights) give each the same
    curves, while a change of one surface's absorption does change them."""
    raw = surfaces_rooms(12, torch.Generator().manual_seed(5))
    model = PhysicsEDC(93, 600, 1000.0, n_curves=8, memory_size=0)
    model.fit_features(raw)
    torch.manual_seed(0)
    for last in (model.band_net[-1], model.residual_net[-1]):  # the corrections start at 0: give them weight
        torch.nn.init.normal_(last.weight, std=0.05)
    model.eval()
    with torch.no_grad():
        curves = model(None, raw)
        torch.testing.assert_close(model(None, change(raw)), curves, rtol=0, atol=2e-3)  # dB, float32
        other = raw.clone()
        other[:, 9:].view(-1, 6, 14)[:, 0, :7] *= 0.5  # the west wall absorbs half as much
        assert (model(None, other) - curves).abs().amax() > 0.5


def test_training_remembers_each_rooms_late_decay_as_evaluation_computes_it(monkeypatch):
    """While training, a room's late decay is computed once and reused (it depends on the room alone); it is the
    one evaluation computes, and inputs that need gradients (the design search) are computed afresh."""
    from edc.models.physics import PhysicsEDC

    raw = surfaces_rooms(40, torch.Generator().manual_seed(5)).float()
    model = PhysicsEDC(raw.shape[1], 500, 1000.0, n_curves=8, memory_size=0)
    calls = []
    computed = room.specular_decay_rates
    monkeypatch.setattr(room, "specular_decay_rates", lambda r, n: calls.append(len(r)) or computed(r, n))
    model.train()
    first = model.late_decay(raw[:30])
    again = model.late_decay(raw[10:40])
    assert calls == [30, 10]  # only the 10 rooms not seen before
    model.eval()
    fresh = model.late_decay(raw[10:40])
    for part, old, new in zip(again, first, fresh):
        torch.testing.assert_close(part[:20], old[10:])
        torch.testing.assert_close(part, new)
    model.train()
    model.late_decay(raw[:5].clone().requires_grad_())
    assert calls[-1] == 5


def test_the_late_decays_gradient_follows_its_finite_differences():
    """The design search differentiates the late decay by the absorption: the gradient kept (every rate moves
    as the slowest decay's directions' mean rate) follows central differences of the exact decay. It is a
    guide, not the derivative: where a surface barely matters (a difference of -0.08) it can read +2."""
    raw = surfaces_rooms(8, torch.Generator().manual_seed(7)).double()
    t = torch.tensor([0.05, 0.15], dtype=raw.dtype)

    def late_db(rooms):  # (n,) summed over the bands and times
        rates, weights = room.specular_decay_rates(rooms)
        return torch.log((weights[..., None] * torch.exp(-rates[..., None] * t)).sum(-2)).sum((-1, -2))

    rooms = raw.clone().requires_grad_()
    (gradient,) = torch.autograd.grad(late_db(rooms).sum(), rooms)
    generator = torch.Generator().manual_seed(0)
    columns = 9 + 14 * torch.randint(6, (24,), generator=generator) + torch.randint(7, (24,), generator=generator)
    ours, theirs = [], []
    for k, column in enumerate(columns.tolist()):
        step = torch.zeros_like(raw[0])
        step[column] = 1e-4
        row = raw[k % 8]
        theirs.append(float(late_db(torch.stack([row + step, row - step])).diff()) / -2e-4)
        ours.append(float(gradient[k % 8, column]))
    ours, theirs = np.array(ours), np.array(theirs)
    assert np.corrcoef(ours, theirs)[0, 1] > 0.9  # 0.95 here; 0.98 over 40 pairs of 64 sampled rooms
    assert 0.9 < np.median(ours / theirs) < 1.1
