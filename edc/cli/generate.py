"""Simulate rooms into a compact dataset: ``python -m edc.generate``.

    python -m edc.generate n_rooms=300 out_dir=data/rooms300
    python -m edc.generate features_csv=rooms.csv out_dir=data/mine workers=8
    python -m edc.generate -m shard=0,1,2,3 n_shards=4 n_rooms=6000 out_dir=D   # then:
    python -m edc.generate merge=true n_rooms=6000 out_dir=D

The rooms come from a features CSV or the built-in sampler; the simulation, its chunks, shards
and resumption are :class:`edc.data.generation.Generation`'s.
"""
from __future__ import annotations

from pathlib import Path

import hydra
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from edc.acoustics.simulate import SimulationSettings
from edc.cli.config import CONF_DIR, check
from edc.cli.entry import entrypoint, task
from edc.data.generation import Generation
from edc.data.sampler import RoomsRanges, SamplerRanges, sample_rooms, sample_surface_rooms
from edc.data.validation import read_features
from edc.errors import EdcInputError
from edc.io import update_metadata


def rooms_to_simulate(cfg: DictConfig) -> pd.DataFrame:
    """The features table: from ``features_csv`` or drawn by the sampler (``n_rooms``)."""
    if (cfg.features_csv is None) == (cfg.n_rooms is None):
        raise EdcInputError("give exactly one of features_csv=PATH (simulate those rooms) or n_rooms=N "
                            "(draw N rooms from the built-in sampler).")
    if cfg.features_csv is not None:
        return read_features(cfg.features_csv, cfg.materials_file)
    settings = OmegaConf.to_container(cfg.sampler)
    name = settings.pop("name", "paper")
    if name == "rooms":
        ranges, draw = RoomsRanges(**settings), sample_surface_rooms
    else:
        ranges, draw = SamplerRanges(**settings), sample_rooms
        if ranges.position_height >= ranges.height[0]:
            raise EdcInputError(f"sampler.position_height={ranges.position_height} m: must be below the lowest "
                                f"ceiling, sampler.height[0]={ranges.height[0]} m.")
    try:
        return draw(int(cfg.n_rooms), seed=int(cfg.seed), ranges=ranges)
    except ValueError as err:  # the sampler cannot place a source and a receiver, or find a room
        raise EdcInputError(f"sampler={name}: {err}. Fix: widen the sampler's ranges (sampler.length, "
                            "sampler.width, ...) or lower sampler.wall_margin or sampler.min_distance.") from None


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="generate")
@task
def main(cfg: DictConfig) -> None:
    if cfg.out_dir is None:
        raise EdcInputError("out_dir is not set. Fix: add out_dir=DIR (where the dataset is written).")
    if Path(cfg.out_dir).exists() and not Path(cfg.out_dir).is_dir():
        raise EdcInputError(f"out_dir={cfg.out_dir} is a file. Fix: out_dir=a new directory, or a dataset's to resume it.")
    check(cfg)
    if not cfg.shard < cfg.n_shards:
        raise EdcInputError(f"shard={cfg.shard} must be in [0, n_shards={cfg.n_shards}).")
    settings = SimulationSettings(**OmegaConf.to_container(cfg.simulation))
    if settings.sim_fs % settings.edc_fs:
        raise EdcInputError(f"simulation.edc_fs={settings.edc_fs} must divide simulation.sim_fs={settings.sim_fs}.")
    generation = Generation(rooms_to_simulate(cfg), cfg.out_dir, settings, cfg.chunk_size)
    generation.prepare()
    if not cfg.merge:
        generation.run_shard(cfg.shard, cfg.n_shards, cfg.workers)
    if cfg.merge or cfg.n_shards == 1:
        generation.merge(cfg.features_csv or f"built-in sampler, seed {cfg.seed}")
        print(f"dataset: {cfg.out_dir}")
    update_metadata(HydraConfig.get().runtime.output_dir, status="completed", command="generate",
                    out_dir=str(cfg.out_dir), shard=cfg.shard, n_shards=cfg.n_shards, merge=cfg.merge)
    return {"status": "completed"}


if __name__ == "__main__":
    entrypoint(main)()
