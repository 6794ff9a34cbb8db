"""Caption encoders: bundled MiniLM (networking blocked), T5 on a tiny random config + offline tokenizer."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

from jog3r.encode import MiniLMTextEncoder, T5TextEncoder, clean_caption

WORDS = "a the living room kitchen with sofa camera moves forward slowly bright bedroom window".split()


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def minilm() -> MiniLMTextEncoder:
    return MiniLMTextEncoder()


@pytest.fixture(scope="module")
def tiny_t5_dir(tmp_path_factory) -> Path:
    """Random 2-layer T5 encoder (d_model 16) + a WordLevel tokenizer that appends </s> like T5's."""
    path = tmp_path_factory.mktemp("t5-tiny")
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(vocab),
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=2,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=1,
    )
    T5EncoderModel(config).save_pretrained(path)
    return path


def test_minilm_offline_shapes_and_mask(minilm, no_network):
    prompts = ["A living room with a sofa, the camera moves forward.", "kitchen", ""]
    y, mask = minilm.encode(prompts)
    assert minilm.dim == 384 and minilm.max_length == 32
    assert y.shape == (3, 1, 32, 384) and y.dtype == torch.float32
    assert mask.shape == (3, 32) and mask.dtype == torch.int64
    lengths = mask.sum(1).tolist()
    expected = [len(minilm.tokenizer(clean_caption(p))["input_ids"]) for p in prompts]
    assert lengths == expected and lengths[2] == 2  # "" -> [CLS] [SEP]
    for row, n in zip(mask, lengths):  # real tokens first, then padding
        assert row[:n].eq(1).all() and row[n:].eq(0).all()
    assert torch.isfinite(y).all()


def test_minilm_prompts_differ_and_repeat(minilm, no_network):
    y, mask = minilm.encode(["a bright bedroom", "a dark garage", "a bright bedroom"])
    assert torch.equal(y[0], y[2])
    n = int(mask[0].sum())
    assert (y[0, 0, :n] - y[1, 0, :n]).abs().max() > 0.1


def test_minilm_truncates_to_max_length(no_network):
    encoder = MiniLMTextEncoder(max_length=8)
    y, mask = encoder.encode(["one two three four five six seven eight nine ten eleven"])
    assert y.shape == (1, 1, 8, 384) and mask.sum() == 8
    with pytest.raises(ValueError, match="positions"):
        MiniLMTextEncoder(max_length=4096)


@pytest.mark.parametrize("bad", ["a string", [], [1, "x"], None, ["ok", None]])
def test_non_string_prompts_are_rejected(minilm, bad):
    with pytest.raises(ValueError, match="prompts"):
        minilm.encode(bad)


def test_clean_caption():
    raw = "  A <b>Living</b>&amp;Room  http://example.com/x?y=1  with   @agent SOFA\n"
    assert clean_caption(raw) == "a living&room with sofa"
    assert clean_caption("") == ""


def test_t5_encoder_matches_the_model(tiny_t5_dir, no_network):
    encoder = T5TextEncoder(tiny_t5_dir, max_length=6)
    assert encoder.dim == 16 and encoder.max_length == 6
    y, mask = encoder.encode(["The Living Room", "a kitchen with a sofa camera moves forward"])
    assert y.shape == (2, 1, 6, 16) and y.dtype == torch.float32
    # "the living room </s>" = 4 tokens; the long prompt is truncated to 6 (T5 keeps </s> last)
    assert mask.tolist() == [[1, 1, 1, 1, 0, 0], [1] * 6]
    model = T5EncoderModel.from_pretrained(tiny_t5_dir).eval()
    ids = torch.tensor([[3 + WORDS.index(w) for w in ("the", "living", "room")] + [1, 0, 0]])
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask[:1]).last_hidden_state
    torch.testing.assert_close(y[0, 0], expected[0])


def test_t5_default_length_is_opensoras(tiny_t5_dir):
    y, mask = T5TextEncoder(tiny_t5_dir).encode(["a bedroom"])
    assert y.shape == (1, 1, 120, 16) and int(mask.sum()) == 3


def test_t5_missing_folder_says_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="t5-v1_1-xxl"):
        T5TextEncoder(tmp_path / "t5-v1_1-xxl")
