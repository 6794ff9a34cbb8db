"""Training tab: a form for ``python -m jog3r.train``, the exact command previewed, live log and loss curves.

The run is a subprocess managed by :mod:`app.jobs` (own process group, argument list, no shell). A ``gr.Timer``
polls its ``log.jsonl`` while it runs; when it ends the timer stops and a crash is reported with the run's last
console lines. Any checkpoint it wrote can be loaded for the session that asks (other sessions keep the app's
model), and the session can go back to the app's model.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import gradio as gr

from jog3r.viz.plots import training_figure

from app import jobs

logger = logging.getLogger(__name__)

MODES = {
    "Joint: L_gen + λ·L_rec (JOG3R)": "joint",
    "Frozen generator, train reconstruction (L_rec)": "frozen-rec",
    "Generator only (L_gen)": "gen",
    "Generator + reconstruction, L_rec only": "rec",
}
"""Dropdown label -> ``python -m jog3r.train --mode``."""

POLL_SECONDS = 1.0
LOG_LINES = 30


def default_run_folder() -> str:
    """A new folder name for a run, under the system temp dir (never the app's working directory)."""
    return str(Path(tempfile.gettempdir()) / "jog3r-studio-runs" / time.strftime("run-%Y%m%d-%H%M%S"))


def format_record(record: dict) -> str:
    """One log line for a ``log.jsonl`` record (missing losses are left out: ``gen`` has no ``L_rec``)."""
    parts = [f"step {record.get('step', '?'):>6}"]
    for key, name in (("loss_gen", "L_gen"), ("loss_rec", "L_rec"), ("loss_total", "L_total")):
        if isinstance(record.get(key), (int, float)):
            parts.append(f"{name} {record[key]:.4f}")
    if isinstance(record.get("lr"), (int, float)):
        parts.append(f"lr {record['lr']:.2e}")
    if isinstance(record.get("step_time"), (int, float)):
        parts.append(f"{record['step_time']:.2f} s/step")
    if isinstance(record.get("mem_mb"), (int, float)):
        parts.append(f"{record['mem_mb']:.0f} MB")
    return "  ".join(parts)


class TrainingTab:
    """Widgets and handlers of the Training tab."""

    def __init__(self, runtime, wire, model_info: gr.Markdown) -> None:
        self.runtime = runtime
        with gr.Row():
            with gr.Column():
                mode = gr.Dropdown(list(MODES), value=next(iter(MODES)), label="Mode")
                data = gr.Textbox(
                    "synthetic",
                    label="Data",
                    info="'synthetic' (generated on the fly), a packed synthetic set (python -m jog3r.train.pack) "
                         "or a RealEstate10K-layout folder on this machine",
                )
                with gr.Row():
                    steps = gr.Number(20, label="Steps", precision=0, minimum=1)
                    batch_size = gr.Number(1, label="Batch size", precision=0, minimum=1)
                    lr = gr.Number(2e-4, label="Learning rate", minimum=0, step=1e-5)
                    lr_schedule = gr.Dropdown(list(jobs.LR_SCHEDULES), value="constant", label="LR schedule",
                                              info="after warm-up; cosine decays to 0 at the first run's steps")
                out_dir = gr.Textbox(label="Output folder")
                resume = gr.Checkbox(False, label="Resume the run in this folder")
                with gr.Accordion("Clip size (empty or 0 = the model preset's)", open=False):
                    with gr.Row():  # no `minimum`: a cleared box arrives as 0, which means "default" here
                        num_frames = gr.Number(None, label="Frames per clip", precision=0)
                        height = gr.Number(None, label="Height (px)", precision=0)
                        width = gr.Number(None, label="Width (px)", precision=0)
                command = gr.Code(label="Command", language="shell", interactive=False, wrap_lines=True, lines=3,
                                  max_lines=6)
                with gr.Row():
                    start = gr.Button("Start", variant="primary", elem_id="train-start")
                    stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
            with gr.Column():
                self.status = gr.Markdown("No training run yet.", elem_id="train-status")
                self.plot = gr.Plot(label="Losses")
                self.log = gr.Textbox(label="Log (log.jsonl)", lines=10, max_lines=10, autoscroll=True,
                                      elem_id="train-log")
                with gr.Accordion("Console (stdout + stderr)", open=False):
                    self.console = gr.Textbox(lines=8, max_lines=8, autoscroll=True, show_label=False)
                with gr.Row():
                    self.checkpoint = gr.Dropdown([], label="Checkpoint", allow_custom_value=True, scale=3)
                    load = gr.Button("Load in this tab", scale=1, elem_id="train-load")
                    default = gr.Button("Back to the app's model", scale=1, elem_id="train-default")
                gr.Markdown("A loaded checkpoint serves this browser tab only (all four of its tabs); other users "
                            "keep the app's model. The header says which model is in use.", elem_classes="jog3r-note")
        self.timer = gr.Timer(POLL_SECONDS, active=False)

        form = [mode, data, steps, batch_size, lr, out_dir, resume, num_frames, height, width, lr_schedule]
        polled = [self.status, self.plot, self.log, self.console, self.checkpoint, self.timer]
        wire.on([c.change for c in form], self.preview, form, [command], api_name="train_preview",
                show_progress="hidden")
        wire.on(start.click, self.start, form, [command, self.status, self.timer], api_name="train_start")
        wire.on(self.timer.tick, self.poll, None, polled, api_name="train_status", show_progress="hidden")
        wire.on(stop.click, self.stop, None, polled, api_name="train_stop")
        wire.on(load.click, self.load_checkpoint, [self.checkpoint], [model_info], api_name="load_weights", model=True)
        wire.on(default.click, self.load_default, None, [model_info], api_name="load_default_weights", model=True)
        self._form = form
        self._command = command

    def attach_on_load(self, demo: gr.Blocks, wire) -> None:
        """On page load: a fresh output folder and its command, and re-attach to a run still going (after a reload)."""
        out_dir = self._form[5]
        wire.on(demo.load, default_run_folder, None, [out_dir], api_name=None, show_progress="hidden")
        wire.on(demo.load, lambda: self._poll(warn=False), None,
                [self.status, self.plot, self.log, self.console, self.checkpoint, self.timer],
                api_name=None, show_progress="hidden")

    # ---- handlers --------------------------------------------------------------------------------------------

    @staticmethod
    def _request(mode, data, steps, batch_size, lr, out_dir, resume, num_frames, height, width, lr_schedule) -> jobs.TrainRequest:
        if mode not in MODES:
            raise ValueError(f"Unknown mode {mode!r}; choose one of: {', '.join(MODES)}.")
        return jobs.validate_request(
            mode=MODES[mode], data=data, steps=steps, batch_size=batch_size, lr=lr, out_dir=out_dir, resume=resume,
            num_frames=num_frames or None, height=height or None, width=width or None,  # empty / 0 = default
            lr_schedule=lr_schedule,
        )

    def preview(self, mode, data, steps, batch_size, lr, out_dir, resume, num_frames, height, width, lr_schedule) -> str:
        """The exact command Start would run, or a comment saying which field is wrong."""
        try:
            request = self._request(mode, data, steps, batch_size, lr, out_dir, resume, num_frames, height, width, lr_schedule)
            return jobs.format_command(jobs.train_command(request))
        except ValueError as exc:
            return f"# cannot start: {exc}"

    def start(self, mode, data, steps, batch_size, lr, out_dir, resume, num_frames, height, width, lr_schedule,
              request: gr.Request):
        """Validate the form and start the run; the timer starts polling its log."""
        argv = jobs.train_command(
            self._request(mode, data, steps, batch_size, lr, out_dir, resume, num_frames, height, width, lr_schedule)
        )
        try:
            job = self.runtime.jobs.start(argv, Path(argv[argv.index("--out") + 1]), owner=request.session_hash or "")
        except RuntimeError as exc:  # another run is going
            raise gr.Error(str(exc)) from exc
        return jobs.format_command(argv), f"**Running** (pid {job.pid}) → `{job.out_dir}`", gr.Timer(active=True)

    def poll(self):
        """Status, loss curves, log tail, console tail and checkpoints of the current run (warns on a crash)."""
        return self._poll(warn=True)

    def _poll(self, warn: bool):
        job = self.runtime.jobs.current
        if job is None:
            return "No training run yet.", None, "", "", gr.Dropdown(), gr.Timer(active=False)
        records = job.records()
        running = job.running
        last = records[-1] if records else {}
        status = f"**{job.status.capitalize()}** (pid {job.pid}) → `{job.out_dir}` · {len(records)} log records"
        if "step" in last:
            status += f" · step {last['step']}"
        if job.failed:
            status += "\n\nThe run crashed; its last console lines are below."
            if warn:
                gr.Warning(f"Training {job.status}: " + (job.console_tail(300).strip().splitlines() or ["no output"])[-1])
        figure = training_figure(records) if records else None
        log = "\n".join(format_record(r) for r in records[-LOG_LINES:])
        checkpoints = [str(p) for p in job.checkpoints()]
        dropdown = gr.Dropdown(choices=checkpoints, value=checkpoints[-1] if checkpoints else None)
        return status, figure, log, job.console_tail(), dropdown, gr.Timer(active=running)

    def stop(self):
        """Stop the current run (its whole process group) and show its final state."""
        self.runtime.jobs.stop()
        return self.poll()

    def load_checkpoint(self, checkpoint: str | None, request: gr.Request) -> str:
        """Load a checkpoint folder for this session only (its four tabs); the current model stays if it fails."""
        if not checkpoint or not str(checkpoint).strip():
            raise gr.Error("Choose a checkpoint folder first (a run's final/ or checkpoints/step_*).")
        self.runtime.load_for_session(request.session_hash, checkpoint)
        gr.Info(f"Loaded {checkpoint} for this tab")
        return self.runtime.model_markdown(request.session_hash)

    def load_default(self, request: gr.Request) -> str:
        """Go back to the app's model in this session."""
        self.runtime.load_for_session(request.session_hash, None)
        return self.runtime.model_markdown(request.session_hash)
