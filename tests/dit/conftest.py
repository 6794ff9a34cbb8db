"""Fixtures of the STDiT tests: the golden OpenSora v1.0 model (all weights random) and its inputs/outputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from jog3r.dit.stdit import STDiT, STDiTConfig, load_opensora_state_dict

GOLDEN = Path(__file__).parent.parent / "data" / "golden"


@pytest.fixture(scope="session")
def golden_meta() -> dict:
    """``stdit_small_meta.json``: constructor kwargs, state-dict shapes, parameter count."""
    return json.loads((GOLDEN / "stdit_small_meta.json").read_text())


@pytest.fixture(scope="session")
def golden_io() -> dict[str, torch.Tensor]:
    """``stdit_small_io.npz`` as tensors (inputs, outputs and intermediates of the reference run)."""
    with np.load(GOLDEN / "stdit_small_io.npz") as data:
        return {k: torch.from_numpy(data[k]) for k in data.files}


@pytest.fixture(scope="session")
def golden_config(golden_meta) -> STDiTConfig:
    """The reference model's config (``ctor_kwargs``)."""
    return STDiTConfig.from_dict(golden_meta["ctor_kwargs"])


def _build_golden_model(config: STDiTConfig) -> STDiT:
    """An eval-mode :class:`STDiT` built from ``config`` with the golden (fully random) weights loaded."""
    model = STDiT(config).eval()
    state_dict = torch.load(GOLDEN / "stdit_small.pth", map_location="cpu", weights_only=True)
    load_opensora_state_dict(model, state_dict)
    return model


@pytest.fixture(scope="session")
def build_golden_model() -> Callable[[STDiTConfig], STDiT]:
    """Factory: ``build_golden_model(config)`` -> a fresh eval-mode STDiT with the golden weights."""
    return _build_golden_model


@pytest.fixture(scope="session")
def golden_model(golden_config) -> STDiT:
    """Read-only golden model (do not modify it in tests; build your own with ``build_golden_model``)."""
    return _build_golden_model(golden_config)


def _assert_close_ref(ours: torch.Tensor, ref: torch.Tensor, name: str = "") -> None:
    """Assert ``|ours - ref| <= 1e-4 + 1e-4 * |ref|`` elementwise (golden/README.md tolerance)."""
    assert ours.shape == ref.shape, f"{name}: shape {tuple(ours.shape)} != reference {tuple(ref.shape)}"
    ours, ref = ours.detach().double(), ref.double()
    excess = (ours - ref).abs() - (1e-4 + 1e-4 * ref.abs())
    assert bool(torch.isfinite(ours).all()), f"{name}: non-finite values"
    assert excess.max().item() <= 0, (
        f"{name}: max |ours - ref| = {(ours - ref).abs().max().item():.3g} exceeds 1e-4 + 1e-4 |ref|"
    )


@pytest.fixture(scope="session")
def assert_close_ref() -> Callable[..., None]:
    """``assert_close_ref(ours, ref, name)``: the golden tolerance ``|ours - ref| <= 1e-4 + 1e-4 |ref|``."""
    return _assert_close_ref
