"""jog3r.jobs.export_reconstruction: the one export step of the V2C and generate jobs (CLI, app, eval)."""

from __future__ import annotations

import zipfile

import roma
import torch

from jog3r.geometry.camera import depth_to_world_points
from jog3r.io import read_colmap_text, read_re10k, read_transforms_json, read_tum
from jog3r.io.export_bundle import export_all
from jog3r.jobs import EXPORT_FORMATS, export_reconstruction
from jog3r.types import Reconstruction

F, H, W = 3, 10, 14


def _recon() -> Reconstruction:
    gen = torch.Generator().manual_seed(3)
    cam2world = torch.eye(4).repeat(F, 1, 1)
    cam2world[:, :3, :3] = roma.rotvec_to_rotmat(0.1 * torch.randn(F, 3, generator=gen))
    cam2world[:, :3, 3] = torch.randn(F, 3, generator=gen)
    K = torch.tensor([[15.0, 0, 7.0], [0, 15.0, 5.0], [0, 0, 1]]).repeat(F, 1, 1)
    depth = 2.0 + torch.rand(F, H, W, generator=gen)
    return Reconstruction(cam2world=cam2world, K=K, depth=depth, pts3d=depth_to_world_points(depth, K, cam2world),
                          conf=1.0 + torch.rand(F, H, W, generator=gen), colors=torch.rand(F, H, W, 3, generator=gen))


def test_export_job_writes_every_format_as_export_all_and_zips_it(tmp_path):
    recon = _recon()
    frames = recon.colors.permute(0, 3, 1, 2).contiguous()
    report = export_reconstruction(recon, tmp_path / "job", video_frames=frames, fps=4, frame_indices=[2, 5, 8],
                                   metrics={"RRA@5": 50.0}, method="test method", zip_bundle_too=True)
    reference = export_all(recon, tmp_path / "ref", video_frames=frames, fps=4, frame_indices=[2, 5, 8],
                           metrics={"RRA@5": 50.0}, method="test method")
    assert set(EXPORT_FORMATS) <= set(report.files) and set(report.files) == set(reference)
    assert list(EXPORT_FORMATS.values()) == ["RealEstate10K", "COLMAP", "nerfstudio", "TUM", "PLY", "GLB"]
    for key in ("re10k", "transforms", "tum", "ply", "metrics", "conventions"):  # byte for byte as export_all
        assert report.files[key].read_bytes() == reference[key].read_bytes(), key
    assert report.folder == tmp_path / "job" and report.seconds > 0
    assert report.zip_path == tmp_path / "job.zip"
    with zipfile.ZipFile(report.zip_path) as archive:
        names = set(archive.namelist())
    assert {"job/cameras_re10k.txt", "job/colmap/images.txt", "job/transforms.json", "job/trajectory_tum.txt",
            "job/pointcloud.ply", "job/scene.glb", "job/video.mp4"} <= names
    # the cameras read back in each format (OpenCV cam2world)
    for cams in (read_re10k(report.files["re10k"], (H, W)), read_transforms_json(report.files["transforms"]),
                 read_colmap_text(report.files["colmap"])[0]):
        torch.testing.assert_close(cams.cam2world, recon.cam2world, atol=1e-5, rtol=0)
    torch.testing.assert_close(read_tum(report.files["tum"]).cam2world, recon.cam2world, atol=1e-5, rtol=0)
    assert export_reconstruction(recon, tmp_path / "nozip").zip_path is None
    assert not (tmp_path / "nozip.zip").exists()
