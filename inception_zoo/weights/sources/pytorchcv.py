"""pytorchcv's BN-Inception, Inception v3, Inception v4, Inception-ResNet v2 and Xception (its
``pytorchcv.models`` modules; ports of the released Caffe / TF / Keras weights, retrained in Gluon)."""

from __future__ import annotations

import importlib

from . import PeerModel


def _build(module: str, name: str):
    def build(aux: bool):
        return getattr(importlib.import_module(f"pytorchcv.models.{module}"), name)()

    return build


MODELS = {
    name: PeerModel(_build(name, name), classifier=("output.",))
    for name in ("bninception", "inceptionv3", "inceptionv4", "inceptionresnetv2", "xception")
}
