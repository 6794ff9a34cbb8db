"""The ``jog3r`` command line: ``t2v``, ``v2c``, ``t2vc``, ``met3r``, ``train`` and ``eval``.

Each job writes an output folder with what a user needs next (video, cameras in RealEstate10K / nerfstudio /
COLMAP / TUM formats, PLY and GLB, depth maps, metrics). Examples::

    jog3r v2c tests/data/realestate10k/clips16_384x256/0bf152ef84195293.mp4 --out out/v2c \\
        --gt tests/data/realestate10k/clips16_384x256/0bf152ef84195293.txt
    jog3r t2v "a living room with a couch and a television" --out out/t2v
    jog3r t2vc "a kitchen with white cabinets" --out out/t2vc
    jog3r met3r out/t2v/video.mp4 --out out/met3r
"""

from __future__ import annotations

import errno
import contextlib
import logging
import math
import re
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import torch
import tyro

from jog3r.checks import check_seed, parse_device
from jog3r.diffusion import SAMPLERS
from jog3r.jobs import (BACKBONES, FITS, MATCHES, Intrinsics, IntrinsicsError, estimate_cameras, generate,
                        score_consistency)
from jog3r.pipeline import JOG3RPipeline
from jog3r.eval import main as eval_main
from jog3r.train.__main__ import main as train_main
from jog3r.io.atomic import staged_dir
from jog3r.io.video import check_source

logger = logging.getLogger("jog3r")
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, cv2.error)
"""Errors caused by the user's inputs: printed as one ``error:`` line, without a traceback."""


@dataclass
class Common:
    """Options shared by every inference command."""

    out: Path = Path("jog3r_out")
    """Output folder (created; must be new or empty unless ``--overwrite``)."""
    overwrite: bool = False
    """Replace an existing, non-empty output folder (only once the new results are complete)."""
    weights: Path | None = None
    """Model folder (``jog3r train`` output); default: the embedded ``assets/jog3r-tiny``."""
    device: str = "cpu"
    """Torch device, e.g. ``cpu``, ``cuda``, ``cuda:1`` or ``mps`` (checked before the model loads)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights dtype of the denoiser on GPU (heads and alignment always run in float32)."""
    profile: bool = False
    """Print per-stage timings."""
    seed: int = 0
    """Random seed, in ``[0, 2**64 - 1]``."""


@dataclass
class V2C(Common):
    """Video -> cameras, depth and point cloud (paper Sec. 4 (ii))."""

    video: tyro.conf.Positional[Path] = Path()
    """A video file (mp4/mov/webm/gif) or a folder of images."""
    gt: Path | None = None
    """Ground-truth cameras (RealEstate10K txt or transforms.json) -> RRA@5, RTA@5, mAA@30 in metrics.json."""
    num_frames: int | None = None
    """Frames to sample uniformly (default: the model's 16); as ``--frames N`` (above 16 the long-video V2C),
    except with ``--matches none`` or ``--stride``, where the model runs once over all of them."""
    frames: str | None = None
    """Frames to sample uniformly, a number or ``all``: above the model's 16 the long-video V2C runs (16-frame
    windows linked through shared frames, one global alignment; at most 600 frames, checked before the model
    loads), one camera per sampled frame."""
    stride: int | None = None
    """Take every ``stride``-th frame instead."""
    focal: float | None = None
    """Known focal length in pixels of the input video (optional; estimated otherwise)."""
    matches: Literal[*MATCHES] = "sift"
    """``sift`` (default): the model's point maps and SIFT correspondences between nearby frames at the source
    resolution in one alignment (jog3r/align/joint.py; not the paper's V2C). ``none``: the paper's V2C (the point
    maps' global alignment alone)."""
    fit: Literal[*FITS] = "crop"
    """How frames of another aspect ratio than the model's are fitted: centre ``crop`` (a note says when it drops
    more than 20 % of the frame, e.g. portrait video) or ``pad`` with black (the whole frame is seen)."""


@dataclass
class T2V(Common):
    """Text -> video."""

    prompt: tyro.conf.Positional[str] = ""
    """The caption."""
    sampler: Literal[*SAMPLERS] = "ddim"
    """Sampler: OpenSora's 100-step IDDPM, or diffusers' DDIM / DPM-Solver++."""
    steps: int | None = None
    """Denoising steps (default per sampler)."""
    guidance_scale: float = 7.0
    """Classifier-free guidance scale (OpenSora: 7.0)."""
    opensora_cfg_quirk: bool = False
    """Guide only the first 3 latent channels, as OpenSora v1.0 does (exact reference sampling)."""


