"""Test-session settings and shared fixtures."""

import copy
import os

import pytest
import torch

from inception_zoo import create_model

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n 2: one torch thread per worker, so two workers share the two cores instead of fighting
    torch.set_num_threads(1)

_BUILT: dict = {}


def built(name: str, **options):
    """A model built once per test process (seed 0) and shared: read it, run it in eval mode, never change
    its weights or structure (use :func:`fresh` for that)."""
    key = (name, tuple(sorted(options.items())))
    if key not in _BUILT:
        torch.manual_seed(0)
        _BUILT[key] = create_model(name, **options)
    return _BUILT[key].eval()


def fresh(name: str, **options):
    """A private copy of :func:`built`'s model, free to change (a copy is much cheaper than a build)."""
    return copy.deepcopy(built(name, **options))


@pytest.fixture(name="built")
def built_fixture():
    return built


@pytest.fixture(name="fresh")
def fresh_fixture():
    return fresh
