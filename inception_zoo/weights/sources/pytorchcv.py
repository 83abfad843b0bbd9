"""pytorchcv's BN-Inception (``pytorchcv.models.bninception``, a port of the released Caffe model)."""

from __future__ import annotations

from . import PeerModel


def _bninception(aux: bool):
    from pytorchcv.models.bninception import bninception

    return bninception()


MODELS = {"bninception": PeerModel(_bninception, classifier=("output.",))}
