"""``mmseg-refiner refine-coco`` and ``refine-semantic``: offline refinement of result files."""
import json
import os.path as osp

import mmcv
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from mmseg_refiner.apis import init_refiner, refine_label_map, refine_masks
from mmseg_refiner.cli import main
from mmseg_refiner.cli.refine_coco import decode_segmentation, encode_mask

from conftest import TINY_CONFIG
from test_refiner_hook import save_noisy_refiner, write_tiny_data

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('refine_coco')
    data = write_tiny_data(root)
    return dict(data=data, ann=osp.join(data, 'ann.json'), img=osp.join(data, 'img'),
                ckpt=save_noisy_refiner(root / 'noisy.pth'))


def _box_mask(h, w, x0, y0, x1, y1):
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _write_results(path):
    """Per image: a high-score RLE mask, a low-score RLE mask, a high-score polygon."""
    results = []
    for image_id, (h, w) in enumerate([(64, 80), (72, 64)]):
        for score, box in ((0.9, (8, 10, 40, 50)), (0.2, (30, 5, 60, 30))):
            results.append(
                dict(image_id=image_id, category_id=1, score=score, bbox=[1, 2, 3, 4],
                     segmentation=encode_mask(_box_mask(h, w, *box)), extra='kept'))
        results.append(
            dict(image_id=image_id, category_id=2, score=0.8,
                 segmentation=[[20, 20, 50, 20, 50, 45, 20, 45]]))
    with open(path, 'w') as f:
        json.dump(results, f)
    return results


def _args(files, results, out, *extra):
    return [
        'refine-coco',
        str(results), '--ann', files['ann'], '--img-dir', files['img'], '--out',
        str(out), '--config', TINY_CONFIG, '--checkpoint', files['ckpt'], '--mode', 'instance',
        '--score-thr', '0.5', '--threads', '1', *extra
    ]


def test_refine_coco_refines_above_thr_and_keeps_other_fields(files, tmp_path):
    results = _write_results(tmp_path / 'res.segm.json')
    out = tmp_path / 'out' / 'refined.segm.json'
    assert main(_args(files, tmp_path / 'res.segm.json', out)) == 0
    refined = json.load(open(out))
    assert not osp.exists(str(out) + '.partial.jsonl')
    assert len(refined) == len(results)
    refiner = init_refiner(TINY_CONFIG, files['ckpt'])
    for image_id, (h, w) in enumerate([(64, 80), (72, 64)]):
        rows = [i for i, r in enumerate(results) if r['image_id'] == image_id]
        for i in rows:  # every field but segmentation is kept
            assert {k: v for k, v in refined[i].items() if k != 'segmentation'} == \
                {k: v for k, v in results[i].items() if k != 'segmentation'}
        low = [i for i in rows if results[i]['score'] < 0.5]
        assert all(refined[i] == results[i] for i in low)
        high = [i for i in rows if results[i]['score'] >= 0.5]
        coarse = np.stack(
            [decode_segmentation(results[i]['segmentation'], h, w, '') for i in high])
        expected = refine_masks(refiner, osp.join(files['img'], f'{image_id}.png'), coarse,
                                mode='instance', seed=0)
        got = np.stack([mask_utils.decode(refined[i]['segmentation']).astype(bool) for i in high])
        assert np.array_equal(got, expected) and not np.array_equal(got, coarse)
        assert all(isinstance(refined[i]['segmentation']['counts'], str) for i in high)


