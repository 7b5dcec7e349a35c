"""Networks that map room features to EDCs, and the :class:`Surrogate` that wraps one with its scalers.

A stored config names its network by ``model.net._target_``; :func:`build_net` builds only the
networks listed in :data:`NETS` (a checkpoint from elsewhere cannot make it run other code).
"""
from __future__ import annotations

from edc.errors import EdcInputError
from edc.models.convnet import BandConvNet
from edc.models.mlp import MLP
from edc.models.originals import HybridV1, HybridV2, HybridV3, LSTMModel
from edc.models.physics import PhysicsEDC
from edc.models.scaling import Scaler, TargetTransform
from edc.models.surrogate import EdcNet, Surrogate, predict_in_batches

NETS = {f"edc.models.{cls.__name__}": cls for cls in (PhysicsEDC, MLP, LSTMModel, HybridV1, HybridV2, HybridV3,
                                                         BandConvNet)}

__all__ = ["NETS", "BandConvNet", "EdcNet", "HybridV1", "HybridV2", "HybridV3", "LSTMModel", "MLP", "PhysicsEDC", "Scaler",
           "Surrogate", "TargetTransform", "build_net", "build_surrogate", "predict_in_batches"]


def build_net(net: dict, n_features: int, n_out: int, n_curves: int = 1) -> EdcNet:
    """The network of a config's ``model.net`` section (a plain dict) for ``n_curves`` curves of ``n_out``
    grid samples."""
    target = net.get("_target_")
    if target not in NETS:
        raise EdcInputError(f"model.net._target_={target}: not an edc network. Fix: one of {', '.join(NETS)}.")
    return NETS[target](n_features=n_features, n_out=n_out, n_curves=n_curves,
                        **{k: v for k, v in net.items() if k != "_target_"})


def build_surrogate(model: dict, n_features: int, n_samples: int, fs: float, n_curves: int = 1) -> Surrogate:
    """An unfitted :class:`Surrogate` from a config's ``model`` section: ``net``, ``feature_scaler``,
    ``target`` (``linear`` or ``db``) and ``target_scaler``."""
    return Surrogate(build_net(model["net"], n_features, n_samples, n_curves), Scaler(model["feature_scaler"], n_features),
                     TargetTransform(model["target"], model["target_scaler"], n_curves * n_samples), fs)
