"""Tests of mmseg_refiner.benchmark (speed and quality) on a tiny refiner and tiny images."""
import json
import os.path as osp
import zlib

import cv2
import numpy as np
import pytest
import torch

from mmseg_refiner import benchmark as bm
from mmseg_refiner.cli import main as cli_main
from mmseg_refiner.evaluation import mask_iou, score_masks

TINY_CONFIG = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'segrefiner',
                       'segrefiner_tiny.py')


def _ellipse(h, w, seed):
    rng = np.random.default_rng(seed)
    m = np.zeros((h, w), np.uint8)
    cx, cy = int(rng.integers(w // 3, 2 * w // 3)), int(rng.integers(h // 3, 2 * h // 3))
    cv2.ellipse(m, (cx, cy), (w // 4, h // 4), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    cv2.circle(m, (cx + w // 5, cy - h // 6), h // 8, 1, -1)
    return m


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / 'data'
    (root / 'images').mkdir(parents=True)
    (root / 'masks').mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        gt = _ellipse(48, 64, i)
        img = rng.integers(0, 60, (48, 64, 3), dtype=np.uint8)
        img[gt > 0] += 150
        cv2.imwrite(str(root / 'images' / f'im{i}.jpg'), img)
        cv2.imwrite(str(root / 'masks' / f'im{i}.png'), gt * 255)
    (root / 'val.txt').write_text('im2\nim0\n')
    return str(root)


# ---------------------------------------------------------------- coarse masks
@pytest.mark.parametrize('kind', bm.COARSE_KINDS)
def test_coarse_masks_are_deterministic_and_coarse(kind):
    gt = _ellipse(96, 128, 0) > 0
    a = bm.make_coarse(gt, kind, seed=0, sample_id='x')
    b = bm.make_coarse(gt, kind, seed=0, sample_id='x')
    assert a.dtype == bool and a.shape == gt.shape
    assert np.array_equal(a, b)
    assert 0.5 < mask_iou(a, gt) < 0.995


def test_coarse_masks_keep_their_former_stream():
    """The coarse masks draw from utils.rng.keyed_generator, which gives the stream of the
    benchmark's former own recipe: cached coarse masks of a seed stay valid."""
    from mmseg_refiner.benchmark.coarse import _rng
    from mmseg_refiner.datasets import coarse_synthesis as cs
    former = np.random.default_rng([7, zlib.crc32('perturb/im3'.encode())])
    np.testing.assert_array_equal(_rng(7, 'im3', 'perturb').random(8), former.random(8))
    gt = (_ellipse(96, 128, 1) > 0).astype(np.uint8)
    former = np.random.default_rng([7, zlib.crc32('perturb/im3'.encode())])
    expected = cs.synthesize_coarse(gt, former, iou_target=bm.PERTURB_IOU, mode='reference')[0]
    np.testing.assert_array_equal(bm.make_coarse(gt, 'perturb', 7, 'im3'), expected > 0)


def test_coarse_kind_is_validated():
    with pytest.raises(ValueError, match='unknown coarse kind'):
        bm.make_coarse(np.ones((8, 8), bool), 'blurry')


# ---------------------------------------------------------------- speed
def test_count_flops_of_a_conv():
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    assert bm.count_flops(conv, torch.zeros(1, 1, 8, 8)) == 2 * 9 * 64


def test_unet_speed_rows(tiny_refiner):
    rows = bm.unet_speed(tiny_refiner.backbone, sizes=(32, ), batches=(1, 2),
                         dtypes=('fp32', 'bf16'), iters=1, warmup=0)
    assert [(r['batch'], r['dtype']) for r in rows] == [(1, 'fp32'), (1, 'bf16'), (2, 'fp32'),
                                                        (2, 'bf16')]
    assert rows[0]['gflop'] == rows[1]['gflop'] > 0
    assert rows[2]['gflop'] == pytest.approx(2 * rows[0]['gflop'])
    assert all(r['ms'] > 0 and r['gflops_per_s'] > 0 and r['peak_rss_mb'] > 0 for r in rows)


def test_end_to_end_speed_counts_unet_calls(tiny_refiner):
    rows = bm.end_to_end_speed(tiny_refiner, modes=('instance', 'global'), image_size=(40, 44),
                               iters=1, warmup=0)
    steps = tiny_refiner.sampler.num_timesteps
    assert [r['mode'] for r in rows] == ['instance', 'global']
    assert all(r['unet_calls'] == steps and r['unet_samples'] == steps for r in rows)
    # Timings are not compared: other processes share the CPU.
    assert all(r['unet_ms_in_run'] > 0 and r['calls_x_unet_ms'] > 0 for r in rows)


def test_speed_command_writes_reports(tmp_path):
    out = tmp_path / 'speed'
    rc = cli_main([
        'benchmark', 'speed', '--config', TINY_CONFIG, '--sizes', '32', '--batches', '1',
        '--dtypes', 'fp32', 'bf16_cl', '--iters', '1', '--modes', 'instance', '--e2e-size', '40',
        '40', '--no-peaks', '--train-variants', 'bf16_cl', '--train-batch', '2', '--train-size',
        '32', '--device', 'cpu', '--threads', '1', '--out',
        str(out)
    ])
    assert rc == 0
    report = json.load(open(out / 'speed.json'))
    assert [r['dtype'] for r in report['unet']] == ['fp32', 'bf16_cl']
    assert report['end_to_end'][0]['mode'] == 'instance'
    assert report['end_to_end'][0]['e2e_ratio'] > 0
    assert report['training'][0]['variant'] == 'bf16_cl'
    assert report['training'][0]['samples_per_s'] > 0 and report['peak_rss_mb'] > 0
    text = (out / 'speed.md').read_text()
    assert text.startswith('CPU: ') and 'GFLOP/s' in text and 'samples/s' in text
    assert 'malloc: ' in text.splitlines()[0]  # what the allocator did is part of the figures


SPEED = [
    'benchmark', 'speed', '--no-peaks', '--modes', '--train-variants', '--iters', '1', '--sizes',
    '32', '--batches', '1', '--device', 'cpu', '--threads', '1'
]

BAD_COUNTS = [
    ('speed', '--sizes', ['0']),
    ('speed', '--sizes', ['-32']),
    ('speed', '--batches', ['0']),
    ('speed', '--iters', ['0']),
    ('speed', '--train-batch', ['0']),
    ('speed', '--train-size', ['-8']),
    ('speed', '--e2e-size', ['0', '0']),
    ('speed', '--seed', ['-1']),
    ('side-by-side', '--jobs', ['0']),
    ('side-by-side', '--refines', ['0']),
    ('side-by-side', '--e2e-size', ['32', '0']),
    ('quality', '--limit', ['-1']),
    ('quality', '--limit', ['0']),
    ('quality', '--steps', ['0']),
    ('data', '--samples', ['0']),
    ('data', '--passes', ['x']),
    ('data', '--iters', ['0']),
]


@pytest.mark.parametrize('part, flag, values', BAD_COUNTS)
def test_counts_and_sizes_must_be_positive(part, flag, values, tmp_path, capsys):
    """A count or size of 0 or less is a usage error naming the flag (exit 2), before any
    work: no torch error from deep inside, no silent 'all' or 'one'."""
    args = ['benchmark', part, '--out', str(tmp_path / 'out'), flag] + values
    args += ['--root', str(tmp_path)] if part == 'quality' else []
    with pytest.raises(SystemExit) as exc:
        cli_main(args)
    assert exc.value.code == 2
    assert f'argument {flag}: expected an integer ' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('sub', ['', 'sub'])
def test_out_that_is_a_file_is_refused_first(sub, tmp_path, capsys):
    (tmp_path / 'f').write_text('x')
    out = tmp_path / 'f' / sub if sub else tmp_path / 'f'
    with pytest.raises(SystemExit) as exc:
        cli_main(SPEED + ['--out', str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f'argument --out: {out}' in err and f'{tmp_path / "f"} is a file, not a folder' in err


def test_sizes_and_modes_the_model_cannot_take_are_named_before_timing(tmp_path, capsys):
    out = tmp_path / 'speed'
    args = SPEED + ['--config', TINY_CONFIG, '--out', str(out)]
    assert cli_main(args + ['--sizes', '32', '33']) == 1
    assert '--sizes 33: crop_size must be a multiple of 2' in capsys.readouterr().err
    assert cli_main(args + ['--train-variants', 'fp32', '--train-size', '31']) == 1
    assert '--train-size 31: crop_size must be a multiple of 2' in capsys.readouterr().err
    assert cli_main(args + ['--modes', 'instance', 'bogus']) == 1
    assert "--modes bogus: mode must be one of ('auto'" in capsys.readouterr().err
    assert not out.exists()


def test_measuring_functions_refuse_empty_counts(tiny_refiner, dataset):
    from mmseg_refiner.benchmark.side_by_side import side_by_side
    with pytest.raises(ValueError, match='iters must be an integer >= 1, got 0'):
        bm.unet_speed(tiny_refiner.backbone, sizes=(32, ), batches=(1, ), iters=0)
    with pytest.raises(ValueError, match=r'batches must be integers >= 1, got \[1, 0\]'):
        bm.unet_speed(tiny_refiner.backbone, sizes=(32, ), batches=(1, 0))
    with pytest.raises(ValueError, match='image_size must be integers >= 1'):
        bm.end_to_end_speed(tiny_refiner, image_size=(0, 0))
    with pytest.raises(ValueError, match='iters must be an integer >= 1'):
        bm.train_speed(tiny_refiner, batch=1, size=32, variants=('fp32', ), iters=0)
    with pytest.raises(ValueError, match='jobs must be an integer >= 1'):
        side_by_side(['default'], jobs=0, refines=1, size=(32, 32))
    with pytest.raises(ValueError, match='limit must be an integer >= 1'):
        bm.list_pairs(dataset, limit=-1)


def test_peaks_and_shares():
    matmul = bm.matmul_rate(('fp32', ), n=64, iters=1)
    conv = bm.conv_rate(('fp32', 'bf16'), channels=8, size=16, iters=1)
    assert matmul['fp32'] > 0 and set(conv['bf16']) == {'nchw', 'channels_last'}
    rows = [dict(dtype='bf16_cl', gflops_per_s=1.0), dict(dtype='fp32', gflops_per_s=2.0)]
    bm.add_peak_shares(rows, conv, matmul)
    assert rows[0]['conv_share'] == pytest.approx(1.0 / conv['bf16']['channels_last'])
    assert rows[1]['conv_share'] == pytest.approx(2.0 / conv['fp32']['nchw'])
    assert rows[1]['matmul_ratio'] == pytest.approx(2.0 / matmul['fp32'])


def test_unet_speed_variants_restore_the_layout(tiny_refiner):
    rows = bm.unet_speed(tiny_refiner.backbone, sizes=(32, ), batches=(1, ),
                         dtypes=('bf16_cl', 'fp32_cl'), iters=1, warmup=0)
    assert [r['dtype'] for r in rows] == ['bf16_cl', 'fp32_cl']
    assert not tiny_refiner.backbone.channels_last
    with pytest.raises(ValueError, match='unknown U-Net variants'):
        bm.unet_speed(tiny_refiner.backbone, sizes=(32, ), dtypes=('int8', ))


def test_train_speed_rows(tiny_refiner):
    rows = bm.train_speed(tiny_refiner, batch=2, size=32, variants=('fp32', 'bf16_cl'), iters=1,
                          warmup=0)
    assert [r['variant'] for r in rows] == ['fp32', 'bf16_cl']
    assert all(r['samples_per_s'] > 0 for r in rows)
    assert not tiny_refiner.training


def test_cli_choices_match_the_package():
    from mmseg_refiner.cli import benchmark as cli_bm
    assert cli_bm.UNET_VARIANT_NAMES == tuple(bm.UNET_VARIANTS)
    assert cli_bm.TRAIN_VARIANT_NAMES == tuple(bm.TRAIN_VARIANTS)
    assert cli_bm.COARSE_KIND_NAMES == bm.COARSE_KINDS
    assert cli_bm.DEFAULT_VARIANT == bm.DEFAULT_VARIANT


# ---------------------------------------------------------------- quality
def test_list_pairs_uses_the_split(dataset):
    pairs = bm.list_pairs(dataset, 'val.txt')
    assert [p[0] for p in pairs] == ['im2', 'im0']
    assert [p[0] for p in bm.list_pairs(dataset, limit=2)] == ['im0', 'im1']
    with pytest.raises(ValueError, match='split file not found'):
        bm.list_pairs(dataset, 'test.txt')
    bom = osp.join(dataset, 'bom.txt')  # as Windows editors save: a byte-order mark, comments
    with open(bom, 'w', encoding='utf-8-sig') as f:
        f.write('# val ids\nim2\nim0.png\n')
    assert [p[0] for p in bm.list_pairs(dataset, 'bom.txt')] == ['im2', 'im0']


def test_coarse_only_quality_matches_the_functions(dataset, tmp_path):
    out = tmp_path / 'q'
    rc = bm.main([
        'quality', '--root', dataset, '--split', 'val.txt', '--coarse-only', '--out',
        str(out), '--no-progress'
    ])
    assert rc == 0
    rows = json.load(open(out / 'quality.json'))['rows']
    assert [r['kind'] for r in rows] == list(bm.COARSE_KINDS)
    for row in rows:
        scores = []
        for sid in ('im2', 'im0'):
            gt = cv2.imread(osp.join(dataset, 'masks', f'{sid}.png'), 0) > 127
            scores.append(score_masks(bm.make_coarse(gt, row['kind'], 0, sid), gt))
        assert row['num_images'] == 2
        assert row['coarse_IoU'] == pytest.approx(np.mean([s['IoU'] for s in scores]))
        assert row['coarse_BIoU'] == pytest.approx(np.mean([s['BIoU'] for s in scores]))
    assert '| lowres |' in (out / 'quality.md').read_text()


def test_quality_sweep_is_resumable(dataset, tmp_path):
    out = tmp_path / 'q'
    args = [
        'benchmark', 'quality', '--root', dataset, '--config', TINY_CONFIG, '--kinds', 'lowres',
        'polygon', '--steps', '1', '3', '--mode', 'instance', '--out',
        str(out)
    ]
    assert cli_main(args) == 0
    first = json.load(open(out / 'quality.json'))['rows']
    assert [(r['kind'], r['steps']) for r in first] == [('lowres', 1), ('lowres', 3),
                                                        ('polygon', 1), ('polygon', 3)]
    assert first[0]['mean_unet_calls'] == 1 and first[1]['mean_unet_calls'] == 3
    assert 0 <= first[0]['worse_2pt_share'] <= 1
    assert osp.getsize(out / 'quality_vs_steps.png') > 0
    cache = out / 'cache.jsonl'
    lines = cache.read_text().splitlines()
    assert len(lines) == 3 * 2 * (1 + 2)  # images x kinds x (coarse + 2 step counts)
    # Interrupted run: keep a prefix and a torn line; the rerun completes it identically.
    cache.write_text('\n'.join(lines[:7]) + '\n{"key": "refined|tor')
    assert cli_main(args) == 0
    assert len(cache.read_text().splitlines()) == 7 + 1 + (len(lines) - 7)
    again = json.load(open(out / 'quality.json'))['rows']
    for a, b in zip(first, again):
        for key in a:
            if key != 'mean_seconds':
                assert a[key] == b[key], key
    # A finished run does no work.
    size = osp.getsize(cache)
    assert cli_main(args) == 0
    assert osp.getsize(cache) == size


# ---------------------------------------------------------------- quality: variants
@pytest.mark.parametrize('name, guard, thr, criterion', [
    ('guarded', True, 0.0, 'coarse'),
    ('unguarded', False, 0.0, 'coarse'),
    ('adaptive-0.02', True, 0.02, 'coarse'),
    ('adaptive-change-0.01', True, 0.01, 'change'),
    ('unguarded-adaptive-coarse-.5', False, 0.5, 'coarse'),
    ('guarded-adaptive-1', True, 1.0, 'coarse'),
])
def test_parse_variant(name, guard, thr, criterion):
    assert bm.parse_variant(name) == bm.Variant(name, guard, thr, criterion)


@pytest.mark.parametrize('name', [
    'adaptive', 'adaptive-change', 'guardedadaptive-0.1', 'adaptive-1e-3', 'adaptive--0.1',
    'fixed', ''
])
def test_parse_variant_rejects_bad_names(name):
    with pytest.raises(ValueError, match='unknown benchmark variant'):
        bm.parse_variant(name)
    with pytest.raises(ValueError, match=r'must be in \[0, 1\], got 1.5'):
        bm.parse_variant('adaptive-1.5')


@pytest.mark.parametrize('name, guard, thr, criterion, options', [
    ('preset=reference', None, 0.0, 'coarse', dict(preset='reference')),
    ('preset=reference,guard=on', True, 0.0, 'coarse', dict(preset='reference')),
    ('autocast=fp32', None, 0.0, 'coarse', dict(autocast='fp32')),
    ('guard=off', False, 0.0, 'coarse', {}),
    ('guard=off,stop_thr=0.4,stop_criterion=change', False, 0.4, 'change', {}),
    ('autocast=none,batch_size=4', None, 0.0, 'coarse', dict(autocast=None, batch_size=4)),
])
def test_parse_generic_variant(name, guard, thr, criterion, options):
    v = bm.parse_variant(name)
    assert (v.guard, v.stop_thr, v.stop_criterion) == (guard, thr, criterion)
    assert v.options == options


@pytest.mark.parametrize('name, match', [
    ('color=red', "unknown variant option 'color'"),
    ('steps=3', "unknown variant option 'steps'"),
    ('autocast=int8', 'autocast must be one of'),
    ('stop_thr=2', r'stop_thr must be a share in \[0, 1\]'),
    ('batch_size=x', 'expected int'),
    ('guard=off,', 'expected KEY=VALUE pairs'),
])
def test_generic_variant_errors(name, match):
    with pytest.raises(ValueError, match=match):
        bm.parse_variant(name)


def test_reference_variant_follows_refine_options_resolve(tiny_refiner, tmp_path):
    """``preset=reference`` turns the guard off (as RefineOptions.resolve) unless the variant
    sets ``guard`` itself; other generic variants keep the guard on."""
    qrun = bm.QualityRun([], str(tmp_path), ['lowres'], tiny_refiner, refiner_id='t', variants=[
        'preset=reference', 'preset=reference,guard=on', 'autocast=fp32', 'guarded'
    ])
    guard = [qrun.refine_kwargs(v)['guard'] for v in qrun.variants]
    assert guard[0] is False
    assert guard[1] == guard[2] == guard[3] and isinstance(guard[3], dict)
    assert qrun.refine_kwargs(qrun.variants[0])['preset'] == 'reference'


def test_variants_are_run_keyed_and_reported(dataset, tmp_path, tiny_refiner, monkeypatch):
    import mmseg_refiner.apis as apis
    torch.nn.init.normal_(tiny_refiner.backbone.out[2].weight, std=0.5)
    seen, real = [], apis.refine_mask

    def spy(refiner, *args, **kwargs):
        opts = kwargs['options']
        seen.append((opts['guard'], opts['stop_thr'], opts.get('stop_criterion')))
        return real(refiner, *args, **kwargs)

    monkeypatch.setattr(apis, 'refine_mask', spy)
    pairs, out = bm.list_pairs(dataset), str(tmp_path / 'q')
    names = ['guarded', 'unguarded', 'adaptive-change-1', 'adaptive-0']
    qrun = bm.QualityRun(pairs, out, ['lowres'], tiny_refiner, mode='instance', refiner_id='t',
                         variants=names)
    qrun.run(progress=False)
    # guarded and unguarded share one refinement (the guard runs after it); adaptive-0 is
    # guarded (same cache entry): not run again
    assert seen[:2] == [(False, 0.0, None), (False, 1.0, 'change')]
    assert tiny_refiner.test_cfg['stop_criterion'] == 'coarse'  # never changed
    rows = {r['variant']: r for r in qrun.summary()}
    assert list(rows) == names and all(r['steps'] == 6 for r in rows.values())
    assert rows['guarded']['mean_unet_calls'] == rows['unguarded']['mean_unet_calls'] == 6
    # the 'change' criterion never stops before the second call; at threshold 1 it stops there
    assert rows['adaptive-change-1']['mean_unet_calls'] == 2
    for m in bm.METRICS:  # threshold 0 is the fixed schedule: same results, same cache entry
        assert rows['adaptive-0'][m] == rows['guarded'][m]
    lines = open(osp.join(out, 'cache.jsonl')).read().splitlines()
    assert len(lines) == 3 * (1 + 3) and len(seen) == 3 * 2
    # Adding a variant later computes only that variant.
    more = bm.QualityRun(pairs, out, ['lowres'], tiny_refiner, mode='instance', refiner_id='t',
                         variants=names + ['unguarded-adaptive-0.5'])
    more.run(progress=False)
    assert len(open(osp.join(out, 'cache.jsonl')).read().splitlines()) == len(lines) + 3
    assert len(seen) == 3 * 2 + 3 and seen[-1] == (False, 0.5, 'coarse')
    # A generic variant passes its options through, keyed by them.
    generic = bm.QualityRun(pairs, out, ['lowres'], tiny_refiner, mode='instance', refiner_id='t',
                            variants=['autocast=fp32', 'guarded'])
    generic.run(progress=False)
    assert generic.refine_kwargs(generic.variants[0])['autocast'] == 'fp32'
    assert len(seen) == 3 * 2 + 3 + 3  # only the new variant ran


def test_guard_variants_share_one_refinement_exactly(dataset, tmp_path, tiny_refiner, monkeypatch):
    """Variants that differ only in the guard (and, on the instance path, the preset) run the
    refiner once; each result equals a separate ``refine_mask`` call with that variant."""
    import mmseg_refiner.apis as apis
    from mmseg_refiner.utils.io import maskread_checked
    torch.nn.init.normal_(tiny_refiner.backbone.out[2].weight, std=0.5)
    calls, real = [], apis.refine_mask

    def spy(*args, **kwargs):
        calls.append(kwargs['options'])
        return real(*args, **kwargs)

    monkeypatch.setattr(apis, 'refine_mask', spy)
    pairs = bm.list_pairs(dataset)
    names = ['guarded', 'unguarded', 'preset=reference', 'preset=reference,guard=on']
    qrun = bm.QualityRun(pairs, str(tmp_path / 'q'), ['perturb'], tiny_refiner, mode='instance',
                         refiner_id='t', variants=names)
    qrun.run(progress=False)
    assert len(calls) == len(pairs)  # one refinement per image serves all four variants
    monkeypatch.setattr(apis, 'refine_mask', real)
    guard_changed = False
    for sample_id, img_path, mask_path in pairs:
        gt = maskread_checked(mask_path)
        coarse = bm.make_coarse(gt, 'perturb', 0, sample_id)
        separate = {}
        for name, options in [('guarded', dict(guard=True)), ('unguarded', dict(guard=False)),
                              ('preset=reference', dict(preset='reference')),
                              ('preset=reference,guard=on', dict(preset='reference', guard=True))]:
            mask = real(tiny_refiner, cv2.imread(img_path), coarse, mode='instance', seed=0,
                        **options)
            separate[name] = score_masks(mask, gt, 0.02)
        for variant in qrun.variants:
            cached = qrun.cache.get(qrun.refined_key('perturb', variant, 6, sample_id))
            assert {m: cached[m] for m in bm.METRICS} == separate[variant.name], variant.name
            assert cached['unet_calls'] == 6
        guard_changed |= separate['guarded'] != separate['unguarded']
    assert guard_changed  # the guard did something, so sharing had something to get wrong


def test_quality_rows_by_refinement_path(dataset, tmp_path, tiny_refiner):
    """``summary(by_path=True)`` adds one row per path taken; the path is stored with new
    results and recomputed (the same) for results cached without it."""
    pairs = bm.list_pairs(dataset)
    tiny_refiner.test_cfg['hr_size'] = 34  # polygon outlines: 32 and 35 px long: both
    qrun = bm.QualityRun(pairs, str(tmp_path / 'q'), ['polygon'], tiny_refiner, steps_list=[1],
                         refiner_id='t')
    qrun.run(progress=False)
    records = [
        qrun.cache.get(qrun.refined_key('polygon', qrun.variants[0], 1, p[0])) for p in pairs
    ]
    stored = [r['path'] for r in records]
    assert set(stored) == {'instance', 'hr'}
    rows = qrun.summary(by_path=True)
    overall, split = rows[0], rows[1:]
    assert overall['path'] == 'all' and [r['path'] for r in split] == sorted(set(stored))
    assert sum(r['num_images'] for r in split) == overall['num_images'] == len(pairs)
    for r in split:
        idx = [i for i, p in enumerate(stored) if p == r['path']]
        assert r['IoU'] == pytest.approx(np.mean([records[i]['IoU'] for i in idx]))
    for r in records:  # as cached before paths were stored
        del r['path']
    assert qrun.summary(by_path=True) == rows
    assert '| path |' in bm.quality_markdown(rows, 't')


def test_side_by_side_settings_parse():
    from mmseg_refiner.benchmark.side_by_side import parse_setting
    assert parse_setting('default') == {}
    assert parse_setting('GOMP_SPINCOUNT=1000,OMP_WAIT_POLICY=PASSIVE') == dict(
        GOMP_SPINCOUNT='1000', OMP_WAIT_POLICY='PASSIVE')
    with pytest.raises(ValueError, match='expected default or KEY=VALUE'):
        parse_setting('PASSIVE')


def test_side_by_side_command_runs_jobs_in_their_environment(tmp_path, monkeypatch):
    """Two tiny jobs one after the other and two together, each a new interpreter whose
    environment is the setting's (the driver's own OpenMP variables removed)."""
    monkeypatch.setenv('GOMP_SPINCOUNT', '7')  # the driver's: must not reach the jobs
    out = tmp_path / 'sbs'
    assert cli_main([
        'benchmark', 'side-by-side', '--config', TINY_CONFIG, '--device', 'cpu', '--threads', '1',
        '--settings', 'OMP_WAIT_POLICY=PASSIVE', '--refines', '1', '--e2e-size', '48', '64',
        '--out',
        str(out)
    ]) == 0
    rows = json.load(open(out / 'side_by_side.json'))['rows']
    assert [r['setting'] for r in rows] == ['OMP_WAIT_POLICY=PASSIVE']
    row = rows[0]
    assert len(row['alone_refine_s']) == len(row['side_by_side_refine_s']) == 2
    assert row['sequential_s'] > sum(row['alone_refine_s']) and row['threads'] == 1
    assert row['ratio'] == pytest.approx(row['side_by_side_s'] / row['sequential_s'])
    assert '| OMP_WAIT_POLICY=PASSIVE |' in (out / 'side_by_side.md').read_text()


def test_side_by_side_jobs_get_exactly_the_setting(monkeypatch):
    from mmseg_refiner.benchmark import side_by_side as sbs
    monkeypatch.setenv('GOMP_SPINCOUNT', '7')
    monkeypatch.setenv('OMP_WAIT_POLICY', 'ACTIVE')
    env = sbs._environment({'GOMP_SPINCOUNT': '1000'})
    assert env['GOMP_SPINCOUNT'] == '1000' and 'OMP_WAIT_POLICY' not in env
    assert not any(k in sbs._environment({}) for k in ('GOMP_SPINCOUNT', 'OMP_WAIT_POLICY'))


def test_variants_command_writes_table_and_plot(dataset, tmp_path):
    out = tmp_path / 'q'
    rc = cli_main([
        'benchmark', 'quality', '--root', dataset, '--config', TINY_CONFIG, '--kinds', 'lowres',
        'polygon', '--steps', '1', '2', '--mode', 'instance', '--variants', 'guarded', 'unguarded',
        'adaptive-change-1', '--limit', '2', '--out',
        str(out), '--no-progress'
    ])
    assert rc == 0
    report = json.load(open(out / 'quality.json'))
    assert [(r['kind'], r['variant'], r['steps']) for r in report['rows']][:6] == [
        ('lowres', v, s) for v in ('guarded', 'unguarded', 'adaptive-change-1') for s in (1, 2)
    ]
    assert report['variants']['unguarded'] == dict(guard=False, stop_thr=0.0, stop_criterion=None)
    assert report['variants']['adaptive-change-1']['stop_criterion'] == 'change'
    table = (out / 'quality.md').read_text()
    assert '| lowres | adaptive-change-1 | 2 | 2 |' in table and 'U-Net calls' in table
    assert osp.getsize(out / 'quality_vs_calls.png') > 0
    assert cli_main([
        'benchmark', 'quality', '--root', dataset, '--config', TINY_CONFIG, '--variants',
        'adaptive', '--out',
        str(out)
    ]) == 1
