"""``python -m inception_zoo.bench``: the same as ``inception-zoo bench`` (and the memory probe's child)."""

from .cli import main

raise SystemExit(main())
