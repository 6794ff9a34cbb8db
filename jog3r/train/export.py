"""``python -m jog3r.train.export``: turn a training checkpoint into a model folder (EMA weights).

A step checkpoint (``checkpoints/step_XXXXXX/``) holds the raw weights, the EMA of the trainable weights and the
optimiser state; a model folder (what ``JOG3RPipeline.from_pretrained`` and the app load) holds only
``model.safetensors`` + ``config.json`` + ``components.json`` (+ ``sampling.json``). This copies the EMA weights over the raw ones and
writes the folder atomically, so an existing model folder is replaced only once the new one is complete::

    python -m jog3r.train.export --run runs/tiny --out assets/jog3r-tiny     # newest checkpoint of the run

A model on TAEF2 latents gets a ``sampling.json`` turning on the eps gain correction (issue #20; without it such a
small model samples colour noise): the checkpoint's own (``jog3r train`` measures ``E[z0^2]`` of the latents it
trains on), else measured from the run's packed data, else the one already in ``out``. A model on OpenSora's VAE
gets none (OpenSora's reference sampling).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import tyro
from safetensors import safe_open
from safetensors.torch import load_file

from jog3r.checkpoint import save_safetensors
from jog3r.components import EMBEDDED_VAE, read_components
from jog3r.diffusion import SamplingOptions, read_sampling_options, write_sampling_options
from jog3r.diffusion.sampling import SAMPLING_FILE
from jog3r.train.checkpoints import commit_dir, latest_checkpoint, new_tmp_dir, read_state
from jog3r.train.pack import packed_clips


def _on_taef2_latents(checkpoint: Path) -> bool:
    vae = read_components(checkpoint)["vae"]
    return vae == EMBEDDED_VAE or (Path(vae).expanduser() / "taef2_encoder.pth").exists()


def packed_second_moment(folder: Path) -> float:
    """``E[z^2]`` per element of the latents of a packed folder (:mod:`jog3r.train.pack`)."""
    total, count = 0.0, 0
    for path in packed_clips(folder):
        with safe_open(str(path), framework="pt") as f:
            z = f.get_tensor("latents").double()
        total, count = total + float(z.pow(2).sum()), count + z.numel()
    if not count:
        raise ValueError(f"{folder} holds no packed clips")
    return total / count


def _sampling_options(checkpoint: Path, out: Path) -> SamplingOptions | None:
    """The ``sampling.json`` of the exported folder (see the module docstring), ``None`` for none."""
    if not _on_taef2_latents(checkpoint):
        return None
    if (checkpoint / SAMPLING_FILE).exists():  # measured by jog3r train on the latents it trained on
        return read_sampling_options(checkpoint)
    config = checkpoint.parent.parent / "train_config.json"  # run/checkpoints/step_XXXXXX of an older run
    if config.exists():
        train = json.loads(config.read_text())
        data = Path(str(train.get("data") or "")).expanduser()
        if train.get("opensora_ckpt") is None and (data / "packed.json").exists():
            return SamplingOptions(eps_gain_second_moment=round(packed_second_moment(data), 4))
    return read_sampling_options(out) if (out / SAMPLING_FILE).exists() else None


def export_checkpoint(checkpoint: Path, out: Path, *, use_ema: bool = True) -> Path:
    """Write a model folder from a step checkpoint.

    Args:
        checkpoint: a ``checkpoints/step_XXXXXX`` folder.
        out: the model folder to (re)write.
        use_ema: replace the trained weights by their EMA (what the run's ``final/`` holds).

    Returns:
        ``out``.

    Raises:
        FileNotFoundError: if the checkpoint lacks its weights.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    for name in ("model.safetensors", "config.json"):
        if not (checkpoint / name).exists():
            raise FileNotFoundError(f"{checkpoint} is not a training checkpoint: {name} is missing")
    weights = load_file(str(checkpoint / "model.safetensors"))
    ema_path = checkpoint / "ema.safetensors"
    if use_ema and ema_path.exists():
        weights.update(load_file(str(ema_path)))
    tmp = new_tmp_dir(out.parent, out.name)
    save_safetensors(weights, tmp / "model.safetensors")
    for name in ("config.json", "components.json"):
        if (checkpoint / name).exists():
            shutil.copy2(checkpoint / name, tmp / name)
    state = read_state(checkpoint) if (checkpoint / "trainer_state.json").exists() else {}
    (tmp / "trainer_state.json").write_text(json.dumps({**state, "ema": bool(use_ema and ema_path.exists()),
                                                        "exported_from": checkpoint.name}))
    options = _sampling_options(checkpoint, out)
    if options is not None:
        write_sampling_options(tmp, options)
    for keep in ("MODEL_CARD.md", "eval"):
        if (out / keep).exists():  # hand-written documentation of the folder survives a re-export
            (shutil.copytree if (out / keep).is_dir() else shutil.copy2)(out / keep, tmp / keep)
    commit_dir(tmp, out)
    return out


@dataclass
class ExportArgs:
    """Export a checkpoint of a training run as a model folder."""

    out: Path
    """The model folder to write (replaced atomically)."""
    run: Path | None = None
    """A run folder: its newest complete checkpoint is exported."""
    checkpoint: Path | None = None
    """Or an explicit ``checkpoints/step_XXXXXX`` folder."""
    raw: bool = False
    """Export the raw weights instead of their EMA."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m jog3r.train.export``."""
    args = tyro.cli(ExportArgs, args=argv)
    ckpt = args.checkpoint or (latest_checkpoint(args.run) if args.run else None)
    if ckpt is None:
        raise SystemExit("give --checkpoint, or --run with at least one complete checkpoint")
    print(f"exported {ckpt} -> {export_checkpoint(ckpt, args.out, use_ema=not args.raw)}")


if __name__ == "__main__":
    main()
