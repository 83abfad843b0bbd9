"""Committed key maps: for each model and each checkpoint layout, the table peer key -> our key.

One JSON file per (model, source) in this folder, ``<model>.<source>.json``:

* peer layouts (``torchvision``, ``timm``, ``pytorchcv``), generated from the peer libraries' own code by
  ``python -m inception_zoo.weights.keymaps`` (the only place the peer libraries are imported for
  conversion): both models are built on the meta device and their keys paired in registration order within
  body, auxiliary heads and classifier, every shape checked;
* ``legacy``: the positional keys of inception_zoo 0.1 (``features.Mixed_6e.branches.2.2...``), generated
  once from that version, so that checkpoints saved with it still load.

Converting a checkpoint is then a table lookup, with no peer library installed and nothing matched by
position at load time.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

__all__ = ["FOLDER", "LEGACY", "keymap", "layouts"]

FOLDER = Path(__file__).parent
LEGACY = "legacy"


@lru_cache(maxsize=None)
def keymap(model: str, source: str) -> dict[str, str]:
    """Peer (or legacy) key -> our key for ``model`` in ``source``'s layout.

    Raises:
        FileNotFoundError: no committed map for that pair.
    """
    path = FOLDER / f"{model}.{source}.json"
    return dict(json.loads(path.read_text(encoding="utf-8"))["keys"])


def layouts(model: str) -> list[str]:
    """The layouts with a committed key map for ``model`` (sources, then ``legacy``)."""
    found = sorted(p.name.split(".")[1] for p in FOLDER.glob(f"{model}.*.json"))
    return sorted(s for s in found if s != LEGACY) + ([LEGACY] if LEGACY in found else [])
