"""The simulator's physics in closed form, checked against pyroomacoustics itself."""
import itertools

import numpy as np
import pyroomacoustics as pra
import pytest
import torch

from edc.acoustics import room as closed_form
from edc.acoustics.simulate import ISM_ORDER, SIMULATOR_BANDS_HZ, SPEED_OF_SOUND

pytestmark = pytest.mark.unit

ROOMS = [  # L W H, source, receiver, f1..f7 (the second clips the 16 kHz band to 0)
    [4.0, 5.5, 3.0, 1.0, 2.0, 1.5, 3.0, 4.5, 1.5, 0.21, 0.32, 0.38, 0.38, 0.36, 0.36, 0.31],
    [3.5, 4.0, 4.0, 2.5, 1.0, 1.5, 1.0, 3.0, 1.5, 0.29, 0.60, 0.85, 0.83, 0.69, 0.63, 0.30],
    [3.2, 3.7, 2.6, 0.7, 2.9, 1.1, 2.6, 0.9, 2.0, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05],
]


def shoebox(room):
    material = pra.Material(energy_absorption={"coeffs": room[9:16], "center_freqs": list(SIMULATOR_BANDS_HZ[:7])})
    box = pra.ShoeBox(room[:3], fs=48000, materials=material, max_order=ISM_ORDER, air_absorption=True)
    box.add_source(room[3:6])
    box.add_microphone(room[6:9])
    return box


