"""RefineOptions: defaults, resolve() against a test_cfg, validation, dict / argparse input."""
import argparse
import re

import pytest

from mmseg_refiner.apis import RefineOptions
from mmseg_refiner.cli.common import add_refine_options

TEST_CFG = dict(steps=None, batch_size=32, crop_size=256, stop_thr=0.0, stop_criterion='coarse',
                autocast='auto', compile=False, preset='default', guard=True, mask_thr=0.5)


def test_defaults_resolve_to_the_config_and_never_change_it():
    cfg = dict(TEST_CFG)
    assert RefineOptions().resolve(cfg) == TEST_CFG
    out = RefineOptions(steps=3, stop_thr=0.1, stop_criterion='change', batch_size=4,
                        crop_size=128, autocast='fp32', compile=True, guard=False, mode='hr',
                        seed=7).resolve(cfg)
    assert cfg == TEST_CFG
    assert out == dict(TEST_CFG, steps=3, stop_thr=0.1, stop_criterion='change', batch_size=4,
                       crop_size=128, autocast='fp32', compile=True, guard=False)
    assert 'mode' not in out and 'seed' not in out  # API arguments, not test_cfg keys


def test_reference_preset_turns_the_guard_off_unless_given():
    assert RefineOptions(preset='reference').resolve(TEST_CFG)['guard'] is None
    assert RefineOptions().resolve(dict(TEST_CFG, preset='reference'))['guard'] is None
    assert RefineOptions(preset='reference', guard=True).resolve(TEST_CFG)['guard'] is True
    custom = dict(band_ratio=0.1)
    assert RefineOptions(preset='reference', guard=custom).resolve(TEST_CFG)['guard'] == custom
    # a guard the config chose on purpose stays
    assert RefineOptions(preset='reference').resolve(dict(TEST_CFG, guard=custom))['guard'] \
        == custom
    assert RefineOptions(preset='default').resolve(TEST_CFG)['guard'] is True


@pytest.mark.parametrize('kwargs,message', [
    (dict(preset='paper'), r"preset must be one of \('default', 'reference'\), got 'paper'"),
    (dict(mode='fast'), r"mode must be one of \('auto', 'instance', 'global', 'hr'\)"),
    (dict(stop_criterion='delta'), r"stop_criterion must be one of \('coarse', 'change'\)"),
    (dict(autocast='int8'), 'autocast must be one of'),
    (dict(stop_thr=1.5), r'stop_thr must be a share in \[0, 1\], got 1.5'),
    (dict(steps=0), 'steps must be >= 1'),
    (dict(steps='6'), 'steps must be an integer or a list'),
    (dict(batch_size=0), 'batch_size must be an integer >= 1'),
    (dict(crop_size=32.5), 'crop_size must be an integer'),
    (dict(compile='yes'), 'compile must be True or False'),
    (dict(guard=dict(width=3)), 'unknown guard keys'),
    (dict(seed=-1), r'seed must be an integer in \[0, 9223372036854775807\], got -1'),
    (dict(seed=2**70), 'seed must be an integer in'),
    (dict(crop_size=100000), r'crop_size must be an integer in \[16, 2048\], got 100000'),
])
def test_bad_values_name_the_option_and_the_valid_ones(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RefineOptions(**kwargs).resolve(TEST_CFG)


def test_the_configs_own_bad_preset_is_caught_too():
    with pytest.raises(ValueError, match='preset must be one of'):
        RefineOptions().resolve(dict(TEST_CFG, preset='paper'))


def test_from_dict_coerce_merged_to_dict():
    opts = RefineOptions.from_dict(dict(preset='reference', steps=[5, 3, 0]))
    assert opts.preset == 'reference' and opts.steps == [5, 3, 0] and opts.mode == 'auto'
    with pytest.raises(ValueError, match=r"unknown refine option\(s\) \['stop'\]; valid: "):
        RefineOptions.from_dict(dict(stop=0.1))
    assert RefineOptions.coerce(None) == RefineOptions()
    assert RefineOptions.coerce(opts) is opts
    with pytest.raises(TypeError, match='RefineOptions or a dict'):
        RefineOptions.coerce(['preset'])
    merged = opts.merged(steps=None, seed=1, guard=False)
    assert merged.steps == [5, 3, 0] and merged.seed == 1 and merged.guard is False
    assert opts.seed is None  # merged returns a copy
    with pytest.raises(TypeError, match='unknown refine option'):
        opts.merged(foo=1)
    assert merged.to_dict() == dict(mode='auto', steps=[5, 3, 0], seed=1, guard=False,
                                    preset='reference')


def _parse(argv, prefix=''):
    parser = argparse.ArgumentParser()
    add_refine_options(parser, prefix=prefix)
    return parser.parse_args(argv)


def test_from_args_every_field_has_a_flag():
    args = _parse([
        '--mode', 'hr', '--steps', '4', '--seed', '3', '--no-guard', '--stop-thr', '0.2',
        '--stop-criterion', 'change', '--autocast', 'bf16', '--compile', '--preset', 'reference',
        '--batch-size', '8', '--crop-size', '128'
    ])
    assert RefineOptions.from_args(args) == RefineOptions(mode='hr', steps=4, seed=3, guard=False,
                                                          stop_thr=0.2, stop_criterion='change',
                                                          autocast='bf16', compile=True,
                                                          preset='reference', batch_size=8,
                                                          crop_size=128)
    # nothing given: the config's values, seed 0 (the command line's reproducible default)
    assert RefineOptions.from_args(_parse([])) == RefineOptions(seed=0)
    prefixed = _parse(['--refiner-preset', 'reference', '--refiner-no-guard'], 'refiner-')
    assert RefineOptions.from_args(prefixed,
                                   'refiner_') == RefineOptions(seed=0, preset='reference',
                                                                guard=False)


@pytest.mark.parametrize('argv,message', [
    (['--mode', 'fast'], "argument --mode: mode must be one of"),
    (['--preset', 'paper'], 'argument --preset: preset must be one of'),
    (['--stop-criterion', 'x'], 'argument --stop-criterion: stop_criterion must be one of'),
    (['--stop-thr', '1.5'], r'stop_thr must be a share in \[0, 1\]'),
    (['--stop-thr', 'x'], "argument --stop-thr: expected float, got 'x'"),
    (['--steps', '0'], 'steps must be >= 1'),
    (['--batch-size', '0'], 'batch_size must be an integer >= 1'),
])
def test_bad_flags_exit_with_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        _parse(argv)
    assert exc.value.code == 2
    assert re.search(message, capsys.readouterr().err)
