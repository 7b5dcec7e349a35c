"""Configs compose, every model / loss / precision trains, run dirs, evaluate, predict, API."""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import edc
from edc import acoustics
from edc.cli.evaluate import evaluate
from edc.cli.predict import predict
from edc.cli.train import train
from edc.errors import EdcInputError
from edc.runs import compare

from .conftest import ROOT

CONF = ROOT / "conf"
OPTIONS = {group: sorted(p.stem for p in (CONF / group).glob("*.yaml"))
           for group in ("data", "model", "loss", "weights", "precision", "trainer", "callbacks", "logger",
                         "debug", "experiment", "targets")}


def make_cfg(*overrides, data_path=None):
    if data_path is not None:
        overrides = ("data=compact", f"data.path={data_path}", *overrides)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def tiny(small_compact, *overrides):
    """One CPU epoch on 60 rooms, quiet."""
    return make_cfg("trainer=cpu", "trainer.max_epochs=1", "~callbacks.progress_bar", "data.batch_size=16",
                    *overrides, data_path=small_compact)


@pytest.mark.unit
def test_every_class_the_shipped_configs_name_may_be_built_from_a_file():
    """A resumed run's config.yaml is checked against BUILDABLE: every shipped `_target_` must be there."""
    from edc.cli.config import BUILDABLE

    named = {line.split("_target_:")[1].split("#")[0].strip() for f in CONF.rglob("*.yaml")
             for line in f.read_text().splitlines() if "_target_:" in line}
    assert named and named <= BUILDABLE, named - BUILDABLE


@pytest.mark.unit
@pytest.mark.parametrize("group,option", [(g, o) for g, opts in OPTIONS.items() for o in opts])
def test_every_shipped_option_composes(group, option):
    cfg = make_cfg(f"{group}={option}")
    OmegaConf.to_container(cfg, resolve=True)
    text = (CONF / group / f"{option}.yaml").read_text().splitlines()
    first = 1 if text[0].startswith("# @package") else 0
    assert text[first].startswith("#") and "python -m edc." in "\n".join(text[: first + 3]), \
        "each YAML carries the command that runs it, after any @package line"


@pytest.mark.unit
@pytest.mark.parametrize("launcher", sorted(p.stem for p in (CONF / "hydra" / "launcher").glob("*.yaml")))
def test_every_launcher_composes(launcher):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra/launcher={launcher}", "trainer=ddp", "trainer.devices=4"],
                      return_hydra_config=True)
    settings = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert settings["_target_"].startswith("hydra_plugins.hydra_submitit_launcher")
    if launcher == "slurm_gpu":  # one task per device
        assert settings["tasks_per_node"] == 4 and settings["gpus_per_node"] >= 1


def loss_section(*overrides):
    return OmegaConf.to_container(make_cfg(*overrides).loss)


@pytest.mark.unit
@pytest.mark.parametrize("preset,weights", [("conservative", (1.5, 2.5, 2.0)), ("moderate", (1.5, 3.0, 2.5)),
                                            ("aggressive", (1.5, 4.0, 3.5))])
def test_presets_resolve_to_their_weights(preset, weights):
    loss = loss_section(f"loss={preset}")
    assert (loss["edt_weight"], loss["t20_weight"], loss["c50_weight"]) == weights
    assert loss == loss_section("loss=weighted_edc", f"weights={preset}")


@pytest.mark.unit
def test_one_weight_overrides_and_defaults():
    loss = loss_section("loss=weighted_edc", "loss.t20_weight=3.0")
    assert (loss["edt_weight"], loss["t20_weight"], loss["c50_weight"]) == (1.5, 3.0, 1.5)
    assert loss_section("loss=moderate", "loss.t20_weight=5.0")["t20_weight"] == 5.0


