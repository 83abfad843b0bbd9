"""``python -m inception_zoo.weights.keymaps [SOURCE ...]``: regenerate the committed peer key maps from the
peer libraries' own code (the peer libraries of the sources named, default all, must be installed). Run it
after a peer library changes its layout; the tests check the committed maps against the installed peers.
A source module with its own ``generate(record, peer)`` (Keras: paired through the graph) uses it."""

from __future__ import annotations

import importlib
import json
import sys
import warnings
from importlib.metadata import version

import torch

from ...models import InceptionNet
from ...records import ModelRecord, Peer
from ...registry import list_records
from ..sources import distribution, peer_model
from . import FOLDER

_OURS_AUX, _OURS_CLASSIFIER = ("aux_heads.",), ("head.",)


def _grouped(keys, aux: tuple[str, ...], classifier: tuple[str, ...]) -> dict[str, list]:
    groups: dict[str, list] = {"body": [], "aux": [], "classifier": []}
    for key, shape in keys:
        group = "aux" if key.startswith(aux) else "classifier" if key.startswith(classifier) else "body"
        groups[group].append((key, shape))
    return groups


def generate(record: ModelRecord, peer: Peer) -> dict[str, str]:
    """Peer key -> our key, pairing both models' keys in registration order within body, auxiliary heads
    and classifier; keys the peer renames after loading (``PeerModel.published``) also under their
    published name.

    Raises:
        ValueError: the two layouts differ (another number of tensors or another shape in a group).
    """
    spec = peer_model(peer)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = spec.build(bool(spec.aux)).state_dict()
        ours = InceptionNet(record, aux_logits=bool(record.aux_heads and spec.aux)).state_dict()
    a = _grouped(((k, tuple(v.shape)) for k, v in theirs.items()), spec.aux, spec.classifier)
    b = _grouped(((k, tuple(v.shape)) for k, v in ours.items()), _OURS_AUX, _OURS_CLASSIFIER)
    mapping = {}
    for group in a:
        if len(a[group]) != len(b[group]) or any(sa != sb for (_, sa), (_, sb) in zip(a[group], b[group])):
            raise ValueError(f"{record.name}: {peer.source} {peer.model}'s {group} layers differ from ours")
        mapping.update({ka: kb for (ka, _), (kb, _) in zip(a[group], b[group])})
    for in_model, in_file in spec.published:
        mapping.update({in_file + k[len(in_model):]: v for k, v in list(mapping.items()) if k.startswith(in_model)})
    return mapping


def generate_for(record: ModelRecord, peer: Peer) -> dict[str, str]:
    """:func:`generate`, or the source module's own ``generate`` where it has one (Keras)."""
    module = importlib.import_module(f"..sources.{peer.source}", __package__)
    return getattr(module, "generate", generate)(record, peer)


def main(argv: list[str] | None = None) -> int:
    wanted = set(sys.argv[1:] if argv is None else argv)
    for record in list_records():
        for peer in record.peers:
            if wanted and peer.source not in wanted:
                continue
            keys = generate_for(record, peer)
            path = FOLDER / f"{record.name}.{peer.source}.json"
            installed = version(distribution(peer.source))
            header = {"model": record.name, "source": peer.source, "peer_model": peer.model,
                      "generated_by": f"python -m inception_zoo.weights.keymaps ({peer.source} {installed})"}
            path.write_text(json.dumps({**header, "keys": keys}, indent=1) + "\n", encoding="utf-8")
            print(f"wrote {path.name}: {len(keys)} keys", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
