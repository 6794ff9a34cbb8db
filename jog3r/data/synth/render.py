"""Vectorised ray casting of :class:`~jog3r.data.synth.scene.Scene` primitives in torch.

Rendering is two passes per clip:

1. **Visibility** (per frame): every primitive is tested only against the rays inside its projected screen
   rectangle (a cheap conservative bound from its 8 local bounding-box corners), keeping the nearest hit in a
   z-buffer. Ray directions are scaled so that their camera-z component is 1, which makes the ray parameter
   ``t`` *equal to the z-depth* of :mod:`jog3r.geometry.camera` (no conversion, no rounding drift).
2. **Deferred shading** (all frames at once): normals, texture coordinates, Lambertian + half-Lambert lamp
   lighting, a Blinn-Phong highlight, crease ambient occlusion and soft contact shadows of furniture, all
   gathered per pixel from the winning primitive's parameters.

Camera-style degradation (exposure and white-balance jitter, vignetting, tone curve, blur, noise) is in
:func:`apply_camera_effects`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as tfn

from jog3r.data.synth.scene import BOX, CYLINDER, ELLIPSOID, Scene

NEAR = 0.05
"""Near clipping distance in metres; hits closer than this are ignored."""


def camera_rays(cam2world: torch.Tensor, K: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """World-space rays through pixel centres, scaled to unit camera-z.

    Args:
        cam2world: ``[F, 4, 4]`` float32 camera-to-world (OpenCV axes).
        K: ``[F, 3, 3]`` float32 intrinsics in pixels.
        height: ``H`` in pixels.
        width: ``W`` in pixels.

    Returns:
        ``(origins [F, 3], dirs [F, H, W, 3])``; ``origin + t * dir`` has camera z-depth ``t``.
    """
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32) + 0.5,
                          torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij")
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]
    cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    d_cam = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like((u - cx) / fx)], dim=-1)
    dirs = torch.einsum("fij,fhwj->fhwi", cam2world[:, :3, :3], d_cam)
    return cam2world[:, :3, 3].clone(), dirs


def _hit_box(o: torch.Tensor, d: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    inv = 1.0 / torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
    t1, t2 = (-s - o) * inv, (s - o) * inv
    lo, hi = torch.minimum(t1, t2), torch.maximum(t1, t2)
    tn = torch.maximum(torch.maximum(lo[:, 0], lo[:, 1]), lo[:, 2])
    tf = torch.minimum(torch.minimum(hi[:, 0], hi[:, 1]), hi[:, 2])
    return torch.where((tn <= tf) & (tn > NEAR), tn, torch.full_like(tn, math.inf))


def _hit_cylinder(o: torch.Tensor, d: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    r, hh = float(s[0]), float(s[2])
    ox, oy, oz = float(o[0]), float(o[1]), float(o[2])
    dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
    a = (dx * dx + dy * dy).clamp_min(1e-12)
    b = ox * dx + oy * dy
    c = ox * ox + oy * oy - r * r
    disc = b * b - a * c
    t_side = (-b - disc.clamp_min(0).sqrt()) / a
    ok = (disc >= 0) & (t_side > NEAR) & ((oz + t_side * dz).abs() <= hh)
    t = torch.where(ok, t_side, torch.full_like(t_side, math.inf))
    if abs(oz) > hh:  # the origin is above the top cap or below the bottom one: that cap can be hit first
        cap = math.copysign(hh, oz)
        t_cap = (cap - oz) / torch.where(dz.abs() < 1e-9, torch.full_like(dz, 1e-9), dz)
        x, y = ox + t_cap * dx, oy + t_cap * dy
        ok = (t_cap > NEAR) & (x * x + y * y <= r * r)
        t = torch.minimum(t, torch.where(ok, t_cap, torch.full_like(t_cap, math.inf)))
    return t


def _hit_ellipsoid(o: torch.Tensor, d: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    o, d = o / s, d / s
    a = (d * d).sum(-1)
    b = d @ o
    c = float(o @ o) - 1.0
    disc = b * b - a * c
    t = (-b - disc.clamp_min(0).sqrt()) / a
    return torch.where((disc >= 0) & (t > NEAR), t, torch.full_like(t, math.inf))


_HIT = {BOX: _hit_box, CYLINDER: _hit_cylinder, ELLIPSOID: _hit_ellipsoid}


def _screen_rects(scene: Scene, world2cam: torch.Tensor, K: torch.Tensor, height: int, width: int) -> list:
    """``[F][P]`` pixel rectangles ``(v0, v1, u0, u1, z_near)`` bounding each primitive (``z_near``: its nearest
    bounding-box corner depth), or None when it is outside the view."""
    pc = torch.einsum("fij,pkj->fpki", world2cam[:, :3, :3], scene.corners) + world2cam[:, None, None, :3, 3]
    z = pc[..., 2]
    zs = z.clamp_min(NEAR)
    u = K[:, None, None, 0, 0] * pc[..., 0] / zs + K[:, None, None, 0, 2]
    v = K[:, None, None, 1, 1] * pc[..., 1] / zs + K[:, None, None, 1, 2]
    u0 = u.amin(-1).floor().clamp(0, width) - 1
    u1 = u.amax(-1).ceil().clamp(0, width) + 1
    v0 = v.amin(-1).floor().clamp(0, height) - 1
    v1 = v.amax(-1).ceil().clamp(0, height) + 1
    crosses = (z <= NEAR).any(-1)  # straddles the near plane: the projected box is unbounded, test every ray
    rect = torch.stack([v0, v1, u0, u1], -1)
    rect = torch.where(crosses[..., None], torch.tensor([0.0, height, 0.0, width]), rect)
    rect[..., 0::2] = rect[..., 0::2].clamp_min(0)
    rect[..., 1] = rect[..., 1].clamp_max(height)
    rect[..., 3] = rect[..., 3].clamp_max(width)
    visible = ~(z <= NEAR).all(-1) & (rect[..., 1] > rect[..., 0]) & (rect[..., 3] > rect[..., 2])
    rects = rect.to(torch.int64).tolist()
    vis = visible.tolist()
    znear = z.amin(-1).tolist()
    return [[(*r, zn) if ok else None for r, ok, zn in zip(rf, vf, zf)] for rf, vf, zf in zip(rects, vis, znear)]


def visibility(scene: Scene, origins: torch.Tensor, dirs: torch.Tensor, world2cam: torch.Tensor,
               K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-hit ray casting.

    Args:
        scene: the scene.
        origins: ``[F, 3]`` camera centres (world, metres).
        dirs: ``[F, H, W, 3]`` rays from :func:`camera_rays`.
        world2cam: ``[F, 4, 4]`` float32.
        K: ``[F, 3, 3]`` float32 intrinsics in pixels.

    Returns:
        ``(t [F, H, W] float32 z-depth, inf on a miss; prim [F, H, W] int64 primitive index, -1 on a miss)``.
    """
    n_frames, height, width, _ = dirs.shape
    tbuf = torch.full((n_frames, height, width), math.inf)
    ibuf = torch.full((n_frames, height, width), -1, dtype=torch.int64)
    rects = _screen_rects(scene, world2cam, K, height, width)
    kinds = scene.kind.tolist()
    for f in range(n_frames):
        o_local = torch.einsum("pji,pj->pi", scene.rot, origins[f][None] - scene.center)
        for p, rect in enumerate(rects[f]):
            if rect is None:
                continue
            v0, v1, u0, u1, z_near = rect
            region_t = tbuf[f, v0:v1, u0:u1]
            if z_near > float(region_t.max()):  # every pixel already sees something nearer: occluded
                continue
            d = dirs[f, v0:v1, u0:u1].reshape(-1, 3) @ scene.rot[p]
            t = _HIT[kinds[p]](o_local[p], d, scene.size[p]).view(v1 - v0, u1 - u0)
            closer = t < region_t
            tbuf[f, v0:v1, u0:u1] = torch.where(closer, t, region_t)
            ibuf[f, v0:v1, u0:u1] = torch.where(closer, p, ibuf[f, v0:v1, u0:u1])
    return tbuf, ibuf


