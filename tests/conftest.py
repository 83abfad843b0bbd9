"""Test-session settings."""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n 2: one torch thread per worker, so two workers share the two cores instead of fighting
    torch.set_num_threads(1)