@dataclass
class T2VC(T2V):
    """Text -> video and its cameras from the same sampling run (paper Sec. 4 (iii)), plus T2V -> V2C."""


@dataclass
class Met3R(Common):
    """MEt3R 3D consistency of a video, with per-frame error maps."""

    video: tyro.conf.Positional[Path] = Path()
    """A video file or folder of images."""
    backbone: Literal[*BACKBONES] = "taef2"
    """Feature backbone (dinov2 needs --dinov2-path)."""
    dinov2_path: Path | None = None
    """Local transformers DINOv2 folder."""
    num_frames: int | None = None
    """Frames to sample (default: the model's 16)."""


def _round(value, digits: int = 2):
    """A float rounded for printing (anything else as is)."""
    return round(value, digits) if isinstance(value, float) else value


def _check_out(out: Path, overwrite: bool) -> None:
    """The output folder must not exist, be empty, or ``--overwrite`` must be given (checked before any work)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; choose a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"--out {out} already holds files; choose a new folder or pass --overwrite to replace it")


@contextmanager
def _staged(out: Path, overwrite: bool):
    """Yield a staging folder ``.<out>.partial`` next to ``out``; on success swap it in as ``out``, on any failure
    delete it (:func:`jog3r.io.atomic.staged_dir`).

    A failed run thus leaves neither a mix of old and new files nor a partial folder, and ``--overwrite`` replaces an
    earlier result only once the new one is complete.
    """
    _check_out(out, overwrite)
    with staged_dir(out) as staging:
        yield staging


def _check_common(opts: Common, inputs: tuple[Path, ...] = ()) -> None:
    """Everything about the options that can be checked before the model loads (10-50 s): device, dtype, seed,
    the input files and the output folder."""
    device = parse_device(opts.device)
    if opts.dtype != "float32" and device.type == "cpu":
        raise ValueError(f"--dtype {opts.dtype} needs a GPU --device (the CPU runs float32)")
    check_seed(opts.seed)
    for path in inputs:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such video file or image folder")
    _check_out(opts.out, opts.overwrite)


def _pipeline(opts: Common) -> JOG3RPipeline:
    pipe = JOG3RPipeline.from_pretrained(opts.weights, device=opts.device)
    if opts.dtype != "float32":
        pipe.model.stdit.to(getattr(torch, opts.dtype))
    return pipe


def _profile(opts: Common, timings: dict) -> None:
    if opts.profile:
        print("stage timings (s): " + ", ".join(f"{k}={v:.2f}" for k, v in timings.items()))


def _print_estimate(pipe: JOG3RPipeline, opts: V2C, num_frames: int | None, long: bool) -> None:
    """Print the time and memory :func:`jog3r.jobs.v2c.plan_cost` quotes for this run (every stage, exports included),
    at this machine's speed measured now; nothing when the frame count or the size cannot be read cheaply (the run
    then says why)."""
    from jog3r.io.video import sample_frame_indices
    from jog3r.jobs.v2c import count_source_frames, plan_cost

    try:
        available = count_source_frames(opts.video)
        if long:
            n = min(num_frames, available)
        else:
            n = len(sample_frame_indices(available, num_frames=num_frames if num_frames or opts.stride else
                                         pipe.num_frames, stride=opts.stride)[0])
            pipe.check_frame_count(n)
        cost = plan_cost(pipe, opts.video, n, long=long, fit=opts.fit, matches=opts.matches)
    except (ValueError, OSError):
        return
    what = f"long-video V2C: {cost['windows']} windows, " if long else f"V2C of {n} frames: "
    stages = ", ".join(f"{k} {v:.0f}" for k, v in cost["stages"].items() if v >= 0.5)
    print(f"{what}estimated {cost['seconds']:.0f} s and {cost['memory_mb']} MB ({stages}; exports included; at this "
          f"machine's speed now, {cost['speed']:.1f}x the time of the quiet 2-core reference: load that comes or goes "
          "during the run is not foreseen)", flush=True)


def _logs_above(bar):
    """Log lines printed above the progress bar ``bar`` (not glued to its line), or nothing when there is none."""
    if bar is None:
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm
    return logging_redirect_tqdm()


def run_v2c(opts: V2C) -> dict:
    """``jog3r v2c``: see :class:`V2C`; one :func:`jog3r.jobs.estimate_cameras` call plus printing. Returns the
    ``metrics.json`` record (:meth:`jog3r.jobs.V2CReport.record`)."""
    if opts.focal is not None and not (math.isfinite(opts.focal) and opts.focal > 0):
        raise ValueError(f"--focal must be a positive focal length in pixels, got {opts.focal}")
    if opts.gt is not None and not opts.gt.is_file():
        raise FileNotFoundError(f"ground-truth file {opts.gt} does not exist")
    _check_common(opts, (opts.video,))
    check_source(opts.video)  # an unreadable file or an empty folder: one line before the model loads
    num_frames, long, bar = opts.num_frames, False, None
    from jog3r.jobs.v2c import resolve_frames
    if opts.frames is not None:  # --frames N|all: refused above the long-video limit before the model loads
        if opts.num_frames is not None or opts.stride is not None:
            raise ValueError("give --frames or --num-frames / --stride, not both")
        num_frames, long = resolve_frames(opts.video, opts.frames)
        if long and opts.matches == "none":
            raise ValueError("the long-video V2C (--frames above 16) always uses correspondences; drop --matches none")
    elif opts.num_frames is not None and opts.stride is None and opts.matches != "none":
        # --num-frames N is --frames N: above the model's 16 the long-video V2C (one pass of the 16-frame model over
        # 60 frames of a walkthrough scored mAA@30 19.5 where the windows scored 86.9); with --matches none the
        # paper's V2C stays one pass, as jog3r eval runs it on 25-frame windows
        num_frames, long = resolve_frames(opts.video, opts.num_frames, flag="--num-frames")
    pipe = _pipeline(opts)
    _print_estimate(pipe, opts, num_frames, long)
    if long:
        from tqdm import tqdm

        bar = tqdm(total=100, desc="v2c", unit="%", bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}]")

        def progress(fraction: float, description: str) -> None:
            bar.set_description(description[:40])
            bar.update(100 * fraction - bar.n)
    with _staged(opts.out, opts.overwrite) as staging, _logs_above(bar):
        try:
            report = estimate_cameras(
                pipe, opts.video, num_frames=num_frames, stride=opts.stride, fit=opts.fit,
                intrinsics=None if opts.focal is None else Intrinsics.centred_at(opts.focal), gt=opts.gt,
                matches=opts.matches, seed=opts.seed, export_dir=staging, long=long,
                progress=progress if long else None)
        except IntrinsicsError as exc:  # the same check as the app's known-intrinsics fields (B6)
            raise ValueError(f"--focal {opts.focal:g}: {exc}") from None
        finally:
            if bar is not None:
                bar.close()
    for message in report.messages:
        print(message)
    print(f"cameras: {report.method}")
    if report.output.match_info is not None:
        info_m = report.output.match_info
        print(f"correspondences: {info_m['matches']} in {info_m['pairs']} frame pairs, {info_m['status']}; point cloud "
              f"reprojection error (median, px): {_round(info_m.get('cloud_reprojection_px'))}")
    if report.scores is not None:
        print("pose metrics (all pairs): " + ", ".join(f"{k} {v:.2f}" for k, v in report.scores.all.items()))
    print(f"wrote {opts.out}")
    _profile(opts, report.timings)
    return report.record()


def run_t2v(opts: T2V, *, cameras: bool = False) -> dict:
    """``jog3r t2v`` / ``jog3r t2vc``: see :class:`T2V`; one :func:`jog3r.jobs.generate` call plus printing.
    Returns the ``summary.json`` record (:meth:`jog3r.jobs.GenerateReport.record`)."""
    JOG3RPipeline.check_sampling(opts.sampler, opts.steps, opts.guidance_scale)
    _check_common(opts)
    pipe = _pipeline(opts)
    with _staged(opts.out, opts.overwrite) as staging:
        report = generate(pipe, opts.prompt, seed=opts.seed, sampler=opts.sampler, steps=opts.steps,
                          guidance_scale=opts.guidance_scale, guide_channels=3 if opts.opensora_cfg_quirk else None,
                          estimate_cameras=cameras, cascade=cameras, export_dir=staging)
    if cameras and report.consistency:
        print(f"T2V+C vs T2V->V2C: rotation {report.consistency['rot_deg']:.2f} deg, "
              f"translation {report.consistency['transl_deg']:.2f} deg")
    print(f"wrote {opts.out / 'video.mp4'}")
    _profile(opts, report.output.timings)
    return report.record()


def run_met3r(opts: Met3R) -> dict:
    """``jog3r met3r``: see :class:`Met3R`. Returns the scores."""
    if opts.backbone == "dinov2" and opts.dinov2_path is None:
        raise ValueError("--backbone dinov2 needs --dinov2-path, a local folder with a transformers DINOv2 model")
    _check_common(opts, (opts.video,))
    check_source(opts.video)
    pipe = _pipeline(opts)
    with _staged(opts.out, opts.overwrite) as staging:
        report = score_consistency(pipe, opts.video, backbone=opts.backbone, dinov2_path=opts.dinov2_path,
                                   num_frames=opts.num_frames, seed=opts.seed, export_dir=staging)
    print(f"MEt3R ({report.backbone}) = {report.result.score:.4f} over {report.video.num_frames} frames")
    return report.record()


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
"""``OSError`` numbers that mean the disk (or the user's quota) is full."""
WRITE_FAILURES = ("No space left on device", "Disk quota exceeded", "StorageFull", "unexpected pos",
                  "file write failed")
"""Texts of write failures that libraries raise without an errno: torch.save (``unexpected pos``, ``file write
failed``) and safetensors (``StorageFull``) on a full disk."""


def _free_space(path: Path) -> str:
    """Free space on the disk holding ``path`` (or its nearest existing parent), e.g. ``"12 MB free"``."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return f"{shutil.disk_usage(path).free / 2**20:.0f} MB free"
    except OSError:
        return "free space unknown"


def disk_full_message(err: BaseException, out: Path) -> str | None:
    """One line for a write that failed because the disk is full, or ``None`` for any other error.

    Args:
        err: the exception raised while writing.
        out: the folder the command writes (named in the message, with the free space left there).
    """
    if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
        return (f"no space left on the disk while writing {out} ({_free_space(out)}); free some space or choose "
                "another --out (nothing was written)")
    text = str(err)
    if isinstance(err, Exception) and any(s in text for s in WRITE_FAILURES):
        detail = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", text.strip().splitlines()[-1])[:200]
        return (f"writing {out} failed ({detail}): the disk is probably full ({_free_space(out)}); free some space "
                "or choose another --out")
    return None


def _argv_out(argv: list[str], default: str) -> Path:
    """The ``--out`` folder named in ``argv`` (for messages about a failed write)."""
    for i, arg in enumerate(argv):
        if arg == "--out" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--out="):
            return Path(arg.split("=", 1)[1])
    return Path(default)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``jog3r`` command."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["train"], ["eval"]):
        out = _argv_out(argv, "runs/jog3r" if argv[0] == "train" else "eval_out")
        try:
            (train_main if argv[0] == "train" else eval_main)(argv[1:])
        except Exception as err:
            message = _user_message(err, out)
            if message is None:
                raise
            raise SystemExit(f"error: {message}") from err
        return
    cmd = tyro.extras.subcommand_cli_from_dict(
        {"v2c": V2C, "t2v": T2V, "t2vc": T2VC, "met3r": Met3R}, args=argv,
        description=__doc__ + "\nAlso: `jog3r train --help`, `jog3r eval --help`.",
    )
    try:
        if isinstance(cmd, T2VC):
            run_t2v(cmd, cameras=True)
        elif isinstance(cmd, T2V):
            run_t2v(cmd)
        elif isinstance(cmd, V2C):
            run_v2c(cmd)
        else:
            run_met3r(cmd)
    except Exception as err:
        message = _user_message(err, cmd.out)
        if message is None:
            raise
        raise SystemExit(f"error: {message}") from err


def _user_message(err: Exception, out: Path) -> str | None:
    """The one-line message for an error caused by the user's input or machine (bad option, full disk), or
    ``None`` for a bug (re-raised with its traceback)."""
    full = disk_full_message(err, out)
    if full is not None:
        return full
    if isinstance(err, USER_ERRORS):
        return " ".join(str(err).split("\n"))
    return None


__all__ = ["main", "run_v2c", "run_t2v", "run_met3r"]


if __name__ == "__main__":
    main()