def test_refine_coco_resumes_from_the_partial_cache(files, tmp_path):
    _write_results(tmp_path / 'res.json')
    out = tmp_path / 'refined.json'
    assert main(_args(files, tmp_path / 'res.json', out)) == 0
    first = json.load(open(out))
    # An interrupted run: image 0 finished (with a recognisable empty mask), a torn line.
    from mmseg_refiner.cli import build_parser
    from mmseg_refiner.cli.refine_coco import _settings
    header = _settings(build_parser().parse_args(_args(files, tmp_path / 'res.json', out)))
    sentinel = encode_mask(np.zeros((64, 80), bool))
    with open(str(out) + '.partial.jsonl', 'w') as f:
        f.write(json.dumps({'header': header}) + '\n')
        f.write(json.dumps({'image_id': 0, 'refined': [[0, sentinel], [2, sentinel]]}) + '\n')
        f.write('{"image_id": 1, "refi')
    assert main(_args(files, tmp_path / 'res.json', out)) == 0
    resumed = json.load(open(out))
    assert resumed[0]['segmentation'] == resumed[2]['segmentation'] == sentinel  # from cache
    assert resumed[3:] == first[3:]  # image 1 refined again, identically (same seed)
    # A cache from other settings is refused, unless --restart.
    with open(str(out) + '.partial.jsonl', 'w') as f:
        f.write(json.dumps({'header': dict(header, seed=5)}) + '\n')
    assert main(_args(files, tmp_path / 'res.json', out)) == 1
    assert main(_args(files, tmp_path / 'res.json', out, '--restart')) == 0
    assert json.load(open(out)) == first


def test_refine_coco_bad_inputs_are_clear_errors(files, tmp_path, capsys):
    results = _write_results(tmp_path / 'res.json')
    results[0]['image_id'] = 99
    json.dump(results, open(tmp_path / 'bad_id.json', 'w'))
    assert main(_args(files, tmp_path / 'bad_id.json', tmp_path / 'o.json')) == 1
    assert 'image_id 99 that is not in' in capsys.readouterr().err
    results[0].update(image_id=0, segmentation=encode_mask(np.zeros((10, 10), bool)))
    json.dump(results, open(tmp_path / 'bad_size.json', 'w'))
    assert main(_args(files, tmp_path / 'bad_size.json', tmp_path / 'o.json')) == 1
    assert 'mask size [10, 10]' in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'o.json')


def _write_label_maps(files, pred_dir):
    """0.png as a palette PNG, 1.png as 8-bit grey; 255 (ignore) in a corner."""
    pred_dir.mkdir()
    maps = {}
    for i in (0, 1):
        labels = mmcv.imread(osp.join(files['data'], 'ann', f'{i}.png'), flag='unchanged')
        labels = np.roll(labels, 3, axis=1)  # a misaligned (coarse) prediction
        labels[:4, :4] = 255
        img = Image.fromarray(labels)
        if i == 0:
            img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [9] * (256 * 3 - 9))
        img.save(pred_dir / f'{i}.png')
        maps[i] = labels
    return maps


def test_refine_semantic_folder_keeps_format_ignore_and_other_classes(files, tmp_path, capsys):
    maps = _write_label_maps(files, tmp_path / 'pred')
    args = [
        'refine-semantic',
        str(tmp_path / 'pred'), '--img-dir', files['img'], '--out',
        str(tmp_path / 'out'), '--config', TINY_CONFIG, '--checkpoint', files['ckpt'], '--mode',
        'instance', '--classes', '0', '1', '--no-guard', '--threads', '1'
    ]
    assert main(args) == 0
    refiner = init_refiner(TINY_CONFIG, files['ckpt'])
    for i, labels in maps.items():
        out = Image.open(tmp_path / 'out' / f'{i}.png')
        assert out.mode == ('P' if i == 0 else 'L')
        if i == 0:
            assert out.getpalette()[:9] == [0, 0, 0, 255, 0, 0, 0, 255, 0]
        got = np.array(out)
        expected = refine_label_map(refiner, osp.join(files['img'], f'{i}.png'), labels,
                                    classes=[0, 1], mode='instance', seed=0, guard=False)
        # the random tiny refiner's changes overflow any guard band: compared without it
        assert np.array_equal(got, expected) and not np.array_equal(got, labels)
        assert (got[:4, :4] == 255).all()
        assert np.array_equal(got == 2, labels == 2)  # class 2 not listed: untouched
    assert main(args) == 0  # everything done: skipped
    assert '2 of 2 already done' in capsys.readouterr().out


