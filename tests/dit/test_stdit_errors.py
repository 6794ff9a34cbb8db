"""Bad inputs to STDiT and its config raise ValueErrors that name the problem."""

from __future__ import annotations

import pytest
import torch

from jog3r.dit.stdit import STDiTConfig


def _inputs(batch=2, channels=4, size=(4, 8, 12), caption=(12, 64)):
    return (
        torch.randn(batch, channels, *size),
        torch.full((batch,), 10.0),
        torch.randn(batch, 1, *caption),
        torch.ones(batch, caption[0], dtype=torch.long),
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda x, t, y, m: (x[:, :3], t, y, m), "x must be"),
        (lambda x, t, y, m: (x[..., :7, :], t, y, m), "not divisible by the patch"),
        (lambda x, t, y, m: (x, t[:1], y, m), "timestep must be"),
        (lambda x, t, y, m: (x, t, y[..., :32], m), "y must be"),
        (lambda x, t, y, m: (x, t, y[:, 0], m), "y must be"),
        (lambda x, t, y, m: (x, t, y, m[:, :5]), "mask must be"),
        (lambda x, t, y, m: (x, t, y, torch.cat([m[:1], 0 * m[:1]])), "at least one valid token"),
    ],
)
def test_bad_forward_inputs(golden_model, change, match):
    x, t, y, m = change(*_inputs())
    with pytest.raises(ValueError, match=match):
        golden_model(x, t, y, m)


@pytest.mark.parametrize("taps", [0, 5, (1, 9), (), True, 2.0])
def test_bad_feature_taps(golden_model, taps):
    with pytest.raises(ValueError, match="return_features"):
        golden_model(*_inputs(), return_features=taps)


def test_stop_without_taps_and_bad_drop_ids(golden_model):
    with pytest.raises(ValueError, match="stop_after_features"):
        golden_model(*_inputs(), stop_after_features=True)
    with pytest.raises(ValueError, match="force_drop_ids"):
        golden_model(*_inputs(), force_drop_ids=torch.ones(3))


def test_caption_dropout_needs_full_length_captions(golden_model):
    x, t, y, m = _inputs(caption=(10, 64))
    with pytest.raises(ValueError, match="model_max_length"):
        golden_model(x, t, y, m, force_drop_ids=torch.tensor([1, 0]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_size": (4, 7, 12)},
        {"input_size": (4, 8)},
        {"hidden_size": 98, "num_heads": 2},
        {"hidden_size": 96, "num_heads": 5},
        {"depth": 0},
        {"space_scale": 0.0},
        {"class_dropout_prob": 1.5},
    ],
)
def test_bad_config_values(kwargs):
    with pytest.raises(ValueError):
        STDiTConfig(**kwargs)


def test_config_dict_round_trip_and_unknown_keys(golden_config):
    assert STDiTConfig.from_dict(golden_config.to_dict()) == golden_config
    assert golden_config.input_size == (4, 8, 12) and golden_config.out_channels == 8
    with pytest.raises(ValueError, match="valid keys"):
        STDiTConfig.from_dict({"hidden": 96})
