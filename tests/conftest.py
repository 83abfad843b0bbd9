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


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty TORCH_HOME, HF_HOME, KERAS_HOME and our converted-weights cache, and no network: every connection
    attempt is counted and refused at once. Returns (tmp_path, the attempts)."""
    import socket

    from huggingface_hub import constants

    from inception_zoo.weights import hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))  # read at import otherwise
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv(hub.CACHE_ENV, str(tmp_path / "ours"))
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in the tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tmp_path, attempts
