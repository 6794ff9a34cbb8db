"""JOG3RPipeline on a tiny real model (``micro`` preset, real TAEF2 + MiniLM): T2V, V2C, T2V+C, MEt3R, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jog3r.jobs import load_video, met3r_of_video
from jog3r.pipeline import JOG3RPipeline
from jog3r.types import Video

CLIP = Path(__file__).parent / "data" / "realestate10k" / "clips16_384x256" / "0bf152ef84195293.mp4"


@pytest.fixture(scope="module")
def pipe(micro_model_dir) -> JOG3RPipeline:
    return JOG3RPipeline.from_pretrained(micro_model_dir)


def test_info_and_resolution(pipe):
    assert pipe.resolution == (32, 48) and pipe.num_frames == 4
    assert pipe.info["vae"] == pipe.vae.name and pipe.info["parameters"] > 0


def test_v2c_on_a_real_clip(pipe):
    video, info = load_video(pipe, CLIP)
    assert video.num_frames == 4 and video.size == (32, 48) and "4" in info.message
    out = pipe.video_to_cameras(video)
    rec = out.reconstruction
    assert rec.cam2world.shape == (4, 4, 4) and rec.K.shape == (4, 3, 3)
    assert rec.depth.shape == (4, 32, 48) and rec.pts3d.shape == (4, 32, 48, 3)
    assert torch.isfinite(rec.cam2world).all() and torch.isfinite(rec.depth).all()
    torch.testing.assert_close(rec.cam2world[:, 3], torch.tensor([0.0, 0, 0, 1]).expand(4, 4))
    assert out.pointmaps.edges.tolist() == [[0, 1], [0, 2], [0, 3]]
    assert set(out.timings) >= {"vae_encode", "stdit", "decoder", "align", "total"}


def test_v2c_matches_default_and_none(pipe):
    """The default adds the correspondence alignment after the point maps' and names the method; on random frames
    (no geometry to match) it falls back to the paper's cameras, unchanged, and says so; ``matches="none"`` is the
    paper's V2C."""
    frames = torch.rand(4, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    plain = pipe.video_to_cameras(Video(frames=frames), matches="none")
    out = pipe.video_to_cameras(Video(frames=frames))
    assert plain.match_info is None and "matches" not in plain.timings and plain.method == "JOG3R V2C (paper)"
    assert out.match_info["status"].startswith("fallback") and "matches" in out.timings
    assert out.method == "JOG3R V2C (paper)"
    torch.testing.assert_close(out.reconstruction.cam2world, plain.reconstruction.cam2world)
    assert out.match_info["match_size"] == [32, 48]
    with pytest.raises(ValueError, match="matches must be 'sift'"):
        pipe.video_to_cameras(Video(frames=frames), matches="orb")


def test_matches_none_is_the_papers_alignment(pipe):
    """``matches="none"`` returns exactly the point maps' global alignment (``fit`` with the pipeline's preset)."""
    from jog3r.align import fit

    video, _ = load_video(pipe, CLIP)
    out = pipe.video_to_cameras(video, matches="none")
    recon, _ = fit(out.pointmaps, out.video.frames, pipe.align_config)
    torch.testing.assert_close(out.reconstruction.cam2world, recon.cam2world, rtol=0, atol=0)
    torch.testing.assert_close(out.reconstruction.depth, recon.depth, rtol=0, atol=0)
    assert out.method == "JOG3R V2C (paper)" and out.match_info is None


def test_v2c_matches_on_the_source_resolution(pipe):
    """A video larger than the model's size: the model sees it resized, the matching its centre crop with the
    model's aspect ratio at full resolution (64x120 -> 64x96 for a 32x48 model)."""
    frames = torch.rand(3, 3, 64, 120, generator=torch.Generator().manual_seed(1))
    out = pipe.video_to_cameras(Video(frames=frames))
    assert out.video.size == (32, 48) and out.match_info["match_size"] == [64, 96]
    # or a model-size video with its source frames beside it: the model's input does not depend on ``matches``
    small = Video(frames=out.video.frames)
    plain = pipe.video_to_cameras(small, matches="none")
    matched = pipe.video_to_cameras(small, source_frames=frames)
    assert matched.match_info["match_size"] == [64, 96]
    torch.testing.assert_close(matched.pointmaps.pts3d, plain.pointmaps.pts3d)


def test_v2c_resizes_any_input_and_keeps_known_intrinsics(pipe):
    frames = torch.rand(3, 3, 64, 80)
    K = torch.tensor([[70.0, 0, 40], [0, 70.0, 32], [0, 0, 1]])
    out = pipe.video_to_cameras(Video(frames=frames), known_K=K)
    # 64x80 -> cover 32x48: scale 0.6 -> 38.4x48, crop rows -> fx = 42
    assert out.reconstruction.K[0, 0, 0].item() == pytest.approx(42.0, rel=1e-4)


def test_v2c_refuses_intrinsics_of_another_image_size(pipe):
    """A K given in source pixels for frames already resized (e.g. by load_video) is caught before PnP."""
    frames = torch.rand(3, 3, 32, 48)
    K_source = torch.tensor([[300.0, 0, 288], [0, 300.0, 160], [0, 0, 1]])  # 576x320 source pixels
    with pytest.raises(ValueError, match="principal point outside the 48x32 frame"):
        pipe.video_to_cameras(Video(frames=frames), known_K=K_source)
    on_the_edge = torch.tensor([[40.0, 0, 48], [0, 40.0, 16], [0, 0, 1]])  # cx = W: OpenCV refuses it
    with pytest.raises(ValueError, match="principal point outside"):
        pipe.video_to_cameras(Video(frames=frames), known_K=on_the_edge)
    with pytest.raises(ValueError, match="known_K must be"):
        pipe.video_to_cameras(Video(frames=frames), known_K=torch.eye(3).expand(2, 3, 3))
    skewed = torch.tensor([[40.0, 2.0, 24], [0, 40.0, 16], [0, 0, 1]])
    with pytest.raises(ValueError, match="without skew"):
        pipe.video_to_cameras(Video(frames=frames), known_K=skewed)
    homogeneous_scaled = torch.tensor([[80.0, 0, 48], [0, 80.0, 32], [0, 0, 2]])
    with pytest.raises(ValueError, match="pinhole matrix"):
        pipe.video_to_cameras(Video(frames=frames), known_K=homogeneous_scaled)


def test_t2v_and_t2vc(pipe):
    out = pipe.text_to_video("a living room with a couch", sampler="ddim", steps=3, seed=1)
    assert out.video.frames.shape == (4, 3, 32, 48) and out.reconstruction is None
    assert 0 <= out.video.frames.min() and out.video.frames.max() <= 1
    again = pipe.text_to_video("a living room with a couch", sampler="ddim", steps=3, seed=1)
    torch.testing.assert_close(out.video.frames, again.video.frames)
    both = pipe.text_to_video("a kitchen", sampler="ddim", steps=3, estimate_cameras=True, cascade=True)
    assert both.reconstruction.cam2world.shape == (4, 4, 4)
    assert 0 <= both.feature_timestep <= 5
    assert set(both.consistency) == {"rot_deg", "transl_deg"}
    assert all(torch.isfinite(torch.tensor(v)) for v in both.consistency.values())


@pytest.mark.parametrize("sampler", ["ddim", "iddpm", "dpmsolver++"])
def test_t2v_loop_draws_what_the_sampler_draws(pipe, sampler):
    """The denoising loop written out in ``text_to_video`` is :func:`jog3r.diffusion.sample` with the guided STDiT:
    the same frames, bit for bit."""
    from jog3r.diffusion import classifier_free_guidance

    y2, mask = pipe.encode_prompt("a kitchen")

    def guided_stdit(x, t):
        cond, uncond = pipe.model.stdit(torch.cat([x, x]), torch.cat([t, t]), y2, mask).chunk(2)
        return classifier_free_guidance(cond, uncond, 5.0, 3)

    c = pipe.model.config.stdit.in_channels
    with torch.no_grad():
        z0 = pipe.diffusion.sample(guided_stdit, (1, c, *pipe.model.config.stdit.input_size), sampler, 3,
                                   torch.Generator().manual_seed(4), options=pipe.sampling)
        frames = ((pipe.vae.decode(z0)[0].permute(1, 0, 2, 3) + 1) / 2).clamp(0, 1)
    out = pipe.text_to_video("a kitchen", sampler=sampler, steps=3, seed=4, guidance_scale=5.0, guide_channels=3)
    assert torch.equal(out.video.frames, frames)


def test_t2vc_reconstructs_the_tapped_features(pipe, monkeypatch):
    """T2V+C and V2C share one reconstruct step: T2V+C's point maps and cameras are ``reconstruct`` of the features
    tapped in the loop, at the step with ``t`` in ``[0, 5]``."""
    calls = []
    reconstruct = type(pipe).reconstruct

    def spy(self, features, frames, **kwargs):
        result = reconstruct(self, features, frames, **kwargs)
        calls.append((features, result))
        return result

    monkeypatch.setattr(type(pipe), "reconstruct", spy)
    out = pipe.text_to_video("a kitchen", sampler="ddim", steps=3, estimate_cameras=True)
    v2c = pipe.video_to_cameras(out.video, matches="none")
    monkeypatch.undo()
    assert len(calls) == 2
    (features, (pointmaps, recon, _)), (v2c_features, _) = calls
    assert int(features.timestep) == out.feature_timestep == 0 and int(v2c_features.timestep) == 2
    assert torch.equal(pointmaps.pts3d, out.pointmaps.pts3d) and torch.equal(recon.cam2world, out.reconstruction.cam2world)
    assert torch.equal(pipe.decode_pairs(features).pts3d, out.pointmaps.pts3d)
    assert set(out.timings) >= {"denoise", "decoder", "align", "vae_decode"} and "decoder" in v2c.timings


def test_t2vc_taps_the_null_half_with_the_mask_of_training(pipe, monkeypatch):
    """The tapped features are exactly V2C's: null caption attending to all its tokens (L_rec training, V2C),
    not with the prompt's mask OpenSora's CFG gives the null half at every other step."""
    from jog3r.pipeline import DiTFeatures

    stdit, seen = pipe.model.stdit, {}
    forward = type(stdit).forward

    def spy(self, x, timestep, y, mask=None, *args, **kwargs):
        out = forward(self, x, timestep, y, mask, *args, **kwargs)
        if kwargs.get("return_features") is not None:
            seen.update(x=x[1:].clone(), t=timestep[1:].clone(), mask=mask.clone(), feats=out[1][kwargs["return_features"]][1:])
        return out

    monkeypatch.setattr(type(stdit), "forward", spy)
    pipe.text_to_video("a kitchen", sampler="ddim", steps=3, estimate_cameras=True)
    monkeypatch.undo()
    assert seen["mask"].shape[0] == 2 and bool(seen["mask"][1].all())
    with torch.no_grad():
        ref = pipe.model(seen["x"], seen["t"], stdit.null_caption(1), None, compute_gen=False, compute_rec=False).features
    assert isinstance(ref, DiTFeatures)
    torch.testing.assert_close(seen["feats"], ref.tokens, rtol=1e-4, atol=1e-5)


def test_met3r_names_its_backbone(pipe):
    video, _ = load_video(pipe, CLIP)
    res = met3r_of_video(pipe, video, backbone="rgb")
    assert res.backbone and 0 <= res.score <= 2 and len(res.per_frame) == 3


@pytest.mark.parametrize("prompt,match", [("", "empty"), ("   ", "empty"), ("x" * 2000, "characters"), (3, "text")])
def test_bad_prompts(pipe, prompt, match):
    with pytest.raises(ValueError, match=match):
        pipe.text_to_video(prompt, steps=2)


def test_bad_sampler_and_videos(pipe):
    with pytest.raises(ValueError, match="sampler"):
        pipe.text_to_video("a room", sampler="euler")
    with pytest.raises(ValueError, match="at least 2 frames"):
        pipe.video_to_cameras(Video(frames=torch.rand(1, 3, 32, 48)))
    with pytest.raises(ValueError, match="t must be"):
        pipe.video_to_cameras(Video(frames=torch.rand(2, 3, 32, 48)), t=50)


def test_wrong_weights_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        JOG3RPipeline.from_pretrained(tmp_path / "nope")
    with pytest.raises(ValueError, match="not a JOG3R model folder"):
        JOG3RPipeline.from_pretrained(tmp_path)