def _sample_env(env: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Equirectangular lookup (row 0 = zenith, column 0 = azimuth -pi) of world directions ``[..., 3]``."""
    he, we, _ = env.shape
    d = dirs / dirs.norm(dim=-1, keepdim=True)
    lon = torch.atan2(d[..., 1], d[..., 0])
    lat = torch.asin(d[..., 2].clamp(-1, 1))
    col = ((lon + math.pi) / (2 * math.pi) * we).long().clamp(0, we - 1)
    row = ((0.5 - lat / math.pi) * he).long().clamp(0, he - 1)
    return env[row, col]


def _surface(scene: Scene, p_l: torch.Tensor, kind: torch.Tensor, s: torch.Tensor):
    """Local normals ``[N, 3]``, texture coordinates ``(u, v)`` in metres and their half ranges ``(su, sv)``."""
    x, y, z = p_l.unbind(-1)
    sx, sy, sz = s.unbind(-1)
    # box: the face whose slab the point lies on
    q = p_l.abs() / s
    axis = q.argmax(-1)
    sign = torch.where(p_l.gather(-1, axis[:, None]).squeeze(-1) >= 0, 1.0, -1.0)
    n_box = tfn.one_hot(axis, 3).float() * sign[:, None]
    u_box = torch.where(axis == 0, sign * y, torch.where(axis == 1, -sign * x, x))
    v_box = torch.where(axis == 2, y, -z)
    su_box = torch.where(axis == 0, sy, sx)
    sv_box = torch.where(axis == 2, sy, sz)
    # cylinder: side or cap
    rho = torch.sqrt(x * x + y * y).clamp_min(1e-6)
    cap = (z.abs() / sz) >= (rho / sx)
    n_cyl = torch.where(cap[:, None], torch.stack([0 * x, 0 * y, torch.sign(z)], -1),
                        torch.stack([x / rho, y / rho, 0 * z], -1))
    ang = torch.atan2(y, x)
    u_cyl = torch.where(cap, x, ang * sx)
    v_cyl = torch.where(cap, y, -z)
    su_cyl = torch.where(cap, sx, math.pi * sx)
    # ellipsoid: gradient of the implicit function
    n_ell = p_l / (s * s)
    n_ell = n_ell / n_ell.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    u_ell = ang * 0.5 * (sx + sy)
    is_box, is_cyl = (kind == BOX)[:, None], (kind == CYLINDER)[:, None]
    normal = torch.where(is_box, n_box, torch.where(is_cyl, n_cyl, n_ell))
    u = torch.where(kind == BOX, u_box, torch.where(kind == CYLINDER, u_cyl, u_ell))
    v = torch.where(kind == BOX, v_box, torch.where(kind == CYLINDER, v_cyl, -z))
    su = torch.where(kind == BOX, su_box, torch.where(kind == CYLINDER, su_cyl, math.pi * 0.5 * (sx + sy)))
    sv = torch.where(kind == BOX, sv_box, torch.where(kind == CYLINDER & ~cap, sz, torch.where(kind == CYLINDER, sy, sz)))
    return normal, u, v, su, sv


def shade(scene: Scene, origins: torch.Tensor, dirs: torch.Tensor, t: torch.Tensor, prim: torch.Tensor,
          K: torch.Tensor) -> torch.Tensor:
    """Shade the visible surfaces; misses show the environment.

    Args:
        scene: the scene.
        origins: ``[F, 3]`` camera centres.
        dirs: ``[F, H, W, 3]`` rays from :func:`camera_rays`.
        t: ``[F, H, W]`` z-depth (inf on a miss).
        prim: ``[F, H, W]`` primitive index (-1 on a miss).
        K: ``[F, 3, 3]`` intrinsics (pixel footprint for texture level selection).

    Returns:
        ``[F, H, W, 3]`` float32 linear radiance (unbounded; see :func:`apply_camera_effects`).
    """
    out = (_sample_env(scene.env, dirs) * scene.env_gain).reshape(-1, 3)
    hit = (prim >= 0).reshape(-1)
    idx = prim.reshape(-1)[hit]
    if idx.numel() == 0:
        return out.view(*t.shape, 3)
    d = dirs.reshape(-1, 3)[hit]
    n_pix = t.shape[1] * t.shape[2]
    frame = torch.arange(t.shape[0]).repeat_interleave(n_pix)[hit]
    p = origins[frame] + t.reshape(-1)[hit, None] * d
    rot, kind, s = scene.rot[idx], scene.kind[idx], scene.size[idx]
    p_l = torch.einsum("nji,nj->ni", rot, p - scene.center[idx])
    n_l, u, v, su, sv = _surface(scene, p_l, kind, s)
    normal = torch.einsum("nij,nj->ni", rot, n_l)
    d_hat = d / d.norm(dim=-1, keepdim=True)
    normal = torch.where(((normal * d_hat).sum(-1) > 0)[:, None], -normal, normal)

    # texture lookup (nearest texel; a blurred level where a pixel covers several texels)
    mats = scene.materials
    mat = scene.material[idx]
    tex_id = torch.tensor([m.texture for m in mats])[mat]
    scale = torch.tensor([m.scale for m in mats], dtype=torch.float32)[mat]
    tint = torch.tensor([m.tint for m in mats], dtype=torch.float32)[mat]
    n_tex, _, size = scene.textures.shape[:3]
    stretch = scale <= 0
    offset = (idx.float() * 0.6180339).frac()
    tu = torch.where(stretch, (u + su) / (2 * su), u / scale.clamp_min(1e-3) + offset)
    tv = torch.where(stretch, (v + sv) / (2 * sv), v / scale.clamp_min(1e-3) + offset * 0.7)
    texel = torch.where(stretch, 2 * su / size, scale / size)
    cos_i = (normal * d_hat).sum(-1).abs().clamp_min(0.25)
    focal = K[frame, 0, 0]
    pixel = t.reshape(-1)[hit] * d.norm(dim=-1) / focal / cos_i
    level = (pixel > 1.5 * texel).long()
    ix = (tu.frac() * size).long().clamp(0, size - 1)
    iy = (tv.frac() * size).long().clamp(0, size - 1)
    albedo = scene.textures.view(-1, 3)[((tex_id * 2 + level) * size + iy) * size + ix] * tint

    # lighting: ambient (slightly brighter on up-facing surfaces), directional key light, lamps
    ambient = torch.tensor(scene.ambient, dtype=torch.float32) * (0.85 + 0.15 * normal[:, 2:3])
    sun = torch.tensor(scene.sun_dir, dtype=torch.float32)
    light = ambient + (normal @ sun).clamp_min(0)[:, None] * torch.tensor(scene.sun_color, dtype=torch.float32)
    for lamp in scene.lights:
        to_l = torch.tensor(lamp.position, dtype=torch.float32) - p
        dist2 = (to_l * to_l).sum(-1)
        wrap = (0.5 + 0.5 * (normal * to_l).sum(-1) / dist2.sqrt().clamp_min(1e-6)) ** 2
        light = light + (wrap / (dist2 + 0.5))[:, None] * torch.tensor(lamp.color, dtype=torch.float32)
    light = light * _occlusion(scene, p)[:, None]
    shininess = torch.tensor([m.shininess for m in mats], dtype=torch.float32)[mat]
    half = sun[None] - d_hat
    half = half / half.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    spec = shininess * (normal * half).sum(-1).clamp_min(0) ** 24
    emissive = torch.tensor([m.emissive for m in mats], dtype=torch.float32)[mat]
    color = albedo * (light + emissive[:, None]) + spec[:, None] * 0.6
    out[hit] = color
    return out.view(*t.shape, 3)


def _occlusion(scene: Scene, p: torch.Tensor) -> torch.Tensor:
    """Fake ambient occlusion ``[N]`` in ``(0, 1]``: room creases/corners and soft furniture contact shadows."""
    ao = torch.ones(p.shape[0])
    x, y, z = p.unbind(-1)
    for x0, y0, x1, y1, h in scene.rooms.tolist():
        inside = (x > x0 - 0.05) & (x < x1 + 0.05) & (y > y0 - 0.05) & (y < y1 + 0.05)
        dist = torch.stack([x - x0, x1 - x, y - y0, y1 - y, z, h - z], -1).abs()
        d_sorted = dist.topk(3, dim=-1, largest=False).values
        crease = (1 - 0.35 * torch.exp(-d_sorted[:, 1] / 0.25)) * (1 - 0.2 * torch.exp(-d_sorted[:, 2] / 0.25))
        ao = torch.where(inside, ao * crease, ao)
    for cx, cy, hx, hy, yaw, height in scene.footprints.tolist():
        c, s = math.cos(yaw), math.sin(yaw)
        qx = ((x - cx) * c + (y - cy) * s).abs() - hx
        qy = (-(x - cx) * s + (y - cy) * c).abs() - hy
        outside = torch.sqrt(qx.clamp_min(0) ** 2 + qy.clamp_min(0) ** 2)
        ao = ao * (1 - 0.5 * torch.exp(-outside / 0.15) * torch.exp(-z.clamp_min(0) / max(0.15, 0.4 * height)))
    return ao


def apply_camera_effects(radiance: torch.Tensor, gen: torch.Generator, exposure: float, strength: float = 1.0) -> torch.Tensor:
    """Turn linear radiance into a camera-like sRGB video.

    Exposure with a slow per-frame auto-exposure drift, white-balance gains, vignetting, a filmic tone curve,
    gamma, a mild blur and sensor noise (compressed-video look).

    Args:
        radiance: ``[F, H, W, 3]`` float32 linear radiance.
        gen: torch random generator (makes the effects deterministic per clip).
        exposure: base exposure multiplier.
        strength: scales every random degradation (0 = clean render, 1 = default).

    Returns:
        ``[F, 3, H, W]`` float32 frames in ``[0, 1]``.
    """
    n_frames, height, width, _ = radiance.shape

    def rand(*shape):
        return torch.rand(*shape, generator=gen)

    drift = 1 + strength * 0.06 * (torch.cumsum(rand(n_frames) - 0.5, 0) / max(1, n_frames) ** 0.5)
    wb = 1 + strength * 0.08 * (rand(3) * 2 - 1)
    x = radiance.permute(0, 3, 1, 2) * (exposure * drift)[:, None, None, None] * wb[None, :, None, None]
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    vignette = 1 - strength * float(rand(1)) * 0.35 * (xx**2 + yy**2) / 2
    x = x * vignette
    x = 1 - torch.exp(-1.7 * x.clamp_min(0))  # soft shoulder: bright windows roll off to white
    x = x.pow(1 / 2.2)
    sigma = strength * (0.35 + 0.55 * float(rand(1)))  # lens softness + video compression: no aliased edges
    if sigma > 0.15:
        w = torch.exp(-torch.arange(-2, 3, dtype=torch.float32) ** 2 / (2 * sigma**2))
        w = (w / w.sum()).tolist()
        p = tfn.pad(x, (2, 2, 0, 0), mode="replicate")
        x = sum(w[k] * p[..., :, k : k + width] for k in range(5))
        p = tfn.pad(x, (0, 0, 2, 2), mode="replicate")
        x = sum(w[k] * p[..., k : k + height, :] for k in range(5))
    noise = strength * float(rand(1)) * 0.015
    x = x + noise * torch.randn(x.shape, generator=gen)
    return x.clamp(0, 1).contiguous()
