import numpy as np
import pytest

from mmseg_refiner.inference.guard import (apply_guard, band_width, boundary_band,
                                           drop_detached_components, guard_masks, resolve_guard)


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
        out = apply_guard(refined, coarse, band_ratio=0.05, min_band=2, drop_new_components=False,
                          undo_overflow=False)
        band = boundary_band(coarse, band_width(coarse, 0.05, 2))
        assert np.array_equal(out[~band], coarse[~band])
        assert np.array_equal(out[band], refined[band])
        for drop in (False, True):  # every option only ever takes pixels back to coarse
            out = apply_guard(refined, coarse, band_ratio=0.05, min_band=2,
                              drop_new_components=drop, undo_overflow=True)
            assert np.array_equal(out[~band], coarse[~band])
            assert np.all((out == refined) | (out == coarse))


def test_changes_reaching_beyond_the_band_are_undone_whole():
    coarse = _square(h=96, w=96, box=(16, 16, 48, 48))
    refined = coarse.copy()
    refined[16:48, 48:90] = True  # a neighbour annexed: extends 42 px past the edge
    refined[12:16, 20:30] = True  # a 4 px boundary fix
    refined[16:19, 20:40] = False  # a 3 px trim along the top edge
    refined[30:47, 17:47] = False  # a cut deep into the object
    width = band_width(coarse, 0.1, 2)  # 0.1 x 45 px diagonal = 4.5 px
    assert 6 > width > 3
    out = apply_guard(refined, coarse, band_ratio=0.1, min_band=2, drop_new_components=False)
    assert not out[16:48, 48:90].any()  # undone entirely, not cut at the band edge
    assert out[30:47, 17:47].all()  # the deep cut is undone too
    assert not out[16:19, 20:40].any()  # the trim stays
    assert out[12:16, 20:30].all()  # the fix stays
    clipped = apply_guard(refined, coarse, band_ratio=0.1, min_band=2, drop_new_components=False,
                          undo_overflow=False)
    assert clipped[16:48, 48:52].all()  # the reference-style clip keeps a lump at the edge


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


def test_guard_masks_returns_masks_and_the_pixels_it_changed():
    coarse = np.stack([_square(), _square(box=(8, 8, 24, 24)), np.zeros((64, 64), bool)])
    refined = coarse.copy()
    refined[0, 16:48, 48:64] = True  # annexes a neighbour: undone
    refined[1, 24:26, 8:20] = True  # a boundary fix: kept
    refined[2, 40:50, 40:50] = True  # growth from an empty mask: undone
    out = guard_masks(refined, coarse, True)
    assert out.mask.dtype == bool and out.mask.shape == coarse.shape
    assert np.array_equal(out.mask[0], coarse[0]) and np.array_equal(out.mask[1], refined[1])
    assert not out.mask[2].any()
    assert np.array_equal(out.changed, out.mask != refined)
    assert out.changed[0, 16:48, 48:64].all() and not out.changed[1].any()
    for off in (None, False):
        unguarded = guard_masks(refined, coarse, off)
        assert np.array_equal(unguarded.mask, refined) and not unguarded.changed.any()
    with_options = guard_masks(refined, coarse, dict(undo_overflow=False,
                                                     drop_new_components=False))
    assert with_options.mask[0, 16:48, 48:52].all()  # cut at the band, not undone
    empty = guard_masks(np.zeros((0, 4, 4), bool), np.zeros((0, 4, 4), bool), True)
    assert empty.mask.shape == empty.changed.shape == (0, 4, 4)
