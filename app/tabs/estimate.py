"""Estimate-cameras tab (V2C): video or images -> point maps -> global alignment -> cameras, depth, point cloud.

Before anything runs, choosing files (or changing the sampling) shows how many frames will be used and what the
run should cost. A ground-truth camera file (RealEstate10K ``.txt`` or nerfstudio ``transforms.json``) adds the
paper's pose metrics, a per-frame error curve and the GT cameras in the viewer. Every export is offered as one zip.

Frame ``i`` of the upload (in file-name order for images) is matched to camera ``i`` of the ground-truth file.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import gradio as gr

from jog3r.align.refine import RefineConfig
from jog3r.align.joint import METHOD_JOINT, METHOD_PAPER
from jog3r.io.export_bundle import zip_bundle
from jog3r.jobs import MATCHES, Intrinsics, V2CReport, estimate_cameras
from jog3r.types import Reconstruction
from jog3r.io.video import IMAGE_SUFFIXES
from jog3r.viz.colors import colormap, to_uint8
from jog3r.io.scene import DEFAULT_KEEP_PERCENT
from jog3r.viz.plots import loss_figure, per_frame_figure, trajectory_figure

from app.runtime import PLAN_PREFIX
from app.tabs import file_paths, markdown_table, progress_callback, timings_text
from app.viewer import GroundTruth

logger = logging.getLogger(__name__)

SAMPLING = {
    "Model default (evenly spaced)": "default",
    "Number of frames": "count",
    "Every k-th frame": "stride",
}
"""Radio label -> how ``load_video`` picks frames."""

METRIC_KEYS = ("RRA@5", "RTA@5", "mAA@30", "Rot. err.", "Trans. err.")
"""The pose metrics shown, in this order (all of :data:`jog3r.jobs.METRIC_KEYS`)."""


def _check_keep_percent(value) -> float:
    """The "Points kept" value as a float in ``(0, 100]``, or a ``gr.Error`` saying what is wrong (NaN too)."""
    try:
        keep = float(value)
    except (TypeError, ValueError):
        keep = float("nan")
    if not 0.0 < keep <= 100.0:
        raise gr.Error(f"Points kept must be a percentage between 1 and 100, got {value!r}.")
    return keep


EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "realestate10k" / "clips16_384x256"
"""The repository's own clips (RealEstate10K, licence in tests/data/SOURCES.md) offered as clickable examples;
absent from an installed package, then the tab has no examples."""


def example_inputs() -> list[list]:
    """``[[video], camera file]`` for every clip of :data:`EXAMPLES_DIR` that has its ``.txt``, sorted."""
    if not EXAMPLES_DIR.is_dir():
        return []
    return [[[str(mp4)], str(mp4.with_suffix(".txt"))] for mp4 in sorted(EXAMPLES_DIR.glob("*.mp4"))
            if mp4.with_suffix(".txt").is_file()]


def _frame_range(pipe) -> str:
    """``"2 to 64"``: the frame counts one V2C run accepts."""
    return f"2 to {getattr(pipe, 'max_frames', 4 * pipe.num_frames)}"


def _natural_key(path: Path) -> list:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", path.name)]


class EstimateTab:
    """Widgets and handlers of the Estimate-cameras tab."""

    def __init__(self, runtime, wire) -> None:
        self.runtime = runtime
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Video, or images of one scene", file_count="multiple",
                                file_types=["video", "image"], elem_id="estimate-files")
                sampling = gr.Radio(list(SAMPLING), value=next(iter(SAMPLING)), label="Frame sampling")
                with gr.Row():
                    count = gr.Number(16, label="Frames", precision=0, minimum=2)
                    stride = gr.Number(1, label="Stride k", precision=0, minimum=1)
                plan = gr.Markdown("Choose a video or images to see the frames and the expected cost.",
                                   elem_id="estimate-plan")
                with gr.Accordion("Known intrinsics (pixels of the uploaded frames)", open=False):
                    use_K = gr.Checkbox(False, label="Use these intrinsics instead of estimating the focal length")
                    with gr.Row():
                        fx, fy = gr.Number(None, label="fx"), gr.Number(None, label="fy")
                        cx, cy = gr.Number(None, label="cx"), gr.Number(None, label="cy")
                refine = gr.Radio([(f"{METHOD_JOINT}: SIFT matches at the source resolution and the point maps in "
                                    "one alignment", "sift"), (f"{METHOD_PAPER}: the point maps alone", "none")],
                                  value="sift", label="Cameras from", elem_id="estimate-matches")
                gt_file = gr.File(label="Ground-truth cameras (optional: RealEstate10K .txt or transforms.json)",
                                  file_types=[".txt", ".json"], elem_id="estimate-gt")
                conf = gr.Slider(1, 100, value=DEFAULT_KEEP_PERCENT, step=1, elem_id="estimate-keep",
                                 label="Points kept (% most confident, in the viewer and the exports)")
                run = gr.Button("Estimate cameras", variant="primary", elem_id="estimate-run")
                examples = example_inputs()
                if examples:
                    gr.Examples(examples, [files, gt_file], label="Examples: RealEstate10K clips (16 frames, "
                                "384x256) with their ground-truth cameras; click one, then Estimate cameras",
                                examples_per_page=6, cache_examples=False)
            with gr.Column():
                summary = gr.Markdown(elem_id="estimate-summary")
                metrics = gr.Markdown(elem_id="estimate-metrics")
                trajectory = gr.Plot(label="Camera trajectory")
                rot_per_frame = gr.Plot(label="Rotation error of frame f vs frame 1")
                trans_per_frame = gr.Plot(label="Translation-direction error of frame f vs frame 1")
                bundle = gr.File(label="Download every export (zip)")
                with gr.Accordion("Depth and confidence", open=False):
                    gallery = gr.Gallery(columns=4, height=300, show_label=False)
                with gr.Accordion("Global alignment loss", open=False):
                    loss = gr.Plot(show_label=False)
                with gr.Accordion("Cameras and metrics (JSON)", open=False):
                    result = gr.JSON(show_label=False, max_height=300)

        wire.on([files.change, sampling.change, count.change, stride.change], self.plan,
                [files, sampling, count, stride], [plan], api_name="estimate_plan", show_progress="minimal",
                trigger_mode="always_last")
        wire.on(run.click, self.estimate,
                [files, sampling, count, stride, use_K, fx, fy, cx, cy, gt_file, conf, refine],
                [summary, metrics, trajectory, rot_per_frame, trans_per_frame, bundle, gallery, loss, result],
                api_name="estimate_cameras", model=True)
        wire.on(conf.change, self.set_keep_percent, [conf], None, api_name=None, show_progress="hidden",
                trigger_mode="always_last")

    # ---- helpers ---------------------------------------------------------------------------------------------

    def _source(self, files, session, name: str = "images") -> Path:
        """One video file, one image, or a folder ``<name>-NNN`` of links to the uploaded images (file-name order).

        Raises:
            gr.Error: nothing uploaded, several videos, or a video together with images.
        """
        paths = file_paths(files)
        if not paths:
            raise gr.Error("Upload a video, or several images of one scene.")
        if len(paths) == 1:
            return paths[0]
        images = [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]
        others = [p for p in paths if p.suffix.lower() not in IMAGE_SUFFIXES]
        if others:
            what = f"{len(images)} image(s) and " if images else ""
            raise gr.Error(
                f"Upload either one video or several images of one scene, not both: got {what}"
                f"{len(others)} video(s) ({', '.join(p.name for p in others[:3])}). Remove the extra files."
            )
        folder = session.new_folder(name)
        for i, path in enumerate(sorted(images, key=_natural_key)):
            (folder / f"{i:05d}{path.suffix.lower()}").symlink_to(path.resolve())
        return folder

    @staticmethod
    def _load(pipe, path: Path, **how):
        """``pipe.load_video`` with messages about the app's internal image folder said as "the uploaded images"."""
        try:
            return pipe.load_video(path, **how)
        except (ValueError, FileNotFoundError) as exc:
            text = str(exc)
            if path.is_dir():
                text = text.replace(str(path), "the uploaded images")
            raise gr.Error(text) from exc

    @staticmethod
    def _sampling(sampling: str, count, stride) -> dict:
        mode = SAMPLING.get(sampling)
        if mode is None:
            raise gr.Error(f"Unknown sampling {sampling!r}; choose one of {', '.join(SAMPLING)}.")
        if mode == "count":
            if count is None or int(count) < 2:
                raise gr.Error("Use at least 2 frames: cameras are estimated relative to each other.")
            return {"num_frames": int(count)}
        if mode == "stride":
            if stride is None or int(stride) < 1:
                raise gr.Error("The stride must be a whole number of at least 1.")
            return {"stride": int(stride)}
        return {}

    # ---- handlers --------------------------------------------------------------------------------------------

    def plan(self, files, sampling, count, stride, request: gr.Request) -> str:
        """How many frames will be used and the expected time and memory, before running.

        The frame count follows the run's own rule (``pipeline.check_frame_count``): a sampling the run would
        refuse is said here, with what to change, instead of a cost.
        """
        if not file_paths(files):
            return "Choose a video or images to see the frames and the expected cost."
        session = self.runtime.session(request.session_hash)
        pipe = self.runtime.pipeline_for(request.session_hash)
        how = self._sampling(sampling, count, stride)
        source = self._source(files, session, PLAN_PREFIX + "images")
        try:
            video, info = self._load(pipe, source, **how)
        finally:
            if source.parent == session.folder and source.name.startswith(PLAN_PREFIX):
                shutil.rmtree(source, ignore_errors=True)
        height, width = video.size
        try:
            cost = pipe.estimate_cost(video.num_frames)
        except ValueError as exc:
            text = (f"**{video.num_frames} frames** were asked for, but one run takes "
                    f"{_frame_range(pipe)} frames, so this would be refused: {exc}. Choose *Number of frames* "
                    f"(at most {getattr(pipe, 'max_frames', '?')}) or a larger *Every k-th frame*.")
        else:
            text = (
                f"**{video.num_frames} frames** will be used, at the model's {width}x{height}. "
                f"Expected: about **{cost['seconds']:.0f} s** and **{cost['memory_mb']:.0f} MB** on "
                f"`{self.runtime.device}`."
            )
        if info.get("message"):
            text += f"\n\n{info['message']}"
        return text

    def estimate(self, files, sampling, count, stride, use_K, fx, fy, cx, cy, gt_file,
                 keep_percent=DEFAULT_KEEP_PERCENT, matches="sift", request: gr.Request = None,
                 progress: gr.Progress = gr.Progress()):
        """Run V2C; returns the summary, metrics, plots, the zip of exports, the depth gallery and a JSON result.

        Earlier results of the session are deleted first, and a failed run leaves no folder behind.
        """
        keep_percent = _check_keep_percent(keep_percent)
        with self.runtime.job(request.session_hash) as session:
            return self._estimate(session, files, sampling, count, stride, use_K, fx, fy, cx, cy, gt_file,
                                  keep_percent, matches, progress)

    def _estimate(self, session, files, sampling, count, stride, use_K, fx, fy, cx, cy, gt_file, keep_percent,
                  matches, progress):
        pipe = self.runtime.pipeline_for(session.key)
        path, how = self._source(files, session), self._sampling(sampling, count, stride)
        if matches not in MATCHES:
            raise gr.Error(f"'Cameras from' must be 'sift' or 'none', got {matches!r}.")
        gt = file_paths(gt_file)[0] if file_paths(gt_file) else None
        folder = session.new_folder("v2c")
        try:  # the one V2C job (jog3r.jobs): frames, known K, ground truth, cameras, metrics, exports
            report = estimate_cameras(
                pipe, path, **how, intrinsics=Intrinsics(fx, fy, cx, cy) if use_K else None, gt=gt,
                matches=matches, export_dir=folder / "export", keep_percent=keep_percent,
                progress=progress_callback(progress))
        except (ValueError, FileNotFoundError) as exc:
            text = str(exc)
            if path.is_dir():  # the app's internal image folder is "the uploaded images" to the user
                text = text.replace(str(path), "the uploaded images")
            if gt is not None:  # and the upload's temporary path is its file name
                text = text.replace(str(gt), gt.name)
            raise gr.Error(text) from exc
        for message in report.messages:
            gr.Info(message)
        bundle = zip_bundle(folder / "export")
        gt = None
        if report.ground_truth is not None:
            truth = report.ground_truth
            gt = GroundTruth(truth.cam2world, truth.K, truth.image_size)
        if self.runtime.viewer is not None:
            self.runtime.viewer.show(session.token, report.reconstruction, ground_truth=gt, keep_percent=keep_percent,
                                     label="Estimated cameras")
        return self._outputs(report, bundle, self.runtime.model_markdown(session.key))

    def _outputs(self, report: V2CReport, bundle: Path, model: str) -> tuple:
        """What the widgets show after a V2C run (same order as the ``estimate_cameras`` outputs)."""
        video, out, recon = report.video, report.output, report.reconstruction
        summary = (
            f"**{video.num_frames} frames** at {video.size[1]}x{video.size[0]} · focal (frame 1) "
            f"{float(recon.focal[0]):.1f} px · {timings_text(out.timings)}\n\n{model}"
        )
        summary += f"\n\nCameras: **{out.method}**"
        if out.match_info is not None:
            r = out.match_info
            cloud = r.get("cloud_reprojection_px")
            summary += (f" ({r['status']}: {r['matches']} correspondences over {r['pairs']} frame pairs at "
                        f"{r['match_size'][1]}x{r['match_size'][0]}; point cloud reprojection error "
                        + (f"{cloud:.2f} px" if cloud is not None else "not measured") + ")")
            if r.get("weak_steps"):
                summary += (f". {r['weak_steps']} steps rest on fewer than {RefineConfig().weak_matches} "
                            "correspondences (frames far apart?): their cameras may be worse than the alignment's")
        table = {k: report.scores.all[k] for k in METRIC_KEYS} if report.scores is not None else None
        metrics_md = ""
        if table:
            metrics_md = "**Pose metrics vs ground truth** (all frame pairs)\n\n" + markdown_table(
                report.as_table(METRIC_KEYS), ("metric", "value"))
        gt_c2w = report.ground_truth.cam2world if report.ground_truth is not None else None
        trajectory = trajectory_figure([recon.cam2world], [out.method], gt=gt_c2w)
        rot_plot = trans_plot = None
        if report.scores is not None:  # errors of the pairs (frame 1, frame f), f = 2..F
            frames = list(range(2, video.num_frames + 1))
            rot_plot = per_frame_figure(report.scores.rot_err_first, "Relative rotation error", frames=frames,
                                        y_label="degrees")
            trans_plot = per_frame_figure(report.scores.trans_err_first, "Translation-direction error",
                                          frames=frames, y_label="degrees")
        result = {
            "num_frames": video.num_frames,
            "image_size": list(video.size),
            "frame_indices": video.frame_indices.tolist() if video.frame_indices is not None else None,
            "cam2world": recon.cam2world.tolist(),
            "K": recon.K.tolist(),
            "metrics": table,
            "timings": out.timings,
            "method": out.method,
            "matches": out.match_info,
        }
        return (summary, metrics_md, trajectory, rot_plot, trans_plot, str(bundle), self._gallery(recon),
                loss_figure(out.align_history), result)

    @staticmethod
    def _gallery(recon: Reconstruction) -> list:
        """Depth (turbo) and confidence (viridis) of every frame, each colour-mapped over its own range."""
        maps = recon.numpy()
        items = []
        for f in range(recon.num_frames):
            items.append((to_uint8(colormap(maps["depth"][f], "turbo")), f"depth {f + 1}"))
            items.append((to_uint8(colormap(maps["conf"][f], "viridis")), f"confidence {f + 1}"))
        return items

    def set_keep_percent(self, keep_percent: float, request: gr.Request) -> None:
        """Redraw the session's points with another share of the most confident ones (no model run)."""
        if self.runtime.viewer is not None:
            token = self.runtime.session(request.session_hash).token
            self.runtime.viewer.set_keep_percent(token, _check_keep_percent(keep_percent))
