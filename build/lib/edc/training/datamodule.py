"""Lightning DataModule: a room dataset on the training grid, split 60/20/20."""
from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from edc.acoustics.decay_curves import n_samples
from edc.data.layouts import RoomDataset, load_dataset
from edc.data.schema import FEATURES
from edc.data.splits import split_rows


class EpochSampler(Sampler):
    """Shuffles with ``seed + epoch`` (Lightning calls ``set_epoch``), so a resumed run sees the
    same order of rooms as an uninterrupted one."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


class EdcDataModule(pl.LightningDataModule):
    """Rooms and EDCs on the ``target_fs`` grid, as ``(raw features (16,), edc (n,), row)`` batches.

    Args:
        layout: ``demo`` (built-in), ``compact`` (``path``) or ``folder`` (``features_csv``,
            ``edc_dir``, ``source_fs``; cache in ``cache_dir``).
        target_fs: training grid in Hz (must divide the stored rate).
        duration: seconds of EDC.
        max_samples: use a random subset of this many rooms (None: all).
        split_seed, split_by: see :func:`split_rows`.
    """

    def __init__(self, layout: str = "demo", path: str | None = None, features_csv: str | None = None,
                 edc_dir: str | None = None, source_fs: int = 48000, cache_dir: str | None = None, target_fs: int = 1000, duration: float = 2.0, batch_size: int = 32,
                 eval_batch_size: int = 256, num_workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = False, max_samples: int | None = None, split_seed: int = 42,
                 split_by: str = "rows"):
        super().__init__()
        self.layout, self.path, self.features_csv, self.edc_dir = layout, path, features_csv, edc_dir
        self.source_fs, self.cache_dir = int(source_fs), cache_dir
        self.target_fs, self.duration = int(target_fs), float(duration)
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size)
        self.num_workers, self.pin_memory = int(num_workers), bool(pin_memory)
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        self.max_samples, self.split_seed, self.split_by = max_samples, int(split_seed), split_by
        self.dataset: RoomDataset | None = None

    @property
    def n_samples(self) -> int:
        return n_samples(self.duration, self.target_fs)

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        self.dataset = load_dataset(self.layout, self.path, self.features_csv, self.edc_dir, self.source_fs,
                                    self.duration, self.cache_dir)
        edcs = self.dataset.on_grid(self.target_fs, self.duration)
        rows = np.arange(len(self.dataset))
        if self.max_samples is not None and int(self.max_samples) < len(rows):
            rows = np.sort(np.random.default_rng(self.split_seed).permutation(len(rows))[: int(self.max_samples)])
        subset = RoomDataset(self.dataset.ids[rows], self.dataset.features.iloc[rows].reset_index(drop=True),
                             edcs[rows], self.target_fs, self.dataset.source)
        self.rows = rows
        self.splits = {k: rows[v] for k, v in split_rows(subset, self.split_seed, self.split_by).items()}
        self.features = torch.as_tensor(self.dataset.features[FEATURES].to_numpy(np.float32))
        self.edcs = torch.as_tensor(edcs)

    def split_ids(self) -> dict:
        """``{split: [room IDs]}`` for the run dir."""
        return {k: self.dataset.ids[v].tolist() for k, v in self.splits.items()}

    def tensors(self, split: str):
        """``(raw features (n, 16), edcs (n, n_samples), rows (n,))`` of one split."""
        rows = torch.as_tensor(self.splits[split])
        return self.features[rows], self.edcs[rows], rows

    def _loader(self, split: str) -> DataLoader:
        tensors = self.tensors(split)
        train = split == "train"
        return DataLoader(TensorDataset(*tensors), batch_size=self.batch_size if train else self.eval_batch_size,
                          sampler=EpochSampler(len(tensors[0]), torch.initial_seed()) if train else None,
                          num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.persistent_workers)

    def train_dataloader(self):
        return self._loader("train")

    def val_dataloader(self):
        return self._loader("val")

    def summary(self) -> dict:
        return {"source": self.dataset.source, "n_rooms": int(len(self.rows)), "edc_fs": self.dataset.edc_fs,
                "target_fs": self.target_fs, "duration": self.duration, "n_samples": self.n_samples,
                "split_by": self.split_by, "split_seed": self.split_seed,
                "split_sizes": {k: int(len(v)) for k, v in self.splits.items()},
                "fingerprint": self.dataset.fingerprint()}
