"""Generate tab: prompt -> video (T2V), optionally with its cameras (T2V+C) and the T2V -> V2C cascade to compare."""

from __future__ import annotations

import logging

import gradio as gr

from jog3r.checks import check_seed

from jog3r.diffusion import CFG_SCALE, DEFAULT_STEPS
from jog3r.diffusion import SAMPLERS as LIBRARY_SAMPLERS
from jog3r.jobs import generate
from jog3r.viz.plots import trajectory_figure

from app.tabs import progress_callback, timings_text

logger = logging.getLogger(__name__)

_SAMPLER_LABELS = {"ddim": "DDIM", "dpmsolver++": "DPM-Solver++", "iddpm": "IDDPM (ancestral, needs many steps)"}
SAMPLERS = {_SAMPLER_LABELS.get(key, key): key
            for key in sorted(LIBRARY_SAMPLERS, key=lambda k: list(_SAMPLER_LABELS).index(k)
                              if k in _SAMPLER_LABELS else len(_SAMPLER_LABELS))}
"""Dropdown label -> ``generate(sampler=...)``: every sampler of :data:`jog3r.diffusion.SAMPLERS`, labelled."""


class GenerateTab:
    """Widgets and handlers of the Generate tab.

    Attributes:
        video: the generated video (also the source of "Score its 3D consistency").
        send: button that copies the video to the 3D-consistency tab (wired in :mod:`app.ui`).
    """

    def __init__(self, runtime, wire) -> None:
        self.runtime = runtime
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(
                    label="Prompt",
                    lines=3,
                    placeholder="A slow walk through a bright living room with large windows",
                )
                with gr.Row():
                    seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                    sampler = gr.Dropdown(list(SAMPLERS), value="DDIM", label="Sampler")
                    steps = gr.Slider(1, 250, value=DEFAULT_STEPS["ddim"], step=1, label="Steps")
                guidance = gr.Slider(1.0, 15.0, value=CFG_SCALE, step=0.5, label="Guidance scale")
                estimate = gr.Checkbox(True, label="Also estimate cameras (T2V+C, one pass)")
                cascade = gr.Checkbox(
                    False, label="Compare with the cascade: V2C on the generated video (T2V → V2C)"
                )
                run = gr.Button("Generate", variant="primary")
            with gr.Column():
                self.video = gr.Video(label="Generated video", autoplay=True, loop=True, interactive=False,
                                      elem_id="generate-video")
                summary = gr.Markdown(elem_id="generate-summary")
                plot = gr.Plot(label="Camera trajectories")
                consistency = gr.JSON(label="T2V+C vs T2V → V2C", open=False)
                self.send = gr.Button("Score its 3D consistency →", size="sm")
        wire.on(sampler.change, lambda label: DEFAULT_STEPS[SAMPLERS[label]], [sampler], [steps], api_name=None,
                show_progress="hidden")
        wire.on(
            [run.click, prompt.submit],
            self.generate,
            [prompt, seed, sampler, steps, guidance, estimate, cascade],
            [self.video, summary, plot, consistency],
            api_name="generate",
            model=True,
        )

    def generate(
        self,
        prompt: str,
        seed: float,
        sampler: str,
        steps: float,
        guidance_scale: float,
        estimate_cameras: bool,
        cascade: bool,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ):
        """Text -> video (+ cameras); returns the video file, a summary, the trajectory plot and the comparison.

        The pipeline checks the prompt (empty, too long) and the other inputs; its messages reach the page.
        """
        if sampler not in SAMPLERS:
            raise gr.Error(f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}.")
        with self.runtime.job(request.session_hash) as session:
            return self._generate(session, prompt, seed, sampler, steps, guidance_scale, estimate_cameras, cascade,
                                  progress)

    def _generate(self, session, prompt, seed, sampler, steps, guidance_scale, estimate_cameras, cascade, progress):
        report = generate(
            self.runtime.pipeline_for(session.key),
            prompt or "",
            seed=check_seed(0 if seed is None else seed),
            sampler=SAMPLERS[sampler],
            steps=int(steps),
            guidance_scale=float(guidance_scale),
            estimate_cameras=bool(estimate_cameras),
            cascade=bool(cascade),
            export_dir=session.new_folder("generate"),
            video_only=True,
            progress=progress_callback(progress),
        )
        out, video_path = report.output, report.video_path

        shown = out.reconstruction if out.reconstruction is not None else out.cascade_reconstruction
        if shown is not None and self.runtime.viewer is not None:
            self.runtime.viewer.show(session.token, shown, label="Generated video")
        trajectories = [
            (label, recon)
            for label, recon in (("T2V+C", out.reconstruction), ("T2V → V2C", out.cascade_reconstruction))
            if recon is not None
        ]
        figure = None
        if trajectories:
            figure = trajectory_figure([r.cam2world for _, r in trajectories], [name for name, _ in trajectories])

        summary = (
            f"**{out.video.num_frames} frames** at {out.video.size[1]}x{out.video.size[0]}, {out.video.fps:g} fps · "
            f"{timings_text(out.timings)}"
        )
        if out.consistency:
            summary += "\n\nT2V+C vs T2V → V2C cameras: " + ", ".join(
                f"{name} {value:.2f}" for name, value in out.consistency.items()
            )
        return str(video_path), summary, figure, out.consistency or {}
