"""Video input/output: real clips and frame folders, sampling, seeking, resizing + intrinsics, bad input."""

from __future__ import annotations

import logging
from fractions import Fraction
import subprocess

import av
import imageio_ffmpeg
import numpy as np
import pytest
import torch
import torch.nn.functional as F_nn
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import jog3r.io.video as video_io
from jog3r.geometry.camera import adjust_intrinsics
from jog3r.io.video import (
    read_video,
    crop_to_aspect,
    resize_and_center_crop,
    sample_frame_indices,
    write_video,
)

CLIPS16 = "realestate10k/clips16_384x256"
BITS, BLOCK = 9, 16  # frame-index barcode: 9 blocks of 16 px, white = bit set


def _barcode(i: int) -> np.ndarray:
    img = np.zeros((3, 48, BITS * BLOCK), np.float32)
    for b in range(BITS):
        if (i >> b) & 1:
            img[:, 16:32, b * BLOCK : (b + 1) * BLOCK] = 1.0
    return img


def _read_barcode(frame: torch.Tensor) -> int:
    return sum(int(frame[:, 16:32, b * BLOCK : (b + 1) * BLOCK].mean() > 0.5) << b for b in range(BITS))


@pytest.fixture(scope="module")
def coded_video(tmp_path_factory):
    """A 300-frame 30 fps mp4 whose frame ``i`` shows ``i`` as a barcode."""
    path = tmp_path_factory.mktemp("coded") / "coded.mp4"
    return write_video(path, np.stack([_barcode(i) for i in range(300)]), fps=30)


def _encode(path, frames_hwc: np.ndarray, codec="libx264", pix_fmt="yuv420p", rate=10, options=None):
    """Write uint8 ``[F, H, W, 3]`` frames with PyAV (for containers/codecs ``write_video`` does not make)."""
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames_hwc.shape[2], frames_hwc.shape[1], pix_fmt
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        for image in frames_hwc:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


# ---------------------------------------------------------------------------------------------- sampling


def test_sampling_modes():
    idx, mode, msg = sample_frame_indices(9000, num_frames=16)
    assert mode == "uniform" and len(idx) == 16 and idx[0] == 0 and idx[-1] == 8999
    assert msg.startswith("sampled 16 of 9000 frames (uniform, mean stride 599.9")
    idx, mode, msg = sample_frame_indices(9000, num_frames=16, stride=562)
    assert mode == "stride" and idx.tolist() == list(range(0, 16 * 562, 562))
    assert msg == "sampled 16 of 9000 frames (stride, stride 562)"
    idx, mode, msg = sample_frame_indices(9000)  # neither: uniform max_frames, and it says so
    assert mode == "uniform" and len(idx) == 64 and "longer than max_frames=64" in msg
    idx, mode, _ = sample_frame_indices(40)
    assert mode == "all" and idx.tolist() == list(range(40))
    idx, _, msg = sample_frame_indices(1000, stride=3, max_frames=10, start=5)
    assert idx.tolist() == list(range(5, 35, 3))
    assert "stopped at max_frames=10" in msg and "from frame 5" in msg
    idx, _, msg = sample_frame_indices(20, num_frames=8, stride=5)
    assert idx.tolist() == [0, 5, 10, 15] and "only 4 of the 8 requested fit" in msg


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_frames": 1}, "num_frames must be >= 2"), ({"stride": 0}, "stride must be >= 1"),
     ({"start": 50}, "start=50"), ({"start": 49}, "need >= 2 frames"), ({"max_frames": 1}, "max_frames")],
)
def test_sampling_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_frame_indices(50, **kwargs)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(2, 5000), num=st.one_of(st.none(), st.integers(2, 100)),
       stride=st.one_of(st.none(), st.integers(1, 300)), start_frac=st.floats(0, 0.5))
def test_sampling_properties(n, num, stride, start_frac):
    start = int(start_frac * (n - 2))
    try:
        idx, _, _ = sample_frame_indices(n, num_frames=num, stride=stride, start=start)
    except ValueError as err:
        assert "need >= 2 frames" in str(err) and stride is not None  # only a stride can overshoot
        return
    assert 2 <= len(idx) <= (num or 64) and idx[0] == start and idx[-1] < n
    assert (np.diff(idx) > 0).all()
    if stride is not None:
        assert (np.diff(idx) == stride).all()


# ---------------------------------------------------------------------------------------------- real data


@pytest.mark.parametrize("clip_id", ["0bf152ef84195293", "0c11dbe781b1c11c", "0c9b371cc6225682",
                                     "0f47577ab3441480", "2c80f9eb0d3b2bb4", "3c35b868a8ec3433"])
