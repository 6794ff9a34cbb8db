"""The generate job, written once: a prompt -> video (T2V), optionally its cameras (T2V+C) and the T2V -> V2C
cascade, with the exports (:class:`GenerateReport`).

Called by the app's Generate tab (``app/tabs/generate.py``) and ``jog3r t2v`` / ``jog3r t2vc`` (:mod:`jog3r.cli`).
Steps, top to bottom in :func:`generate`:

1. sampling (and, for T2V+C, decoding the tapped features; the cascade's V2C) by
   :meth:`JOG3RPipeline.text_to_video`;
2. the video as ``video.mp4`` in the export folder;
3. unless only the video is wanted, the cameras' exports (the export job,
   :func:`jog3r.jobs.export.export_reconstruction`; the cascade's
   in ``cascade_v2c/``) and :meth:`GenerateReport.record` as ``summary.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from jog3r.diffusion import CFG_SCALE, DEFAULT_STEPS, SamplerName
from jog3r.jobs.export import export_reconstruction
from jog3r.pipeline import JOG3RPipeline, T2VOutput
from jog3r.types import Reconstruction, Video
from jog3r.io.video import write_video


@dataclass(frozen=True)
class GenerateReport:
    """What one generate job (T2V, T2V+C) produced.

    Attributes:
        output: the pipeline's :class:`~jog3r.pipeline.T2VOutput` (video, T2V+C and cascade cameras,
            self-consistency, feature timestep, the pipeline's stage timings).
        prompt, sampler, steps, seed, guidance_scale: the settings (``steps`` resolved to the sampler's default).
        timings: seconds per stage: the pipeline's stages, ``export`` when written, and ``total``.
        messages: notes for the user, in order.
        export_dir: the folder of the exports, or ``None`` when nothing was written.
        video_path: the written ``video.mp4``, or ``None``.
    """

    output: T2VOutput
    prompt: str
    sampler: str
    steps: int
    seed: int
    guidance_scale: float
    timings: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    export_dir: Path | None = None
    video_path: Path | None = None

    @property
    def video(self) -> Video:
        """The generated video (frames ``[F, 3, H, W]`` in ``[0, 1]``)."""
        return self.output.video

    @property
    def reconstruction(self) -> Reconstruction | None:
        """T2V+C cameras and points, or ``None``."""
        return self.output.reconstruction

    @property
    def cascade_reconstruction(self) -> Reconstruction | None:
        """T2V -> V2C cameras and points, or ``None``."""
        return self.output.cascade_reconstruction

    @property
    def consistency(self) -> dict | None:
        """``{"rot_deg", "transl_deg"}``: T2V+C vs T2V -> V2C cameras (paper Sec. 4.3), or ``None``."""
        return self.output.consistency

    def record(self) -> dict[str, Any]:
        """The job's settings and numbers as one JSON-ready dict (``summary.json``): ``prompt``, ``sampler``,
        ``steps``, ``seed``, ``guidance_scale``, ``timings_s`` (the pipeline's stages) and, with T2V+C cameras,
        ``feature_timestep`` and ``self_consistency_deg``."""
        record: dict[str, Any] = {"prompt": self.prompt, "sampler": self.sampler, "steps": self.steps,
                                  "seed": self.seed, "guidance_scale": self.guidance_scale,
                                  "timings_s": self.output.timings}
        if self.output.reconstruction is not None:
            record["feature_timestep"] = self.output.feature_timestep
            record["self_consistency_deg"] = self.output.consistency
        return record

    def as_table(self) -> list[tuple[str, str]]:
        """``[(name, value)]`` rows for display: frames, size, fps and the self-consistency (with T2V+C)."""
        video = self.output.video
        rows = [("frames", str(video.num_frames)), ("size", f"{video.size[1]}x{video.size[0]}"),
                ("fps", f"{video.fps:g}")]
        for name, value in (self.output.consistency or {}).items():
            rows.append((name, f"{value:.2f} °"))
        return rows


def _export_cameras(recon: Reconstruction, out: Path, video: Video, metrics: dict | None) -> None:
    export_reconstruction(recon, out, metrics=metrics, video_frames=video.frames, fps=video.fps,
                          method=(metrics or {}).get("method"))


def generate(pipe: JOG3RPipeline, prompt: str, *, seed: int = 0, sampler: SamplerName | str = "ddim",
             steps: int | None = None, guidance_scale: float = CFG_SCALE, guide_channels: int | None = None,
             estimate_cameras: bool = False, cascade: bool = False, export_dir: str | Path | None = None,
             video_only: bool = False,
             progress: Callable[[float, str], None] | None = None) -> GenerateReport:
    """Run the generate job (T2V; T2V+C with ``estimate_cameras``; steps in the module docstring).

    Args:
        pipe: the pipeline.
        prompt: the caption (checked by the pipeline: empty, too long).
        seed: seeds the initial noise and the sampler.
        sampler: one of :data:`jog3r.diffusion.SAMPLERS`.
        steps: denoising steps (default per sampler, :data:`jog3r.diffusion.DEFAULT_STEPS`).
        guidance_scale: classifier-free guidance scale.
        guide_channels: guide only the first ``g`` eps channels (``3``: OpenSora v1.0's quirk; ``None`` all).
        estimate_cameras: T2V+C: the cameras from the features tapped during sampling.
        cascade: also V2C on the generated video and the self-consistency of the two.
        export_dir: write ``video.mp4`` there (the folder is created) and, unless ``video_only``, the cameras'
            exports and ``summary.json``.
        video_only: write only ``video.mp4``.
        progress: optional ``(fraction, description)`` callback.

    Returns:
        A :class:`GenerateReport`.

    Raises:
        ValueError: a bad prompt, sampler, step count or guidance scale (before sampling).
    """
    out = pipe.text_to_video(prompt, seed=seed, sampler=sampler, steps=steps, guidance_scale=guidance_scale,
                             guide_channels=guide_channels, estimate_cameras=estimate_cameras, cascade=cascade,
                             progress=progress)
    sampler = str(sampler)  # a SamplerName member -> its plain string (summary.json)
    timings = {k: v for k, v in out.timings.items() if k != "total"}
    report = GenerateReport(out, prompt, sampler, steps if steps is not None else DEFAULT_STEPS[sampler], seed,
                            guidance_scale, timings)
    video_path = None
    if export_dir is not None:
        start = time.perf_counter()
        export_dir = Path(export_dir)
        video_path = write_video(export_dir / "video.mp4", out.video.frames, fps=out.video.fps)
        if not video_only:
            record = report.record()
            if out.reconstruction is not None:
                _export_cameras(out.reconstruction, export_dir, out.video, record)
                if out.cascade_reconstruction is not None:
                    _export_cameras(out.cascade_reconstruction, export_dir / "cascade_v2c", out.video, None)
            (export_dir / "summary.json").write_text(json.dumps(record, indent=1, default=str))
        timings["export"] = time.perf_counter() - start
    timings["total"] = sum(timings.values())
    return GenerateReport(out, prompt, sampler, report.steps, seed, guidance_scale, timings, [], export_dir,
                          video_path)


__all__ = ["GenerateReport", "generate"]
