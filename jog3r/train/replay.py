"""A replay pool of synthetic clips for fast devices: render in worker processes, encode once, draw many times.

On a GPU the ``tiny`` step takes a fraction of a second while one CPU process renders ~1 synthetic clip per
second and the VAE encoder runs per step: the device starves. The pool decouples the three:

* ``workers`` processes render clips ``k * world + rank`` (synthetic seed ``seed * 10_000_019 + index``, the same
  clips as ``--data synth`` and :mod:`jog3r.train.pack`) and send frames as uint8 with depth, ``K``, cameras and
  caption;
* a thread of the training process encodes each arriving clip once with the run's VAE on the run's device and
  stores latents (float16), depth (float16), ``K`` and ``cam2world`` there: ``capacity`` clips, the oldest
  replaced once full;
* every micro-batch draws ``batch_size`` clips uniformly from what the pool holds NOW (it keeps growing while
  training runs), each reversed with probability 0.5, and builds the ground-truth points in the first camera on
  the device.

The draws are seeded by ``(seed, step, micro, rank)`` but the pool's content depends on timing, so a run with a
replay pool is resumable but does not reproduce the uninterrupted data order (unlike ``--data synth`` or a packed
folder). ``python benchmarks/train_gpu.py`` uses it.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import threading
import time

import torch

from jog3r.data.annotate import cameras_in_first, pointmaps_in_first
from jog3r.data.synth import SynthConfig, generate_clip
from jog3r.train.data import TrainBatch

logger = logging.getLogger(__name__)

SYNTH_SEED_STRIDE = 10_000_019


class _RenderedClips(torch.utils.data.Dataset):
    """Clip ``i`` of this rank's endless stream (picklable, for spawned DataLoader workers)."""

    def __init__(self, synth_cfg: SynthConfig, seed: int, rank: int, world: int, length: int = 10**9):
        self.synth_cfg, self.seed, self.rank, self.world, self.length = synth_cfg, seed, rank, world, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> dict:
        index = k * self.world + self.rank
        clip = generate_clip(self.seed * SYNTH_SEED_STRIDE + index, self.synth_cfg)
        return {"frames": clip.frames.mul(255).round().to(torch.uint8),  # [F, 3, H, W]
                "depth": clip.depth.float(), "K": clip.K.float(), "cam2world": clip.cam2world.float(),
                "caption": clip.caption or "", "index": index}


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