def test_refine_coco_options_reach_the_api(files, tmp_path, monkeypatch):
    import mmseg_refiner.apis as apis
    seen, real = [], apis.refine_masks

    def spy(*args, **kwargs):
        seen.append(kwargs['options'])
        return real(*args, **kwargs)

    monkeypatch.setattr(apis, 'refine_masks', spy)
    _write_results(tmp_path / 'res.json')
    assert main(_args(files, tmp_path / 'res.json', tmp_path / 'a.json')) == 0
    assert main(
        _args(files, tmp_path / 'res.json', tmp_path / 'b.json', '--no-guard', '--stop-thr', '0.5',
              '--stop-criterion', 'change', '--preset', 'reference')) == 0
    half = len(seen) // 2
    assert seen and {o.guard for o in seen[:half]} == {None}
    assert {(o.guard, o.stop_thr, o.stop_criterion, o.preset, o.mode, o.seed)
            for o in seen[half:]} == {(False, 0.5, 'change', 'reference', 'instance', 0)}


def test_refine_coco_cache_header_holds_the_options(files, tmp_path, capsys):
    from mmseg_refiner.cli import build_parser
    from mmseg_refiner.cli.refine_coco import _settings
    _write_results(tmp_path / 'res.json')
    out = tmp_path / 'out.json'
    header = _settings(build_parser().parse_args(_args(files, tmp_path / 'res.json', out)))
    assert header['seed'] == 0 and header['mode'] == 'instance'
    (tmp_path / 'out.json.partial.jsonl').write_text(json.dumps({'header': header}) + '\n')
    assert main(_args(files, tmp_path / 'res.json', out, '--preset', 'reference')) == 1
    assert 'other inputs or settings' in capsys.readouterr().err  # another option: refused
    assert main(_args(files, tmp_path / 'res.json', out)) == 0  # the same: resumed


def _copy_ann(files, path, edit):
    ann = json.load(open(files['ann']))
    edit(ann)
    json.dump(ann, open(path, 'w'))
    return str(path)


def test_refine_coco_refuses_a_cache_of_other_input_files(files, tmp_path, capsys):
    from mmseg_refiner.cli import build_parser
    from mmseg_refiner.cli.refine_coco import _settings
    results = _write_results(tmp_path / 'res.json')
    ann = _copy_ann(files, tmp_path / 'ann.json', lambda a: None)
    out = tmp_path / 'refined.json'

    def cli(*extra, ann=ann):
        args = _args(files, tmp_path / 'res.json', out, *extra)
        args[args.index('--ann') + 1] = ann
        return args

    sentinel = encode_mask(np.zeros((64, 80), bool))
    header = _settings(build_parser().parse_args(cli()))

    def interrupted_run():  # image 0 done (a recognisable empty mask)
        with open(str(out) + '.partial.jsonl', 'w') as f:
            f.write(json.dumps({'header': header}) + '\n')
            f.write(json.dumps({'image_id': 0, 'refined': [[0, sentinel]]}) + '\n')

    # The results file edited under the same name (result 0 moved): the cache is stale.
    interrupted_run()
    moved = encode_mask(_box_mask(64, 80, 30, 30, 60, 60))
    results[0]['segmentation'] = moved
    json.dump(results, open(tmp_path / 'res.json', 'w'))
    assert main(cli()) == 1
    assert '(the results file): delete it or pass --restart' in capsys.readouterr().err
    assert not osp.exists(out)
    # Another annotation file content, or another image folder: refused too.
    _copy_ann(files, ann, lambda a: a['categories'].append(dict(id=9, name='new')))
    img_dir = tmp_path / 'img'
    img_dir.mkdir()
    header = dict(_settings(build_parser().parse_args(cli())), img_dir=str(img_dir))
    _copy_ann(files, ann, lambda a: None)  # the original content again
    interrupted_run()
    assert main(cli()) == 1
    assert '(the annotation file, --img-dir)' in capsys.readouterr().err
    # --restart starts over: the edited mask is refined, not the cached one.
    assert main(cli('--restart')) == 0
    refined = json.load(open(out))
    assert refined[0]['segmentation'] != sentinel
    assert refined[1:] == results[1:2] + refined[2:]  # low score: copied
    assert not osp.exists(str(out) + '.partial.jsonl')


