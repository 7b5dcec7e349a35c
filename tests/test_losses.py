"""Losses: each region weight acts in its own region only; the auxiliary term stays finite."""
import numpy as np
import pytest
import torch

from edc.training.losses import (
    AuxiliaryLoss,
    EDCRIRLoss,
    LogEDCLoss,
    LossContext,
    MSELoss,
    WeightedEDCLoss,
)

pytestmark = pytest.mark.unit

FS = 1000


def decay(t60: float, n: int = 2000) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64) / FS
    return torch.exp(-6 * np.log(10) * t / t60)


def ctx_for(edc):
    return LossContext(target_edc=edc, decode=lambda y: y, fs=FS)


def regions(edc):
    level = 10 * torch.log10(edc)
    t = torch.arange(edc.shape[-1]) / FS
    return {"edt": (level <= 0) & (level >= -10), "t20": (level <= -5) & (level >= -25), "c50": t < 0.05}


def gradient(loss, edc):
    pred = (edc + 0.01).clone().requires_grad_(True)
    loss(pred, edc, ctx_for(edc))[0].backward()
    return pred.grad


@pytest.mark.parametrize("name", ["edt", "t20", "c50"])
def test_each_weight_changes_the_gradient_in_its_own_region_only(name):
    edc = decay(1.0).unsqueeze(0)
    base = gradient(WeightedEDCLoss(), edc)
    heavier = gradient(WeightedEDCLoss(**{f"{name}_weight": 5.0}), edc)
    changed = ~torch.isclose(base, heavier)
    assert changed.any()
    assert not (changed & ~regions(edc)[name]).any(), f"{name}_weight acted outside its region"


def test_overlaps_take_the_largest_weight_and_base_elsewhere():
    edc = decay(1.0).unsqueeze(0)
    loss = WeightedEDCLoss(edt_weight=2.0, t20_weight=3.0, c50_weight=1.5, base_weight=0.7)
    w = loss.sample_weights(ctx_for(edc))[0]
    r = {k: v[0] for k, v in regions(edc).items()}
    assert torch.all(w[r["edt"] & r["t20"]] == 3.0)
    assert torch.all(w[r["c50"] & r["edt"] & ~r["t20"]] == 2.0)
    assert torch.all(w[~(r["edt"] | r["t20"] | r["c50"])] == 0.7)


def test_mse_and_edc_rir_closed_form():
    target = torch.zeros(1, 4, dtype=torch.float64)
    pred = torch.tensor([[0.0, 1.0, 0.0, 1.0]], dtype=torch.float64)
    assert MSELoss()(pred, target, ctx_for(target))[0].item() == pytest.approx(0.5)
    # diffs of pred: [1, -1, 1] -> mean square 1; total 0.5 + 2 x 1
    assert EDCRIRLoss(beta=2.0)(pred, target, ctx_for(target))[0].item() == pytest.approx(2.5)


def test_log_edc_is_zero_on_the_target_and_positive_off_it():
    edc = decay(0.8).unsqueeze(0)
    loss = LogEDCLoss()
    assert loss(edc, edc, ctx_for(edc))[0].item() == pytest.approx(0.0, abs=1e-12)
    assert loss(edc * 0.5, edc, ctx_for(edc))[0].item() > 0


@pytest.mark.parametrize("pred", [torch.zeros(2, 2000), torch.ones(2, 2000), -torch.ones(2, 2000),
                                  torch.full((2, 2000), float("nan"))])
def test_auxiliary_stays_finite_on_adversarial_predictions(pred):
    target = torch.stack([decay(0.5), decay(1.2)])
    p = pred.double().clone().requires_grad_(True)
    value, logs = AuxiliaryLoss(aux_weight=0.1)(p, target, ctx_for(target))
    if torch.isnan(pred).any():
        assert torch.isnan(value)  # the MSE itself: nothing to fall back to
        return
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(p.grad).all()
    assert logs["aux_fallback"].item() in (0.0, 1.0)


def test_auxiliary_adds_the_parameter_error():
    target = torch.stack([decay(0.5), decay(1.2)])
    pred = torch.stack([decay(0.6), decay(1.0)])
    mse_only = MSELoss()(pred, target, ctx_for(target))[0]
    value, logs = AuxiliaryLoss(aux_weight=1.0)(pred, target, ctx_for(target))
    assert logs["aux_fallback"].item() == 0.0
    # T20 errors 0.1 and 0.2 s; C50 from the closed form of a single exponential.
    c50 = lambda t60: 10 * np.log10(np.exp(6 * np.log(10) / t60 * 0.05) - 1)  # noqa: E731
    expected = 0.5 * (0.15 + (abs(c50(0.6) - c50(0.5)) + abs(c50(1.0) - c50(1.2))) / 2)
    assert (value - mse_only).item() == pytest.approx(expected, rel=1e-6)


def test_log_edc_weights_the_early_decay_by_one_plus_early_weight():
    edc = decay(1.0).unsqueeze(0)  # 60 dB/s: above -12 dB for the first 200 samples
    shifted = edc * 10 ** (-3 / 10)  # 3 dB low everywhere (all above the floor)
    above = (10 * torch.log10(edc) > -12).double().mean().item()
    loss = LogEDCLoss(early_weight=20.0, early_db=-12.0, floor_db=-200.0)
    assert loss(shifted, edc, ctx_for(edc))[0].item() == pytest.approx(9.0 * (1 + 20.0 * above))


def test_log_edc_weights_t20s_fit_range_by_decay_weight_more():
    """A curve 3 dB low everywhere: the squared error 9 dB² is weighted 1 + 40 above -12 dB and 1 + 10
    between -5 and -25 dB (both where they overlap), counted on the sample times of a 60 dB/s decay."""
    edc = decay(1.0).unsqueeze(0)
    level = 10 * torch.log10(edc)
    above, fit = (level > -12).double(), ((level <= -5) & (level >= -25)).double()
    loss = LogEDCLoss(early_weight=40.0, early_db=-12.0, decay_weight=10.0, floor_db=-200.0)
    expected = 9.0 * (1 + 40.0 * above + 10.0 * fit).mean().item()
    assert loss(edc * 10 ** (-3 / 10), edc, ctx_for(edc))[0].item() == pytest.approx(expected)
    assert expected > 9.0 * (1 + 40.0 * above.mean().item()) + 9.0  # the fit range weighs in


@pytest.mark.parametrize("representation", ["linear", "db"])
@pytest.mark.parametrize("scaler", ["standard", "none"])
def test_log_edc_loss_reads_the_level_directly_where_the_target_space_is_db(representation, scaler):
    """The loss of a dB-target model takes its level without the round trip through linear energy; the value
    is the round trip's: 10 log10 of the decoded curves, floored."""
    from edc.models.scaling import TargetTransform

    edcs = torch.stack([decay(t60) for t60 in (0.337, 0.871, 1.493)])[:, None]  # (3, 1, 2000), no sample at -12 dB
    transform = TargetTransform(representation, scaler, edcs.shape[-1]).fit([edcs])
    target = transform.encode(edcs)
    pred = transform.encode(edcs * torch.linspace(1.0, 0.5, 2000, dtype=torch.float64))
    direct = LossContext(target_edc=edcs, decode=transform.decode, fs=FS, decode_db=transform.decode_db)
    round_trip = LossContext(target_edc=edcs, decode=transform.decode, fs=FS)
    loss = LogEDCLoss(floor_db=-40.0, early_weight=40.0)
    assert loss(pred, target, direct)[0].item() == pytest.approx(loss(pred, target, round_trip)[0].item(), rel=1e-4)
    assert loss(pred, target, direct)[0].item() > 0.1
