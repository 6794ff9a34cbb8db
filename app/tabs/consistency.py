"""3D-consistency tab: MEt3R of an uploaded or generated video, with an optional second video for an A/B test.

MEt3R (Asim et al. 2025) warps features of frame ``f`` into frame 0 through reconstructed point maps and measures
how much they disagree: lower is more 3D-consistent. The score is only comparable between runs that use the same
feature backbone, so the backbone is named next to every score.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from jog3r.jobs import BACKBONES as LIBRARY_BACKBONES
from jog3r.jobs import score_consistency
from jog3r.viz.plots import per_frame_figure

from app.tabs import file_path, markdown_table

logger = logging.getLogger(__name__)

_BACKBONE_LABELS = {"taef2": "TAEF2 latent features (embedded)", "rgb": "RGB (no learned features)",
                    "dinov2": "DINOv2 (local weights folder)"}
BACKBONES = {_BACKBONE_LABELS.get(key, key): key for key in LIBRARY_BACKBONES}
"""Dropdown label -> ``score_consistency(backbone=...)``: every backbone of :data:`jog3r.jobs.BACKBONES`, labelled."""


class ConsistencyTab:
    """Widgets and handlers of the 3D-consistency tab.

    Attributes:
        video_a: the first video (the Generate tab can send its video here).
    """

    def __init__(self, runtime, wire) -> None:
        self.runtime = runtime
        with gr.Row():
            with gr.Column():
                self.video_a = gr.File(label="Video A", file_types=["video"])
                video_b = gr.File(label="Video B (optional, for an A/B comparison)", file_types=["video"])
                backbone = gr.Dropdown(list(BACKBONES), value=next(iter(BACKBONES)), label="Feature backbone")
                dinov2 = gr.Textbox(label="DINOv2 weights folder", visible=False)
                run = gr.Button("Score 3D consistency", variant="primary")
            with gr.Column():
                summary = gr.Markdown(elem_id="consistency-summary")
                plot_a = gr.Plot(label="Per-frame MEt3R, video A")
                maps_a = gr.Video(label="Error maps A (frame 1 | frame f | error in frame 1's view)",
                                  interactive=False, loop=True)
                plot_b = gr.Plot(label="Per-frame MEt3R, video B")
                maps_b = gr.Video(label="Error maps B", interactive=False, loop=True)
        wire.on(backbone.change, lambda b: gr.Textbox(visible=BACKBONES.get(b) == "dinov2"), [backbone], [dinov2],
                api_name=None, show_progress="hidden")
        wire.on(run.click, self.score, [self.video_a, video_b, backbone, dinov2], [summary, plot_a, plot_b, maps_a, maps_b],
                api_name="consistency", model=True)

    def _score_one(self, pipe, path: Path, backbone: str, dinov2_path: str | None, folder: Path, progress,
                   name: str):
        report = score_consistency(pipe, path, backbone=backbone, dinov2_path=dinov2_path,
                                   error_maps=folder / f"error_maps_{name}.mp4",
                                   progress=lambda fraction, what: progress(fraction, desc=f"{what} {name}"))
        return report.video, report.info, report.result, str(report.error_maps)

    def score(self, video_a, video_b, backbone: str, dinov2_path: str, request: gr.Request,
              progress: gr.Progress = gr.Progress()):
        """MEt3R of video A (and B): summary with the backbone named, per-frame curve, error-map videos."""
        path_a, path_b = file_path(video_a), file_path(video_b)
        if path_a is None:
            raise gr.Error("Upload a video as video A (or send one from the Generate tab).")
        if backbone not in BACKBONES:
            raise gr.Error(f"Unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}.")
        key = BACKBONES[backbone]
        dinov2 = (dinov2_path or "").strip() if key == "dinov2" else ""
        if key == "dinov2" and not dinov2:
            raise gr.Error("DINOv2 needs a local weights folder (nothing is downloaded); type its path.")
        with self.runtime.job(request.session_hash) as session:
            pipe = self.runtime.pipeline_for(session.key)
            folder = session.new_folder("met3r")
            scored = {"A": self._score_one(pipe, path_a, key, dinov2 or None, folder, progress, "A")}
            if path_b is not None:
                scored["B"] = self._score_one(pipe, path_b, key, dinov2 or None, folder, progress, "B")
        names = {"A": path_a.name, "B": path_b.name if path_b is not None else ""}
        results = {name: r for name, (_, _, r, _) in scored.items()}

        rows = [
            (f"video {name}", f"**{float(result.score):.4f}** over {video.num_frames} frames (`{names[name]}`)")
            for name, (video, _, result, _) in scored.items()
        ]
        rows.append(("feature backbone", f"`{next(iter(results.values())).backbone}`"))
        if len(results) == 2:
            better = min(results, key=lambda n: float(results[n].score))
            rows.append(("more 3D-consistent", f"video {better} (lower MEt3R)"))
        notes = [info.message for _, info, _, _ in scored.values() if info.message]
        summary = "**MEt3R** (lower is more consistent)\n\n" + markdown_table(rows, ("", "score"))
        if notes:
            summary += "\n\n" + "\n".join(f"- {n}" for n in notes)
        plots = [
            per_frame_figure(results[n].per_frame, f"MEt3R of video {n}, frame 1 vs frame f",
                             frames=list(range(2, len(results[n].per_frame) + 2)), y_label="MEt3R")
            if n in results else None
            for n in ("A", "B")
        ]
        maps = [scored[n][3] if n in scored else None for n in ("A", "B")]
        return summary, plots[0], plots[1], maps[0], maps[1]
