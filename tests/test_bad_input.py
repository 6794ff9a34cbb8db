"""Bad input to the Python API gets one clear, actionable ``ValueError`` (issue 17: B7, B9, B10, B11, B14, B17).

Each test reproduces a case of the bug hunt that failed before its fix (a traceback, a misleading message, or a
silent wrong result) and checks the message the user now reads.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from jog3r.checks import MAX_SEED, check_finite_weights, check_seed, parse_device
from jog3r.jobs import met3r_of_video
from jog3r.model import JOG3R
from jog3r.pipeline import JOG3RPipeline
from jog3r.types import Video


@pytest.fixture(scope="module")
def pipe(micro_model_dir) -> JOG3RPipeline:
    return JOG3RPipeline.from_pretrained(micro_model_dir)


def _video(lo: float, hi: float, frames: int = 3) -> Video:
    gen = torch.Generator().manual_seed(0)
    x = lo + (hi - lo) * torch.rand(frames, 3, 32, 48, generator=gen)
    return Video(frames=x, fps=8.0, frame_indices=torch.arange(frames), source="test")


# ---------------------------------------------------------------------------------------------- B14 frame range


def test_frames_in_minus_one_one_are_refused_with_the_range_the_api_wants(pipe):
    """B14: the message said the frames must lie in [-1, 1] while they did; the API wants [0, 1]."""
    with pytest.raises(ValueError, match=r"frames must lie in \[0, 1\].*\(x \+ 1\) / 2") as err:
        pipe.video_to_cameras(_video(-1.0, 1.0))
    assert "-1" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        met3r_of_video(pipe, _video(-1.0, 1.0), backbone="rgb")
    bad = _video(0.0, 1.0)
    bad.frames[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        pipe.video_to_cameras(bad)


# ---------------------------------------------------------------------------------------------- B17 messages


def test_a_weights_path_that_is_a_file_is_named_as_a_file(micro_model_dir, tmp_path):
    """B17: a --weights path that is a file was reported as a folder that does not exist."""
    with pytest.raises(ValueError, match=r"is a file.*folder") as err:
        JOG3RPipeline.from_pretrained(micro_model_dir / "model.safetensors")
    assert str(micro_model_dir) in str(err.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        JOG3RPipeline.from_pretrained(tmp_path / "nope")


@pytest.mark.parametrize("kwargs,match", [
    ({"guidance_scale": float("inf")}, "guidance_scale must be a finite"),
    ({"guidance_scale": float("nan")}, "guidance_scale must be a finite"),
    ({"steps": float("nan")}, "steps must be a whole number"),
    ({"steps": 2.5}, "steps must be a whole number"),
    ({"seed": 2**70}, r"seed must be in \[0, 2\*\*64 - 1\]"),
    ({"seed": -1}, r"seed must be in"),
])
def test_t2v_refuses_non_finite_guidance_steps_and_seeds_out_of_range(pipe, kwargs, match):
    """B17: guidance inf / NaN steps slipped through; a seed of 2**70 gave 'Overflow when unpacking long long'."""
    with pytest.raises(ValueError, match=match):
        pipe.text_to_video("a room", **{"steps": 2, **kwargs})


def test_v2c_refuses_a_seed_out_of_range(pipe):
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*64 - 1\]"):
        pipe.video_to_cameras(_video(0.0, 1.0), seed=2**70)


def test_check_seed():
    assert check_seed(0) == 0 and check_seed(MAX_SEED) == MAX_SEED and check_seed(7.0) == 7
    for bad in (MAX_SEED + 1, -1, 1.5, float("inf"), "3", True):
        with pytest.raises(ValueError, match="seed"):
            check_seed(bad)
    torch.Generator().manual_seed(check_seed(MAX_SEED))  # the whole range is accepted by torch


# ---------------------------------------------------------------------------------------------- B9 devices


def test_parse_device(monkeypatch):
    """B9: --device garbage and --device cuda without CUDA ended in tracebacks from torch."""
    assert parse_device(" CPU ") == torch.device("cpu")
    with pytest.raises(ValueError, match="'garbage' is not a torch device; use cpu, cuda"):
        parse_device("garbage")
    with pytest.raises(ValueError, match="not supported"):
        parse_device("meta")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        parse_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert parse_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match=r"1 CUDA device\(s\): use cuda:0..cuda:0"):
        parse_device("cuda:3")


def test_pipeline_refuses_a_missing_device_before_loading(micro_model_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        JOG3RPipeline.from_pretrained(micro_model_dir, device="cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        JOG3RPipeline.from_pretrained(micro_model_dir, device="garbage")


# ---------------------------------------------------------------------------------------------- B10 / B11 model folders


def _copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_at_load_naming_the_tensor(micro_model_dir, tmp_path, value):
    """B10: NaN / inf weights loaded silently; V2C then failed with 'edges [...] have no finite point'."""
    folder = _copy_model(micro_model_dir, tmp_path / "m")
    model = JOG3R.from_pretrained(folder)
    name = "decoder_embed.weight"
    with torch.no_grad():
        dict(model.named_parameters())[name][0, :3] = value
    model.save_pretrained(folder)
    kind = "3 NaN and 0 inf" if value != value else "0 NaN and 3 inf"
    with pytest.raises(ValueError, match=rf"'{name}' holds {kind} values.*earlier checkpoint"):
        JOG3R.from_pretrained(folder)
    with pytest.raises(ValueError, match=name):
        JOG3RPipeline.from_pretrained(folder)


def test_check_finite_weights_counts_the_damaged_tensors():
    state = {"a": torch.ones(2), "b": torch.tensor([float("nan"), 1.0]), "c": torch.tensor([float("inf")]),
             "steps": torch.tensor([3])}
    with pytest.raises(ValueError, match=r"x.safetensors: tensor 'b' holds 1 NaN and 0 inf values \(and 1 more"):
        check_finite_weights(state, "x.safetensors")
    check_finite_weights({"a": torch.ones(2), "i": torch.arange(3)}, "ok")


@pytest.mark.parametrize("content,match", [
    ("[1, 2]", r"components.json must be a JSON object.*got a list"),
    ('{"vae": 3}', r"components.json: 'vae' must be a string"),
    ("{not json", r"components.json is not valid JSON"),
])
def test_a_bad_components_json_is_a_clear_error(micro_model_dir, tmp_path, content, match):
    """B11: components.json holding [1, 2] gave an AttributeError traceback."""
    folder = _copy_model(micro_model_dir, tmp_path / "m")
    (folder / "components.json").write_text(content)
    with pytest.raises(ValueError, match=match):
        JOG3RPipeline.from_pretrained(folder)


def test_components_json_round_trip(micro_model_dir):
    from jog3r.components import read_components

    assert read_components(micro_model_dir) == json.loads((micro_model_dir / "components.json").read_text())


# ---------------------------------------------------------------------------------------------- B7 cost estimate


def test_cost_estimate_uses_the_runs_frame_limit(pipe):
    """B7: the estimate for 1000 frames gave a time and a memory while the run refuses more than 4 F frames."""
    limit = pipe.max_frames
    assert limit == 4 * pipe.num_frames
    assert pipe.estimate_cost(limit)["seconds"] > pipe.estimate_cost(2)["seconds"] > 0
    with pytest.raises(ValueError, match=rf"1000 frames is too many for one pass \(max {limit}\)"):
        pipe.estimate_cost(1000)
    with pytest.raises(ValueError, match=rf"1000 frames is too many for one pass \(max {limit}\)"):
        pipe.video_to_cameras(_video(0.0, 1.0, frames=1000))
    with pytest.raises(ValueError, match="at least 2 frames"):
        pipe.estimate_cost(1)


@pytest.mark.parametrize("make, match", [
    (lambda d: (d / "fake.mp4").write_text("not a video") and d / "fake.mp4", "not a readable video \\(Invalid data"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "no images .* in this folder"),
    (lambda d: (d / "zero.mp4").write_bytes(b"") or d / "zero.mp4", "file is empty"),
    (lambda d: ((d / "one.png").write_bytes(b"\x89PNG"), d / "one.png")[1], "got a single image"),
])
def test_unreadable_sources_are_refused_before_the_model_loads(tmp_path, make, match):
    """A text file named .mp4, an empty folder or an empty file: one line before the model loads (the weights
    folder here does not exist, so reaching the load would be another error)."""
    from jog3r.cli import main

    source = make(tmp_path)
    for cmd in ("v2c", "met3r"):
        with pytest.raises(SystemExit, match=match):
            main([cmd, str(source), "--weights", str(tmp_path / "no-weights"), "--out", str(tmp_path / "o")])