@pytest.mark.integration
def test_cli_prints_the_same_loss_section_for_preset_and_weights():
    def job(*args):
        out = subprocess.run([sys.executable, "-m", "edc.train", "--cfg", "job", "--package", "loss", *args],
                             capture_output=True, text=True, cwd=ROOT, check=True).stdout
        return out
    preset = job("loss=moderate")
    assert "t20_weight: 3.0" in preset and preset == job("loss=weighted_edc", "weights=moderate")


@pytest.mark.integration
def test_weights_on_a_loss_without_regions_are_refused(small_compact, tmp_path):
    with pytest.raises(EdcInputError, match="no region weights"):
        train(tiny(small_compact, "loss=mse", "weights=moderate"), tmp_path)


@pytest.mark.integration
@pytest.mark.parametrize("model", OPTIONS["model"])
def test_each_model_trains_one_epoch(small_compact, tmp_path, model):
    result = train(tiny(small_compact, f"model={model}", "loss=mse"), tmp_path)
    assert result["status"] == "completed"
    assert np.load(tmp_path / "predictions.npy").shape == (12, 1, 2000)  # these 60 rooms have no bands


@pytest.mark.integration
@pytest.mark.parametrize("loss", [o for o in OPTIONS["loss"] if o not in ("conservative", "moderate")])
def test_each_loss_trains_one_epoch(small_compact, tmp_path, loss):
    result = train(tiny(small_compact, "model=mlp", f"loss={loss}"), tmp_path)
    assert result["status"] == "completed" and np.isfinite(result["edc_mae"])
    meta = json.loads((tmp_path / "metadata.json").read_text())
    presets = ("conservative", "moderate", "aggressive")
    assert meta["loss_config"]["type"] == ("weighted_edc" if loss in presets else loss)


@pytest.mark.parametrize("precision,actual", [("32-true", "32-true"), ("bf16-mixed", "bf16-mixed"),
                                              ("16-mixed", "32-true")])
@pytest.mark.integration
def test_precisions_on_cpu(small_compact, tmp_path, precision, actual):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(tiny(small_compact, "model=mlp", f"precision={precision}"), tmp_path)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["precision_config"] == {"asked": precision, "actual": actual}
    fell_back = [w for w in caught if "needs a CUDA GPU" in str(w.message)]
    assert len(fell_back) == (1 if precision != actual else 0)


