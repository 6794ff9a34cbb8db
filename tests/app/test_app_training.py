"""The Training tab through the API: preview, a real short run streaming its log, Stop, a crash, load a checkpoint."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

JOINT = "Joint: L_gen + λ·L_rec (JOG3R)"


def _form(out: Path, *, data="synthetic", steps=3, mode=JOINT, resume=False, clip=(2, 32, 32), schedule="constant"):
    """The Training form; tiny clips (2 frames at 32x32) keep a real run to seconds per step on a CPU."""
    return [mode, data, steps, 1, 2e-4, str(out), resume, *clip, schedule]


def _poll_until(client, cond, timeout=240.0):
    end = time.time() + timeout
    while time.time() < end:
        status, plot, log, console, checkpoint, timer = client.predict(api_name="/train_status")
        if cond(status, log):
            return status, plot, log, console, checkpoint
        time.sleep(0.5)
    raise AssertionError(f"timed out; last status {status!r}\nlog:\n{log}\nconsole:\n{console}")


def test_preview_is_the_exact_command(studio, tmp_path):
    client = studio.client()
    preview = client.predict(*_form(tmp_path / "run", steps=7, clip=(None, None, None)), api_name="/train_preview")
    assert " -m jog3r.train --preset tiny --mode joint --data synth --steps 7 --batch-size 1 --lr 0.0002 --lr-schedule constant --out " in preview
    assert preview.endswith(str((tmp_path / "run").resolve()))
    cosine = client.predict(*_form(tmp_path / "run", schedule="cosine"), api_name="/train_preview")
    assert " --lr-schedule cosine " in cosine
    small = client.predict(*_form(tmp_path / "run"), api_name="/train_preview")
    assert small.endswith("--num-frames 2 --height 32 --width 32")
    bad = client.predict(*_form(tmp_path / "run", data="/no/such/folder"), api_name="/train_preview")
    assert bad.startswith("# cannot start:") and "does not exist" in bad
    # Something that would be dangerous in a shell stays one quoted argument.
    odd = client.predict(*_form(tmp_path / "a; rm -rf ~"), api_name="/train_preview")
    assert "'" in odd and "rm -rf" in odd


def test_bad_form_is_refused_with_a_message(studio, tmp_path):
    client = studio.client()
    with pytest.raises(AppError, match="does not exist"):
        client.predict(*_form(tmp_path / "run", data="/no/such/folder"), api_name="/train_start")
    with pytest.raises(AppError, match="minimum value 1|Steps must be"):
        client.predict(*_form(tmp_path / "run", steps=0), api_name="/train_start")
    form = _form(tmp_path / "run")
    form[3] = 100_000  # batch size
    with pytest.raises(AppError, match="Batch size must be"):
        client.predict(*form, api_name="/train_start")


def test_stop_ends_a_running_run(studio, tmp_path):
    client = studio.client()
    command, status, _ = client.predict(*_form(tmp_path / "run", steps=100_000), api_name="/train_start")
    assert "Running" in status and "--steps 100000" in command

    # A second start while it runs is refused, from any session.
    with pytest.raises(AppError, match="already running"):
        studio.client().predict(*_form(tmp_path / "other"), api_name="/train_start")

    job = studio.runtime.jobs.current
    _poll_until(client, lambda s, log: job.console_tail().strip() != "", timeout=60)  # it started up
    assert job.running  # (the browser test watches its log stream live, then stops it from the page)
    status, *_ = client.predict(api_name="/train_stop")
    assert status.startswith("**Stopped")
    assert not job.running
    with pytest.raises(ProcessLookupError):
        os.killpg(job.pid, 0)  # the whole process group is gone


def test_finished_run_checkpoint_loads_into_the_app(studio, tmp_path):
    client = studio.client()
    out = tmp_path / "run"
    client.predict(*_form(out, steps=1), api_name="/train_start")
    status, _, log, _, checkpoint = _poll_until(client, lambda s, log: s.startswith("**Finished"))
    assert "step      1" in log
    final = out.resolve() / "final"
    # The checkpoint dropdown comes back as an update: every checkpoint written, the final one selected.
    assert final.is_dir() and checkpoint["value"] == str(final)
    assert str(final) in [c[0] if isinstance(c, (list, tuple)) else c for c in checkpoint["choices"]]
    checkpoint = checkpoint["value"]
    before = studio.runtime.pipeline
    other = studio.client()
    other.predict(api_name="/train_status")  # another user's session
    info = client.predict(checkpoint, api_name="/load_weights")
    assert str(final) in info and "this tab only" in info  # the header says which model this session uses
    mine = studio.runtime.pipeline_for(client.session_hash)
    assert mine is not before
    # Page item: the checkpoint serves this session only; the app's model stays for everyone else.
    assert studio.runtime.pipeline is before and studio.runtime.pipeline_for(other.session_hash) is before
    assert "embedded default" in studio.runtime.model_markdown(other.session_hash)
    # ... and the session can go back to the app's model.
    info = client.predict(api_name="/load_default_weights")
    assert "embedded default" in info and studio.runtime.pipeline_for(client.session_hash) is before


def test_crashing_run_is_reported(studio, tmp_path):
    client = studio.client()
    empty = tmp_path / "empty-data"
    empty.mkdir()
    client.predict(*_form(tmp_path / "run", data=str(empty)), api_name="/train_start")
    status, _, _, console, _ = _poll_until(client, lambda s, log: "Failed" in s)
    assert "crashed" in status
    assert console.strip(), "the crash output is shown"
