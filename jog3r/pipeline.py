"""``JOG3RPipeline``: text -> video (T2V), video -> cameras (V2C) and both in one run (T2V+C); paper Sec. 4, Fig. 3.

The denoiser (:class:`jog3r.model.JOG3R`), the scheduler (:class:`jog3r.diffusion.Sampler` on the schedule of
:class:`jog3r.diffusion.GaussianDiffusion`, diffusers underneath) and the frozen encoders are separate objects; each
job reads top to bottom as numbered steps, and both camera jobs end in the same reconstruct step
(:meth:`JOG3RPipeline.reconstruct`: decoder + head on the pairs ``(1 -> f)``, then global alignment):

* **T2V** (:meth:`JOG3RPipeline.text_to_video`): 1 check inputs, 2 encode the prompt (+ null caption for
  classifier-free guidance), 3 prepare Gaussian latents and the sampler's steps, 4 the denoising loop with CFG,
  written out as diffusers' pipelines write it, 5 (T2V+C) inside the loop, tap the STDiT features at the visited
  step whose ``t`` is in ``[0, 5]``, 6-7 (T2V+C) the reconstruct step on the tapped features, 8 VAE-decode the
  frames, 9 return a :class:`T2VOutput`.
* **V2C** (:meth:`JOG3RPipeline.video_to_cameras`, paper Sec. 4 (ii)): 1 check / resize the video
  (:meth:`JOG3RPipeline.prepare_video`), 2 VAE latents, 3 noise them at a small ``t``, 4 one STDiT pass with the
  empty (null) prompt up to the tapped block, 5-6 the reconstruct step (the paper's V2C), 7 by default
  (``matches="sift"``, not the paper's) the correspondence-aware alignment of :mod:`jog3r.align.joint`: SIFT
  correspondences at the source resolution and the point maps in one objective, 8 return a :class:`V2COutput`.

The pipeline reads no files and computes no MEt3R: reading a video for the model is :mod:`jog3r.jobs.load`, MEt3R
is :func:`jog3r.jobs.met3r.met3r_of_video`. Conventions of the returned cameras: :mod:`jog3r.geometry.camera`.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from jog3r.align.config import ALIGN_PRESETS, AlignConfig
from jog3r.align.fit import fit
from jog3r.align.joint import METHOD_JOINT, METHOD_PAPER, JointConfig, joint_align
from jog3r.align.refine import matching_frames
from jog3r.align.solver import torch_threads
from jog3r.checks import check_seed, parse_device
from jog3r.components import build_text_encoder, build_vae, read_components
from jog3r.diffusion import (
    SAMPLERS,
    GaussianDiffusion,
    Sampler,
    SamplingOptions,
    classifier_free_guidance,
    read_sampling_options,
)
from jog3r.encode.vae import default_asset_dir
from jog3r.metrics.pose import pose_metrics
from jog3r.model import JOG3R
from jog3r.recon.pairs import SceneGraph, make_edges
from jog3r.types import MATCHES, DiTFeatures, Matches, PairwisePointmaps, Reconstruction, Video
from jog3r.geometry.camera import adjust_intrinsics
from jog3r.io.video import resize_and_center_crop

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
MAX_PROMPT_CHARS = 1000
"""Longest prompt accepted; the text encoders read 32 (MiniLM) or 120 (T5) tokens anyway."""

ALIGN_THREADS = 1
"""Torch threads of the point-map alignment (:meth:`JOG3RPipeline.align`: hundreds of Adam steps on small tensors;
each long-video window too). On oversubscribed cores a second thread spin-waits: at a load average of 14 on the 2
shared cores, 60 steps (16 x 3 x 48 x 64) took 5 s wall with 1 thread and 193-227 s with 2; with one training
process beside it, the 16-frame default's alignment took 1.35 s with 1 thread and 2.75-20.2 s with 2.
``joint_align`` runs single-threaded for the same reason."""

FEATURE_T_RANGE = (0, 5)
"""Timesteps whose STDiT features feed the decoder at inference (paper Sec. 4: ``t`` in ``[0, 5]``)."""


def default_model_dir() -> Path:
    """Folder of the embedded default model, ``assets/jog3r-tiny`` of the repository."""
    return default_asset_dir("jog3r-tiny")


@dataclass(frozen=True)
class T2VOutput:
    """Result of :meth:`JOG3RPipeline.text_to_video`.

    Attributes:
        video: the generated :class:`~jog3r.types.Video` (frames ``[F, 3, H, W]`` in ``[0, 1]``).
        reconstruction: cameras/points from the features tapped during sampling (T2V+C), or ``None``.
        pointmaps: the pairwise point maps behind ``reconstruction``, or ``None``.
        cascade_reconstruction: cameras from running V2C on the generated video (T2V -> V2C), or ``None``.
        consistency: ``{"rot_deg", "transl_deg"}`` mean relative-pose difference over the ``(1 -> f)`` pairs
            between the T2V+C and T2V -> V2C cameras (paper Sec. 4.3), or ``None``.
        feature_timestep: the sampler step ``t`` whose features were decoded (T2V+C), or ``None``.
        timings: seconds per stage.
    """

    video: Video
    reconstruction: Reconstruction | None = None
    pointmaps: PairwisePointmaps | None = None
    cascade_reconstruction: Reconstruction | None = None
    consistency: dict | None = None
    feature_timestep: int | None = None
    timings: dict = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class V2COutput:
    """Result of :meth:`JOG3RPipeline.video_to_cameras`.

    Attributes:
        video: the input video resized and centre-cropped to the model size (what the cameras refer to).
        reconstruction: cameras, intrinsics, depth, points, confidences and colours.
        pointmaps: the pairwise point maps ``(1 -> f)`` before alignment (batch of 1).
        align_history: per-iteration alignment loss terms (see :func:`jog3r.align.fit.fit`).
        timings: seconds per stage.
        method: which method made the cameras: :data:`jog3r.align.joint.METHOD_JOINT` (the default,
            ``matches="sift"``) or :data:`jog3r.align.joint.METHOD_PAPER` (``matches="none"``, or a fallback of the
            default when no frames could be matched).
        match_info: what the correspondence-aware alignment did (:func:`jog3r.align.joint.joint_align`: ``status``,
            ``pairs``, ``matches``, ``reprojection_px``, ``cloud_reprojection_px`` = median reprojection error of
            each frame's points into the other frames in pixels of the model's frames, ...), or ``None`` with
            ``matches="none"``.
    """

    video: Video
    reconstruction: Reconstruction
    pointmaps: PairwisePointmaps
    align_history: dict
    timings: dict = dataclasses.field(default_factory=dict)
    method: str = METHOD_PAPER
    match_info: dict | None = None


class _Timer:
    """Adds the seconds of each ``with timer(name):`` block to ``timings[name]``."""

    def __init__(self, timings: dict[str, float] | None = None) -> None:
        self.timings: dict[str, float] = {} if timings is None else timings

    def __call__(self, name: str):
        timer = self

        class _Stage:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                timer.timings[name] = timer.timings.get(name, 0.0) + time.perf_counter() - self.start

        return _Stage()


class JOG3RPipeline:
    """One object for T2V, V2C and T2V+C (see the module docstring).

    Args:
        model: the JOG3R denoiser + reconstruction head.
        vae: the frame autoencoder its latents come from (:class:`jog3r.encode.vae.VideoVAE`).
        text_encoder: caption encoder with ``encode(list[str]) -> (y [B,1,L,Dy], mask [B,L])``.
        diffusion: the noise schedule / samplers (default OpenSora's linear 1000-step schedule).
        align: default global-alignment settings (default ``ALIGN_PRESETS["fast"]`` with the temporal terms).
        name: a label for the model (shown by the app and the CLI).
        sampling: T2V sampling deviations from OpenSora's reference (:class:`jog3r.diffusion.SamplingOptions`);
            ``None`` = the reference. :meth:`from_pretrained` reads them from the folder's ``sampling.json``.
    """

    def __init__(self, model: JOG3R, vae, text_encoder, *, diffusion: GaussianDiffusion | None = None,
                 align: AlignConfig | None = None, name: str = "jog3r",
                 sampling: SamplingOptions | None = None):
        self.model = model.eval()
        self.sampling = sampling or SamplingOptions()
        self.vae = vae
        self.text_encoder = text_encoder
        self.diffusion = diffusion or GaussianDiffusion()
        self.align_config = align or ALIGN_PRESETS.get("jog3r", ALIGN_PRESETS["fast"])
        self.name = name
        self.device = next(model.parameters()).device

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str = "cpu") -> "JOG3RPipeline":
        """Load a model folder (``model.safetensors`` + ``config.json`` + ``components.json``).

        Args:
            path: the folder; ``None`` = the embedded default (``assets/jog3r-tiny``).
            device: torch device string.

        Raises:
            FileNotFoundError: if the folder or its weights are missing.
            ValueError: if the folder is not a JOG3R model folder (or is a file), its encoders do not fit the model,
                a weight is NaN or inf, or ``device`` is not a usable device (:func:`jog3r.checks.parse_device`).
        """
        device = str(parse_device(device))
        folder = default_model_dir() if path is None else Path(path).expanduser()
        if folder.is_file():
            raise ValueError(f"{folder} is a file; pass the model folder that holds it (config.json + "
                             f"model.safetensors), e.g. {folder.parent}")
        if not folder.is_dir():
            raise FileNotFoundError(f"model folder {folder} does not exist; pass a folder written by `jog3r train` "
                                    "(its final/ or checkpoints/step_*/), or omit it for the embedded default")
        for required in ("config.json", "model.safetensors"):
            if not (folder / required).exists():
                raise ValueError(f"{folder} is not a JOG3R model folder: {required} is missing")
        model = JOG3R.from_pretrained(folder, device=device)
        comps = read_components(folder)
        vae = build_vae(comps["vae"], device=device)
        text = build_text_encoder(comps["text_encoder"], device=device,
                                  max_length=model.config.stdit.model_max_length)
        s = model.config.stdit
        if vae.latent_channels != s.in_channels or text.dim != s.caption_channels:
            raise ValueError(f"{folder}: its encoders ({comps}) do not match the model's input sizes")
        return cls(model, vae, text, name=folder.name if path is not None else "jog3r-tiny (embedded)",
                   sampling=read_sampling_options(folder))

    # ------------------------------------------------------------------ facts
    @property
    def num_frames(self) -> int:
        """Frames ``F`` the model was built (and trained) for."""
        return int(self.model.config.stdit.input_size[0])

    @property
    def resolution(self) -> tuple[int, int]:
        """``(H, W)`` in pixels of the model's videos."""
        _, h, w = self.model.config.stdit.input_size
        return h * self.vae.downsample, w * self.vae.downsample

    @property
    def max_frames(self) -> int:
        """Most frames one V2C / MEt3R pass takes: ``4 F`` (pairs ``(1 -> f)`` in one batch)."""
        return 4 * self.num_frames

    def check_frame_count(self, num_frames: int) -> None:
        """Raise ``ValueError`` unless ``2 <= num_frames <=`` :attr:`max_frames` (the rule of every V2C run)."""
        if num_frames < 2:
            raise ValueError(f"camera estimation needs at least 2 frames, the video has {num_frames}")
        if num_frames > self.max_frames:
            raise ValueError(f"{num_frames} frames is too many for one pass (max {self.max_frames}); "
                             "sample fewer frames (num_frames / stride)")

    @property
    def info(self) -> dict:
        """A summary for users: name, resolution, frames, encoders, parameter count."""
        return {"name": self.name, "resolution": self.resolution, "num_frames": self.num_frames,
                "vae": self.vae.name, "text_encoder": self.text_encoder.name,
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "tap_block": self.model.config.tap_block, "device": str(self.device)}

    def estimate_cost(self, num_frames: int, *, match_size: tuple[int, int] | None = None, matches: bool = True,
                      exports: bool = True, speed: float = 1.0, source_size: tuple[int, int] | None = None
                      ) -> dict:
        """Time (s) and peak memory (MB) of one V2C run of ``num_frames`` frames as ``jog3r v2c`` runs it, per stage.

        Refuses what the run refuses (:meth:`check_frame_count`: fewer than 2 or more than :attr:`max_frames`), so
        a cost is never quoted for a run that cannot happen. Every stage of the default V2C is priced, under the
        names the run reports (``V2CReport.timings``; the ``matches`` stage split as its ``match_info["seconds"]``):
        ``load`` (decoding, twice with correspondences), ``prepare``, ``vae_encode``, ``stdit``, ``decoder``
        (linear in the frames' pixels at the model size, the STDiT and decoder also in the parameter count),
        ``align`` (the point-map alignment), ``match`` (SIFT per frame and per pair, growing with the pixels SIFT
        sees: ``match_size`` upscaled to a 512-pixel short side), ``init`` and ``optimize`` (the joint alignment),
        ``export``. The constants are seconds of the quiet 2-core machine they were measured on
        (:data:`jog3r.jobs.cost.COST`, fitted by ``benchmarks/estimate_cost.py``: wall seconds divided by :func:`jog3r.jobs.cost.machine_speed` measured
        around each run, embedded default, default threads); ``speed`` (that function's value where the run will
        happen) scales them to another CPU or load. Other models and devices are extrapolations.

        Args:
            num_frames: frames of the run.
            match_size: ``(H', W')`` in pixels of the frames SIFT matches (the source frames centre-cropped, or
                padded, to the model's aspect; :func:`jog3r.jobs.v2c.plan_cost` works it out from a file);
                ``None``: the model's own frames.
            matches: ``False`` for the paper's V2C (no correspondence stages).
            exports: include ``export`` (``export_all``'s files).
            speed: slowness of the machine relative to the reference (``1.0``: quiet 2-core reference).
            source_size: ``(H, W)`` of the decoded source frames (the ``load`` stage); default ``match_size``.

        Returns:
            ``{"seconds": float, "memory_mb": int, "stages": {stage: seconds}}``; ``seconds`` is the stages' sum.

        Raises:
            ValueError: ``num_frames`` outside ``[2, max_frames]`` (the message of the run itself).
        """
        # the constants live with their calibration
        from jog3r.jobs.cost import COST as _COST, matched_pairs, sift_seconds

        self.check_frame_count(num_frames)
        h, w = self.resolution
        n = num_frames
        megapix = n * h * w / 1e6  # model-size pixels of the run
        params = sum(p.numel() for p in self.model.parameters()) / 1e6
        big = params / _COST["params_ref"]  # the STDiT and decoder scale with the parameters
        stages = {"prepare": _COST["prepare"] * megapix, "vae_encode": _COST["vae_encode"] * megapix,
                  "stdit": _COST["stdit"] * megapix * big, "decoder": _COST["decoder"] * megapix * big,
                  "align": _COST["align"] * megapix}
        mh, mw = match_size or (h, w)
        sh, sw = source_size or (mh, mw)
        stages = {"load": _COST["load"] * n * sh * sw / 1e6 * (2 if matches else 1), **stages}
        memory = _COST["memory_base"] + _COST["memory_megapix"] * megapix + _COST["memory_params"] * params
        if matches:
            pairs = matched_pairs(n)
            stages["match"] = sift_seconds(n, (mh, mw))
            stages["init"] = pairs * _COST["init_pair"]
            stages["optimize"] = pairs * _COST["optimize_pair"] * (1 + n / _COST["optimize_n0"])
            memory += 4 * 3 * n * mh * mw / 2**20  # the source frames (float32)
        if exports:
            stages["export"] = _COST["export"] * megapix
        stages = {k: round(v * speed, 2) for k, v in stages.items()}
        return {"seconds": round(sum(stages.values()), 1), "memory_mb": round(memory), "stages": stages}

    # ------------------------------------------------------------------ inputs
    def prepare_video(self, video: Video, known_K: torch.Tensor | None = None) -> tuple[Video, torch.Tensor | None]:
        """V2C step 1: check a video and bring it (and its known intrinsics) to the model's size.

        Args:
            video: frames ``[F, 3, H, W]`` float in ``[0, 1]``, any size.
            known_K: optional ``[3, 3]`` or ``[F, 3, 3]`` pinhole intrinsics in pixels of ``video``'s size.

        Returns:
            ``(video, known_K)``: the frames resized + centre-cropped to :attr:`resolution`
            (:func:`jog3r.io.video.resize_and_center_crop`) and ``known_K`` float32 adjusted to them
            (:func:`jog3r.geometry.camera.adjust_intrinsics`), or ``None``.

        Raises:
            ValueError: fewer than 2 or more than :attr:`max_frames` frames, frames outside ``[0, 1]`` or not
                finite, a ``known_K`` of the wrong shape, with skew, or whose principal point lies outside the
                frame.
        """
        self.check_frame_count(video.num_frames)
        if not bool(torch.isfinite(video.frames).all()):
            raise ValueError("the video frames contain NaN or inf")
        lo, hi = float(video.frames.min()), float(video.frames.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(f"video frames must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]; map [-1, 1] frames with "
                             "(x + 1) / 2 and uint8 frames with x / 255")
        size = self.resolution
        if known_K is not None:
            known_K = torch.as_tensor(known_K, dtype=torch.float32)
            if known_K.shape not in ((3, 3), (video.num_frames, 3, 3)):
                raise ValueError(f"known_K must be [3, 3] or [{video.num_frames}, 3, 3], got {tuple(known_K.shape)}")
            pinhole = torch.tensor([0.0, 0.0, 1.0])
            if not (bool((known_K[..., 2, :] == pinhole).all()) and bool((known_K[..., 0, 1] == 0).all())
                    and bool((known_K[..., 1, 0] == 0).all())):
                raise ValueError("known_K must be a pinhole matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] without "
                                 "skew (the alignment models fx, fy, cx, cy only)")
        if video.size != size:
            src = video.size
            frames = resize_and_center_crop(video.frames, size)
            video = dataclasses.replace(video, frames=frames)
            if known_K is not None:
                known_K = adjust_intrinsics(known_K, src, size)
        if known_K is not None:
            cx, cy, fx, fy = known_K[..., 0, 2], known_K[..., 1, 2], known_K[..., 0, 0], known_K[..., 1, 1]
            h, w = size
            if not (bool((fx > 0).all()) and bool((fy > 0).all())
                    and bool(((cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)).all())):  # OpenCV: 0 <= c < size
                raise ValueError(f"known_K has a non-positive focal or a principal point outside the {w}x{h} frame "
                                 f"the model sees (fx {fx.flatten()[0]:.1f}, cx {cx.flatten()[0]:.1f}, "
                                 f"cy {cy.flatten()[0]:.1f}); give K in pixels of the frames passed in")
        return video, known_K

    # ------------------------------------------------------------------ stages
    @torch.no_grad()
    def encode_prompt(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Caption tokens ``[2, 1, L, Dy]`` (prompt, null caption) and the mask ``[1, L]`` shared by both halves
        (OpenSora passes the prompt's mask with the null caption too, REFERENCE.md A.8)."""
        y, mask = self.text_encoder.encode([prompt])
        y = y.to(self.device)
        null = self.model.stdit.null_caption(1).to(self.device, y.dtype)
        return torch.cat([y, null]), mask.to(self.device)

    @torch.no_grad()
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """V2C step 2: frames ``[F, 3, H, W]`` in ``[0, 1]`` -> VAE latents ``[1, C, F, h, w]`` (scaled)."""
        return self.vae.encode(frames.to(self.device).permute(1, 0, 2, 3)[None] * 2 - 1).x

    @torch.no_grad()
    def features_of_latents(self, z0: torch.Tensor, t: int, seed: int = 0) -> DiTFeatures:
        """V2C steps 3-4: noise clean latents at ``t`` and tap the STDiT with the empty prompt (paper Sec. 4 (ii))."""
        gen = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(z0.shape, generator=gen).to(z0)
        tt = torch.full((z0.shape[0],), int(t), device=z0.device, dtype=torch.long)
        z_t = self.diffusion.q_sample(z0, tt, noise)
        out = self.model(z_t, tt, self.model.stdit.null_caption(z0.shape[0]).to(z0), None,
                         compute_gen=False, compute_rec=False)
        return out.features

    def align(self, pointmaps: PairwisePointmaps, frames: torch.Tensor, *, known_K: torch.Tensor | None = None,
              config: AlignConfig | None = None) -> tuple[Reconstruction, dict]:
        """Global alignment of one video's point maps (see :func:`jog3r.align.fit.fit`), on :data:`ALIGN_THREADS`
        torch threads (the caller's setting is restored)."""
        K = None
        if known_K is not None:
            K = known_K.float().reshape(-1, 3, 3).expand(frames.shape[0], 3, 3).clone()
        with torch_threads(ALIGN_THREADS):
            return fit(pointmaps.to("cpu"), frames.cpu(), config or self.align_config, K=K)

    @torch.no_grad()
    def decode_pairs(self, features: DiTFeatures) -> PairwisePointmaps:
        """Decoder + head on the pairs ``(1 -> f)`` of one video's STDiT features (paper Sec. 4).

        Args:
            features: the tapped STDiT tokens ``[1, F, S, D]`` of one video of ``F`` frames.

        Returns:
            Point maps of the ``F`` pairs ``(0, f)``, ``f = 0..F-1``, on the model's device.
        """
        return self.model.decode_pointmaps(features, make_edges(features.tokens.shape[1], SceneGraph.FIRST_TO_ALL))

    def reconstruct(self, features: DiTFeatures, frames: torch.Tensor, *, known_K: torch.Tensor | None = None,
                    config: AlignConfig | None = None, timings: dict[str, float] | None = None,
                    announce: Callable[[str], None] | None = None
                    ) -> tuple[PairwisePointmaps, Reconstruction, dict]:
        """The reconstruct step shared by V2C and T2V+C: point maps of ``(1 -> f)`` (:meth:`decode_pairs`), then
        their global alignment (:meth:`align`).

        Args:
            features: the STDiT features of one video (from :meth:`features_of_latents` or tapped while sampling).
            frames: ``[F, 3, H, W]`` in ``[0, 1]`` at the model's size (the point colours).
            known_K: optional ``[3, 3]`` / ``[F, 3, 3]`` intrinsics in pixels of ``frames``, kept fixed.
            config: alignment settings (default :attr:`align_config`).
            timings: seconds are added to its ``"decoder"`` and ``"align"`` entries when given.
            announce: called with ``"point maps"`` and ``"global alignment"`` as each stage starts.

        Returns:
            ``(pointmaps, reconstruction, align_history)``; the point maps on the model's device.
        """
        timer = _Timer(timings)
        if announce is not None:
            announce("point maps")
        with timer("decoder"):
            pointmaps = self.decode_pairs(features)
        if announce is not None:
            announce("global alignment")
        with timer("align"):
            recon, history = self.align(pointmaps, frames, known_K=known_K, config=config)
        return pointmaps, recon, history

    # ------------------------------------------------------------------ V2C
    def video_to_cameras(self, video: Video, *, known_K: torch.Tensor | None = None, align: AlignConfig | None = None,
                         t: int = 2, seed: int = 0, matches: Matches | str | JointConfig = "sift",
                         source_frames: torch.Tensor | None = None, progress: Progress | None = None) -> V2COutput:
        """Estimate cameras, focals, depth and a point cloud from a video (paper Sec. 4 (ii), plus correspondences).

        Args:
            video: frames ``[F, 3, H, W]`` in ``[0, 1]``, ``F >= 2`` (any size: resized + centre-cropped to
                :attr:`resolution`; see :func:`jog3r.io.video.resize_and_center_crop`).
            known_K: optional ``[3, 3]`` or ``[F, 3, 3]`` intrinsics in pixels of ``video``'s size, kept fixed.
                Note that :func:`jog3r.jobs.load.load_video` already resizes to :attr:`resolution`: adjust a
                source-size ``K`` with :func:`jog3r.geometry.camera.adjust_intrinsics` first.
            align: settings of the point-map global alignment (default :attr:`align_config`).
            t: diffusion timestep of the features, in ``[0, 5]`` (paper).
            seed: seeds the noise added at ``t``.
            matches: ``"sift"`` (default; not the paper's V2C): after the point-map alignment, one alignment over
                the point maps and SIFT correspondences between nearby frames (:func:`jog3r.align.joint.joint_align`),
                whose cameras, focals and depth maps agree; a :class:`~jog3r.align.joint.JointConfig` for other
                settings. ``"none"``: the paper's V2C, the point maps' global alignment alone.
            source_frames: ``[F, 3, H_s, W_s]`` the same frames at their source resolution, matched instead of
                ``video`` (e.g. :func:`jog3r.jobs.load.load_source_frames`): the correspondences are much more
                accurate there, and the model's input stays the same. Without it ``video`` itself is matched, centre-cropped to the
                model's aspect ratio when larger than the model's size (:func:`jog3r.align.refine.matching_frames`).
            progress: optional ``(fraction, description)`` callback.

        Raises:
            ValueError: fewer than 2 or more than :attr:`max_frames` frames, frames outside ``[0, 1]`` or not
                finite, ``t`` outside ``[0, 5]``, a seed outside ``[0, 2**64 - 1]``, a ``known_K`` of the wrong shape
                or whose principal point lies outside the frame (e.g. given at another image size), or ``matches``
                not ``"sift"``, ``"none"`` or a ``JointConfig``.
        """
        progress = progress or (lambda f, d: None)
        timer = _Timer()
        seed = check_seed(seed)
        if not FEATURE_T_RANGE[0] <= t <= FEATURE_T_RANGE[1]:
            raise ValueError(f"t must be in {list(FEATURE_T_RANGE)} (paper Sec. 4), got {t}")
        if not (isinstance(matches, JointConfig) or matches in MATCHES):
            raise ValueError(f"matches must be 'sift' (default: point maps + correspondences) or 'none' (the paper's "
                             f"V2C), got {matches!r}")
        joint = matches != "none"
        with timer("prepare"):
            given = video.frames
            video, known_K = self.prepare_video(video, known_K)
            detail = matching_frames(video.frames, given if source_frames is None else source_frames) if joint else None
        progress(0.05, "encoding frames")
        with timer("vae_encode"):
            z0 = self.encode_frames(video.frames)
        progress(0.2, "STDiT features")
        with timer("stdit"):
            feats = self.features_of_latents(z0, t, seed)
        pointmaps, recon, history = self.reconstruct(  # steps 5-6
            feats, video.frames, known_K=known_K, config=align, timings=timer.timings,
            announce=lambda stage: progress({"point maps": 0.35, "global alignment": 0.5}[stage], stage))
        method, match_info = METHOD_PAPER, None
        if joint:
            progress(0.7, "correspondences and joint alignment")
            cfg = matches if isinstance(matches, JointConfig) else JointConfig()
            with timer("matches"):
                recon, match_info = joint_align(recon, detail, pointmaps.to("cpu"), cfg, known_K=known_K is not None)
            if match_info["status"] == "aligned":
                method = METHOD_JOINT
            else:
                logger.warning("correspondence alignment %s; the cameras are the paper's V2C", match_info["status"])
        progress(1.0, "done")
        timer.timings["total"] = sum(timer.timings.values())
        return V2COutput(video=video, reconstruction=recon, pointmaps=pointmaps, align_history=history,
                         timings=timer.timings, method=method, match_info=match_info)

    # ------------------------------------------------------------------ T2V / T2V+C
    def check_prompt(self, prompt: str) -> str:
        """Validate a prompt and return it stripped.

        Raises:
            ValueError: not a string, empty, or longer than :data:`MAX_PROMPT_CHARS` characters.
        """
        if not isinstance(prompt, str):
            raise ValueError(f"the prompt must be text, got {type(prompt).__name__}")
        prompt = " ".join(prompt.split())
        if not prompt:
            raise ValueError("the prompt is empty: describe the scene, e.g. 'a living room with a couch'")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"the prompt has {len(prompt)} characters; keep it under {MAX_PROMPT_CHARS} (the text "
                             f"encoder reads only the first {self.model.config.stdit.model_max_length} tokens)")
        return prompt

    @staticmethod
    def check_sampling(sampler: str, steps: int | float | None, guidance_scale: float | None = None) -> int | None:
        """Validate T2V sampling options without a model (the CLI checks them before loading one).

        Returns:
            ``steps`` as an ``int`` (``None`` stays ``None`` = the sampler's default).

        Raises:
            ValueError: unknown sampler, steps not a whole number in ``[2, 1000]``, a guidance scale that is negative
                or not finite.
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}")
        if steps is not None and not (float(steps).is_integer() and 2 <= steps <= 1000):
            raise ValueError(f"steps must be a whole number in [2, 1000], got {steps}")
        if guidance_scale is not None and not (math.isfinite(guidance_scale) and guidance_scale >= 0):
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {guidance_scale}")
        return None if steps is None else int(steps)

    def text_to_video(self, prompt: str, *, seed: int = 0, sampler: str = "ddim", steps: int | None = None,
                      guidance_scale: float = 7.0, guide_channels: int | None = None, estimate_cameras: bool = False,
                      cascade: bool = False, align: AlignConfig | None = None,
                      progress: Progress | None = None) -> T2VOutput:
        """Generate a video from text; optionally its cameras from the same sampling run (T2V+C).

        Args:
            prompt: the caption (RealEstate10K style works best with the embedded default).
            seed: seeds the initial noise and the sampler.
            sampler: ``"iddpm"`` (OpenSora, 100 steps), ``"ddim"`` or ``"dpmsolver++"``.
            steps: denoising steps (default per sampler).
            guidance_scale: classifier-free guidance scale (7.0 = OpenSora; 1.0 disables guidance).
            guide_channels: guide only the first ``g`` eps channels (``3`` = OpenSora v1.0's quirk; ``None`` all).
            estimate_cameras: T2V+C: decode the features tapped at the visited step with ``t`` in ``[0, 5]``.
            cascade: also run the paper's V2C on the generated video (T2V -> V2C, ``matches="none"``) and report
                the self-consistency.
            align: global-alignment settings.
            progress: optional ``(fraction, description)`` callback.

        Raises:
            ValueError: bad prompt, unknown sampler, steps not a whole number in [2, 1000], negative or non-finite
                guidance, a seed outside ``[0, 2**64 - 1]``.
        """
        progress = progress or (lambda f, d: None)
        timer = _Timer()
        # 1. check inputs
        prompt = self.check_prompt(prompt)
        seed = check_seed(seed)
        steps = self.check_sampling(sampler, steps, guidance_scale)
        # 2. encode the prompt (and the null caption for CFG)
        with timer("text_encode"):
            y2, mask = self.encode_prompt(prompt)
        # 3. prepare latents and the sampler's steps (the T2V+C tap: the visited step with t in [0, 5])
        c = self.model.config.stdit.in_channels
        nf, h, w = self.model.config.stdit.input_size
        run = Sampler(sampler, steps, self.diffusion.schedule, torch.Generator(device="cpu").manual_seed(seed),
                      self.sampling)
        small = [t for t in run.timesteps if FEATURE_T_RANGE[0] <= t <= FEATURE_T_RANGE[1]]
        tap_t = (max(small) if small else min(run.timesteps)) if estimate_cameras else None
        if estimate_cameras and not small:
            logger.warning("%s with %s steps never visits t in %s; T2V+C uses the features at t=%d instead",
                           sampler, steps, list(FEATURE_T_RANGE), tap_t)
        tap, features, total = self.model.config.tap_block, None, len(run.timesteps)
        # 4. denoising loop with classifier-free guidance (batch: prompt half, null-caption half)
        with timer("denoise"), torch.no_grad():
            x = run.initial_latents((1, c, nf, h, w), device=self.device)
            for i, t in enumerate(run.timesteps):
                progress(0.8 * i / total, f"denoising step {i + 1}/{total} (t={t})")
                x_in = run.model_input(x, i)
                xx, tt = torch.cat([x_in, x_in]), torch.full((2,), t, dtype=torch.long, device=x_in.device)
                if t == tap_t and features is None:
                    # 5. T2V+C: tap the STDiT features of the null-caption half (L_rec was trained with the empty
                    # prompt). The null half attends to its whole caption here, as in L_rec training and V2C;
                    # OpenSora's sampling gives it the prompt's mask (kept at every other step), whose features the
                    # decoder never saw.
                    out, feats = self.model.stdit(xx, tt, y2, torch.cat([mask, torch.ones_like(mask)]),
                                                  return_features=tap)
                    features = DiTFeatures(tokens=feats[tap][1:], grid=self.model.stdit.patch_grid(h, w),
                                           timestep=tt[:1], block=tap)
                else:
                    out = self.model.stdit(xx, tt, y2, mask)
                cond, uncond = out.chunk(2)
                x = run.step(classifier_free_guidance(cond, uncond, guidance_scale, guide_channels), i, x,
                             model_input=x_in)
            z0 = x
        # 8. VAE-decode the frames
        progress(0.82, "decoding frames")
        with timer("vae_decode"), torch.no_grad():
            frames = (self.vae.decode(z0)[0].permute(1, 0, 2, 3) + 1) / 2
        video = Video(frames=frames.clamp(0, 1).cpu(), fps=8.0, frame_indices=torch.arange(nf), source=prompt)
        recon = pointmaps = cascade_recon = consistency = None
        if estimate_cameras:
            # 6. decode frame pairs (1 -> f) to point maps; 7. global alignment
            progress(0.85, "T2V+C: point maps and alignment")
            pointmaps, recon, _ = self.reconstruct(features, video.frames, config=align, timings=timer.timings)
        if cascade:
            progress(0.92, "T2V -> V2C")
            with timer("cascade_v2c"):
                cascade_recon = self.video_to_cameras(video, align=align, seed=seed, matches="none").reconstruction
            if recon is not None:
                m = pose_metrics(recon.cam2world, cascade_recon.cam2world, pairs="first")
                consistency = {"rot_deg": float(m["Rot. err."]), "transl_deg": float(m["Trans. err."])}
        progress(1.0, "done")
        timer.timings["total"] = sum(timer.timings.values())
        # 9. return
        return T2VOutput(video=video, reconstruction=recon, pointmaps=pointmaps, cascade_reconstruction=cascade_recon,
                         consistency=consistency, feature_timestep=tap_t, timings=timer.timings)


__all__ = ["JOG3RPipeline", "T2VOutput", "V2COutput", "default_model_dir"]