@pytest.mark.parametrize('segm, message', [
    ([], '"segmentation" is an empty list'),
    ([[10, 10, 100]], 'polygon 0 has 3 coordinates'),
    ([[20, 20, 50, 20, 50, 45], [1, 2, 3, 4]], 'polygon 1 has 4 coordinates'),
    ([[20, 20, 50, float('nan'), 50, 45]], 'polygon 0 coordinate 3 is nan'),
    ([[20, 20, 5e8, 20, 50, 45]], 'more than an image size outside the 80x64'),
    ({'size': [64, 80], 'counts': '!!!notrle~~~'}, 'not a COCO RLE string'),
    ({'size': [64, 80], 'counts': [0, 100, 1000]}, 'counts sum to 1100 but the size is 64x80'),
    ({'size': [64, 80], 'counts': [0, -1, 5121]}, 'non-negative integers, got -1'),
    ({'size': [32, 160], 'counts': [5120]}, 'mask size [32, 160] (HxW) differs'),
    ({'size': 64, 'counts': [5120]}, '"size" must be [height, width]'),
    ('abc', 'neither RLE nor polygons'),
])
def test_refine_coco_bad_segmentation_is_a_clear_error_before_any_work(
        files, tmp_path, capsys, monkeypatch, segm, message):
    import mmseg_refiner.cli.refine_coco as refine_coco
    monkeypatch.setattr(refine_coco, 'build_refiner', lambda args: pytest.fail('refiner built'))
    results = _write_results(tmp_path / 'res.json')
    results[1]['score'] = 0.9  # refined (a low score is checked all the same)
    results[1]['segmentation'] = segm
    json.dump(results, open(tmp_path / 'res.json', 'w'))
    out = tmp_path / 'o.json'
    assert main(_args(files, tmp_path / 'res.json', out)) == 1
    err = capsys.readouterr().err
    assert f'{tmp_path / "res.json"}: result 1 (image_id 0): ' in err and message in err
    assert 'Traceback' not in err
    assert not osp.exists(out) and not osp.exists(str(out) + '.partial.jsonl')


@pytest.mark.parametrize('field, value, message', [
    ('score', None, '"score" is null; expected a number'),
    ('score', 'high', '"score" is "high"; expected a number'),
    ('score', float('nan'), '"score" is NaN; expected a number'),
    ('image_id', [0], "has image_id [0]; expected an integer or a string"),
])
def test_refine_coco_bad_score_or_image_id_is_a_clear_error(files, tmp_path, capsys, field, value,
                                                            message):
    results = _write_results(tmp_path / 'res.json')
    results[2][field] = value
    json.dump(results, open(tmp_path / 'res.json', 'w'))
    assert main(_args(files, tmp_path / 'res.json', tmp_path / 'o.json')) == 1
    err = capsys.readouterr().err
    assert f'{tmp_path / "res.json"}: result 2' in err and message in err
    assert not osp.exists(tmp_path / 'o.json')


@pytest.mark.parametrize('edit, message', [
    (lambda a: a['images'][1].pop('height'), 'images[1] (id 1) has no "height"'),
    (lambda a: a['images'][0].pop('width'), 'images[0] (id 0) has no "width"'),
    (lambda a: a['images'][0].pop('file_name'), 'images[0] (id 0) has no "file_name"'),
    (lambda a: a['images'][1].update(height='72'), 'images[1] (id 1) has "height" \'72\''),
    (lambda a: a['images'][0].update(width=0), 'images[0] (id 0) has "width" 0'),
    (lambda a: a['images'][0].pop('id'), 'images[0] has no "id"'),
    (lambda a: a['images'].append(dict(a['images'][0])), 'images[2] repeats image id 0'),
    (lambda a: a['images'].append(3), 'images[2] is not a dict (got int)'),
])
def test_refine_coco_incomplete_annotation_file_is_a_clear_error(files, tmp_path, capsys, edit,
                                                                 message):
    _write_results(tmp_path / 'res.json')
    ann = _copy_ann(files, tmp_path / 'ann.json', edit)
    args = _args(files, tmp_path / 'res.json', tmp_path / 'o.json')
    args[args.index('--ann') + 1] = ann
    assert main(args) == 1
    assert f'error: {ann}: {message}' in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'o.json')


