"""Lightning DataModule: a room dataset on the training grid, split 60/20/20, read batch by batch.

Batches are ``(raw features (b, 16), curves (b, C, n_samples), rows (b,))`` with C = 8 (the broadband
curve, then the 7 octave bands) where the data has band curves, else C = 1. The curves stay where
the dataset keeps them (a memory map for the compact and folder layouts): a batch reads its rows only.
"""
from __future__ import annotations

import logging

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from edc.acoustics.decay_curves import n_samples
from edc.data.layouts import RoomDataset, load_dataset
from edc.data.schema import LAYOUTS, layout_of
from edc.data.splits import split_rows
from edc.errors import EdcInputError

log = logging.getLogger(__name__)


class RoomCurves(Dataset):
    """``rows`` of ``dataset`` on the grid; ``dataset[list of indices]`` reads a whole batch at once."""

    def __init__(self, dataset: RoomDataset, features: torch.Tensor, rows: np.ndarray, target_fs: int,
                 duration: float, bands: bool):
        self.dataset, self.features, self.rows = dataset, features, np.asarray(rows)
        self.target_fs, self.duration, self.bands = target_fs, duration, bands

    def __len__(self) -> int:
        return len(self.rows)

    def __getitems__(self, indices):
        rows = self.rows[np.asarray(indices)]
        curves = self.dataset.curves(rows, self.target_fs, self.duration, self.bands)
        return self.features[rows], torch.from_numpy(curves), torch.as_tensor(rows)

    def __getitem__(self, index):
        raw, curves, rows = self.__getitems__([index])
        return raw[0], curves[0], rows[0]

    def chunks(self, size: int = 4096):
        """``(raw, curves)`` of every room, ``size`` rooms at a time (fitting scalers in bounded memory)."""
        for start in range(0, len(self), size):
            raw, curves, _ = self.__getitems__(range(start, min(start + size, len(self))))
            yield raw, curves