@pytest.fixture(scope="module")
def trained_run(small_compact, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    cfg = tiny(small_compact, "trainer.max_epochs=3")
    metrics = train(cfg, run_dir)
    return run_dir, metrics


@pytest.mark.integration
def test_run_dir_holds_everything(trained_run):
    run_dir, metrics = trained_run
    for name in ("metadata.json", "metrics.json", "config.yaml", "splits.json", "predictions.npy", "targets.npy",
                 "test_ids.txt", "edc_overlay.png", "parameters.png", "checkpoints/best.ckpt",
                 "checkpoints/last.ckpt", "logs/metrics.csv"):
        assert (run_dir / name).is_file(), name
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "completed" and meta["model"] == "physics" and meta["parameter_count"] > 0
    assert meta["training_config"]["actual_epochs"] == 3 and meta["training_config"]["max_epochs"] == 3
    assert len(meta["dataset_fingerprint"]) == 16 and meta["versions"]["torch"].startswith("2.13")
    saved = json.loads((run_dir / "metrics.json").read_text())
    for key in ("edc_mae", "edc_rmse", "edc_r2", "edc_db_mae", "edt_mae", "t20_rmse", "c50_r2", "t20_n_undefined"):
        assert key in saved
    splits = json.loads((run_dir / "splits.json").read_text())
    assert [len(splits[k]) for k in ("train", "val", "test")] == [36, 12, 12]
    assert (run_dir / "test_ids.txt").read_text().split() == splits["test"]
    assert np.load(run_dir / "targets.npy").max() <= 1.0  # unscaled linear EDCs


@pytest.mark.integration
def test_evaluate_reproduces_train_metrics(trained_run, tmp_path):
    run_dir, metrics = trained_run
    again = evaluate(run_dir / "checkpoints" / "best.ckpt", None, "test", tmp_path)
    for key in ("edt_mae", "t20_mae", "c50_mae", "edc_db_mae"):
        assert again[key] == pytest.approx(metrics[key], rel=1e-5), key
    every = evaluate(run_dir / "checkpoints" / "best.ckpt", None, "all", tmp_path / "all")
    assert every["n_rooms"] == 60


@pytest.mark.integration
def test_evaluate_all_scores_every_room_of_a_subsampled_run(small_compact, tmp_path, capsys):
    """... and warns that 24 of them (80 % of the 30 the run used) are its own training and validation rooms;
    its test split gets no warning."""
    train(tiny(small_compact, "model=mlp", "loss=mse", "data.max_samples=30"), tmp_path / "run")
    capsys.readouterr()
    every = evaluate(tmp_path / "run" / "checkpoints" / "best.ckpt", None, "all", tmp_path / "all")
    assert every["n_rooms"] == 60, "subset=all means every row, whatever the training run subsampled"
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    seen = len(splits["train"]) + len(splits["val"])
    assert f"warning: {seen} of the 60 rooms scored are ones this model was trained or validated on" in capsys.readouterr().err
    evaluate(tmp_path / "run" / "checkpoints" / "best.ckpt", None, "test", tmp_path / "test")
    assert "trained or validated on" not in capsys.readouterr().err


@pytest.mark.integration
def test_evaluate_never_writes_over_the_training_run(trained_run, tmp_path):
    run_dir, _ = trained_run
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and ".hydra" not in p.parts}
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    command = [sys.executable, "-m", "edc.evaluate", f"ckpt_path={ckpt}", "subset=all"]
    ran = subprocess.run([*command, f"hydra.run.dir={tmp_path / 'eval'}"], capture_output=True, text=True, cwd=ROOT)
    assert ran.returncode == 0 and (tmp_path / "eval" / "metrics.json").is_file(), ran.stderr[-2000:]
    refused = subprocess.run([*command, f"hydra.run.dir={run_dir}"], capture_output=True, text=True, cwd=ROOT)
    assert refused.returncode == 2 and "holds a training run" in refused.stderr
    assert {p: p.read_bytes() for p in before} == before, "evaluate changed a file of the training run"
    added = {p for p in run_dir.rglob("*") if p.is_file() and ".hydra" not in p.parts} - set(before)
    assert {p.name for p in added} <= {"evaluate.log"}, "only Hydra's own log of the refused command"


HAND_MADE = [4.0, 5.0, 3.0, 1.5, 2.0, 1.5, 2.5, 3.5, 1.5, 0.2, 0.3, 0.5, 0.6, 0.6, 0.6, 0.3]


@pytest.mark.integration
def test_evaluate_on_shorter_curves_gives_advice_that_works(trained_run, demo, tmp_path):
    """Curves of 1 s against a checkpoint of 2 s: the advice is about the data (the checkpoint's grid is
    fixed), not data.duration, which evaluate ignores."""
    from edc.data import write_compact

    short = tmp_path / "short"
    write_compact(short, demo.features.iloc[:20], {"edc_fs": demo.edc_fs}, np.asarray(demo.edcs[:20, :1000]))
    data = OmegaConf.create({"path": str(short)})
    with pytest.raises(EdcInputError, match="predicts curves of 2 s at 1000 Hz") as raised:
        evaluate(trained_run[0] / "checkpoints" / "best.ckpt", data, "all", tmp_path / "eval")
    assert "set data.duration" not in str(raised.value) and "simulation.duration=2" in str(raised.value)


