"""The peer libraries whose checkpoints load here: one module per source, each able to build the peer's
model (for regenerating the committed key maps, and as the reference in the tests) and naming the key
prefixes of its auxiliary heads and classifier. Converting a checkpoint needs none of them: it reads the
committed key maps (:mod:`inception_zoo.weights.keymaps`)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from torch import nn

from ...records import Peer

__all__ = ["SOURCES", "PeerModel", "build_peer", "distribution", "peer_model", "torch_peers"]

SOURCES = ("torchvision", "timm", "pytorchcv", "pytorch_fid", "facenet", "keras", "cadene")


@dataclass(frozen=True)
class PeerModel:
    """How to build one peer model: ``build(aux)`` returns it at random init (``aux``: with its auxiliary
    heads); ``aux`` and ``classifier`` are the key prefixes of its auxiliary heads and final classifier.
    ``published``: (prefix in the peer model, prefix in its published files) for layers the peer renames
    after loading its weights (pretrainedmodels' ``fc`` -> ``last_linear``); the key map holds both names.
    ``params``: counts the built model's parameters in PyTorch's sense where ``analysis.count_params`` cannot
    (a Keras model); None: ``count_params``."""

    build: object
    aux: tuple[str, ...] = ()
    classifier: tuple[str, ...] = ("fc.",)
    published: tuple[tuple[str, str], ...] = ()
    params: object = None


def peer_model(peer: Peer) -> PeerModel:
    """The :class:`PeerModel` of a record's peer.

    Raises:
        KeyError: a source or model no source module knows.
    """
    if peer.source not in SOURCES:
        raise KeyError(f"unknown checkpoint source {peer.source!r}; known: {', '.join(SOURCES)}")
    module = importlib.import_module(f".{peer.source}", __name__)
    return module.MODELS[peer.model]


def distribution(source: str) -> str:
    """The name of ``source``'s installed distribution (for its version): the source module's
    ``DISTRIBUTION`` where the import name differs (facenet-pytorch), else the source itself."""
    return getattr(importlib.import_module(f".{source}", __name__), "DISTRIBUTION", source)


def torch_peers(peers: tuple[Peer, ...] | list[Peer]) -> list[Peer]:
    """The peers whose library builds a ``torch.nn.Module`` (every source but Keras, whose module says
    ``FRAMEWORK = "keras"``), in the record's order: the ones a benchmark or fvcore can run."""
    return [p for p in peers
            if getattr(importlib.import_module(f".{p.source}", __name__), "FRAMEWORK", "torch") == "torch"]


def build_peer(peer: Peer, aux: bool = False) -> nn.Module:
    """The peer's own model at random init (imports the peer library)."""
    return peer_model(peer).build(aux)
