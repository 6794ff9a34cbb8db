"""FID and FVD: Fréchet distances between feature statistics of real and generated frames / videos.

The feature networks cannot be downloaded here, so they are loaded from local TorchScript files the user
supplies: the Inception-v3 pool3 network as distributed for FID (``inception-2015-12-05.pt``, 2048-d features, RGB
uint8-range input ``[B, 3, H, W]``) and the I3D network used for FVD (``i3d_torchscript.pt``, 400-d logits
features, input ``[B, 3, F, 224, 224]`` in ``[-1, 1]``). Without them the evaluation reports "not available"
rather than a number.

Formula (Heusel et al. 2017, FID; Unterthiner et al. 2018, FVD):
``d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between two Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    Args:
        mu1, mu2: ``[D]`` means.
        sigma1, sigma2: ``[D, D]`` covariances.

    Returns:
        The squared Fréchet distance (the number FID/FVD report), ``>= 0`` up to round-off.

    Raises:
        ValueError: on mismatched shapes or non-finite inputs.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}")
    if not all(np.isfinite(a).all() for a in (mu1, mu2, sigma1, sigma2)):
        raise ValueError("feature statistics contain NaN or inf")
    covmean, _ = scipy.linalg.sqrtm(sigma1 @ sigma2, disp=False)
    if not np.isfinite(covmean).all():  # singular product: regularise as pytorch-fid does
        eps = 1e-6 * np.eye(sigma1.shape[0])
        covmean = scipy.linalg.sqrtm((sigma1 + eps) @ (sigma2 + eps))
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` of ``features`` ``[N, D]`` (``N >= 2``)."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need features [N >= 2, D], got {features.shape}")
    return features.mean(0), np.cov(features, rowvar=False)


def load_feature_network(path: str | Path, device: str = "cpu") -> torch.jit.ScriptModule:
    """Load a TorchScript feature network from a local file.

    Raises:
        FileNotFoundError: if the file is missing (with what to download).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"feature network {path} not found: FID needs the Inception TorchScript file "
            "(inception-2015-12-05.pt), FVD the I3D TorchScript file (i3d_torchscript.pt), downloaded beforehand"
        )
    return torch.jit.load(str(path), map_location=device).eval()


@torch.no_grad()
def inception_features(net, frames: torch.Tensor, batch: int = 32) -> np.ndarray:
    """Inception pool features of frames ``[N, 3, H, W]`` in ``[0, 1]`` (resized to 299x299, uint8 range)."""
    out = []
    for i in range(0, frames.shape[0], batch):
        x = F.interpolate(frames[i : i + batch].float(), size=(299, 299), mode="bilinear", align_corners=False)
        out.append(net(x * 255.0).reshape(x.shape[0], -1).cpu().numpy())
    return np.concatenate(out)


@torch.no_grad()
def i3d_features(net, videos: list[torch.Tensor]) -> np.ndarray:
    """I3D features of videos, each ``[F, 3, H, W]`` in ``[0, 1]`` (resized to 224x224, scaled to ``[-1, 1]``)."""
    out = []
    for video in videos:
        x = F.interpolate(video.float(), size=(224, 224), mode="bilinear", align_corners=False) * 2 - 1
        out.append(net(x.permute(1, 0, 2, 3)[None]).reshape(1, -1).cpu().numpy())
    return np.concatenate(out)


def fid(net, real_frames: torch.Tensor, fake_frames: torch.Tensor) -> float:
    """FID between two sets of frames ``[N, 3, H, W]`` in ``[0, 1]``."""
    return frechet_distance(*feature_statistics(inception_features(net, real_frames)),
                            *feature_statistics(inception_features(net, fake_frames)))


def fvd(net, real_videos: list[torch.Tensor], fake_videos: list[torch.Tensor]) -> float:
    """FVD between two sets of videos (each ``[F, 3, H, W]`` in ``[0, 1]``)."""
    return frechet_distance(*feature_statistics(i3d_features(net, real_videos)),
                            *feature_statistics(i3d_features(net, fake_videos)))
