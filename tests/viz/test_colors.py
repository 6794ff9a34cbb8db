"""Tests for jog3r.viz.colors: the time ramp, the colormaps and the conversions."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jog3r.viz.colors import (
    GT_COLOR,
    colormap,
    hsv_to_rgb,
    rgb_to_hex,
    series_color,
    time_colors,
    to_uint8,
)


def _hue_deg(rgb: np.ndarray) -> np.ndarray:
    return np.array([colorsys.rgb_to_hsv(*c)[0] * 360.0 for c in rgb])


def test_time_colors_runs_red_to_purple_monotonically():
    colors = time_colors(16)
    assert colors.shape == (16, 3)
    assert colors.min() >= 0.0 and colors.max() <= 1.0
    hue = _hue_deg(colors)
    assert hue[0] == pytest.approx(0.0, abs=1e-6)  # red
    assert hue[-1] == pytest.approx(280.0, abs=1e-6)  # purple
    assert np.all(np.diff(hue) > 0)  # smooth, strictly increasing hue
    first, last = colors[0], colors[-1]
    assert first[0] > first[1] + 0.5 and first[0] > first[2] + 0.5  # red dominates frame 0
    assert last[2] > last[1] + 0.5 and last[0] > last[1] + 0.3  # blue + red, no green: purple


def test_time_colors_single_frame_and_invalid():
    assert _hue_deg(time_colors(1))[0] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        time_colors(0)


def test_gt_color_is_outside_the_ramp():
    ramp = time_colors(64)
    dist = np.linalg.norm(ramp - np.asarray(GT_COLOR), axis=1)
    assert dist.min() > 0.5


@settings(max_examples=50, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_hsv_to_rgb_matches_colorsys(h, s, v):
    ours = hsv_to_rgb(np.array([h, s, v]))
    ref = colorsys.hsv_to_rgb(h % 1.0, s, v)
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_viridis_matches_published_anchor_colours():
    # matplotlib's viridis: #440154 at 0, #21918c at 0.5, #fde725 at 1.
    rgb = colormap(np.array([0.0, 0.5, 1.0]), "viridis")
    expected = np.array([[0x44, 0x01, 0x54], [0x21, 0x91, 0x8C], [0xFD, 0xE7, 0x25]]) / 255.0
    np.testing.assert_allclose(rgb, expected, atol=0.015)


def test_turbo_runs_dark_blue_to_green_to_dark_red():
    rgb = colormap(np.linspace(0.0, 1.0, 9), "turbo")
    # matplotlib's turbo: #30123b at 0 and #7a0403 at 1; the degree-5 fit drifts by up to 0.13 at the ends,
    # so check what a reader sees: both ends dark, the low end cold and the high end red.
    np.testing.assert_allclose(rgb[0], np.array([0x30, 0x12, 0x3B]) / 255.0, atol=0.13)
    np.testing.assert_allclose(rgb[-1], np.array([0x7A, 0x04, 0x03]) / 255.0, atol=0.1)
    assert rgb[0].max() < 0.3 and rgb[-1].max() < 0.6
    assert rgb[-1, 0] > 5 * rgb[-1, 1]
    assert rgb[4, 1] > 0.9  # the middle is bright green
    assert rgb[2, 2] > rgb[2, 0]  # a quarter of the way is blue-ish
    assert rgb[6, 0] > rgb[6, 2]  # three quarters is red-ish


def test_colormap_normalisation_mask_and_nan():
    values = np.array([[2.0, 4.0], [np.nan, 6.0]])
    mask = np.array([[True, True], [True, False]])
    rgb = colormap(values, "gray", mask=mask, invalid_color=(1.0, 0.0, 1.0))
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_allclose(rgb[0, 0], 0.0)  # vmin of the valid values (2) -> black
    np.testing.assert_allclose(rgb[0, 1], 1.0)  # vmax of the valid values (4) -> white
    np.testing.assert_allclose(rgb[1, 0], (1.0, 0.0, 1.0))  # NaN -> invalid colour
    np.testing.assert_allclose(rgb[1, 1], (1.0, 0.0, 1.0))  # masked -> invalid colour
    fixed = colormap(values, "gray", vmin=0.0, vmax=8.0)
    np.testing.assert_allclose(fixed[0, 1], 0.5)
    np.testing.assert_allclose(fixed[1, 1], 0.75)


def test_colormap_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown colormap"):
        colormap(np.zeros(3), "jet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mask shape"):
        colormap(np.zeros(3), mask=np.ones(2, dtype=bool))


def test_conversions():
    np.testing.assert_array_equal(to_uint8(np.array([0.0, 0.5, 1.2])), [0, 128, 255])
    assert rgb_to_hex((1.0, 0.0, 0.5)) == "#ff0080"
    assert series_color(0) == series_color(5)