class ReplayPool:
    """See the module docstring.

    Args:
        synth_cfg: the synthetic generator's config (frame size and count of the run).
        vae: the run's frozen VAE (on ``device``).
        device: where latents and ground truth live and batches are built.
        capacity: clips kept (the oldest is replaced once full).
        workers: renderer processes (>= 1).
        seed: run seed.
        rank: this process's rank; world: number of processes.
        encode_batch: clips encoded together.
    """

    def __init__(self, synth_cfg: SynthConfig, vae, device: torch.device, *, capacity: int, workers: int, seed: int,
                 rank: int = 0, world: int = 1, encode_batch: int = 4):
        if capacity < 1 or workers < 1:
            raise ValueError(f"replay pool needs capacity >= 1 and workers >= 1, got {capacity}, {workers}")
        self.vae, self.device, self.capacity, self.seed, self.rank = vae, device, capacity, seed, rank
        self.encode_batch = encode_batch
        self.slots: list[dict] = []
        self.next_slot = 0
        self.total = 0
        self.encode_seconds = 0.0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        context = "spawn" if device.type == "cuda" else None  # never fork a process that holds a CUDA context
        self._loader = torch.utils.data.DataLoader(
            _RenderedClips(synth_cfg, seed, rank, world), batch_size=None, shuffle=False, num_workers=workers,
            prefetch_factor=4, persistent_workers=False, worker_init_fn=_one_thread, multiprocessing_context=context,
        )
        self._batches = iter(self._loader)
        self.started = time.perf_counter()
        self._thread = threading.Thread(target=self._fill, name="replay-pool", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # never leave the thread inside the loader at interpreter shutdown

    # ------------------------------------------------------------------ producer
    def _fill(self) -> None:
        try:
            pending = []
            for clip in self._batches:
                if self._stop.is_set():
                    break
                pending.append(clip)
                if len(pending) >= self.encode_batch or len(self.slots) < self.encode_batch:
                    self._encode(pending)
                    pending = []
        except BaseException as exc:  # surfaced to the training loop by sample()
            if self._stop.is_set():
                return  # close() shut the renderers down under us
            self._error = exc
            with self._cond:
                self._cond.notify_all()

    @torch.no_grad()
    def _encode(self, clips: list[dict]) -> None:
        start = time.perf_counter()
        video = torch.stack([c["frames"] for c in clips]).to(self.device).permute(0, 2, 1, 3, 4)  # [B, 3, F, H, W]
        latents = self.vae.encode(video.float() / 127.5 - 1.0).x.half()
        entries = [{"latents": latents[i], "depth": c["depth"].to(self.device, torch.float16),
                    "K": c["K"].to(self.device), "cam2world": c["cam2world"].to(self.device),
                    "caption": c["caption"]} for i, c in enumerate(clips)]
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.encode_seconds += time.perf_counter() - start
        with self._cond:
            for entry in entries:
                if len(self.slots) < self.capacity:
                    self.slots.append(entry)
                else:
                    self.slots[self.next_slot] = entry
                    self.next_slot = (self.next_slot + 1) % self.capacity
                self.total += 1
            self._cond.notify_all()

    # ------------------------------------------------------------------ consumer
    def wait_for(self, count: int, timeout: float = 3600.0) -> None:
        """Block until the pool holds ``count`` clips (or raise the renderer's error / a timeout)."""
        deadline = time.perf_counter() + timeout
        with self._cond:
            while len(self.slots) < min(count, self.capacity):
                if self._error is not None:
                    raise RuntimeError(f"replay pool renderer failed: {self._error!r}") from self._error
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"replay pool holds {len(self.slots)} clips after {timeout:.0f} s, "
                                       f"wanted {count}; add --replay-workers or lower --replay-warmup")
                self._cond.wait(min(left, 1.0))

    def sample(self, step: int, micro: int, batch_size: int) -> TrainBatch:
        """A micro-batch drawn uniformly from the current pool (each clip reversed with probability 0.5).

        Returns:
            :class:`~jog3r.train.data.TrainBatch` with ``latents`` ``[B, C, F, h, w]`` float32 and ``pts3d`` /
            ``valid`` on the pool's device, ``frames=None``.
        """
        self.wait_for(batch_size)
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + step * 1_009 + micro) * 31 + self.rank)
        with self._lock:
            n = len(self.slots)
            picks = torch.randint(0, n, (batch_size,), generator=gen).tolist()
            entries = [self.slots[i] for i in picks]
        flips = (torch.rand(batch_size, generator=gen) < 0.5).tolist()
        latents, pts, valids, captions, cams = [], [], [], [], []
        for entry, flip in zip(entries, flips):
            z, depth, K, c2w = entry["latents"], entry["depth"], entry["K"], entry["cam2world"]
            if flip:  # played backwards: latents are frame-wise, so flipping them is exact
                z, depth, K, c2w = z.flip(1), depth.flip(0), K.flip(0), c2w.flip(0)
            p, v = pointmaps_in_first(depth.float(), K, c2w)
            cams.append(cameras_in_first(c2w))
            latents.append(z.float())
            pts.append(p)
            valids.append(v)
            captions.append(entry["caption"])
        return TrainBatch(frames=None, pts3d=torch.stack(pts), valid=torch.stack(valids), captions=captions,
                          latents=torch.stack(latents), cam2first=torch.stack(cams))

    def stats(self) -> dict[str, float]:
        """``pool_size``, ``pool_total`` (clips encoded so far), ``pool_clips_per_s`` since start."""
        elapsed = max(1e-9, time.perf_counter() - self.started)
        return {"pool_size": float(len(self.slots)), "pool_total": float(self.total),
                "pool_clips_per_s": self.total / elapsed}

    def close(self) -> None:
        """Stop rendering: shut the renderer processes down and wait for the encoding thread (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        shutdown = getattr(self._batches, "_shutdown_workers", None)  # DataLoader's own clean-up
        if shutdown is not None:
            shutdown()
        self._thread.join(timeout=30)


def build_replay_pool(cfg, vae, device: torch.device, *, height: int, width: int, rank: int, world: int
                      ) -> ReplayPool:
    """The pool of a :class:`~jog3r.train.config.TrainConfig` with ``replay_pool > 0`` and ``data == 'synth'``."""
    if cfg.data != "synth":
        raise ValueError(f"--replay-pool works with --data synth only (got {cfg.data!r}); packed folders are "
                         "already encoded")
    synth_cfg = SynthConfig(height=height, width=width, num_frames=cfg.num_frames)
    if cfg.synth_scenes:
        synth_cfg = dataclasses.replace(synth_cfg, **cfg.synth_scenes)
    return ReplayPool(synth_cfg, vae, device, capacity=cfg.replay_pool, workers=max(1, cfg.replay_workers),
                      seed=cfg.seed, rank=rank, world=world)