def as_batch(batch):
    """The collate function of :class:`RoomCurves`: its ``__getitems__`` returns whole batches."""
    return batch


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
    """Rooms and their curves on the ``target_fs`` grid.

    Args:
        layout: ``demo`` (built-in), ``compact`` (``path``) or ``folder`` (``features_csv``,
            ``edc_dir``, optionally ``band_edc_dir``, ``source_fs``; cache in ``cache_dir``).
        target_fs: training grid in Hz (must divide the stored rate).
        duration: seconds of EDC.
        bands: train on the 7 octave bands beside the broadband curve: None where the data has
            them, True (the data must have them), False (broadband only).
        max_samples: use a random subset of this many rooms (None: all).
        split_seed, split_by: see :func:`edc.data.splits.split_rows`.
    """

    def __init__(self, layout: str = "demo", path: str | None = None, features_csv: str | None = None,
                 edc_dir: str | None = None, band_edc_dir: str | None = None, source_fs: int = 48000,
                 cache_dir: str | None = None, target_fs: int = 1000, duration: float = 2.0, bands: bool | None = None,
                 batch_size: int = 32, eval_batch_size: int = 256, num_workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = False, max_samples: int | None = None, split_seed: int = 42,
                 split_by: str = "rows"):
        super().__init__()
        self.layout, self.path, self.features_csv, self.edc_dir = layout, path, features_csv, edc_dir
        self.band_edc_dir, self.source_fs, self.cache_dir = band_edc_dir, int(source_fs), cache_dir
        self.target_fs, self.duration, self.asked_bands = int(target_fs), float(duration), bands
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size)
        self.num_workers, self.pin_memory = int(num_workers), bool(pin_memory)
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        self.max_samples, self.split_seed, self.split_by = max_samples, int(split_seed), split_by
        self.dataset: RoomDataset | None = None

    @property
    def n_samples(self) -> int:
        return n_samples(self.duration, self.target_fs)

    @property
    def n_curves(self) -> int:
        """Curves per room: 8 (broadband, then the 7 octave bands) or 1 (broadband)."""
        return 8 if self.bands else 1

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        self.dataset = load_dataset(self.layout, self.path, self.features_csv, self.edc_dir, self.source_fs,
                                    self.duration, self.cache_dir, self.band_edc_dir)
        self.bands = self._bands()
        self.dataset.grid(self.target_fs, self.duration)  # a duration or rate the data cannot give fails here
        self.rows, self.splits = self._split(self.max_samples)
        self.layout = layout_of(self.dataset.features.columns)  # paper (16 columns) or surfaces (93)
        self.features = torch.as_tensor(self.dataset.features[LAYOUTS[self.layout]].to_numpy(np.float32))

    def _split(self, max_samples: int | None) -> tuple[np.ndarray, dict]:
        """``(rows, {split: rows})``: the rows used (``max_samples`` of them at random, or all) and their split."""
        rows = np.arange(len(self.dataset))
        if max_samples is not None and int(max_samples) < len(rows):
            rows = np.sort(np.random.default_rng(self.split_seed).permutation(len(rows))[: int(max_samples)])
        subset = RoomDataset(self.dataset.ids[rows], self.dataset.features.iloc[rows].reset_index(drop=True),
                             None, self.dataset.edc_fs, self.dataset.source)
        return rows, {k: rows[v] for k, v in split_rows(subset, self.split_seed, self.split_by).items()}

    def training_rows(self, max_samples: int | None) -> np.ndarray:
        """The rows a training run on this data with ``max_samples`` (and this split) trained or validated on."""
        splits = self._split(max_samples)[1]
        return np.concatenate([splits["train"], splits["val"]])

    def _bands(self) -> bool:
        if self.asked_bands and not self.dataset.has_bands:
            raise EdcInputError(f"data.bands=true, but {self.dataset.source} has no band curves (band_edcs.npy, or "
                                "data.band_edc_dir for the folder layout). Fix: simulate them with python -m "
                                "edc.generate (octave bands are its default), or set data.bands=false.")
        if self.asked_bands is None and not self.dataset.has_bands:
            log.warning("%s has no band curves: training on the broadband curve only", self.dataset.source)
        return self.dataset.has_bands if self.asked_bands is None else bool(self.asked_bands)

    def split(self, split: str) -> RoomCurves:
        """The rooms of ``split`` (``train``, ``val``, ``test`` or ``all``) as a dataset."""
        rows = self.rows if split == "all" else self.splits[split]
        return RoomCurves(self.dataset, self.features, rows, self.target_fs, self.duration, self.bands)

    def tensors(self, split: str):
        """``(raw features (n, 16), curves (n, C, n_samples), rows (n,))`` of one split, in memory."""
        rooms = self.split(split)
        return rooms.__getitems__(range(len(rooms)))

    def split_ids(self) -> dict:
        """``{split: [room IDs]}`` for the run dir."""
        return {k: self.dataset.ids[v].tolist() for k, v in self.splits.items()}

    def _loader(self, split: str) -> DataLoader:
        rooms = self.split(split)
        train = split == "train"
        return DataLoader(rooms, batch_size=self.batch_size if train else self.eval_batch_size,
                          sampler=EpochSampler(len(rooms), torch.initial_seed()) if train else None,
                          collate_fn=as_batch, num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.persistent_workers)

    def train_dataloader(self):
        return self._loader("train")

    def val_dataloader(self):
        return self._loader("val")

    def summary(self) -> dict:
        return {"source": self.dataset.source, "n_rooms": int(len(self.rows)), "edc_fs": self.dataset.edc_fs,
                "target_fs": self.target_fs, "duration": self.duration, "n_samples": self.n_samples,
                "bands": self.bands, "split_by": self.split_by, "split_seed": self.split_seed,
                "split_sizes": {k: int(len(v)) for k, v in self.splits.items()},
                "fingerprint": self.dataset.fingerprint()}