def test_real_clip_matches_its_jpeg_frames(data_dir, clip_id):
    video, info = read_video(data_dir / CLIPS16 / f"{clip_id}.mp4")
    assert len((data_dir / CLIPS16 / f"{clip_id}.txt").read_text().splitlines()) == 1 + 16  # one camera each
    assert video.frames.shape == (16, 3, 256, 384) and video.frames.dtype == torch.float32
    assert video.fps == 8.0 and video.frame_indices.tolist() == list(range(16))
    assert info["kind"] == "video" and info["codec"] == "h264" and info["num_source_frames"] == 16
    jpeg_paths = [data_dir / CLIPS16 / "frames" / clip_id / f"{k:02d}.jpg" for k in range(16)]
    jpegs = torch.stack([torch.from_numpy(np.asarray(Image.open(p), np.float32) / 255).permute(2, 0, 1)
                         for p in jpeg_paths])
    assert ((video.frames - jpegs).abs().mean(dim=(1, 2, 3)) < 0.02).all()
    small_v, small_j = F_nn.avg_pool2d(video.frames, 4), F_nn.avg_pool2d(jpegs, 4)
    diff = (small_v[:, None] - small_j[None]).abs().mean(dim=(2, 3, 4))  # [video frame, jpeg]
    assert (diff.argmin(dim=1) == torch.arange(16)).all()  # same frames, same order


def test_real_clip_sampling_and_size(data_dir):
    video, info = read_video(data_dir / CLIPS16 / "0bf152ef84195293.mp4", stride=3, start=1, size=(128, 128))
    assert video.frame_indices.tolist() == [1, 4, 7, 10, 13]
    assert video.frames.shape == (5, 3, 128, 128) and video.fps == pytest.approx(8 / 3)
    assert info["message"] == "sampled 5 of 16 frames (stride, stride 3, from frame 1)"


def test_real_image_folder(data_dir):
    folder = data_dir / "cut3r_examples" / "001"
    video, info = read_video(folder)
    assert video.frames.shape == (13, 3, 288, 512) and info["kind"] == "images" and video.fps == 8.0
    assert info["files"][:2] == ["frame_0001.jpg", "frame_0002.jpg"] and info["files"][-1] == "frame_0013.jpg"
    first = np.asarray(Image.open(folder / "frame_0001.jpg"), np.float32) / 255
    np.testing.assert_allclose(video.frames[0].permute(1, 2, 0).numpy(), first, atol=1e-6)
    small, _ = read_video(folder, num_frames=4, size=(256, 256))
    assert small.frame_indices.tolist() == [0, 4, 8, 12]
    expected = resize_and_center_crop(video.frames[[0, 4, 8, 12]], (256, 256))
    assert (small.frames - expected).abs().mean() < 0.01  # cv2 area vs torch antialiased bilinear


