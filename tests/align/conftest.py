"""Alignment tests run single-threaded: the per-iteration tensors are small, and on a shared CPU torch's thread
pool costs more than it gains (an ``index_add_`` of a few hundred floats took ~30 ms with 2 busy threads)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