@pytest.mark.parametrize("room", ROOMS)
def test_bands_and_absorption_are_those_pyroomacoustics_simulates(room):
    box = shoebox(room)
    assert list(box.octave_bands.centers) == list(SIMULATOR_BANDS_HZ)
    np.testing.assert_allclose(closed_form.AIR_ABSORPTION, box.air_absorption, rtol=1e-12)
    alpha = closed_form.band_absorption(torch.tensor(room, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(alpha, box.walls[0].absorption, atol=1e-6)


@pytest.mark.parametrize("room", ROOMS)
def test_image_sources_match_pyroomacoustics(room):
    box = shoebox(room)
    box.image_source_model()
    source = box.sources[0]
    theirs = np.linalg.norm(source.images - np.array(room[6:9])[:, None], axis=0)
    distance, order = closed_form.image_distances(torch.tensor(room, dtype=torch.float64))
    assert len(theirs) == len(distance) == 63  # 1 + 6 + 18 + 38 images up to order 3
    np.testing.assert_allclose(np.sort(distance.numpy()), np.sort(theirs), rtol=1e-6)  # pra: float32
    np.testing.assert_array_equal(np.bincount(order.numpy()), np.bincount(source.orders))
    for d, o in zip(distance.numpy(), order.numpy()):  # each image has a twin of its order (ties: any)
        assert np.any((np.abs(theirs - d) < 1e-5) & (source.orders == o))


def test_image_source_edc_sums_the_images_and_never_rises():
    raw = torch.tensor(ROOMS, dtype=torch.float64)
    ism = closed_form.image_source_edc(raw, 1000, 200)  # (3, 8, 200)
    distance, order = closed_form.image_distances(raw)
    alpha = closed_form.band_absorption(raw)
    air = torch.tensor(closed_form.AIR_ABSORPTION, dtype=raw.dtype)
    total = ((1 - alpha[:, None, :]) ** order[:, None] * torch.exp(-air * distance[..., None])
             / distance[..., None] ** 2).sum(1)
    torch.testing.assert_close(ism[..., 0], total)
    assert torch.all(ism.diff(dim=-1) <= 0)
    # order 3 arrives within (max distance - direct) / c: nothing is left after it
    last = ((distance.amax(-1) - distance.amin(-1)) / SPEED_OF_SOUND * 1000).ceil().long()
    for room, end in enumerate(last):
        assert torch.all(ism[room, :, end + 1:] == 0)


def test_fully_absorbing_walls_leave_the_direct_sound_alone():
    room = torch.tensor(ROOMS[0], dtype=torch.float64)
    room[9:16] = 1.0  # the 16 kHz band extrapolates to 1 too
    ism = closed_form.image_source_edc(room, 1000, 50)
    r = closed_form.geometry(room)[2]
    air = torch.tensor(closed_form.AIR_ABSORPTION, dtype=room.dtype)
    torch.testing.assert_close(ism[:, 0], torch.exp(-air * r) / r**2)
    assert torch.all(ism[:, 1:] == 0)


def test_reverberation_time_closed_form():
    room = torch.tensor(ROOMS[2], dtype=torch.float64)  # a = 0.05 in the 7 bands and at 16 kHz
    volume, surface = 3.2 * 3.7 * 2.6, 2 * (3.2 * 3.7 + 3.2 * 2.6 + 3.7 * 2.6)
    air = np.array(closed_form.AIR_ABSORPTION)
    sabine = 0.161 * volume / (surface * 0.05 + 4 * air * volume)  # 24 ln10 / 343 = 0.1611
    np.testing.assert_allclose(closed_form.reverberation_time(room, "sabine").numpy(), sabine, rtol=2e-3)
    assert torch.all(closed_form.reverberation_time(room, "eyring") < closed_form.reverberation_time(room, "sabine"))
    assert closed_form.BAND_ENERGY[-1] > 0.5 and sum(closed_form.BAND_ENERGY) == pytest.approx(1.0)


def test_barron_band_energy_is_direct_plus_reverberant_per_band():
    """Barron's revised theory, written out in numpy: per simulated band 1/r^2 exp(-m r) + 312 T/V
    exp(-13.82 r / (c T)) at Eyring's T, the bands' shares of a white pulse, through the octave leakage."""
    room = torch.tensor(ROOMS[2], dtype=torch.float64)  # a = 0.05 everywhere
    volume, r = 3.2 * 3.7 * 2.6, float(closed_form.geometry(room)[2])
    air, decay = np.array(closed_form.AIR_ABSORPTION), closed_form.reverberation_time(room, "eyring").numpy()
    per_band = np.exp(-air * r) / r**2 + 312.0 * decay / volume * np.exp(-13.8155 * r / (343.0 * decay))
    expected = np.array(closed_form.OCTAVE_LEAKAGE) @ (per_band * np.array(closed_form.BAND_ENERGY))
    np.testing.assert_allclose(closed_form.barron_band_energy(room).numpy(), expected, rtol=1e-4)


def _unit_pulse_per_band(box, n=16384):
    """``(8, n)`` the simulator's unit pulse at sample n // 2, one row per band filter."""
    pulse = np.zeros(n, np.float32)
    pra.libroom.rir_builder(pulse, np.array([n // 2 / box.fs], np.float32), np.ones(1, np.float32), box.fs,
                            pra.constants.get("frac_delay_length"), pra.constants.get("sinc_lut_granularity"), 1)
    return np.stack([box.octave_bands.analysis(pulse.astype(np.float64), band=b) for b in range(8)])


def test_band_coupling_is_the_filter_banks_pulse_energy():
    bands = _unit_pulse_per_band(shoebox(ROOMS[0]))
    theirs = bands @ bands.T
    ours = closed_form.band_coupling(torch.zeros(1, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(ours, theirs / theirs.sum(), rtol=2e-3, atol=2e-6)
    np.testing.assert_allclose(ours.sum(1), closed_form.BAND_ENERGY, rtol=1e-2)  # the bandwidth shares


COINCIDING = [  # images that coincide by symmetry (incoherent sums miss by 1-3 dB), and rooms off any grid
    [3.0, 3.0, 3.0, 2.0, 2.0, 1.5, 1.0, 1.0, 1.5, 0.19, 0.27, 0.33, 0.33, 0.29, 0.28, 0.13],
    [4.0, 4.0, 4.0, 2.0, 2.0, 1.0, 2.0, 2.0, 3.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
    [3.44, 3.792, 3.383, 2.0, 1.064, 1.5, 1.441, 2.357, 1.5, 0.09, 0.05, 0.04, 0.04, 0.03, 0.02, 0.01],
    ROOMS[2],
]


def _ism_edc_db(energy_per_ms):
    edc = np.cumsum(energy_per_ms[::-1])[::-1]
    return 10 * np.log10(np.maximum(edc / edc[0], 1e-12))


@pytest.mark.parametrize("room", COINCIDING)
def test_coherent_image_edc_matches_the_simulators_image_sources(room):
    box = shoebox(room)
    box.ray_tracing_active = False  # (set_ray_tracing is never called: image sources only)
    box.compute_rir()
    energy = np.asarray(box.rir[0][0], dtype=np.float64) ** 2
    energy = energy[np.argmax(energy >= energy.max() / 100):]  # onset (docs/data.md)
    theirs = _ism_edc_db(np.pad(energy, (0, 4800))[:4800].reshape(100, 48).sum(1))  # 100 ms at 1 kHz
    sample, coherent = closed_form.coherent_image_energy(torch.tensor(room, dtype=torch.float64), 1000.0)
    ours = _ism_edc_db(np.bincount(sample.numpy(), coherent.numpy(), minlength=101)[:100])
    defined = theirs > -40
    assert np.abs(ours - theirs)[defined].mean() < 0.1
    sample, per_band = closed_form.image_sources(torch.tensor(room, dtype=torch.float64), 1000.0)
    shares = torch.tensor(closed_form.BAND_ENERGY, dtype=torch.float64)
    incoherent = _ism_edc_db(np.bincount(sample.numpy(), (per_band @ shares).numpy(), minlength=101)[:100])
    if room is COINCIDING[0] or room is COINCIDING[1]:
        assert np.abs(incoherent - theirs)[defined].mean() > 0.5  # the coincidences are what matters


@pytest.mark.parametrize("room", ROOMS)
def test_specular_decay_averages_to_eyring(room):
    raw = torch.tensor(room, dtype=torch.float64)
    rates, weights = closed_form.specular_decay_rates(raw)
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-12) and torch.all(weights > 0)
    eyring = closed_form.DECAY_60_DB / closed_form.reverberation_time(raw, "eyring")  # mean wall hits S / 4V
    torch.testing.assert_close((rates * weights).sum(-1), eyring, rtol=1e-3, atol=0)


def _turned_ray_energy(dims, alpha, blend, step_s=0.005, until_s=1.0, n_rays=20_000):
    """Mean energy of rays started in random directions at random places of a shoebox ``dims`` (3,), every
    ``step_s`` up to ``until_s``, followed hit by hit as pyroomacoustics follows them: ``1 - a`` of the wall's
    absorption ``alpha`` (6,) kept at each hit, then the turn ``normalize(s L + (1 - s) R)`` by the wall's blend
    share ``blend`` (6,), ``L`` Lambertian about the wall's normal; no air."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(n_rays, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    p, rows = rng.random((n_rays, 3)) * dims, np.arange(n_rays)
    clock, energy = np.zeros(n_rays), np.ones(n_rays)
    n_steps = round(until_s / step_s) + 1
    held = np.zeros(n_steps + 1)  # energy held from each step on, as differences
    while clock.min() < until_s:
        with np.errstate(divide="ignore"):
            to_wall = np.where(u > 0, (dims - p) / u, np.where(u < 0, -p / u, np.inf))
        axis = to_wall.argmin(1)
        step, upper = to_wall[rows, axis], u[rows, axis] > 0
        arrive = clock + step / SPEED_OF_SOUND
        first, last = (np.minimum(np.ceil(x / step_s), n_steps).astype(int) for x in (clock, arrive))
        np.add.at(held, first, energy)  # the ray holds its energy at the steps in [clock, arrive)
        np.add.at(held, last, -energy)
        clock, wall = arrive, 2 * axis + upper
        energy = energy * (1.0 - alpha[wall])
        p = p + u * step[:, None]
        p[rows, axis] = np.where(upper, dims[axis], 0.0)
        u[rows, axis] *= -1.0
        u1, u2 = rng.random(n_rays), rng.random(n_rays)
        lambertian = np.zeros_like(u)
        lambertian[rows, axis] = np.where(upper, -1.0, 1.0) * np.sqrt(1.0 - u1)
        lambertian[rows, (axis + 1) % 3] = np.sqrt(u1) * np.cos(2 * np.pi * u2)
        lambertian[rows, (axis + 2) % 3] = np.sqrt(u1) * np.sin(2 * np.pi * u2)
        share = blend[wall][:, None]
        u = share * lambertian + (1.0 - share) * u
        u /= np.linalg.norm(u, axis=1, keepdims=True)
    return np.cumsum(held)[:n_steps] / n_rays


def _time_to(energy: np.ndarray, level_db: float, step_s: float) -> float:
    """When ``energy`` (every ``step_s``, 1 at 0) first falls to ``level_db`` (s, linear between steps in dB)."""
    db = 10.0 * np.log10(np.maximum(energy, 1e-30))
    k = int(np.argmax(db <= level_db))
    return step_s * (k - 1 + (db[k - 1] - level_db) / (db[k - 1] - db[k]))


@pytest.mark.parametrize("dims, alpha, blend", [
    ((10.0, 8.0, 3.0), (0.05, 0.05, 0.05, 0.05, 0.3, 0.7), (0.1, 0.1, 0.1, 0.1, 0.2, 0.9)),  # office ceiling
    ((6.0, 4.0, 3.0), (0.1,) * 6, (0.3,) * 6),
    ((14.0, 5.0, 4.0), (0.02, 0.4, 0.1, 0.05, 0.2, 0.6), (0.6, 0.05, 0.1, 0.1, 0.2, 0.05)),
    ((12.0, 9.0, 5.0), (0.03, 0.03, 0.03, 0.03, 0.03, 0.8), (0.0,) * 6),  # nothing scatters
])
def test_surfaces_late_decay_follows_turned_rays(dims, alpha, blend):
    """The late decay of the surfaces layout reaches -10 and -20 dB when rays followed hit by hit do, within
    25 % (21 % in the first room; 36 direction cells blur how slowly nearly grazing rays steepen): the rays turn
    between directions as they decay. Directions weighted as turned rays settle without absorption, their rates
    pulled towards the mean by the scattering (the prior before 2026-12-08), reached -20 dB at 0.43, 0.68 and
    0.59 of the rays' time in the first, third and fourth rooms."""
    features = torch.zeros(93, dtype=torch.float64)
    features[:9] = torch.tensor([*dims, 1.0, 1.0, 1.0, 2.0, 2.0, 1.2])
    features[9:].view(6, 14)[:, :7] = torch.tensor(alpha)[:, None]  # the same in every band
    features[9:].view(6, 14)[:, 7:] = torch.tensor(blend)[:, None]
    rates, weights = closed_form.specular_decay_rates(features)  # (8, 3) each
    rays = _turned_ray_energy(np.array(dims), np.array(alpha), np.array(blend))
    t = torch.arange(len(rays), dtype=torch.float64) * 0.005
    air = SPEED_OF_SOUND * closed_form.AIR_ABSORPTION[0]  # 125 Hz: the least air
    ours = (weights[0, :, None] * torch.exp(-(rates[0, :, None] - air) * t)).sum(0).numpy()
    assert weights.sum(-1).numpy() == pytest.approx(np.ones(8))
    for level in (-10.0, -20.0):
        assert _time_to(ours, level, 0.005) == pytest.approx(_time_to(rays, level, 0.005), rel=0.25)


@pytest.mark.parametrize("room", ROOMS)
def test_specular_decay_matches_random_rays(room):
    raw = torch.tensor(room, dtype=torch.float64)
    rates, weights = closed_form.specular_decay_rates(raw)
    rays = torch.randn(200_000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hits = (rays.abs() / rays.norm(dim=-1, keepdim=True) / raw[:3]).sum(-1)  # wall hits per metre
    wall = -torch.log1p(-closed_form.band_absorption(raw))
    air = torch.tensor(closed_form.AIR_ABSORPTION, dtype=raw.dtype)
    for t in (0.05, 0.2, 0.5):
        theirs = torch.exp(-SPEED_OF_SOUND * (wall[:, None] * hits + air[:, None]) * t).mean(-1)  # (8,)
        ours = (weights * torch.exp(-rates * t)).sum(-1)
        kept = theirs > 1e-3  # down to 30 dB, past the T20 range
        torch.testing.assert_close(ours[kept], theirs[kept], rtol=0.03, atol=0)


def test_octave_leakage_is_the_simulators_bands_through_the_octave_filters():
    """Energy of a white pulse in each simulator band (pyroomacoustics' filters) that each octave filter of
    the band curves passes (pyfar's bank): the constants the physics model uses."""
    import pyfar

    from edc.acoustics import octave_filter_bank

    taps = pra.acoustics.OctaveBandsFactory(base_frequency=125, fs=48000, n_fft=512).filters  # (n, 8)
    pulses = np.zeros((8, 48000))
    pulses[:, : len(taps)] = taps.T
    passed = octave_filter_bank(48000).process(pyfar.Signal(pulses, 48000)).time ** 2  # (7, 8, n)
    leakage = passed.sum(-1) / (pulses**2).sum(-1)
    np.testing.assert_allclose(closed_form.OCTAVE_LEAKAGE, leakage, atol=1e-4)


def test_octave_kernels_and_coherence_are_the_filters_energy_and_autocorrelation():
    kernels = closed_form.octave_energy_kernels(1000, 71).numpy()
    np.testing.assert_allclose(kernels.sum(-1), 1.0, rtol=1e-6)
    centroid = (kernels * np.arange(71)).sum(-1)  # ms: 16.7 at 125 Hz, halving per octave
    assert 15 < centroid[0] < 18 and (np.diff(centroid) < 0).all()
    coherence = closed_form.octave_filter_coherence().numpy()
    assert (coherence[:, 0] == 1).all() and (coherence[:, -1] == 0).all()
    assert abs(coherence[0, 48 * 32]) < 0.1 and abs(coherence[3, 48 * 8]) < 0.02  # 125 Hz at 32 ms, 1 kHz at 8 ms


@pytest.mark.parametrize("gradient", [False, True])  # the products in place, or (training) out of place
def test_octave_image_energy_sums_every_pair_of_images(gradient):
    """Image i's octave energy is sum_j a_i a_j rho(lag_ij), lag in samples at 48 kHz: a double loop."""
    raw = torch.tensor(ROOMS, dtype=torch.float64)
    coherence = closed_form.octave_filter_coherence().double()
    weights = torch.tensor(closed_form.BAND_ENERGY, dtype=torch.float64, requires_grad=gradient)
    _, ours = closed_form.coherent_octave_image_energy(raw, 1000.0, weights, coherence)  # (3, 7, 63)
    assert ours.requires_grad == gradient
    distance, _, energy = closed_form.image_energies(raw)
    amplitude = closed_form.octave_band_energy(energy, weights.detach()).clamp(min=1e-30).sqrt().numpy()  # (3, 63, 7)
    lag = np.rint(np.abs(distance.numpy()[:, :, None] - distance.numpy()[:, None, :]) * 48000 / SPEED_OF_SOUND)
    lag = np.minimum(lag, coherence.shape[-1] - 1).astype(int)
    expected, rho = np.zeros((3, 7, 63)), coherence.numpy()
    for r, c, i, j in itertools.product(range(3), range(7), range(63), range(63)):
        expected[r, c, i] += amplitude[r, i, c] * amplitude[r, j, c] * rho[c, lag[r, i, j]]
    np.testing.assert_allclose(ours.detach().numpy(), expected, rtol=1e-9, atol=1e-15)


def surfaces_room(seed):
    """A room with its own absorption and scattering on every surface, ``(93,)`` in the surfaces layout."""
    rng = np.random.default_rng(seed)
    per_surface = np.concatenate([rng.uniform(0.05, 0.9, (6, 7)), rng.uniform(0.0, 0.8, (6, 7))], 1)
    return np.concatenate([ROOMS[seed % 3][:9], per_surface.ravel()])


def surfaces_shoebox(features):
    per_surface = features[9:].reshape(6, 14)
    bands = list(SIMULATOR_BANDS_HZ[:7])
    materials = {name: pra.Material(energy_absorption={"coeffs": list(a), "center_freqs": bands},
                                    scattering={"coeffs": list(s), "center_freqs": bands})
                 for name, a, s in zip(("west", "east", "south", "north", "floor", "ceiling"),
                                       per_surface[:, :7], per_surface[:, 7:])}
    box = pra.ShoeBox(features[:3], fs=48000, materials=materials, max_order=ISM_ORDER, air_absorption=True,
                      ray_tracing=True)
    box.add_source(features[3:6])
    box.add_microphone(features[6:9])
    return box


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_material_per_surface_reflects_each_image_as_pyroomacoustics_does(seed):
    features = surfaces_room(seed)
    box = surfaces_shoebox(features)
    raw = torch.tensor(features, dtype=torch.float64)
    alpha, scattering = closed_form.surface_coefficients(raw)
    np.testing.assert_allclose(alpha.numpy(), [w.absorption for w in box.walls], atol=1e-6)
    np.testing.assert_allclose(scattering.numpy(), [w.scatter for w in box.walls], atol=1e-6)
    box.image_source_model()
    source = box.sources[0]
    reflection = closed_form.image_reflection(raw).numpy()  # (63, 8)
    distance, _ = closed_form.image_distances(raw)
    theirs = np.linalg.norm(source.images - features[6:9, None], axis=0)
    for k, d in enumerate(distance.numpy()):  # pra's damping is the pressure factor: its square, the energy's
        twins = np.flatnonzero(np.abs(theirs - d) < 1e-5)
        assert any(np.allclose(reflection[k], source.damping[:, j] ** 2, atol=1e-6) for j in twins)


def on_the_surfaces_directions(monkeypatch) -> None:
    """The paper layout's quadrature over the surfaces layout's directions, the same for every order of the axes
    (the paper's layout keeps its 128 Fibonacci directions, so that its benchmark stays as measured; the two
    sets' 3-node quadratures differ by up to 2 dB in a curve)."""
    fibonacci, symmetric = closed_form._sphere_directions, closed_form._symmetric_directions(128, torch.zeros(1))
    monkeypatch.setattr(closed_form, "_sphere_directions",
                        lambda n, like: symmetric.to(like) if n == 128 else fibonacci(n, like))


def surfaces_copy(paper: torch.Tensor) -> torch.Tensor:
    """The surfaces layout ``(n, 93)`` of 16-column rooms ``(n, 16)``: their material on every surface, no
    scattering."""
    per_surface = torch.cat([paper[:, None, 9:16].expand(-1, 6, -1), torch.zeros_like(paper[:, None, :7]).expand(
        -1, 6, -1)], -1)
    return torch.cat([paper[:, :9], per_surface.flatten(1)], -1)


def with_the_surfaces_late_decay(monkeypatch) -> None:
    """The paper layout's late decay as the surfaces layout's of its surfaces copy (its own keeps 128 Fibonacci
    directions and a quadrature in the rates, so that its benchmarks stay as measured: up to 1.4 dB apart)."""
    surfaces_late = closed_form.specular_decay_rates
    monkeypatch.setattr(closed_form, "specular_decay_rates", lambda raw, n_nodes=3: surfaces_late(
        surfaces_copy(raw) if raw.shape[-1] == 16 else raw, n_nodes))


def test_one_material_everywhere_gives_the_papers_physics(monkeypatch):
    on_the_surfaces_directions(monkeypatch)
    paper = torch.tensor(ROOMS, dtype=torch.float64)
    surfaces = surfaces_copy(paper)
    torch.testing.assert_close(closed_form.band_absorption(surfaces), closed_form.band_absorption(paper))
    torch.testing.assert_close(closed_form.reverberation_time(surfaces), closed_form.reverberation_time(paper))
    for paper_part, surfaces_part in zip(closed_form.image_sources(paper, 1000.0),
                                         closed_form.image_sources(surfaces, 1000.0)):
        torch.testing.assert_close(surfaces_part, paper_part)
    # nothing scatters, so no ray turns: the late decay is the mean over the directions of each one's decay
    hits = (closed_form._symmetric_directions(128, paper) / paper[:, None, 0:3]).sum(-1)  # (3, n) per metre
    wall = -torch.log1p(-closed_form.band_absorption(paper))  # (3, 8)
    air = torch.tensor(closed_form.AIR_ABSORPTION, dtype=paper.dtype)[:, None]
    t = torch.linspace(0.0, 2.0, 201, dtype=paper.dtype)
    exact = torch.exp(-SPEED_OF_SOUND * (wall[..., None] * hits[:, None, :] + air)[..., None] * t).mean(-2)
    rates, weights = closed_form.specular_decay_rates(surfaces)
    decay = (weights[..., None] * torch.exp(-rates[..., None] * t)).sum(-2)  # (3, 8, 201)
    above = exact > 1e-6  # down to -60 dB
    assert (10.0 * torch.log10(decay / exact))[above].abs().max() < 0.05  # dB
    paper_rates, paper_weights = closed_form.specular_decay_rates(paper)  # its quadrature in the rates: 1.4 dB
    paper_decay = (paper_weights[:, None, :, None] * torch.exp(-paper_rates[..., None] * t)).sum(-2)
    assert (10.0 * torch.log10(paper_decay / exact))[above].abs().max() < 1.5
