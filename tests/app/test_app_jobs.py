"""Training-subprocess management (app/jobs.py) with harmless stand-in processes instead of a real run."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from app import jobs

# A stand-in for `python -m jog3r.train`: appends one JSON record per tick to log.jsonl in its working directory,
# and starts a grandchild that would outlive it unless the whole process group is killed.
FAKE_TRAINER = textwrap.dedent(
    """
    import json, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    open("grandchild.pid", "w").write(str(child.pid))
    with open("log.jsonl", "a") as f:
        for step in range(int(sys.argv[1])):
            f.write(json.dumps({"step": step, "loss_gen": 1.0 / (step + 1), "loss_rec": 2.0, "loss_total": 3.0}))
            f.write("\\n")
            f.flush()
            time.sleep(0.05)
    print("done", flush=True)
    child.kill()
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(cond, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_validate_request_accepts_a_good_form(tmp_path):
    req = jobs.validate_request(
        mode="joint", data="synthetic", steps=10, batch_size=2, lr=1e-4, out_dir=str(tmp_path / "run")
    )
    assert req.data == jobs.SYNTHETIC_DATA and req.out_dir == (tmp_path / "run").resolve()
    argv = jobs.train_command(req, python="python")
    assert argv[:3] == ["python", "-m", "jog3r.train"]
    assert argv[argv.index("--mode") + 1] == "joint"
    assert argv[argv.index("--steps") + 1] == "10"
    assert argv[argv.index("--batch-size") + 1] == "2"
    assert argv[argv.index("--lr") + 1] == "0.0001"
    assert argv[argv.index("--lr-schedule") + 1] == "constant"
    cosine = jobs.validate_request(mode="joint", data="synth", steps=10, batch_size=2, lr=1e-4,
                                   out_dir=str(tmp_path / "run"), lr_schedule="cosine")
    cosine_argv = jobs.train_command(cosine)
    assert cosine_argv[cosine_argv.index("--lr-schedule") + 1] == "cosine"
    assert argv[argv.index("--out") + 1] == str((tmp_path / "run").resolve())
    assert jobs.format_command(argv).startswith("python -m jog3r.train --preset tiny")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("mode", "joint; rm -rf /", "Unknown training mode"),
        ("data", "/no/such/folder", "does not exist"),
        ("data", "", "Data is empty"),
        ("steps", 0, "Steps must be"),
        ("steps", 2.5, "Steps must be"),
        ("batch_size", 10_000, "Batch size must be"),
        ("lr", 0.0, "Learning rate"),
        ("lr", 5.0, "Learning rate"),
        ("out_dir", "", "Output folder is empty"),
        ("out_dir", "run\nrm -rf /", "control character"),
        ("preset", "--help", "Invalid preset"),
        ("lr_schedule", "linear", "Unknown learning-rate schedule"),
    ],
)
def test_validate_request_rejects_bad_fields(tmp_path, field, value, message):
    form = dict(mode="joint", data="synth", steps=10, batch_size=2, lr=1e-4, out_dir=str(tmp_path / "run"))
    form[field] = value
    with pytest.raises(ValueError, match=message):
        jobs.validate_request(**form)