def test_natural_sort_mixed_sizes_and_modes(tmp_path, caplog):
    """frame_2 < frame_10; grayscale, RGBA, palette and 16-bit images become RGB at the first image's size."""
    Image.new("L", (40, 30), 128).save(tmp_path / "frame_2.png")
    Image.new("RGBA", (80, 60), (10, 200, 30, 0)).save(tmp_path / "frame_10.png")
    Image.new("RGB", (20, 40), (0, 0, 255)).convert("P").save(tmp_path / "frame_1.png")
    Image.fromarray(np.full((30, 40), 65535, np.uint16)).save(tmp_path / "frame_11.png")
    (tmp_path / "notes.txt").write_text("ignored")
    video, info = read_video(tmp_path)
    assert info["files"] == ["frame_1.png", "frame_2.png", "frame_10.png", "frame_11.png"]
    assert video.frames.shape == (4, 3, 40, 20)  # first image's size; the others resized + centre-cropped
    np.testing.assert_allclose(video.frames[0, :, 20, 10].numpy(), [0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(video.frames[1].numpy(), 128 / 255, atol=1e-6)
    np.testing.assert_allclose(video.frames[2, :, 20, 10].numpy(), np.array([10, 200, 30]) / 255, atol=1e-6)
    np.testing.assert_allclose(video.frames[3].numpy(), 1.0, atol=1e-6)
    assert "different sizes" in caplog.text and info["warnings"]


# ---------------------------------------------------------------------------------------------- seeking


@pytest.mark.parametrize("seek_gap", [10_000, 10])
def test_selected_frames_are_the_right_ones(coded_video, monkeypatch, caplog, seek_gap):
    monkeypatch.setattr(video_io, "SEEK_GAP", seek_gap)
    with caplog.at_level(logging.DEBUG, logger="jog3r.io.video"):
        video, info = read_video(coded_video, num_frames=7, start=3)
    expected = np.round(np.linspace(3, 299, 7)).astype(int).tolist()
    assert video.frame_indices.tolist() == expected
    assert [_read_barcode(f) for f in video.frames] == expected
    assert ("seeking to frame" in caplog.text) == (seek_gap == 10)
    assert info["source_fps"] == 30 and video.fps == pytest.approx(30 / ((299 - 3) / 6))


def test_default_sampling_of_a_long_video(coded_video):
    video, info = read_video(coded_video, max_frames=16)
    assert len(video.frame_indices) == 16 and "longer than max_frames=16" in info["message"]
    assert [_read_barcode(f) for f in video.frames] == video.frame_indices.tolist()


def test_large_video_is_downscaled_while_reading(tmp_path):
    frames = np.zeros((2, 2160, 3840, 3), np.uint8)
    frames[:, :, :1920] = 200
    path = _encode(tmp_path / "uhd.mp4", frames)
    video, info = read_video(path)
    assert info["source_size"] == (2160, 3840) and video.frames.shape == (2, 3, 576, 1024)
    assert video.frames[0, :, :, :500].mean() > 0.7 and video.frames[0, :, :, 524:].mean() < 0.1
    video, _ = read_video(path, size=(64, 96))
    assert video.frames.shape == (2, 3, 64, 96)


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt"), [("a.webm", "libvpx-vp9", "yuv420p"), ("a.gif", "gif", "rgb8")]
)
def test_webm_and_gif(tmp_path, name, codec, pix_fmt):
    frames = np.zeros((6, 32, 48, 3), np.uint8)
    for i in range(6):
        frames[i, :, i * 8 : i * 8 + 8] = 255  # a white bar moving right
    video, info = read_video(_encode(tmp_path / name, frames, codec=codec, pix_fmt=pix_fmt), num_frames=3)
    assert video.frames.shape == (3, 3, 32, 48) and info["num_source_frames"] == 6
    bar = video.frames.mean(dim=(1, 2)).argmax(dim=-1) // 8  # column block of the bar in each frame
    assert bar.tolist() == video.frame_indices.tolist() == [0, 2, 5]


# ---------------------------------------------------------------------------------------------- writing


def test_write_video_round_trip_and_odd_size(tmp_path):
    yy, xx = np.meshgrid(np.linspace(0, 1, 33), np.linspace(0, 1, 47), indexing="ij")
    frames = np.stack([np.stack([yy, xx, 0.5 + 0.4 * np.sin(3 * xx + t / 2)]) for t in range(5)])
    frames = frames.astype(np.float32)
    path = write_video(tmp_path / "out.mp4", torch.from_numpy(frames), fps=12)
    video, info = read_video(path)
    assert info["codec"] == "h264" and info["source_fps"] == 12
    assert video.frames.shape == (5, 3, 34, 48)  # padded to even sizes by repeating the last row/column
    mse = ((video.frames[:, :, :33, :47].numpy() - frames) ** 2).mean()
    assert 10 * np.log10(1 / mse) > 30
    assert not list(tmp_path.glob(".*"))  # the temporary file was renamed


@pytest.mark.parametrize(
    ("frames", "fps", "message"),
    [(np.zeros((2, 4, 8, 8)), 8, r"\[F, 3, H, W\]"), (np.zeros((0, 3, 8, 8)), 8, r"\[F, 3, H, W\]"),
     (np.full((2, 3, 8, 8), np.nan), 8, "NaN"), (np.zeros((2, 3, 8, 8)), 0, "fps")],
)
def test_write_video_rejects_bad_input(tmp_path, frames, fps, message):
    with pytest.raises(ValueError, match=message):
        write_video(tmp_path / "x.mp4", frames, fps)


# ---------------------------------------------------------------------------------------------- bad input


def test_bad_files_name_the_file(tmp_path, coded_video):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    data = coded_video.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # moov atom at the end is lost
    cases = {"empty.mp4": r"empty \(0 bytes\)", "notes.mp4": "not a readable video",
             "cut.mp4": "not a readable"}
    for name, message in cases.items():
        with pytest.raises(ValueError, match=message) as info:
            read_video(tmp_path / name)
        assert name in str(info.value)
    with pytest.raises(FileNotFoundError, match="nothing.mp4"):
        read_video(tmp_path / "nothing.mp4")


def test_truncated_stream_is_an_error(tmp_path):
    frames = np.stack([np.moveaxis(_barcode(i), 0, -1) for i in range(120)])
    path = _encode(tmp_path / "fast.mp4", (frames * 255).astype(np.uint8), rate=30,
                   options={"movflags": "faststart"})  # header first, so a cut keeps the frame count
    data = path.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(ValueError, match=r"cut.mp4: truncated or corrupt video: the header says 120 frames"):
        read_video(tmp_path / "cut.mp4", max_frames=120)


def test_single_frame_inputs(tmp_path):
    _encode(tmp_path / "one.mp4", np.zeros((1, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r"one.mp4: need >= 2 frames, the video has 1"):
        read_video(tmp_path / "one.mp4")
    Image.new("RGB", (8, 8)).save(tmp_path / "still.png")
    with pytest.raises(ValueError, match=r"still.png: need >= 2 frames"):
        read_video(tmp_path / "still.png")
    folder = tmp_path / "one_image"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.jpg")
    with pytest.raises(ValueError, match="need >= 2 frames, the folder has 1 image"):
        read_video(folder)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ValueError, match="empty_dir: no images"):
        read_video(tmp_path / "empty_dir")


def test_unreadable_image_in_folder_is_named(tmp_path):
    for i in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{i}.png")
    (tmp_path / "1.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match=r"1.png: cannot read image"):
        read_video(tmp_path)


# ---------------------------------------------------------------------------------------------- geometry


@settings(max_examples=25, deadline=None, derandomize=True)
@given(H=st.integers(12, 90), W=st.integers(12, 90), h=st.integers(6, 60), w=st.integers(6, 60))
def test_resize_crop_matches_adjusted_intrinsics(H, W, h, w):
    """A ramp image f(x) = x (continuous pixel coordinate), resized + cropped, equals x mapped by K -> K'."""
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    image = torch.stack([xs / W, ys / H, torch.zeros_like(xs)])[None]  # [1, 3, H, W]
    out = resize_and_center_crop(image, (h, w))[0]
    assert out.shape == (3, h, w)
    K = torch.tensor([[50.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]], dtype=torch.float64)
    K2 = adjust_intrinsics(K, (H, W), (h, w))
    # A source continuous coordinate x maps to x' = K2_f / K_f * (x - c) + c' (same 3D ray through both Ks).
    x_dst = torch.arange(w, dtype=torch.float64) + 0.5
    y_dst = torch.arange(h, dtype=torch.float64) + 0.5
    x_src = (x_dst - K2[0, 2]) * K[0, 0] / K2[0, 0] + K[0, 2]
    y_src = (y_dst - K2[1, 2]) * K[1, 1] / K2[1, 1] + K[1, 2]
    # Away from the borders, resampling keeps a linear ramp up to the discretised antialiasing kernel's small
    # asymmetry (<< 0.1 px); a half-pixel or crop-offset convention error would be >= 0.5 px.
    inner_x = (x_src > 2.5 * W / w + 1) & (x_src < W - 2.5 * W / w - 1)
    inner_y = (y_src > 2.5 * H / h + 1) & (y_src < H - 2.5 * H / h - 1)
    torch.testing.assert_close(out[0, 0][inner_x].double() * W, x_src[inner_x], atol=0.1, rtol=0)
    torch.testing.assert_close(out[1, :, 0][inner_y].double() * H, y_src[inner_y], atol=0.1, rtol=0)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(H=st.integers(24, 200), W=st.integers(24, 200), h=st.integers(6, 24), w=st.integers(6, 24))
def test_crop_to_aspect_has_the_field_of_view_of_resize_and_center_crop(H, W, h, w):
    """The crop, resized to ``(h, w)``, shows what ``resize_and_center_crop`` shows, to within one pixel of the
    ``(h, w)`` frames (``1 / s`` source pixels: ``resize_and_center_crop`` rounds its resized size)."""
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    image = torch.stack([xs / W, ys / H, torch.zeros_like(xs)])[None]  # ramps of the source coordinates
    crop = crop_to_aspect(image, (h, w))
    hc, wc = crop.shape[-2:]
    assert hc == H or wc == W
    assert abs((hc / wc) / (h / w) - 1) <= 0.51 / min(hc, wc)  # aspect to rounding (half a pixel)
    via_crop = resize_and_center_crop(crop, (h, w))
    direct = resize_and_center_crop(image, (h, w))
    pixel = 1.0 / max(h / H, w / W)  # one (h, w) pixel in source pixels
    assert float((via_crop[0, 0] - direct[0, 0]).abs().max()) * W <= pixel
    assert float((via_crop[0, 1] - direct[0, 1]).abs().max()) * H <= pixel


def test_adjust_intrinsics_numbers():
    K = np.array([[500.0, 0, 960], [0, 500, 540], [0, 0, 1]])
    K2 = adjust_intrinsics(K, (1080, 1920), (256, 256))  # scale 256/1080, resized 256x455, crop 99 px left
    s = 256 / 1080
    expected = [[500 * 455 / 1920, 0, 960 * 455 / 1920 - 99], [0, 500 * s, 540 * s], [0, 0, 1]]
    np.testing.assert_allclose(K2, expected)
    assert isinstance(adjust_intrinsics(torch.from_numpy(K), (1080, 1920), (256, 256)), torch.Tensor)


def test_phone_video_rotation_is_applied(tmp_path):
    """A landscape-coded stream with a 90-degree display matrix comes out portrait, as ffmpeg shows it."""
    frames = np.zeros((3, 16, 32, 3), np.uint8)
    frames[:, :, :8] = 255  # white band on the left of the coded picture
    coded = _encode(tmp_path / "coded.mp4", frames)
    rotated = tmp_path / "phone.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-display_rotation", "90", "-i",
                    str(coded), "-c", "copy", str(rotated)], check=True)
    video, info = read_video(rotated)
    assert video.frames.shape == (3, 3, 32, 16) and info["source_size"] == (32, 16)
    # Rotated 90 degrees counterclockwise: the left band is now at the bottom (ffmpeg's autorotate agrees).
    assert video.frames[0, :, 24:].mean() > 0.9 and video.frames[0, :, :22].mean() < 0.1


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory):
    """A 240-frame variable-frame-rate mp4 (frame ``i`` shows ``i``): bursts at 100 fps between 5 fps stretches,
    a keyframe every 8 frames, so a seek lands on frames whose timestamps the average rate maps to other indices."""
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    gaps_ms = [10 if (i // 40) % 2 == 0 else 200 for i in range(240)]
    pts_ms = np.concatenate([[0], np.cumsum(gaps_ms[:-1])])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = BITS * BLOCK, 48, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"preset": "ultrafast", "g": "8", "keyint_min": "8", "bf": "2"}
        for i, t in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray((_barcode(i).transpose(1, 2, 0) * 255).astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = int(t), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("seek_gap", [10_000, 10])
@pytest.mark.parametrize("how", [{"stride": 60}, {"num_frames": 7, "start": 5}])
def test_variable_frame_rate_video_gives_the_frames_it_claims(vfr_video, monkeypatch, seek_gap, how):
    """B1: seeking converted timestamps to indices with the average rate, so far-apart frames of a VFR video came
    back as other frames than ``frame_indices`` said."""
    monkeypatch.setattr(video_io, "SEEK_GAP", seek_gap)
    video, info = read_video(vfr_video, **how)
    assert info["num_source_frames"] == 240
    assert [_read_barcode(f) for f in video.frames] == video.frame_indices.tolist()


def test_quiet_reads_mute_the_sampling_line_only(caplog):
    """A second read of announced frames (the source-size read) or a size probe does not log "sampled N of M" again
    (the short CLI run printed it twice, the long one once for a 2-frame probe); outside the block it does."""
    import logging

    from jog3r.io.video import quiet_reads

    from pathlib import Path

    clip = Path(__file__).parent / "data" / "realestate10k" / "clips16_384x256" / "0bf152ef84195293.mp4"
    with caplog.at_level(logging.INFO, logger="jog3r.io.video"):
        with quiet_reads():
            read_video(clip, num_frames=2)
        assert "sampled" not in caplog.text
        read_video(clip, num_frames=2)
    assert caplog.text.count("sampled 2 of 16 frames") == 1
    assert logging.getLogger("jog3r.io.video").level == logging.NOTSET


def test_quiet_reads_mute_only_their_own_thread(caplog):
    """The app serves requests on threads: a read muted in one (its source-size re-read) must not mute another's
    line, and overlapping blocks must not leave the module muted (a saved-and-restored logger level could)."""
    import logging
    import threading
    from pathlib import Path

    from jog3r.io.video import quiet_reads

    clip = Path(__file__).parent / "data" / "realestate10k" / "clips16_384x256" / "0bf152ef84195293.mp4"
    inside, done = threading.Event(), threading.Event()

    def muted():
        with quiet_reads():
            inside.set()
            done.wait(30)

    with caplog.at_level(logging.INFO, logger="jog3r.io.video"):
        worker = threading.Thread(target=muted)
        worker.start()
        inside.wait(30)
        read_video(clip, num_frames=2)  # another thread, while the worker's block is open
        done.set()
        worker.join()
        read_video(clip, num_frames=3)  # after it closed
    assert "sampled 2 of 16 frames" in caplog.text and "sampled 3 of 16 frames" in caplog.text
