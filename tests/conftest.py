"""Shared fixtures: seeded RNGs, offline mode, and the paths of the committed test data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden"
RE10K = DATA / "realestate10k"
ASSETS = Path(__file__).parent.parent / "assets"

# Under pytest-xdist each worker gets one thread, so two workers do not fight over two cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same RNG state, so the suite is deterministic."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def data_dir() -> Path:
    """Root of the committed real test data (copies of the public clips, with their licences)."""
    return DATA


@pytest.fixture
def golden_dir() -> Path:
    """Golden outputs of the reference OpenSora v1.0 / DUSt3R implementations."""
    return GOLDEN


@pytest.fixture(scope="session")
def micro_model_dir(tmp_path_factory) -> Path:
    """A model folder with seeded random ``micro`` weights, TAEF2 and MiniLM (for CLI / pipeline tests)."""
    from jog3r.components import write_components
    from jog3r.config import get_preset
    from jog3r.model import JOG3R

    folder = tmp_path_factory.mktemp("micro")
    torch.manual_seed(0)
    JOG3R(get_preset("micro")).save_pretrained(folder)
    write_components(folder, vae="taef2", text_encoder="minilm")
    return folder
