"""``jog3r eval``: the paper's tables for any checkpoint, as markdown and JSON.

* **Table 2 (V2C)**: Rot. err., Trans. err. (mean relative errors, degrees), RRA@5, RTA@5, mAA@30 over all frame
  pairs (PoseDiffusion protocol, :mod:`jog3r.metrics.pose`), mean over clips, for every RealEstate10K-layout window
  folder (``<id>.mp4`` + ``<id>.txt``) and for a held-out synthetic test split (seeds disjoint from training).
* **Table 1 (T2V)**: MEt3R (backbone named) of videos generated from RealEstate10K-style prompts; FID / FVD only when
  the user supplies the Inception / I3D TorchScript files (otherwise "not available"). The point maps MEt3R warps
  with come from the evaluated model, or from ``--met3r-weights`` (the paper scores every row with JOG3R's points).
* **Self-consistency (paper Sec. 4.3)**: the same videos are generated as T2V+C (cameras from features tapped in the
  sampling run) and passed through V2C (T2V -> V2C); the mean rotation / translation-direction difference (degrees)
  between the two trajectories over the (1 -> f) pairs.
* **Table 3**: several checkpoints side by side with the STDiT block ``b^i`` their decoder reads (``--models``).
* **Reference rows** (``--baselines``): on the same RealEstate10K windows, the "camera never turns" prior and a
  classical SIFT + essential-matrix chain with the known intrinsics (:mod:`jog3r.metrics.baselines`).
* **Per clip**: every V2C row is also broken down per clip.

Example::

    jog3r eval --out eval/tiny            # embedded default, the repository's six real clips, 3 windows
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import tyro

from jog3r.checks import parse_device
from jog3r.align.joint import METHOD_JOINT, METHOD_PAPER
from jog3r.data.synth import SynthConfig, generate_clip
from jog3r.jobs import (MATCHES, METRIC_KEYS, estimate_cameras, generate, load_video, met3r_of_video,
                        read_ground_truth, score_cameras)
from jog3r.metrics.baselines import classical_chain_trajectory, never_turns_trajectory
from jog3r.io.video import read_video
from jog3r.metrics.video import fid, fvd, load_feature_network
from jog3r.pipeline import JOG3RPipeline
from jog3r.types import Video

logger = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
SYNTH_TEST_SEED = 900_000_000
"""First seed of the synthetic test split; training draws seeds far below it."""


@dataclass
class EvalConfig:
    """What to evaluate and where to write the tables."""

    out: Path = Path("eval_out")
    """Output folder: ``tables.md``, ``results.json``."""
    weights: Path | None = None
    """Model folder; default: the embedded ``assets/jog3r-tiny``."""
    models: list[Path] = field(default_factory=list)
    """Table 3: extra model folders to compare (each row names its tap block b^i)."""
    re10k: Path = REPO / "tests" / "data" / "realestate10k"
    """A folder of RealEstate10K-layout window folders (each: <id>.mp4 + <id>.txt)."""
    windows: list[str] = field(default_factory=lambda: ["clips16_384x256", "clips25_576x320", "clips14_576x320"])
    """Window sub-folders of ``re10k`` to evaluate."""
    num_frames: int = 16
    """Frames per clip (uniformly sampled when a clip has more)."""
    known_intrinsics: bool = False
    """Give the model the ground-truth intrinsics (the camera file's / the synthetic K) instead of estimating focal
    and pixel aspect; the paper's Table 2 estimates them. Adds " (known K)" to the row names."""
    matches: Literal[*MATCHES] = "sift"
    """How V2C makes the cameras: ``sift`` (default) the model's point maps and SIFT correspondences at the source
    resolution in one alignment (jog3r/align/joint.py; not the paper's), ``none`` the paper's V2C. Every row names
    the method."""
    synth_test: int = 8
    """Clips in the held-out synthetic test split (0 skips it)."""
    t2v_prompts: int = 4
    """Videos to generate for Table 1 (0 skips it)."""
    sampler: str = "ddim"
    """Sampler of the Table 1 videos."""
    steps: int = 25
    """Denoising steps of the Table 1 videos."""
    inception: Path | None = None
    """Inception TorchScript file (inception-2015-12-05.pt) for FID."""
    i3d: Path | None = None
    """I3D TorchScript file (i3d_torchscript.pt) for FVD."""
    met3r_weights: Path | None = None
    """Model folder whose point maps MEt3R warps with (default: the evaluated model). Give one fixed model to compare
    the 3D consistency of several generators, as the paper does with JOG3R; a model whose decoder was never trained
    (``--mode gen``) cannot score its own videos."""
    consistency: bool = True
    """Table 1 videos also run as T2V+C and T2V -> V2C, and their trajectories are compared (self-consistency)."""
    baselines: bool = False
    """Also score the "never turns" prior and the classical SIFT + essential-matrix chain (known intrinsics) on
    the RealEstate10K windows."""
    device: str = "cpu"
    """Torch device."""


def _mean_metrics(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in METRIC_KEYS} if rows else {}


def eval_re10k_window(pipe: JOG3RPipeline, folder: Path, num_frames: int, known_intrinsics: bool = False,
                      matches: str = "sift") -> dict:
    """V2C metrics of every clip of one RealEstate10K window folder (all frame pairs), each clip one
    :func:`jog3r.jobs.estimate_cameras` job; with ``known_intrinsics`` the camera file's K (adjusted to the model's
    resize + crop) is given to the alignment; ``matches`` as :meth:`JOG3RPipeline.video_to_cameras` (matched on the
    source frames), the method named per clip.

    Returns:
        ``{"clips": {id: {METRIC_KEYS..., "frames", "seconds", "method", "cloud reprojection px"}}, "mean": {...}}``.
    """
    clips = {}
    for video_path in sorted(folder.glob("*.mp4")):
        txt = video_path.with_suffix(".txt")
        if not txt.exists():
            logger.warning("%s has no camera file %s: skipped", video_path, txt.name)
            continue
        start = time.perf_counter()
        report = estimate_cameras(pipe, video_path, num_frames=num_frames, gt=txt, gt_intrinsics=known_intrinsics,
                                  matches=matches)
        for message in report.messages[1:]:  # the first is the sampling message
            logger.warning("%s: %s", video_path.name, message)
        clips[video_path.stem] = {**report.scores.all, "frames": report.video.num_frames,
                                  "seconds": time.perf_counter() - start, "method": report.method,
                                  "cloud reprojection px": (report.output.match_info or {}).get("cloud_reprojection_px")}
    return {"clips": clips, "mean": _mean_metrics(list(clips.values()))}


def eval_baselines(folder: Path, num_frames: int) -> dict:
    """Reference rows on one RealEstate10K window folder: ``{"never turns": ..., "classical chain": ...}``, each
    ``{"clips": {id: metrics}, "mean": metrics}`` scored like :func:`eval_re10k_window` (same sampled frames,
    all pairs). The chain runs at the source resolution with the file's intrinsics.

    Raises:
        ValueError: if a camera file has fewer poses than the sampled frames need.
    """
    rows: dict = {"never turns (R = I, forward)": {}, "SIFT + E-matrix chain (known K)": {}}
    for video_path in sorted(folder.glob("*.mp4")):
        txt = video_path.with_suffix(".txt")
        if not txt.exists():
            logger.warning("%s has no camera file %s: skipped", video_path, txt.name)
            continue
        video, info = read_video(video_path, num_frames=num_frames)
        truth = read_ground_truth(txt, video.frame_indices, tuple(video.frames.shape[-2:]), info["num_source_frames"])
        if truth.note:
            logger.warning("%s: %s", video_path.name, truth.note)
        preds = {"never turns (R = I, forward)": never_turns_trajectory(video.num_frames),
                 "SIFT + E-matrix chain (known K)": classical_chain_trajectory(video.frames, truth.K)}
        for name, pred in preds.items():
            rows[name][video_path.stem] = score_cameras(pred, truth.cam2world).all
    return {name: {"clips": clips, "mean": _mean_metrics(list(clips.values()))} for name, clips in rows.items()}


def eval_synthetic(pipe: JOG3RPipeline, n: int, num_frames: int, known_intrinsics: bool = False,
                   matches: str = "sift") -> dict:
    """V2C metrics on ``n`` held-out synthetic clips (seeds from :data:`SYNTH_TEST_SEED`), optionally with their K;
    with correspondences (``matches``) they are matched on the same views rendered at twice the model's size, as
    the real clips' source frames."""
    h, w = pipe.resolution
    clips = {}
    for i in range(n):
        clip = generate_clip(SYNTH_TEST_SEED + i, SynthConfig(height=h, width=w, num_frames=num_frames))
        big = None
        if matches != "none":  # like the real clips' source frames: the same views rendered at twice the model's size
            big = generate_clip(SYNTH_TEST_SEED + i, SynthConfig(height=2 * h, width=2 * w, num_frames=num_frames)).frames
        out = pipe.video_to_cameras(Video(frames=clip.frames, frame_indices=torch.arange(clip.num_frames)),
                                    known_K=clip.K if known_intrinsics else None, matches=matches, source_frames=big)
        scores = score_cameras(out.reconstruction.cam2world, clip.cam2world)
        clips[f"synth_{SYNTH_TEST_SEED + i}"] = {**scores.all, "method": out.method}
    return {"clips": clips, "mean": _mean_metrics(list(clips.values()))}


def load_prompts(n: int) -> list[str]:
    """The first ``n`` RealEstate10K-style prompts of ``assets/prompts.txt``."""
    lines = [ln.strip() for ln in (REPO / "assets" / "prompts.txt").read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")][:n]


def eval_t2v(pipe: JOG3RPipeline, cfg: EvalConfig) -> dict:
    """Table 1 row: MEt3R of generated videos, FID/FVD if the networks are supplied, T2V+C self-consistency.

    MEt3R uses TAEF2-encoder features and the point maps of ``cfg.met3r_weights`` (default: ``pipe``'s model).
    With ``cfg.consistency`` every video is sampled as T2V+C and also passed through V2C; the row then holds the
    mean rotation and translation-direction differences (degrees, (1 -> f) pairs) between the two trajectories.
    """
    scorer = pipe if cfg.met3r_weights is None else JOG3RPipeline.from_pretrained(cfg.met3r_weights, device=cfg.device)
    videos, scores, rot, transl = [], [], [], []
    for i, prompt in enumerate(load_prompts(cfg.t2v_prompts)):
        report = generate(pipe, prompt, seed=i, sampler=cfg.sampler, steps=cfg.steps,
                          estimate_cameras=cfg.consistency, cascade=cfg.consistency)
        videos.append(report.video.frames)
        scores.append(float(met3r_of_video(scorer, report.video, backbone="taef2").score))
        if report.consistency is not None:
            rot.append(report.consistency["rot_deg"])
            transl.append(report.consistency["transl_deg"])
    row: dict = {"videos": len(videos), "MEt3R": float(np.mean(scores)) if scores else None,
                 "MEt3R backbone": "taef2 (TAEF2 encoder features; the published metric uses DINO)",
                 "MEt3R points": str(cfg.met3r_weights or cfg.weights or pipe.name),
                 "FID": "not available (pass --inception)", "FVD": "not available (pass --i3d)",
                 "T2V+C vs T2V->V2C rot. diff.": float(np.mean(rot)) if rot else "not run",
                 "T2V+C vs T2V->V2C trans. diff.": float(np.mean(transl)) if transl else "not run"}
    if (cfg.inception is not None or cfg.i3d is not None) and videos:
        if not cfg.windows:
            raise ValueError("FID / FVD compare with the real clips of the first --windows folder; give one")
        real = [load_video(pipe, p, num_frames=pipe.num_frames)[0].frames
                for p in sorted((cfg.re10k / cfg.windows[0]).glob("*.mp4"))]
    if cfg.inception is not None and videos:
        row["FID"] = fid(load_feature_network(cfg.inception, cfg.device), torch.cat(real), torch.cat(videos))
    if cfg.i3d is not None and videos:
        row["FVD"] = fvd(load_feature_network(cfg.i3d, cfg.device), real, videos)
    return row


def _fmt(v) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def to_markdown(results: dict) -> str:
    """Render ``results`` (see :func:`evaluate`) as markdown tables."""
    lines = [f"## V2C (Table 2 layout) - {results['model']}", ""]
    if not results["v2c"] and not results.get("baselines"):
        lines.append("Not run (no --windows, --synth-test 0).")
    else:
        lines += ["| data | clips | " + " | ".join(METRIC_KEYS) + " |", "|---" * (len(METRIC_KEYS) + 2) + "|"]
    for name, res in results["v2c"].items():
        mean = res["mean"]
        lines.append(f"| {name} | {len(res['clips'])} | " + " | ".join(_fmt(mean.get(k, float('nan'))) for k in METRIC_KEYS) + " |")
    for window, rows in results.get("baselines", {}).items():
        for name, res in rows.items():
            lines.append(f"| {window}: {name} | {len(res['clips'])} | "
                         + " | ".join(_fmt(res["mean"].get(k, float("nan"))) for k in METRIC_KEYS) + " |")
    if results["v2c"]:
        lines += ["", "### Per clip", "", "| data | clip | " + " | ".join(METRIC_KEYS) + " |",
                  "|---" * (len(METRIC_KEYS) + 2) + "|"]
    for name, res in results["v2c"].items():
        for clip, m in res["clips"].items():
            lines.append(f"| {name} | {clip} | " + " | ".join(_fmt(m.get(k, float("nan"))) for k in METRIC_KEYS) + " |")
    if results.get("t2v"):
        t = results["t2v"]
        lines += ["", "## T2V (Table 1 layout)", "",
                  "| videos | MEt3R | backbone | MEt3R points | FID | FVD | T2V+C vs T2V->V2C rot. / trans. diff. (deg) |",
                  "|---|---|---|---|---|---|---|",
                  f"| {t['videos']} | {_fmt(t['MEt3R'])} | {t['MEt3R backbone']} | {t.get('MEt3R points', results['model'])} "
                  f"| {_fmt(t['FID'])} | {_fmt(t['FVD'])} | {_fmt(t.get('T2V+C vs T2V->V2C rot. diff.', 'not run'))} / "
                  f"{_fmt(t.get('T2V+C vs T2V->V2C trans. diff.', 'not run'))} |"]
    if results.get("table3"):
        lines += ["", "## Table 3: tapped block", "", "| model | b^i | " + " | ".join(METRIC_KEYS) + " |",
                  "|---" * (len(METRIC_KEYS) + 2) + "|"]
        for row in results["table3"]:
            lines.append(f"| {row['model']} | {row['block']} | " + " | ".join(_fmt(row['mean'].get(k, float('nan'))) for k in METRIC_KEYS) + " |")
    return "\n".join(lines) + "\n"


def evaluate(cfg: EvalConfig) -> dict:
    """Run every table of ``cfg`` and write ``tables.md`` and ``results.json``; return the results.

    ``cfg.windows`` may be empty (T2V only, e.g. for a ``--mode gen`` model), unless Table 3 or FID / FVD is asked
    for: they use the first window folder.

    Raises:
        FileNotFoundError: a window folder does not exist.
        ValueError: Table 3 or FID / FVD without a window folder, an unusable ``--device``, a bad sampler or steps
            (all checked before the model loads).
    """
    if not cfg.windows and (cfg.models or (cfg.t2v_prompts and (cfg.inception or cfg.i3d))):
        raise ValueError("Table 3 (--models) and FID / FVD use the first --windows folder; give one")
    missing = [str(cfg.re10k / w) for w in cfg.windows if not (cfg.re10k / w).is_dir()]
    if missing:  # checked before any model loads
        raise FileNotFoundError(f"window folder(s) {', '.join(missing)} do not exist (see --re10k / --windows)")
    parse_device(cfg.device)
    JOG3RPipeline.check_sampling(cfg.sampler, cfg.steps)
    pipe = JOG3RPipeline.from_pretrained(cfg.weights, device=cfg.device)
    results: dict = {"model": pipe.name, "info": pipe.info, "config": json.loads(json.dumps(
        dataclasses.asdict(cfg), default=str)), "v2c": {}}
    suffix = (" (known K)" if cfg.known_intrinsics else "") + " - " + (METHOD_PAPER if cfg.matches == "none"
                                                                       else METHOD_JOINT)
    for window in cfg.windows:
        folder = cfg.re10k / window
        results["v2c"][f"RealEstate10K {window}{suffix}"] = eval_re10k_window(pipe, folder, cfg.num_frames,
                                                                            cfg.known_intrinsics, cfg.matches)
        if cfg.baselines:
            results.setdefault("baselines", {})[f"RealEstate10K {window}"] = eval_baselines(folder, cfg.num_frames)
    if cfg.synth_test:
        results["v2c"][f"synthetic test ({cfg.synth_test}){suffix}"] = eval_synthetic(
            pipe, cfg.synth_test, cfg.num_frames, cfg.known_intrinsics, cfg.matches)
    if cfg.t2v_prompts:
        results["t2v"] = eval_t2v(pipe, cfg)
    if cfg.models:  # cfg.windows is non-empty: checked above
        results["table3"] = []
        for folder in cfg.models:
            other = JOG3RPipeline.from_pretrained(folder, device=cfg.device)
            res = eval_re10k_window(other, cfg.re10k / cfg.windows[0], cfg.num_frames, cfg.known_intrinsics,
                                    cfg.matches)
            results["table3"].append({"model": str(folder) + suffix, "block": other.model.config.tap_block,
                                      "mean": res["mean"]})
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (cfg.out / "tables.md").write_text(to_markdown(results))
    return results


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``jog3r eval``."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = tyro.cli(EvalConfig, args=argv, description=__doc__)
    print(to_markdown(evaluate(cfg)))


if __name__ == "__main__":
    main()
