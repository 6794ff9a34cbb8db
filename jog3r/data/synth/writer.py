"""Write synthetic clips to disk in the RealEstate10K layout, and draw contact sheets.

Layout written by :func:`write_dataset` (the one :class:`jog3r.data.ClipDataset` and the real-data loaders read)::

    out_dir/
      <clip_id>.mp4             H.264 video (or frames/<clip_id>/NN.png with video="frames")
      <clip_id>.txt             RealEstate10K camera file (jog3r.io.re10k: URL line, then
                                timestamp fx/W fy/H cx/W cy/H 0 0 <3x4 world2cam row-major> per frame)
      depth/<clip_id>.npz       "depth": [F, H, W] float16 metric z-depth, 0 = no surface (sky / window view)
      captions.json             {clip_id: caption}

float16 depth keeps a relative precision of 5e-4 (2 mm at 4 m), far below a pixel's footprint. Every file is
written atomically (:mod:`jog3r.io.atomic`); clips whose files all exist are skipped, so an interrupted
run can be resumed.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw

from jog3r.data.synth.generate import SynthConfig, generate_clip
from jog3r.io.atomic import atomic_path, atomic_write_text
from jog3r.io.re10k import write_re10k
from jog3r.types import PosedClip
from jog3r.io.video import write_video

logger = logging.getLogger(__name__)

FPS = 8.0
"""Frame rate written to the videos and used for the RealEstate10K timestamps."""


def clip_paths(out_dir: Path, clip_id: str, video: str) -> dict[str, Path]:
    """Paths of one clip's files in the layout of the module docstring."""
    media = out_dir / "frames" / clip_id if video == "frames" else out_dir / f"{clip_id}.mp4"
    return {"media": media, "cameras": out_dir / f"{clip_id}.txt", "depth": out_dir / "depth" / f"{clip_id}.npz"}


def write_clip(out_dir: str | Path, clip: PosedClip, video: str = "mp4", url: str = "") -> dict[str, Path]:
    """Write one clip (video or PNG frames, camera txt, depth npz); the caption is left to the caller.

    Args:
        out_dir: dataset folder.
        clip: the clip (``depth`` may be None: then no npz is written).
        video: ``"mp4"`` (H.264, crf 18) or ``"frames"`` (lossless PNGs in ``frames/<clip_id>/``).
        url: first line of the camera file.

    Returns:
        The written paths (``media``, ``cameras``, ``depth``).

    Raises:
        ValueError: for an unknown ``video`` kind or a clip without a name.
    """
    if video not in ("mp4", "frames"):
        raise ValueError(f"video must be 'mp4' or 'frames', got {video!r}")
    if not clip.name:
        raise ValueError("the clip needs a name (used as clip id)")
    out_dir = Path(out_dir)
    paths = clip_paths(out_dir, clip.name, video)
    if video == "mp4":
        write_video(paths["media"], clip.frames, FPS)
    else:
        paths["media"].mkdir(parents=True, exist_ok=True)
        rgb = (clip.frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for i, img in enumerate(rgb):
            with atomic_path(paths["media"] / f"{i:02d}.png") as tmp:
                Image.fromarray(img).save(tmp)
    size = (clip.frames.shape[-2], clip.frames.shape[-1])
    write_re10k(paths["cameras"], clip.cam2world, clip.K, size, url=url, fps=FPS)
    if clip.depth is not None:
        paths["depth"].parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(paths["depth"]) as tmp:
            np.savez_compressed(tmp, depth=clip.depth.numpy().astype(np.float16))
    return paths


def _write_one(args) -> tuple[str, str]:
    out_dir, seed, config, video = args
    torch.set_num_threads(1)
    clip = generate_clip(seed, config)
    write_clip(out_dir, clip, video, url=f"synthetic://jog3r/seed={seed}")
    return clip.name, clip.caption or ""


def write_dataset(out_dir: str | Path, n: int, config: SynthConfig = SynthConfig(), start_seed: int = 0,
                  video: str = "mp4", workers: int = 1) -> Path:
    """Generate ``n`` clips (seeds ``start_seed .. start_seed + n - 1``) into ``out_dir``.

    Args:
        out_dir: dataset folder (created).
        n: number of clips.
        config: generator settings.
        start_seed: seed of the first clip.
        video: ``"mp4"`` or ``"frames"`` (see :func:`write_clip`).
        workers: processes generating in parallel (each uses one torch thread).

    Returns:
        ``out_dir``. ``captions.json`` there maps every clip id to its caption (merged with an existing file).

    Raises:
        ValueError: for ``n < 0``, ``workers < 1`` or an existing ``captions.json`` that is not a JSON object.
    """
    if n < 0 or workers < 1:
        raise ValueError(f"need n >= 0 and workers >= 1, got n={n}, workers={workers}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    captions_path = out_dir / "captions.json"
    captions: dict[str, str] = {}
    if captions_path.exists():
        try:
            captions = json.loads(captions_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{captions_path}: existing captions file is not valid JSON ({err})") from err
        if not isinstance(captions, dict):
            raise ValueError(f"{captions_path}: existing captions file must be a JSON object")
    todo = []
    for seed in range(start_seed, start_seed + n):
        clip_id = f"synth_{seed:08d}"
        paths = clip_paths(out_dir, clip_id, video)
        done = clip_id in captions and all(p.exists() for p in paths.values())
        if not done:
            todo.append((out_dir, seed, config, video))
    logger.info("writing %d clips to %s (%d already there)", len(todo), out_dir, n - len(todo))
    results = map(_write_one, todo) if workers == 1 else ProcessPoolExecutor(workers).map(_write_one, todo)
    for k, (clip_id, caption) in enumerate(results):
        captions[clip_id] = caption
        if (k + 1) % 50 == 0 or k + 1 == len(todo):
            _write_json(captions_path, captions)
            logger.info("%d / %d clips written", k + 1, len(todo))
    _write_json(captions_path, captions)
    _write_json(out_dir / "synth_config.json", asdict(config))
    return out_dir


def _write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True))


def contact_sheet(clips: list[PosedClip], path: str | Path, columns: int = 4, max_depth: float = 8.0) -> Path:
    """Save a JPEG grid: one row per clip, ``columns`` evenly spaced frames, then frame 0's depth (turbo colour
    map, black = no depth) and the caption under each row.

    Args:
        clips: clips with ``depth``.
        path: output image path.
        columns: frames shown per clip.
        max_depth: metres mapped to the far end of the colour map.

    Returns:
        ``path``.
    """
    rows = []
    for clip in clips:
        n = clip.num_frames
        idx = np.linspace(0, n - 1, columns).round().astype(int)
        tiles = [(clip.frames[i].permute(1, 2, 0).numpy() * 255).astype(np.uint8) for i in idx]
        d = clip.depth[0].numpy() if clip.depth is not None else np.zeros(clip.frames.shape[-2:], np.float32)
        colored = cv2.applyColorMap((np.clip(d / max_depth, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
        colored = np.where((d > 0)[..., None], colored[..., ::-1], 0).astype(np.uint8)
        row = np.concatenate(tiles + [colored], axis=1)
        label = Image.new("RGB", (row.shape[1], 14), (255, 255, 255))
        ImageDraw.Draw(label).text((3, 1), f"{clip.name}: {clip.caption}", fill=(0, 0, 0))
        rows.append(np.concatenate([row, np.asarray(label)], axis=0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, quality=88)
    return path
