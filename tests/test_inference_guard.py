import numpy as np
import pytest

from mmseg_refiner.inference.guard import (apply_guard, band_width, boundary_band,
                                           drop_detached_components, resolve_guard)


def _square(h=64, w=64, box=(16, 16, 48, 48)):
    m = np.zeros((h, w), bool)
    m[box[1]:box[3], box[0]:box[2]] = True
    return m


def test_band_contains_exactly_pixels_near_the_boundary():
    coarse = _square()
    band = boundary_band(coarse, 3)
    assert band[16, 30] and band[13, 30] and band[18, 30]  # 3 px outside/inside the edge
    assert not band[12, 30] and not band[19, 30] and not band[30, 30]


def test_guard_never_changes_pixels_outside_its_band():
    rng = np.random.default_rng(0)
    coarse = _square()
    for _ in range(5):
        refined = rng.random(coarse.shape) > 0.5
        out = apply_guard(refined, coarse, band_ratio=0.05, min_band=2,
                          drop_new_components=False)
        band = boundary_band(coarse, band_width(coarse, 0.05, 2))
        assert np.array_equal(out[~band], coarse[~band])
        assert np.array_equal(out[band], refined[band])


def test_far_component_is_never_added_when_forbidden():
    coarse = _square(box=(8, 8, 24, 24))
    refined = coarse.copy()
    refined[40:60, 40:60] = True  # a blob far from the coarse mask
    refined[24:27, 10:20] = True  # growth touching the coarse mask is fine
    out = apply_guard(refined, coarse, band_ratio=10.0, min_band=100, drop_new_components=True)
    assert not out[40:60, 40:60].any()
    assert out[24:27, 10:20].all()
    kept = apply_guard(refined, coarse, band_ratio=10.0, min_band=100, drop_new_components=False)
    assert kept[40:60, 40:60].all()


def test_detached_components_and_empty_inputs():
    coarse = _square()
    assert not drop_detached_components(np.zeros_like(coarse), coarse).any()
    lone = np.zeros_like(coarse)
    lone[0:3, 0:3] = True
    assert not drop_detached_components(lone, coarse).any()
    assert not apply_guard(coarse, np.zeros_like(coarse)).any()


def test_resolve_guard():
    assert resolve_guard(None) is None and resolve_guard(False) is None
    assert resolve_guard(True)['band_ratio'] == 0.05
    assert resolve_guard(dict(min_band=9))['min_band'] == 9
    with pytest.raises(KeyError, match='unknown guard keys'):
        resolve_guard(dict(width=3))