@pytest.mark.integration
def test_evaluate_builds_no_class_a_checkpoint_was_edited_to_name(trained_run, tmp_path):
    checkpoint = torch.load(trained_run[0] / "checkpoints" / "best.ckpt", weights_only=True)
    checkpoint["edc_config"]["data"]["_target_"] = "edc.io.write_text"
    torch.save(checkpoint, tmp_path / "edited.ckpt")
    with pytest.raises(EdcInputError, match="data._target_=edc.io.write_text is not a class edc builds"):
        evaluate(tmp_path / "edited.ckpt", None, "test", tmp_path / "eval")
    assert not (tmp_path / "eval").exists()


@pytest.mark.integration
def test_predict_cli_function_and_api_agree(trained_run, tmp_path):
    run_dir, _ = trained_run
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    table = predict(ckpt, tmp_path / "one.csv", room=HAND_MADE)
    written = pd.read_csv(tmp_path / "one.csv")
    assert list(written.columns) == ["ID", "EDT", "T20", "T30", "C50", "C80", "D50"]
    assert written.ID[0] == "room"
    curves = np.load(tmp_path / "one.npy")
    assert curves.shape == (1, 1, 2000) and curves[0, 0, 0] == pytest.approx(1.0)
    assert (np.diff(curves[0, 0]) <= 0).all(), "the physics model's EDC never rises"
    edcs, params = edc.load(ckpt).predict(pd.DataFrame([HAND_MADE], columns=edc.data.FEATURES))
    np.testing.assert_allclose(edcs, curves, rtol=1e-6)
    np.testing.assert_allclose(params["T20"], table["T20"], rtol=1e-6)
    # Plausible physics: T20 of a 60 m3 room with absorption ~0.45 is a few tenths of a second.
    assert 0.05 < params["T20"][0] < 1.5


