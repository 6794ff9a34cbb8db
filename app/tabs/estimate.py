"""Estimate-cameras tab (V2C): video or images -> point maps -> global alignment -> cameras, depth, point cloud.

Before anything runs, choosing files (or changing the sampling) shows how many frames will be used and what the
run should cost. A ground-truth camera file (RealEstate10K ``.txt`` or nerfstudio ``transforms.json``) adds the
paper's pose metrics, a per-frame error curve and the GT cameras in the viewer. Every export is offered as one zip.

Frame ``i`` of the upload (in file-name order for images) is matched to camera ``i`` of the ground-truth file.

Frame counts (:func:`frame_plan`): up to the model's ``F`` (16) frames one V2C run; above it, up to
:data:`jog3r.long_v2c.MAX_FRAMES` (600), the long-video V2C (the model on overlapping ``F``-frame windows, one global
alignment; :func:`jog3r.long_v2c.long_video_to_cameras`), as ``jog3r v2c --frames N|all``; above 600 a one-line
refusal, said in the plan before anything is decoded. *Fit to the model's aspect* is ``load_video(fit=...)``:
``crop`` (centre crop, the default) or ``pad`` (black bars, the whole frame is seen), as ``jog3r v2c --fit``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import shutil
import time
from pathlib import Path

import gradio as gr
import numpy as np

from jog3r.align.refine import RefineConfig
from jog3r.align.joint import METHOD_JOINT, METHOD_PAPER
from jog3r.jobs import FITS, MATCHES, Intrinsics, V2CReport, estimate_cameras, load_video
from jog3r.jobs.cost import machine_speed
from jog3r.jobs.v2c import count_source_frames, plan_cost
from jog3r.long_v2c import MAX_FRAMES
from jog3r.types import Reconstruction
from jog3r.io.video import IMAGE_SUFFIXES
from jog3r.viz.colors import colormap, to_uint8
from jog3r.io.scene import DEFAULT_KEEP_PERCENT
from jog3r.viz.plots import loss_figure, note_figure, per_frame_figure, trajectory_figure

from app.runtime import PLAN_PREFIX
from app.tabs import file_paths, markdown_table, progress_callback, timings_text
from app.viewer import GroundTruth

logger = logging.getLogger(__name__)

SAMPLING = {
    "Model default (evenly spaced)": "default",
    "Number of frames": "count",
    "Every k-th frame": "stride",
    "All frames": "all",
}
"""Radio label -> how ``load_video`` picks frames (see :func:`frame_plan`)."""

_FIT_LABELS = {"crop": "crop: centre crop to the model's aspect", "pad": "pad: the whole frame, with black bars"}
FIT = {value: _FIT_LABELS.get(value, value) for value in FITS}
"""``fit`` value of ``load_video`` (every one of :data:`jog3r.jobs.FITS`) -> its label in the *Fit to the model's
aspect* radio."""


@dataclasses.dataclass(frozen=True)
class FramePlan:
    """Which frames a run samples and which V2C runs them.

    Attributes:
        num_frames: frames the run will use (the source may have fewer: then all of them).
        long: the long-video V2C (more frames than the model's ``F``) instead of one run.
        how: ``num_frames`` / ``stride`` keyword arguments of ``load_video`` and ``estimate_cameras``.
    """

    num_frames: int
    long: bool
    how: dict

    @property
    def refusal(self) -> str | None:
        """The one-line refusal when :attr:`num_frames` is above :data:`MAX_FRAMES`, else ``None``."""
        if self.num_frames <= MAX_FRAMES:
            return None
        return (f"{self.num_frames} frames is more than the long-video limit of {MAX_FRAMES} frames (time and "
                f"memory grow with the frame count): choose *Number of frames* (at most {MAX_FRAMES}) or a larger "
                "*Every k-th frame*.")


def frame_plan(source: Path, sampling: str, count, stride, model_frames: int) -> FramePlan:
    """The frame count and path of a run, from the sampling controls, without decoding the video.

    ``"default"``: the model's ``F`` frames evenly spaced, one run. ``"count"`` (N) and ``"all"`` (every frame of
    the source, counted from the file header or the folder) and ``"stride"`` (every k-th: ``ceil(frames / k)``)
    run the long-video V2C above ``model_frames`` (as ``jog3r v2c --frames``).

    Args:
        source: the video file or image folder.
        sampling: a :data:`SAMPLING` label; count, stride: the *Frames* and *Stride k* fields.
        model_frames: the model's frame count ``F``.

    Returns:
        A :class:`FramePlan`; above :data:`MAX_FRAMES` its :attr:`~FramePlan.refusal` says so (nothing decoded).

    Raises:
        gr.Error: an unknown sampling, fewer than 2 frames or a stride below 1.
    """
    mode = SAMPLING.get(sampling)
    if mode is None:
        raise gr.Error(f"Unknown sampling {sampling!r}; choose one of {', '.join(SAMPLING)}.")
    if mode == "default":
        return FramePlan(model_frames, False, {})
    if mode == "count":
        if count is None or int(count) < 2:
            raise gr.Error("Use at least 2 frames: cameras are estimated relative to each other.")
        available = _count_frames(source, required=False)
        n, how = int(count) if available is None else min(int(count), available), {"num_frames": int(count)}
    elif mode == "stride":
        if stride is None or int(stride) < 1:
            raise gr.Error("The stride must be a whole number of at least 1.")
        k = int(stride)
        n = math.ceil(_count_frames(source) / k)
        how = {"stride": k} if n <= model_frames else {"num_frames": n, "stride": k}
    else:
        n = _count_frames(source)
        how = {"num_frames": n}
    return FramePlan(n, n > model_frames, how)


def _sampling_fields(sampling: str):
    """The *Frames* field is editable under "Number of frames" only, *Stride k* under "Every k-th frame" only
    (under "All frames" the field's 16 read as if 16 frames would be used)."""
    mode = SAMPLING.get(sampling)
    return gr.update(interactive=mode == "count"), gr.update(interactive=mode == "stride")


def _count_frames(source: Path, required: bool = True) -> int | None:
    """Frames of the source (:func:`jog3r.jobs.v2c.count_source_frames`: the header, nothing decoded).

    Raises:
        gr.Error: an unreadable source, when ``required`` (else ``None``: the run's own reader says why).
    """
    try:
        return count_source_frames(source)
    except Exception as exc:  # PyAV raises its own errors for files that are not videos
        if not required:
            return None
        what = "the uploaded images" if source.is_dir() else source.name
        raise gr.Error(f"Cannot count the frames of {what}: {exc}") from exc


def _check_fit(value) -> str:
    """The *Fit* value (``"crop"`` or ``"pad"``; ``None`` -> ``"crop"``), or a ``gr.Error``."""
    value = "crop" if value is None else value
    if value not in FIT:
        raise gr.Error(f"Fit to the model's aspect must be 'crop' or 'pad', got {value!r}.")
    return value


_SPEED: list[float] = []  # [time measured, value]


def _speed(max_age_s: float = 30.0) -> float:
    """:func:`jog3r.jobs.cost.machine_speed`, measured at most every ``max_age_s`` seconds (~0.3-1 s each time)."""
    now = time.monotonic()
    if not _SPEED or now - _SPEED[0] > max_age_s:
        _SPEED[:] = [now, machine_speed()]
    return _SPEED[1]


def _stages(cost: dict) -> str:
    """The estimate's stages and the speed it assumed, for the plan line: ``"model 12 s, match 20 s, ...; ..."``."""
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in cost["stages"].items() if v >= 0.5)
    return (f"{stages}, exports included; this machine now runs at {cost['speed']:.1f}x the time of the quiet "
            "2-core reference, load that comes or goes during the run is not foreseen")


