"""The physics model's own machinery, against brute force."""
import pytest
import torch

from edc.models import PhysicsEDC

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("widths_s, max_rate", [((0.001, 0.004), 65.0), ((0.001, 1.5), 140.0)],
                         ids=["sharp ramps", "sharp and smooth ramps"])
def test_late_energy_matches_the_full_resolution_sum(widths_s, max_rate):
    model = PhysicsEDC(16, 2000, 1000.0)
    gen = torch.Generator().manual_seed(0)
    log_energy = torch.randn(64, 8, 3, generator=gen)
    rates = 5.0 + (max_rate - 5.0) * torch.rand(64, 8, 3, generator=gen)  # 1/s: T from 13.8 / max_rate to 2.8 s
    onset = 0.005 + 0.03 * torch.rand(64, 8, generator=gen)
    low, high = torch.log(torch.tensor(widths_s))
    width = torch.exp(low + (high - low) * torch.rand(64, 8, generator=gen))  # log-uniform
    t = model.t
    held = onset[..., None] + width[..., None] * torch.nn.functional.softplus((t - onset[..., None]) / width[..., None])
    full = (log_energy[..., None] - rates[..., None] * held[..., None, :]).exp().sum((1, 2))
    ours = model.late_energy(log_energy, rates, onset, width)
    torch.testing.assert_close(ours, full, rtol=3e-3, atol=0)  # 0.013 dB
    assert torch.all(ours.diff(dim=-1) <= 0)


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
