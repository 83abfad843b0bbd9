"""``python -m inception_zoo.train``, what ``torchrun ... -m inception_zoo.train`` runs: :func:`.cli.main`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