def test_refine_coco_unwritable_out_is_refused_before_any_work(files, tmp_path, capsys,
                                                               monkeypatch):
    import mmseg_refiner.cli.refine_coco as refine_coco
    monkeypatch.setattr(refine_coco, 'build_refiner', lambda args: pytest.fail('refiner built'))
    _write_results(tmp_path / 'res.json')
    (tmp_path / 'dir').mkdir()
    assert main(_args(files, tmp_path / 'res.json', tmp_path / 'dir')) == 1
    assert f'--out {tmp_path / "dir"} is a folder' in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'dir.partial.jsonl')
    before = (tmp_path / 'res.json').read_bytes()
    assert main(_args(files, tmp_path / 'res.json', tmp_path / 'res.json')) == 1
    assert 'is the results file; choose another file' in capsys.readouterr().err
    assert (tmp_path / 'res.json').read_bytes() == before


@pytest.mark.parametrize('value', ['nan', '-0.1', '1.5', 'inf', 'high'])
def test_refine_coco_score_thr_outside_0_1_is_a_usage_error(files, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(_args(files, tmp_path / 'res.json', tmp_path / 'o.json', '--score-thr', value))
    assert exc.value.code == 2
    assert 'argument --score-thr' in capsys.readouterr().err


def test_refine_semantic_32_bit_label_maps(files, tmp_path, capsys):
    """Mode ``I`` (32-bit) label maps come back as 16-bit PNGs with the same labels; labels
    that 16 bits cannot hold are refused before refining."""
    img = mmcv.imread(osp.join(files['img'], '0.png'))
    labels = np.zeros(img.shape[:2], np.int32)
    labels[10:40, 12:50] = 300
    (tmp_path / 'pred').mkdir()
    Image.fromarray(labels, mode='I').save(str(tmp_path / 'pred' / '0.tif'))
    args = [
        'refine-semantic',
        str(tmp_path / 'pred'), '--img-dir', files['img'], '--out',
        str(tmp_path / 'out'), '--config', TINY_CONFIG, '--checkpoint', files['ckpt'], '--threads',
        '1', '--steps', '1'
    ]
    assert main(args) == 0
    out = Image.open(tmp_path / 'out' / '0.png')
    assert out.mode == 'I;16' and set(np.unique(np.array(out))) <= {0, 300}
    labels[0, 0] = 70000
    Image.fromarray(labels, mode='I').save(str(tmp_path / 'pred' / '0.tif'))
    assert main(args + ['--overwrite']) == 1
    assert 'has labels from 0 to 70000; class indices must lie in [0, 65535]' in \
        capsys.readouterr().err


def test_refine_coco_image_errors_name_the_image_and_bad_options_come_first(
        files, tmp_path, capsys):
    import shutil
    _write_results(tmp_path / 'res.json')
    img_dir = tmp_path / 'img'
    shutil.copytree(files['img'], img_dir)
    first = sorted(img_dir.iterdir())[0]
    first.write_bytes(b'')  # image 0's file is empty
    args = _args(files, tmp_path / 'res.json', tmp_path / 'out.json')
    args[args.index('--img-dir') + 1] = str(img_dir)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"image_id 0 of {files['ann']}: image file {first} is empty (0 bytes)" in err, err
    assert main(_args(files, tmp_path / 'res.json', tmp_path / 'o2.json', '--steps', '9')) == 1
    err = capsys.readouterr().err
    assert err.count('steps must be in [1, 6], got 9') == 1, err
