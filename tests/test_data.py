"""edc.data: both layouts, resampling, the cache, the fingerprint and every validation."""
import numpy as np
import pandas as pd
import pytest

from edc.data import FEATURES, load_compact, load_folder, read_features, write_compact
from edc.data.splits import split_rows
from edc.errors import EdcInputError

pytestmark = pytest.mark.unit

GOOD = [3.5, 4.0, 3.0, 1.4, 2.0, 1.5, 1.0, 1.0, 1.5, 0.2, 0.3, 0.5, 0.6, 0.6, 0.6, 0.6]


def features_frame(n=3):
    return pd.DataFrame([[f"r{i}", *GOOD] for i in range(n)], columns=["ID"] + FEATURES)


def exponential_edcs(n, n_samples, fs, t60=0.5):
    t = np.arange(n_samples) / fs
    return np.tile(np.exp(-13.8 * t / t60), (n, 1)).astype(np.float32)


def write_csv(tmp_path, frame, name="features.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def mutate(column, value, row=1):
    def apply(frame):
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame
    return apply


BAD_FEATURES = {
    "missing column": (lambda f: f.drop(columns=["f7"]), "missing columns ['f7']"),
    "extra column": (lambda f: f.assign(colour="red"), "unexpected columns ['colour']"),
    "NaN": (mutate("Height", np.nan), "NaN"),
    "text in a number": (mutate("f3", "abc"), "text in number column 'f3'"),
    "zero dimension": (mutate("Width", 0.0), "non-positive room dimensions"),
    "negative dimension": (mutate("Length", -3.0), "non-positive room dimensions"),
    "source outside": (mutate("Source_X", 9.0), "source outside the room"),
    "receiver outside": (mutate("Receiver_Z", 3.5), "receiver outside the room"),
    "source on receiver": (lambda f: f.assign(Receiver_X=1.4, Receiver_Y=2.0), "same point"),
    "absorption 0": (mutate("f1", 0.0), "absorption coefficients"),
    "absorption above 1": (mutate("f2", 1.2), "absorption coefficients"),
    "duplicate IDs": (mutate("ID", "r0"), "duplicate IDs"),
    "empty seed": (lambda f: mutate("seed", np.nan)(f.assign(seed=range(len(f)))), "seed that is empty"),
    "fractional seed": (lambda f: mutate("seed", 2.5)(f.assign(seed=range(len(f)))), "not an integer"),
}


@pytest.mark.parametrize("case", sorted(BAD_FEATURES))
def test_bad_features_csv_is_named_and_explained(tmp_path, case):
    change, expected = BAD_FEATURES[case]
    path = write_csv(tmp_path, change(features_frame()))
    with pytest.raises(EdcInputError) as err:
        read_features(path)
    message = str(err.value)
    assert str(path) in message and expected in message and "Fix:" in message
    if case not in ("missing column", "extra column", "source on receiver"):
        assert "line 3" in message  # row 1 is on CSV line 3


@pytest.mark.parametrize("text,expected", [("", "empty"), ("ID," + ",".join(FEATURES) + "\n", "no rooms")])
def test_empty_and_header_only_csv(tmp_path, text, expected):
    path = tmp_path / "features.csv"
    path.write_text(text)
    with pytest.raises(EdcInputError, match=expected):
        read_features(path)


def test_many_bad_rows_are_summarised(tmp_path):
    frame = features_frame(12)
    frame["f1"] = 2.0
    with pytest.raises(EdcInputError, match=r"12 row\(s\).*and 7 more; 12 in all"):
        read_features(write_csv(tmp_path, frame))


def compact(tmp_path, edcs, meta=None, n=3):
    write_compact(tmp_path, features_frame(n), meta or {"edc_fs": 1000}, edcs)
    return tmp_path


BAD_CURVES = {
    "NaN": (lambda e: e.__setitem__((1, 5), np.nan), "NaN or infinite"),
    "increasing": (lambda e: e.__setitem__((2, 50), 0.99), "increasing curve"),
    "dB values": (lambda e: e.__setitem__(slice(None), -np.linspace(0, 60, e.shape[1])), "negative values"),
    "not starting at 1": (lambda e: e.__setitem__(slice(None), e * 0.5), "not starting at 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_CURVES))
def test_bad_curves(tmp_path, case):
    edcs = exponential_edcs(3, 2000, 1000)
    change, expected = BAD_CURVES[case]
    change(edcs)
    with pytest.raises(EdcInputError, match=expected) as err:
        load_compact(compact(tmp_path, edcs))
    assert "edcs.npy" in str(err.value)


def test_compact_problems(tmp_path):
    with pytest.raises(EdcInputError, match="3 curves but 4 rooms"):
        load_compact(compact(tmp_path / "a", exponential_edcs(3, 2000, 1000), n=4))
    root = compact(tmp_path / "b", exponential_edcs(3, 2000, 1000))
    np.save(root / "edcs.npy", np.ones((3, 2000), np.int32))
    with pytest.raises(EdcInputError, match="dtype int"):
        load_compact(root)
    root = compact(tmp_path / "c", exponential_edcs(3, 2000, 1000))
    (root / "meta.json").unlink()
    with pytest.raises(EdcInputError, match="meta.json: missing"):
        load_compact(root)
    (root / "meta.json").write_text('{"made_by": "me"}')
    with pytest.raises(EdcInputError, match="edc_fs"):
        load_compact(root)
    with pytest.raises(EdcInputError, match="not found.*edc.generate"):
        load_compact(tmp_path / "nowhere")


def on_grid(data, fs, duration):
    """The broadband curves of every room on the grid."""
    return data.curves(np.arange(len(data)), fs, duration, bands=False)[:, 0]


def test_resampling_takes_the_grid_values_and_checks_rates(tmp_path):
    edcs = exponential_edcs(3, 96000, 48000)
    data = load_compact(compact(tmp_path, edcs, {"edc_fs": 48000}))
    grid = on_grid(data, 1000, 2.0)
    assert grid.shape == (3, 2000)
    np.testing.assert_array_equal(grid, edcs[:, ::48])
    assert on_grid(data, 48000, 2.0).shape == (3, 96000)
    with pytest.raises(EdcInputError, match="does not divide"):
        on_grid(data, 7000, 2.0)
    with pytest.raises(EdcInputError, match="duration"):
        on_grid(data, 1000, 3.0)


def test_folder_layout_pads_cuts_caches_and_validates(tmp_path):
    frame = features_frame(3)
    csv = write_csv(tmp_path, frame)
    folder = tmp_path / "edcs"
    folder.mkdir()
    lengths = [50000, 96000, 120000]
    for room_id, n in zip(frame.ID, lengths):
        np.save(folder / f"{room_id}.npy", exponential_edcs(1, n, 48000)[0])
    data = load_folder(csv, folder, source_fs=48000, duration=2.0, cache_dir=tmp_path / "cache")
    assert data.edcs.shape == (3, 96000)
    assert (data.edcs[0, 50000:] == 0).all() and data.edcs[0, 49999] > 0  # zero-padded
    np.testing.assert_array_equal(data.edcs[2], exponential_edcs(1, 96000, 48000)[0])  # cut
    assert len(list((tmp_path / "cache").glob("edcs-*.npy"))) == 1
    again = load_folder(csv, folder, source_fs=48000, duration=2.0, cache_dir=tmp_path / "cache")
    assert again.fingerprint() == data.fingerprint()
    assert isinstance(again.edcs, np.memmap)


@pytest.mark.parametrize("case,expected", [("missing", "missing"), ("wrong dtype", "dtype"),
                                           ("2-D", "1-D EDC"), ("garbage", "unreadable"),
                                           ("increasing", "increasing")])
def test_folder_file_problems_name_the_file(tmp_path, case, expected):
    frame = features_frame(2)
    csv = write_csv(tmp_path, frame)
    folder = tmp_path / "edcs"
    folder.mkdir()
    np.save(folder / "r0.npy", exponential_edcs(1, 2000, 1000)[0])
    bad = folder / "r1.npy"
    if case == "wrong dtype":
        np.save(bad, np.ones(2000, np.int64))
    elif case == "2-D":
        np.save(bad, np.ones((2, 2000)))
    elif case == "garbage":
        bad.write_bytes(b"not numpy")
    elif case == "increasing":
        np.save(bad, np.linspace(1, 2, 2000))
    with pytest.raises(EdcInputError, match=expected) as err:
        load_folder(csv, folder, source_fs=1000, duration=2.0, cache_dir=tmp_path / "cache")
    assert "r1" in str(err.value)
    assert not list((tmp_path / "cache").glob("*")), "nothing half-written"


def test_fingerprint_changes_with_the_curves(tmp_path):
    edcs = exponential_edcs(3, 2000, 1000)
    first = load_compact(compact(tmp_path / "a", edcs)).fingerprint()
    edcs[1, 100:] *= 0.5
    assert load_compact(compact(tmp_path / "b", edcs)).fingerprint() != first


def test_splits_are_disjoint_and_configuration_split_keeps_groups(demo):
    for split_by in ("rows", "configuration"):
        parts = split_rows(demo, 42, split_by)
        joined = np.concatenate(list(parts.values()))
        assert sorted(joined) == list(range(len(demo)))
    parts = split_rows(demo, 42, "rows")
    assert [len(p) for p in parts.values()] == [240, 80, 80]
    np.testing.assert_array_equal(parts["train"], np.random.default_rng(42).permutation(400)[:240])
    features = pd.concat([demo.features.iloc[:50]] * 4, ignore_index=True)  # 50 configurations x 4
    from edc.data import RoomDataset

    grouped = RoomDataset(features.ID.to_numpy(), features, np.zeros((200, 2)), 1000, "test")
    key = features[FEATURES[:9]].astype(str).agg(",".join, axis=1)
    parts = split_rows(grouped, 42, "configuration")
    seen = [set(key.iloc[p]) for p in parts.values()]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])


def band_curves(n=3, n_samples=2000, fs=1000):
    """``(n, 7, n_samples)`` exponential decays, one T per band."""
    t = np.arange(n_samples) / fs
    return np.stack([[np.exp(-13.8 * t / (0.3 + 0.1 * b)) for b in range(7)] for _ in range(n)]).astype(np.float32)


BAD_BANDS = {  # name: (change to (n, 7, n) band curves, expected text)
    "NaN at 500 Hz": (lambda e: e.__setitem__((1, 2, 5), np.nan), "NaN or infinite values in 1 curve(s): r1 (500 Hz band)"),
    "increasing at 8 kHz": (lambda e: e.__setitem__((2, 6, 50), 0.99), "r2 (8000 Hz band)"),
    "not starting at 1 at 125 Hz": (lambda e: e.__setitem__((0, 0), e[0, 0] * 0.5), "r0 (125 Hz band)"),
    "6 bands": (lambda e: None, "(n_rooms, 7, n_samples)"),
}


@pytest.mark.parametrize("case", sorted(BAD_BANDS))
def test_bad_band_curves_name_the_room_and_band(tmp_path, case):
    bands = band_curves()
    change, expected = BAD_BANDS[case]
    change(bands)
    if case == "6 bands":
        bands = bands[:, :6]
    write_compact(tmp_path, features_frame(3), {"edc_fs": 1000}, exponential_edcs(3, 2000, 1000), bands)
    with pytest.raises(EdcInputError) as err:
        load_compact(tmp_path)
    assert expected in str(err.value) and "band_edcs.npy" in str(err.value) and "Fix:" in str(err.value)


def test_band_order_and_length_are_checked(tmp_path):
    write_compact(tmp_path, features_frame(3), {"edc_fs": 1000, "bands_hz": [8000, 4000, 2000, 1000, 500, 250, 125]},
                  exponential_edcs(3, 2000, 1000), band_curves())
    with pytest.raises(EdcInputError, match="bands_hz"):
        load_compact(tmp_path)
    write_compact(tmp_path, features_frame(3), {"edc_fs": 1000}, exponential_edcs(3, 2000, 1000), band_curves(n_samples=1000))
    with pytest.raises(EdcInputError, match="1000 samples per curve but edcs.npy has 2000"):
        load_compact(tmp_path)


def test_band_curves_on_the_grid_broadband_first(tmp_path):
    edcs, bands = exponential_edcs(3, 2000, 1000), band_curves()
    write_compact(tmp_path, features_frame(3), {"edc_fs": 1000}, edcs, bands)
    data = load_compact(tmp_path)
    assert data.has_bands and isinstance(data.band_edcs, np.memmap)
    curves = data.curves([2, 0], 500, 1.0, bands=True)
    assert curves.shape == (2, 8, 500)
    np.testing.assert_array_equal(curves[0, 0], edcs[2, :1000:2])
    np.testing.assert_array_equal(curves[1, 1:], bands[0, :, :1000:2])


def test_folder_layout_with_band_files(tmp_path):
    frame, edcs, bands = features_frame(3), exponential_edcs(3, 2000, 1000), band_curves()
    write_csv(tmp_path, frame)
    for name, folder, curves in (("broadband", "edcs", edcs), ("bands", "bands", bands)):
        (tmp_path / folder).mkdir()
        for room_id, curve in zip(frame.ID, curves):
            np.save(tmp_path / folder / f"{room_id}.npy", curve)
    data = load_folder(tmp_path / "features.csv", tmp_path / "edcs", 1000, 2.0, band_edc_dir=tmp_path / "bands")
    np.testing.assert_array_equal(data.band_edcs, bands)
    np.save(tmp_path / "bands" / f"{frame.ID[1]}.npy", bands[1, :6])
    with pytest.raises(EdcInputError, match=r"expected \(7, n\): one row per octave band"):
        load_folder(tmp_path / "features.csv", tmp_path / "edcs", 1000, 2.0, band_edc_dir=tmp_path / "bands",
                    cache_dir=tmp_path / "cache2")


def test_the_demo_rooms_ship_their_bands(demo):
    assert demo.has_bands and demo.band_edcs.shape == (400, 7, 2000) and demo.edcs.shape == (400, 2000)
    level = 10 * np.log10(demo.band_edcs)
    assert (level[..., 0] == 0).all() and (np.diff(level, axis=-1) <= 0).all()