def _duration(seconds: float) -> str:
    """``"45 s"`` or ``"3 min 20 s"``."""
    seconds = round(float(seconds))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60:02d} s"


def _fit_note(message: str) -> str:
    """``load_video``'s message with its ``fit='pad'`` advice pointing at the tab's control."""
    return (message.replace("fit='pad' keeps all of it", "choose **Fit to the model's aspect: pad** to keep all of it")
            .replace("(fit='pad')", "(*Fit: pad*)"))


GALLERY_FRAMES = 32
"""Most frames whose depth and confidence the gallery shows (evenly spaced; long runs have hundreds)."""

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
                sampling = gr.Radio(list(SAMPLING), value=next(iter(SAMPLING)), label="Frame sampling",
                                    elem_id="estimate-sampling",
                                    info="Above the model's frames (16) the long-video V2C runs: the model on "
                                    f"overlapping windows, one global alignment; at most {MAX_FRAMES} frames.")
                with gr.Row():  # each field is editable only under the sampling that reads it
                    count = gr.Number(16, label="Frames", info=f"2 to {MAX_FRAMES}", precision=0, minimum=2,
                                      elem_id="estimate-count", interactive=False)
                    stride = gr.Number(1, label="Stride k", precision=0, minimum=1, interactive=False)
                sampling.change(_sampling_fields, sampling, [count, stride], queue=False)
                fit = gr.Radio([(label, value) for value, label in FIT.items()], value=FITS[0],
                               label="Fit to the model's aspect", elem_id="estimate-fit",
                               info="Frames of another shape (e.g. portrait video) are centre-cropped or padded.")
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
                    # named buttons: the default table's headers are the inputs' long labels, cut in this column
                    gr.Examples(examples, [files, gt_file], label="Examples: RealEstate10K clips (16 frames, "
                                "384x256) with their ground-truth cameras; click one, then Estimate cameras",
                                examples_per_page=6, cache_examples=False, elem_id="estimate-examples",
                                example_labels=[f"{Path(ex[1]).stem[:8]} + ground truth" for ex in examples])
            with gr.Column():
                summary = gr.Markdown(elem_id="estimate-summary")
                metrics = gr.Markdown(elem_id="estimate-metrics")
                trajectory = gr.Plot(label="Camera trajectory")
                rot_per_frame = gr.Plot(label="Rotation error of frame f vs frame 1")
                trans_per_frame = gr.Plot(label="Translation-direction error of frame f vs frame 1")
                bundle = gr.File(label="Download every export (zip)")
                with gr.Accordion("Depth and confidence", open=False):
                    # a row per frame: its depth beside its confidence
                    gallery = gr.Gallery(columns=2, height=360, show_label=False)
                with gr.Accordion("Global alignment loss", open=False):
                    loss = gr.Plot(show_label=False)
                with gr.Accordion("Cameras and metrics (JSON)", open=False):
                    result = gr.JSON(show_label=False, max_height=300)

        wire.on([files.change, sampling.change, count.change, stride.change, fit.change], self.plan,
                [files, sampling, count, stride, fit], [plan], api_name="estimate_plan", show_progress="minimal",
                trigger_mode="always_last")
        wire.on(run.click, self.estimate,
                [files, sampling, count, stride, use_K, fx, fy, cx, cy, gt_file, conf, refine, fit],
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
        """``jog3r.jobs.load_video`` with messages about the app's internal image folder said as "the uploaded images"."""
        try:
            return load_video(pipe, path, **how)
        except (ValueError, FileNotFoundError) as exc:
            text = str(exc)
            if path.is_dir():
                text = text.replace(str(path), "the uploaded images")
            raise gr.Error(text) from exc

    # ---- handlers --------------------------------------------------------------------------------------------

    def plan(self, files, sampling, count, stride, fit="crop", request: gr.Request = None) -> str:
        """How many frames will be used, by which V2C, and the expected time and memory, before running.

        The frame count follows the run's own rule (:func:`frame_plan`): one run up to the model's frames, the
        long-video V2C (cost :func:`jog3r.jobs.v2c.plan_cost`: every stage, exports included) up to :data:`MAX_FRAMES`, and above it the
        one-line refusal instead of a cost. A long source is counted from its header, not decoded; the fit note
        (``load_video``'s crop note, pointed at the *Fit* control, or the pad line) comes from 2 decoded frames.
        """
        if not file_paths(files):
            return "Choose a video or images to see the frames and the expected cost."
        fit = _check_fit(fit)
        session = self.runtime.session(request.session_hash)
        pipe = self.runtime.pipeline_for(request.session_hash)
        source = self._source(files, session, PLAN_PREFIX + "images")
        try:
            frames = frame_plan(source, sampling, count, stride, pipe.num_frames)
            if frames.refusal:
                return f"**Would be refused:** {frames.refusal}"
            # one run: the frames as the run samples them; long: 2 frames, for the size and the fit note
            video, info = self._load(pipe, source, **(frames.how if not frames.long else {"num_frames": 2}),
                                     fit=fit)
        finally:
            if source.parent == session.folder and source.name.startswith(PLAN_PREFIX):
                shutil.rmtree(source, ignore_errors=True)
        height, width = video.size
        source_size = info.source_size
        if frames.long:
            cost = plan_cost(pipe, source, frames.num_frames, long=True, fit=fit, speed=_speed(),
                             source_size=source_size or video.size)
            text = (f"**{frames.num_frames} frames** will be used, at the model's {width}x{height}, by the "
                    f"**long-video V2C** ({cost['windows']} windows of {pipe.num_frames} frames, one global "
                    f"alignment). Expected: about **{_duration(cost['seconds'])}** and "
                    f"**{cost['memory_mb']:.0f} MB** on `{self.runtime.device}` ({_stages(cost)}).")
            notes = [f"NOTE: {note}" for note in info.warnings]
            if fit == "pad":
                notes.append(f"padded to the model's {width}x{height} aspect (fit='pad'): the whole frame is seen")
            message = "; ".join(notes)
        else:
            try:
                cost = plan_cost(pipe, source, video.num_frames, fit=fit, speed=_speed(),
                                 source_size=source_size or video.size)
            except ValueError as exc:
                return f"**Would be refused:** {exc}"
            text = (f"**{video.num_frames} frames** will be used, at the model's {width}x{height}. "
                    f"Expected: about **{_duration(cost['seconds'])}** and **{cost['memory_mb']:.0f} MB** on "
                    f"`{self.runtime.device}` ({_stages(cost)}).")
            message = info.message
        if message:
            text += f"\n\n{_fit_note(message)}"
        return text

    def estimate(self, files, sampling, count, stride, use_K, fx, fy, cx, cy, gt_file,
                 keep_percent=DEFAULT_KEEP_PERCENT, matches="sift", fit="crop", request: gr.Request = None,
                 progress: gr.Progress = gr.Progress()):
        """Run V2C; returns the summary, metrics, plots, the zip of exports, the depth gallery and a JSON result.

        Above the model's frames (:func:`frame_plan`) the long-video V2C runs, with its progress (windows, then
        the global alignment) in the page. Earlier results of the session are deleted first, and a failed run
        leaves no folder behind.
        """
        keep_percent = _check_keep_percent(keep_percent)
        fit = _check_fit(fit)
        with self.runtime.job(request.session_hash) as session:
            return self._estimate(session, files, sampling, count, stride, use_K, fx, fy, cx, cy, gt_file,
                                  keep_percent, matches, fit, progress)

    def _estimate(self, session, files, sampling, count, stride, use_K, fx, fy, cx, cy, gt_file, keep_percent,
                  matches, fit, progress):
        pipe = self.runtime.pipeline_for(session.key)
        if matches not in MATCHES:
            raise gr.Error(f"'Cameras from' must be 'sift' or 'none', got {matches!r}.")
        path = self._source(files, session)
        frames = frame_plan(path, sampling, count, stride, pipe.num_frames)
        if frames.refusal:
            raise gr.Error(frames.refusal)
        if frames.long and matches == "none":
            raise gr.Error(f"The long-video V2C ({frames.num_frames} frames, more than the model's "
                           f"{pipe.num_frames}) always uses correspondences: choose *Cameras from* {METHOD_JOINT}, "
                           f"or at most {pipe.num_frames} frames for the paper's V2C.")
        gt = file_paths(gt_file)[0] if file_paths(gt_file) else None
        folder = session.new_folder("v2c")
        try:  # the one V2C job (jog3r.jobs): frames, known K, ground truth, cameras, metrics, exports
            report = estimate_cameras(
                pipe, path, **frames.how, fit=fit, intrinsics=Intrinsics(fx, fy, cx, cy) if use_K else None, gt=gt,
                matches=matches, export_dir=folder / "export", keep_percent=keep_percent,
                progress=progress_callback(progress), long=frames.long, zip_exports=True)
        except (ValueError, FileNotFoundError) as exc:
            text = str(exc)
            if path.is_dir():  # the app's internal image folder is "the uploaded images" to the user
                text = text.replace(str(path), "the uploaded images")
            if gt is not None:  # and the upload's temporary path is its file name
                text = text.replace(str(gt), gt.name)
            raise gr.Error(text) from exc
        for message in report.messages:
            gr.Info(_fit_note(message))
        bundle = report.exports.zip_path
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
        long = out.pointmaps is None and isinstance(out.align_history, dict) and "windows" in out.align_history
        summary = (
            f"**{video.num_frames} frames** at {video.size[1]}x{video.size[0]} · focal (frame 1) "
            f"{float(recon.focal[0]):.1f} px · {timings_text(out.timings)}\n\n{model}"
        )
        fit = report.info.fit
        kept = float(report.info.crop_kept)
        summary += ("\n\nFit: **pad** (the whole frame, black bars)" if fit == "pad" else
                    f"\n\nFit: **crop** (keeps {100 * kept:.0f} % of each frame)")
        if long:
            summary += (f" · **long-video V2C**: the model on {len(out.align_history['windows'])} overlapping "
                        "windows, one global alignment")
        summary += f"\n\nCameras: **{out.method}**"
        if out.match_info is not None:
            r = out.match_info
            cloud = r.get("cloud_reprojection_px")
            size = r.get("match_size")
            at = f" at {size[1]}x{size[0]}" if size else ""
            summary += (f" ({r.get('status', '?')}: {r.get('matches', 0)} correspondences over {r.get('pairs', 0)} "
                        f"frame pairs{at}; point cloud reprojection error "
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
        rot_plot = trans_plot = note_figure("Give ground-truth cameras (RealEstate10K .txt or<br>transforms.json) "
                                            "to see each frame's error")
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
            "fit": fit,
            "long": long,
        }
        loss = (note_figure("Long-video V2C: each window has its own alignment, then one global solve<br>"
                            "(its steps were in the progress bar); no single loss curve") if long else
                loss_figure(out.align_history))
        return (summary, metrics_md, trajectory, rot_plot, trans_plot, str(bundle), self._gallery(recon),
                loss, result)

    @staticmethod
    def _gallery(recon: Reconstruction, max_frames: int = GALLERY_FRAMES) -> list:
        """Depth (turbo) and confidence (viridis) of the frames, each colour-mapped over its own range; at most
        ``max_frames`` frames, evenly spaced (first and last included), captioned with their 1-based number."""
        maps = recon.numpy()
        count = min(recon.num_frames, max_frames)
        items = []
        for f in np.unique(np.round(np.linspace(0, recon.num_frames - 1, count)).astype(int)):
            items.append((to_uint8(colormap(maps["depth"][f], "turbo")), f"depth {f + 1}"))
            items.append((to_uint8(colormap(maps["conf"][f], "viridis")), f"confidence {f + 1}"))
        return items

    def set_keep_percent(self, keep_percent: float, request: gr.Request) -> None:
        """Redraw the session's points with another share of the most confident ones (no model run)."""
        if self.runtime.viewer is not None:
            token = self.runtime.session(request.session_hash).token
            self.runtime.viewer.set_keep_percent(token, _check_keep_percent(keep_percent))
