"""The peer libraries whose checkpoints load here: one module per source, each able to build the peer's
model (for regenerating the committed key maps, and as the reference in the tests) and naming the key
prefixes of its auxiliary heads and classifier. Converting a checkpoint needs none of them: it reads the
committed key maps (:mod:`inception_zoo.weights.keymaps`)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from torch import nn

from ...records import Peer

__all__ = ["SOURCES", "PeerModel", "peer_model", "build_peer"]

SOURCES = ("torchvision", "timm", "pytorchcv", "pytorch_fid")


@dataclass(frozen=True)
class PeerModel:
    """How to build one peer model: ``build(aux)`` returns it at random init (``aux``: with its auxiliary
    heads); ``aux`` and ``classifier`` are the key prefixes of its auxiliary heads and final classifier."""

    build: object
    aux: tuple[str, ...] = ()
    classifier: tuple[str, ...] = ("fc.",)


def peer_model(peer: Peer) -> PeerModel:
    """The :class:`PeerModel` of a record's peer.

    Raises:
        KeyError: a source or model no source module knows.
    """
    if peer.source not in SOURCES:
        raise KeyError(f"unknown checkpoint source {peer.source!r}; known: {', '.join(SOURCES)}")
    module = importlib.import_module(f".{peer.source}", __name__)
    return module.MODELS[peer.model]


def build_peer(peer: Peer, aux: bool = False) -> nn.Module:
    """The peer's own model at random init (imports the peer library)."""
    return peer_model(peer).build(aux)