@pytest.mark.integration
def test_predict_warns_about_rooms_outside_the_training_ranges(trained_run, tmp_path, capsys):
    ckpt = trained_run[0] / "checkpoints" / "best.ckpt"
    predictor = edc.load(ckpt)
    ranges = predictor.config["feature_ranges"]
    inside = pd.DataFrame([[(lo + hi) / 2 for lo, hi in ranges.values()]], columns=list(ranges))
    wide = inside.assign(Length=ranges["Length"][1] * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor.predict(inside)  # no warning
    with pytest.warns(UserWarning, match=r"1 of 1 rooms lie outside .*: Length 1x \(trained on"):
        predictor.predict(wide)
    predict(ckpt, tmp_path / "wide.csv", room=wide.iloc[0].tolist())
    assert "warning: 1 of 1 rooms lie outside" in capsys.readouterr().err


@pytest.mark.integration
def test_predict_writes_its_outputs_and_nothing_else(trained_run, tmp_path):
    ckpt = trained_run[0] / "checkpoints" / "best.ckpt"
    room = "room=[" + ",".join(map(str, HAND_MADE)) + "]"
    command = [sys.executable, "-m", "edc.predict", f"ckpt_path={ckpt}", room]
    result = subprocess.run([*command, "out=one.csv"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.csv", "one.npy"], "no run dir, no log"
    assert "wrote" in result.stdout and "one.csv" in result.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = subprocess.run([*command[:-1], "room=[1,2]", "out=x.csv"], capture_output=True, text=True, cwd=empty)
    assert refused.returncode == 2 and empty.is_dir() and not list(empty.iterdir()), "a refusal leaves the dir as it was"


@pytest.mark.integration
@pytest.mark.slow  # five processes, 20 s
def test_predict_composed_once_answers_as_hydra_main_does(trained_run, tmp_path):
    """`python -m edc.predict` composes its config once (Hydra's compose API); `@hydra.main`, which keeps
    Hydra's flags, writes the same table, and overrides Hydra refuses get Hydra's own message."""
    ckpt = trained_run[0] / "checkpoints" / "best.ckpt"
    room = "room=[" + ",".join(map(str, HAND_MADE)) + "]"
    hydra_main = [sys.executable, "-c", "from edc.cli.entry import entrypoint; from edc.cli.predict import main; "
                  "entrypoint(main)()"]
    once = [sys.executable, "-m", "edc.predict"]
    for name, command in (("once", once), ("main", hydra_main)):
        result = subprocess.run([*command, f"ckpt_path={ckpt}", room, f"out={name}.csv"], capture_output=True,
                                text=True, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "once.csv").read_text() == (tmp_path / "main.csv").read_text()
    shown = subprocess.run([*once, "--cfg", "job", f"ckpt_path={ckpt}"], capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 0 and f"ckpt_path: {ckpt}" in shown.stdout
    unknown = subprocess.run([*once, "nope=1"], capture_output=True, text=True, cwd=tmp_path)
    assert unknown.returncode == 2 and "Could not override 'nope'" in unknown.stderr


@pytest.mark.integration
def test_predict_rejects_bad_rooms(trained_run, tmp_path):
    ckpt = trained_run[0] / "checkpoints" / "best.ckpt"
    with pytest.raises(EdcInputError, match="16 numbers"):
        predict(ckpt, tmp_path / "x.csv", room=HAND_MADE[:5])
    with pytest.raises(EdcInputError, match="not numbers"):
        predict(ckpt, tmp_path / "x.csv", room=HAND_MADE[:15] + ["lots"])
    outside = HAND_MADE.copy()
    outside[3] = 9.0
    with pytest.raises(EdcInputError, match="source outside"):
        predict(ckpt, tmp_path / "x.csv", room=outside)
    assert not list(tmp_path.glob("x*"))


@pytest.mark.integration
def test_main_job_cli_end_to_end(tmp_path):
    """`python -m edc.train` on the demo data (shortened), with its metrics table."""
    result = subprocess.run([sys.executable, "-m", "edc.train", "trainer.max_epochs=2", "~callbacks.progress_bar",
                             f"hydra.run.dir={tmp_path}/run"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test metrics" in result.stdout and "T20" in result.stdout
    assert json.loads(Path(tmp_path, "run", "metadata.json").read_text())["status"] == "completed"
    for noise in ("litlogger", "LeafSpec"):  # Lightning's advertisement and its own deprecation warning
        assert noise not in result.stdout + result.stderr, noise


@pytest.mark.integration
def test_weight_averaging_checkpoints_and_predicts_with_the_average(small_compact, tmp_path):
    """The best experiment keeps an EMA of the weights; its checkpoints hold the average, and the model
    loaded for prediction is that average, not the last step's weights."""
    ema = make_cfg("experiment=paper6000_best").callbacks.ema
    assert ema._target_ == "pytorch_lightning.callbacks.EMAWeightAveraging" and 0.99 < ema.decay < 1.0
    train(tiny(small_compact, "trainer.max_epochs=2", f"+callbacks.ema._target_={ema._target_}",
               "+callbacks.ema.decay=0.5"), tmp_path)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    average, current = ckpt["state_dict"], ckpt["current_model_state"]
    name = next(k for k in average if k.endswith("band_net.0.weight"))
    assert not torch.allclose(average[name], current[name])  # 6 steps of decay 0.5: the average lags
    loaded = edc.load(tmp_path / "checkpoints" / "last.ckpt").surrogate.state_dict()
    for key, value in average.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, equal_nan=True, msg=key)


FIXTURES = ROOT / "tests" / "fixtures"


@pytest.mark.integration
@pytest.mark.parametrize("name", ["mlp", "physics"])
def test_checkpoints_written_before_the_layers_still_load(name):
    """Checkpoints of the flat package (edc 0.1, commit b33f860) name classes at their old paths and keep
    the scalers under data.: they load and predict the curves that code predicted (exactly; the physics
    model within 0.02 dB, as it now computes its late part every 16th sample, docs/model.md#speed)."""
    rooms = pd.read_csv(FIXTURES / "rooms5.csv")
    edcs, _ = edc.load(FIXTURES / f"{name}-before-layers.ckpt").predict(rooms)
    expected = np.load(FIXTURES / f"{name}-before-layers-edcs.npy")
    if name == "physics":
        np.testing.assert_allclose(10 * np.log10(edcs[:, 0]), 10 * np.log10(expected), rtol=0, atol=0.02)
    else:
        np.testing.assert_allclose(edcs[:, 0], expected, rtol=1e-6, atol=1e-9)


@pytest.fixture(scope="module")
def band_run(small_bands, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("band_run")
    return run_dir, train(tiny(small_bands, "trainer.max_epochs=2"), run_dir)


@pytest.mark.integration
def test_data_with_bands_trains_per_band_and_reports_every_band(band_run, tmp_path):
    run_dir, metrics = band_run
    assert np.load(run_dir / "predictions.npy").shape == (12, 8, 2000)
    for name in ("edt", "t20", "t30", "c50", "c80", "d50"):
        for band in (125, 1000, 8000):
            for key in ("mae", "rmse", "r2", "n_undefined"):
                assert np.isfinite(metrics[f"{name}_{band}_{key}"]), (name, band, key)
    assert {"edt_mid_mae", "t20_mid_mae", "t20_1000_rel_mae", "t20_rel_mae"} <= set(metrics)
    assert (run_dir / "bands.png").is_file() and (run_dir / "band_edc_overlay.png").is_file()
    table = predict(run_dir / "checkpoints" / "best.ckpt", tmp_path / "one.csv", room=HAND_MADE, plot=True)
    assert np.load(tmp_path / "one.npy").shape == (1, 8, 2000)
    assert (tmp_path / "one.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for column in ("EDT_125", "T20_1000", "C50_8000", "D50_500", "T30_4000", "C80_250", "EDT_mid", "T20_mid"):
        assert column in table.columns, column
    assert table.T20_mid[0] == pytest.approx((table.T20_500[0] + table.T20_1000[0]) / 2)
    curves, params = edc.load(run_dir / "checkpoints" / "best.ckpt").predict(pd.DataFrame([HAND_MADE], columns=edc.data.FEATURES))
    assert curves.shape == (1, 8, 2000) and (np.diff(curves, axis=-1) <= 0).all()
    np.testing.assert_allclose(params["T20_1000"], acoustics.t20(curves[:, 4].astype(np.float64), 1000), rtol=1e-9)
    ranked = compare.rank(compare.collect([run_dir]), "t20_1000_mae", top=None)
    assert ranked.t20_1000_mae.iloc[0] == pytest.approx(metrics["t20_1000_mae"])


@pytest.mark.integration
def test_predict_writes_each_rooms_rir_and_the_dry_sound_through_it(band_run, tmp_path):
    """rir=true: one 48 kHz WAV per room, named by its ID, whose samples are the API's RIR times the scale in
    scaling.csv; convolve=: the dry file through each RIR (a full linear convolution, numpy's as the oracle)."""
    from edc.acoustics.wav import read_wav, write_wav

    ckpt = band_run[0] / "checkpoints" / "best.ckpt"
    rooms = pd.DataFrame([["lab", *HAND_MADE], ["lab/2", *HAND_MADE[:9], *[0.5] * 7]], columns=["ID"] + edc.data.FEATURES)
    rooms.to_csv(tmp_path / "rooms.csv", index=False)
    dry = np.zeros(960)
    dry[[10, 500]] = [0.8, -0.4]
    write_wav(tmp_path / "dry.wav", dry, 48000)
    predict(ckpt, tmp_path / "p.csv", features_csv=tmp_path / "rooms.csv", rir=True, convolve=tmp_path / "dry.wav")
    scaling = pd.read_csv(tmp_path / "p_rir" / "scaling.csv")
    assert list(scaling.file) == ["lab.wav", "lab_2.wav", "lab_convolved.wav", "lab_2_convolved.wav"]
    rirs = edc.load(ckpt).rir(rooms)
    dry_read, _ = read_wav(tmp_path / "dry.wav")
    for row in scaling.itertuples():
        samples, fs = read_wav(tmp_path / "p_rir" / row.file)
        rir = rirs[0 if row.ID == "lab" else 1]
        expected = np.convolve(dry_read, rir) if "convolved" in row.file else rir
        assert fs == 48000 and np.abs(samples).max() == pytest.approx(10 ** (-1 / 20), abs=1e-6)
        np.testing.assert_allclose(samples / row.scale, expected, atol=1.0 / row.scale / 2 ** 23 + 1e-12)


@pytest.mark.integration
def test_rir_refuses_what_it_cannot_make_and_writes_nothing(band_run, trained_run, tmp_path):
    from edc.acoustics.wav import write_wav

    write_wav(tmp_path / "cd.wav", np.ones(441), 44100)
    cases = [(trained_run[0], {"rir": True}, "broadband curve only"),
             (band_run[0], {"convolve": tmp_path / "cd.wav"}, "add rir=true"),
             (band_run[0], {"rir": True, "convolve": tmp_path / "cd.wav"}, "resample the dry file to 48000 Hz"),
             (band_run[0], {"rir": True, "convolve": tmp_path / "none.wav"}, "file not found")]
    for run_dir, options, message in cases:
        with pytest.raises(EdcInputError, match=message):
            predict(run_dir / "checkpoints" / "best.ckpt", tmp_path / "p.csv", room=HAND_MADE, **options)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cd.wav"]


@pytest.mark.integration
def test_bands_false_trains_broadband_only_and_true_needs_bands(small_bands, small_compact, tmp_path):
    train(tiny(small_bands, "data.bands=false", "model=mlp", "loss=mse"), tmp_path / "broadband")
    assert np.load(tmp_path / "broadband" / "predictions.npy").shape == (12, 1, 2000)
    assert "t20_1000_mae" not in json.loads((tmp_path / "broadband" / "metrics.json").read_text())
    with pytest.raises(EdcInputError, match="has no band curves"):
        train(tiny(small_compact, "data.bands=true"), tmp_path / "no")
    with pytest.raises(EdcInputError, match="optimized_metric=val/t20_bands_mae: runs log it only where the data has band"):
        train(tiny(small_compact, "+optimized_metric=val/t20_bands_mae"), tmp_path / "no")


@pytest.mark.unit
def test_broadband_weight_weighs_the_broadband_curve_against_the_bands():
    from edc.training.losses import LossContext
    from edc.training.module import build_module, curve_weights

    config = OmegaConf.to_container(make_cfg("loss=mse", "model=mlp", "loss.broadband_weight=3.0"), resolve=True)
    module = build_module(config, 50, 1000.0, n_curves=8)
    pred, target = torch.randn(4, 8, 50), torch.randn(4, 8, 50)
    edc_curves = torch.rand(4, 8, 50)
    loss, _ = module._loss(pred, target, edc_curves)
    ctx = LossContext(edc_curves, lambda y: y, 1000.0)
    broadband = module.loss(pred[:, :1], target[:, :1], ctx)[0]
    bands = module.loss(pred[:, 1:], target[:, 1:], ctx)[0]
    assert loss == pytest.approx(float((3.0 * broadband + 7 * bands) / 10.0), rel=1e-6)
    module.curve_weights = curve_weights()  # every curve alike: one mean over all
    assert module._loss(pred, target, edc_curves)[0] == pytest.approx(float(module.loss(pred, target, ctx)[0]), rel=1e-6)


@pytest.mark.unit
def test_band_weights_weigh_each_bands_loss():
    """loss.band_weights: the loss is each curve's loss weighted by its band's weight (broadband first)."""
    from edc.training.losses import LossContext
    from edc.training.module import build_module

    weights = dict(zip(["125", "250", "500", "1000", "2000", "4000", "8000"], [4.0, 2.0, 1.0, 1.0, 0.5, 0.5, 0.25]))
    overrides = [f"loss.band_weights.{band}={w}" for band, w in weights.items()]
    config = OmegaConf.to_container(make_cfg("loss=moderate", "model=mlp", "loss.broadband_weight=2.0", *overrides),
                                    resolve=True)
    module = build_module(config, 50, 1000.0, n_curves=8)
    pred, target = torch.randn(4, 8, 50), torch.randn(4, 8, 50)
    edc_curves = torch.exp(-torch.arange(50) / 50.0 * torch.linspace(2, 20, 8)[:, None]).expand(4, 8, 50)
    loss, _ = module._loss(pred, target, edc_curves)
    each = [module.loss(pred[:, c : c + 1], target[:, c : c + 1], LossContext(edc_curves[:, c : c + 1], None, 1000.0))[0]
            for c in range(8)]
    expected = (2.0 * each[0] + sum(w * v for w, v in zip(weights.values(), each[1:]))) / (2.0 + sum(weights.values()))
    assert loss == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.unit
def test_validation_logs_each_parameters_error_over_the_bands():
    """val/<p>_bands_mae: the mean absolute error over every room and band where both values are defined,
    from the same curves as a T20 computed band by band."""
    import pytorch_lightning as pl

    from edc.training.module import build_module

    module = build_module(OmegaConf.to_container(make_cfg("model=mlp"), resolve=True), 1000, 1000.0, n_curves=8)
    t = torch.arange(1000) / 1000.0
    decay_times = torch.rand(10, 8, 1) * 0.8 + 0.2
    curves = torch.exp(-13.8155 * t / decay_times)  # (10 rooms, 8 curves, 1 s at 1 kHz), a T of 0.2 to 1 s
    raw = torch.rand(10, 16) * 2 + 1
    module.fit_scalers(raw, curves)
    batch = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(raw, curves, torch.arange(10)), batch_size=10)
    logged = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False).validate(module, batch, verbose=False)[0]
    with torch.no_grad():
        predicted = module.target_transform.decode(module(raw)).double().numpy()
    errors = np.abs(acoustics.t20(predicted[:, 1:], 1000.0) - acoustics.t20(curves[:, 1:].double().numpy(), 1000.0))
    assert errors.shape == (10, 7) and logged["val/t20_bands_mae"] == pytest.approx(float(np.nanmean(errors)), rel=1e-5)
    broadband = np.abs(acoustics.t20(predicted[:, 0], 1000.0) - acoustics.t20(curves[:, 0].double().numpy(), 1000.0))
    assert logged["val/t20_mae"] == pytest.approx(float(np.nanmean(broadband)), rel=1e-5)


@pytest.mark.unit
def test_overlay_shows_typical_rooms_and_the_worst():
    from edc.training.report import overlay_rooms

    t = np.arange(100) / 100.0
    target = np.exp(-t[None] * np.arange(1, 11)[:, None])  # 10 rooms
    pred = target.copy()
    pred[7] *= 10.0  # 10 dB off: the worst
    pred[2] *= 2.0  # 3 dB off: the second worst
    typical, worst = overlay_rooms(pred, target, 6)
    assert worst[:2] == [7, 2] and len(worst) == 3 and len(typical) == 3
    assert not set(typical) & set(worst) and typical[0] == 0


@pytest.mark.unit
def test_scatter_summary_reports_mae_r2_and_undefined():
    from edc.training.report import scatter_summary

    expected = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    predicted = np.array([1.5, 2.0, 2.5, 4.0, np.nan])
    # defined in both: rooms 0-2; errors 0.5, 0, 0.5; SSE 0.5, SST 2: R² 0.75
    assert scatter_summary(predicted, expected, "s") == "MAE 0.333 s, R² 0.750, 2 undefined"
    assert scatter_summary(np.full(2, np.nan), np.ones(2), "dB") == "no defined values (2 undefined)"