def test_option_like_paths_become_absolute(tmp_path, monkeypatch):
    """A folder named like an option can never be read as one: it is passed as an absolute path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "--resume").mkdir()
    req = jobs.validate_request(mode="rec", data="--resume", steps=1, batch_size=1, lr=1e-3, out_dir="--help")
    argv = jobs.train_command(req)
    assert argv[argv.index("--data") + 1] == str(tmp_path / "--resume")
    assert argv[argv.index("--out") + 1] == str(tmp_path / "--help")


def test_output_folder_must_not_clobber_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        jobs.validate_request(mode="joint", data="synth", steps=1, batch_size=1, lr=1e-3, out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="is a file"):
        jobs.validate_request(
            mode="joint", data="synth", steps=1, batch_size=1, lr=1e-3, out_dir=str(tmp_path / "notes.txt")
        )
    with pytest.raises(ValueError, match="Nothing to resume"):
        jobs.validate_request(
            mode="joint", data="synth", steps=1, batch_size=1, lr=1e-3, out_dir=str(tmp_path / "new"), resume=True
        )


def test_job_streams_log_and_finishes(tmp_path):
    job = jobs.Job([sys.executable, "-c", FAKE_TRAINER, "5"], tmp_path / "run")
    job.start()
    assert job.status == "running"
    assert _wait_for(lambda: not job.running)
    assert job.status == "finished" and not job.failed
    records = job.records()
    assert [r["step"] for r in records] == [0, 1, 2, 3, 4]
    assert records[1]["loss_gen"] == pytest.approx(0.5)
    assert job.records() == records  # re-reading does not duplicate
    assert "done" in job.console_tail()


def test_stop_kills_the_whole_process_group(tmp_path):
    manager = jobs.JobManager()
    job = manager.start([sys.executable, "-c", FAKE_TRAINER, "100000"], tmp_path / "run", owner="a")
    assert _wait_for(lambda: len(job.records()) >= 3), job.console_tail()
    grandchild = int((tmp_path / "run" / "grandchild.pid").read_text())
    assert _alive(job.pid) and _alive(grandchild)

    with pytest.raises(RuntimeError, match="already running"):
        manager.start([sys.executable, "-c", "pass"], tmp_path / "other", owner="b")

    manager.stop()
    assert job.status == "stopped" and not job.failed
    assert not _alive(job.pid)
    assert _wait_for(lambda: not _alive(grandchild), timeout=5), "the grandchild survived Stop"
    n = len(job.records())
    time.sleep(0.3)
    assert len(job.records()) == n  # nothing writes any more

    # Once stopped, a new run may start.
    again = manager.start([sys.executable, "-c", "pass"], tmp_path / "again", owner="b")
    assert _wait_for(lambda: not again.running) and again.status == "finished"


def test_stop_escalates_to_sigkill(tmp_path):
    stubborn = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)"
    job = jobs.Job([sys.executable, "-c", stubborn], tmp_path / "run")
    job.start()
    assert _wait_for(lambda: "up" in job.console_tail())
    t0 = time.time()
    job.stop(timeout=0.5)
    assert not job.running and job.returncode == -9
    assert time.time() - t0 < 5


def test_crash_is_reported_with_its_output(tmp_path):
    job = jobs.Job([sys.executable, "-c", "raise SystemExit('data folder holds no videos')"], tmp_path / "run")
    job.start()
    assert _wait_for(lambda: not job.running)
    assert job.failed and job.status == "failed (exit 1)"
    assert "data folder holds no videos" in job.console_tail()


def test_half_written_log_line_waits(tmp_path):
    job = jobs.Job([sys.executable, "-c", "pass"], tmp_path)
    (tmp_path / "log.jsonl").write_text('{"step": 0}\n{"step": ')
    assert job.records() == [{"step": 0}]
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('1}\n')
    assert job.records() == [{"step": 0}, {"step": 1}]


def test_checkpoints_listed_in_step_order(tmp_path):
    job = jobs.Job([sys.executable, "-c", "pass"], tmp_path)
    for name in ("checkpoints/step_1000001", "checkpoints/step_000010", "checkpoints/step_999998", "final"):
        (tmp_path / name).mkdir(parents=True)
    # by step number, not by name: past step 999999 the names no longer sort (issue 17 B3's twin in the app)
    assert [p.name for p in job.checkpoints()] == ["step_000010", "step_999998", "step_1000001", "final"]


def test_cwd_is_the_output_folder(tmp_path):
    job = jobs.Job([sys.executable, "-c", "open('marker', 'w').write('x')"], tmp_path / "run")
    job.start()
    assert _wait_for(lambda: not job.running)
    assert (tmp_path / "run" / "marker").exists()
    assert not Path("marker").exists()


def test_clip_size_options(tmp_path):
    req = jobs.validate_request(mode="gen", data="synth", steps=2, batch_size=1, lr=1e-3, out_dir=str(tmp_path / "r"),
                                num_frames=4, height=64, width=96)
    argv = jobs.train_command(req)
    assert argv[argv.index("--num-frames") + 1] == "4"
    assert argv[argv.index("--height") + 1] == "64" and argv[argv.index("--width") + 1] == "96"
    plain = jobs.train_command(jobs.validate_request(mode="gen", data="synth", steps=2, batch_size=1, lr=1e-3,
                                                     out_dir=str(tmp_path / "r")))
    assert "--num-frames" not in plain and "--height" not in plain
    with pytest.raises(ValueError, match="Frames per clip"):
        jobs.validate_request(mode="gen", data="synth", steps=2, batch_size=1, lr=1e-3, out_dir=str(tmp_path / "r"),
                              num_frames=1)


def test_a_run_stopped_before_its_first_step_can_be_reused_and_resumed(tmp_path):
    """B13 (issue 17): Stop before the first step leaves only console.txt (and maybe train_config.json)."""
    (tmp_path / "console.txt").write_text("loading ...\n")
    for resume in (False, True):
        req = jobs.validate_request(mode="joint", data="synth", steps=1, batch_size=1, lr=1e-3,
                                    out_dir=str(tmp_path), resume=resume)
        assert req.out_dir == tmp_path.resolve() and req.resume is resume
