"""Argument helpers, file pairing and the resumable file loop shared by the subcommands.

Every subcommand that refines calls :func:`add_refiner_args` (the model, device, threads,
``--cfg-options`` and every field of :class:`~mmseg_refiner.apis.RefineOptions` as a flag)
and reads the options back with ``RefineOptions.from_args(args)``. Nothing here imports torch
at module import: values are checked when they are parsed.
"""
import argparse
import os
import os.path as osp
import re
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from mmseg_refiner.apis.options import RefineOptions
from mmseg_refiner.utils.io import IMAGE_EXTS, InputError

PATTERN_HELP = ('file name pattern with {id} for the shared part and * for any text, e.g. '
                "'{id}_im.jpg' (BIG / DIS naming); default: any image file, id = the name "
                'without extension')


# ---------------------------------------------------------------------- argument types
def arg_type(parse, name: str):
    """An argparse ``type`` that turns the ValueError of ``parse`` into a clean message."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


def int_at_least(low: int, high: Optional[int] = None):
    """str -> int in [low, high]; a ValueError names the range and the text."""
    span = f'>= {low}' if high is None else f'in [{low}, {high}]'

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f'expected an integer {span}, got {text!r}') from None
        if value < low or (high is not None and value > high):
            raise ValueError(f'expected an integer {span}, got {text!r}')
        return value

    return parse


def _option_parser(name: str, cli: dict):
    """str -> value of one RefineOptions field, checked (ValueError names the problem)."""
    convert = cli.get('type', str)

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise ValueError(f'expected {convert.__name__}, got {text!r}') from None
        RefineOptions.check(name, value)
        return value

    return parse


def _device(text: str) -> str:
    from mmseg_refiner.utils.hardware import resolve_device
    return resolve_device(text)  # DeviceError (a ValueError) names the available devices


def dilation_ratio(text: str) -> float:
    """``--dilation-ratio``: a fraction of the image diagonal in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not 0 < value < 1:  # NaN fails too
        raise argparse.ArgumentTypeError(f'expected a fraction of the diagonal in (0, 1), got '
                                         f'{text!r}')
    return value


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f'expected a number of threads >= 1, got {text!r}')
    return value


class _CfgOptionsAction(argparse.Action):
    """mmengine's ``DictAction`` (KEY=VALUE -> dict), imported only when the flag is used."""

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction
        action = DictAction(self.option_strings, self.dest, nargs=self.nargs)
        action(parser, namespace, values, option_string)


def error_text(exc: BaseException) -> str:
    """The message of ``exc`` for a one-line ``error:``: a KeyError's own text, without the
    quotes that ``str(KeyError(...))`` adds."""
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        return str(exc.args[0])
    return str(exc)


# ---------------------------------------------------------------------- Runner entry points
RUN_DEVICE_HELP = ('the whole run: auto (cuda when available, else cpu), cpu (hides the GPUs '
                   'from this process), cuda or cuda:<index> (only that GPU is visible) '
                   '(default: auto)')


def pin_run_device(prog: str, argv: Sequence[str]) -> str:
    """``--device`` of a script that runs mmengine's Runner (``tools/train.py``,
    ``tools/test.py``), pinned before anything picks a device.

    mmengine chooses CUDA-when-available once, when ``mmengine.device`` is imported, and
    torch counts the GPUs once: so ``--device`` (and ``--launcher``) are read from ``argv``
    ahead of the full parse, and :func:`~mmseg_refiner.utils.hardware.pin_device` sets
    ``CUDA_VISIBLE_DEVICES``. A device that does not exist, or ``cuda:<i>`` with a launcher
    (which gives each process the GPU of its ``LOCAL_RANK``), exits with status 2.

    Returns:
        str: The device the run will use ('cpu' or 'cuda').
    """
    from mmseg_refiner.utils.hardware import DeviceError, pin_device, resolve_device
    pre = argparse.ArgumentParser(add_help=False)  # abbreviations as the full parser's
    pre.add_argument('--device', default='auto')
    pre.add_argument('--launcher', default='none')
    known, _ = pre.parse_known_args(list(argv))
    try:
        if known.launcher != 'none' and ':' in known.device:
            raise DeviceError(f'--launcher {known.launcher} gives each process the GPU of its '
                              'LOCAL_RANK; choose the GPUs with CUDA_VISIBLE_DEVICES instead')
        return resolve_device(pin_device(known.device))
    except (DeviceError, RuntimeError) as exc:  # RuntimeError: mmengine already chose
        shown = f'--device {known.device}: ' if known.device.strip().lower() != 'cuda' else ''
        print(f'{prog}: error: {shown}{exc}', file=sys.stderr)
        sys.exit(2)


# ---------------------------------------------------------------------- arguments
def add_refine_options(parser, prefix: str = '', aliases: bool = False) -> None:
    """One flag per :class:`RefineOptions` field: ``--mode``, ``--steps``, ``--seed``,
    ``--no-guard``, ``--stop-thr``, ``--stop-criterion``, ``--autocast``, ``--compile``,
    ``--preset``, ``--batch-size``, ``--crop-size``.

    Args:
        parser: An argparse parser or argument group.
        prefix (str): Put before every flag and destination, e.g. ``'refiner-'`` for
            ``--refiner-steps`` (dest ``refiner_steps``; read with
            ``RefineOptions.from_args(args, prefix='refiner_')``). Defaults to ''.
        aliases (bool): With a prefix, also accept the flag without it. Defaults to False.
    """
    for name in RefineOptions.names():
        help_text, cli = RefineOptions.cli_spec(name)
        flag = cli.get('flag', name.replace('_', '-'))
        flags = [f'--{prefix}{flag}'] + ([f'--{flag}'] if aliases and prefix else [])
        dest = prefix.replace('-', '_') + name
        if cli.get('kind') == 'flag':
            parser.add_argument(*flags, dest=dest, action='store_const', const=cli['const'],
                                default=None, help=help_text)
        else:
            parser.add_argument(*flags, dest=dest, default=cli.get('cli_default'),
                                metavar=cli.get('metavar'), help=help_text,
                                type=arg_type(_option_parser(name, cli), name))


def add_runtime_args(parser, prefix: str = '', device_default: Optional[str] = 'auto') -> None:
    """``--device``, ``--threads``, ``--cfg-options`` and ``--trust-checkpoint`` (with
    ``prefix`` before each but ``--threads``, which is the process's)."""
    shown = device_default or "the model's"
    parser.add_argument(
        f'--{prefix}device', default=device_default, type=arg_type(_device, 'device'),
        help='torch device: auto (cuda when available, else cpu), cpu, cuda or '
        f'cuda:<index> (default: {shown})')
    parser.add_argument(
        '--threads', type=arg_type(_threads, 'threads'), default=None, metavar='N',
        help='CPU threads for torch and OpenCV (default: the cores '
        'this process may use; more are clamped with a warning)')
    parser.add_argument(
        f'--{prefix}cfg-options', nargs='+', action=_CfgOptionsAction, metavar='KEY=VALUE',
        help='override settings of the refiner config, '
        'keys are paths in the whole config, e.g. model.test_cfg.hr_size=1024')
    parser.add_argument(
        f'--{prefix}trust-checkpoint', action='store_true',
        help='load a checkpoint that holds more than tensors (full unpickling: '
        'it can run code, use only for files you trust)')


def add_refiner_args(parser) -> None:
    """Everything a refining subcommand needs: ``--config``, ``--checkpoint``, the runtime
    arguments (:func:`add_runtime_args`) and the refine options (:func:`add_refine_options`)."""
    group = parser.add_argument_group('refiner')
    group.add_argument('--config', help='refiner config (default: the shipped model)')
    group.add_argument('--checkpoint', help='refiner weights (default: the shipped model)')
    add_runtime_args(group)
    add_refine_options(
        parser.add_argument_group(
            'refine options',
            "unset: the refiner config's test_cfg (mmseg_refiner.apis.RefineOptions)"))


def arg(*flags: str, **kwargs) -> Tuple[tuple, dict]:
    """One ``parser.add_argument(*flags, **kwargs)`` call written as data (for
    :func:`add_refining_subcommand`)."""
    return flags, kwargs


OVERWRITE = arg('--overwrite', action='store_true', help='redo existing outputs')


def add_refining_subcommand(subparsers, name: str, run, help: str, description: str,
                            arguments: Sequence[Tuple[tuple, dict]]) -> argparse.ArgumentParser:
    """Add a subcommand that refines: its own ``arguments`` (made with :func:`arg`), then the
    refiner's (:func:`add_refiner_args`); running it calls ``run(args)``.

    Args:
        subparsers: The ``add_subparsers()`` object of the main parser.
        name (str): The subcommand, e.g. ``'refine-coco'``.
        run (callable): ``run(args) -> int`` exit status.
        help (str): One line for ``mmseg-refiner --help``.
        description (str): The subcommand's ``--help`` text.
        arguments (Sequence): ``arg(...)`` of its inputs, outputs and own switches, in order.

    Returns:
        argparse.ArgumentParser: The subcommand's parser.
    """
    parser = subparsers.add_parser(name, help=help, description=description)
    for flags, kwargs in arguments:
        parser.add_argument(*flags, **kwargs)
    add_refiner_args(parser)
    parser.set_defaults(func=run)
    return parser


def refine_options(args, prefix: str = '') -> RefineOptions:
    """The :class:`RefineOptions` of parsed arguments (see :func:`add_refine_options`)."""
    return RefineOptions.from_args(args, prefix)


def build_refiner(args):
    """Set the thread count, then build the refiner of ``--config`` / ``--checkpoint``."""
    from mmseg_refiner.apis import init_refiner
    from mmseg_refiner.utils.hardware import setup_threads
    setup_threads(args.threads)
    return init_refiner(args.config, args.checkpoint, device=args.device,
                        cfg_options=args.cfg_options, trust_checkpoint=args.trust_checkpoint)


# ---------------------------------------------------------------------- file pairing
def _pattern_regex(pattern: str, what: str):
    if pattern.count('{id}') != 1 or '/' in pattern:
        raise InputError(f'{what} {pattern!r} must hold {{id}} exactly once and no folder')
    parts = [re.escape(p).replace(r'\*', '.*') for p in pattern.split('{id}')]
    return re.compile(f'{parts[0]}(?P<id>.+?){parts[1]}')


def list_images(folder: str, pattern: Optional[str] = None,
                what: str = '--pattern') -> Dict[str, str]:
    """``{id: path}`` of the files in ``folder`` (non-recursive, sorted by name).

    Args:
        folder (str): The folder.
        pattern (str, optional): A file name with ``{id}`` for the shared part and ``*`` for
            any text, e.g. ``'{id}_im.jpg'``. ``None``: every image file (``IMAGE_EXTS``),
            id = the file name without extension.
        what (str): The option that gave ``pattern``, for the error. Defaults to '--pattern'.

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
        InputError: ``pattern`` matches no file in ``folder``, or two files share an id
            without a pattern (``x.png`` and ``x.jpg``; with a pattern's ``*``, the first file
            by name wins).
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(
            f'{folder} is a file, not a folder' if osp.exists(folder) else f'not found: {folder}')
    names = [f for f in sorted(os.listdir(folder)) if not f.startswith('.')]
    regex, found = (_pattern_regex(pattern, what) if pattern else None), {}
    for f in names:
        if regex is None:
            file_id = osp.splitext(f)[0] if f.lower().endswith(IMAGE_EXTS) else None
        else:
            match = regex.fullmatch(f)
            file_id = match['id'] if match else None
        if file_id is None:
            continue
        if file_id in found and regex is not None:
            continue  # a wildcard pattern ('{id}_*.png'): the first file by name wins
        if file_id in found:
            raise InputError(f'{folder} has two files for the id {file_id!r}: '
                             f'{osp.basename(found[file_id])} and {f}; move one away or tell '
                             f'them apart with {what}')
        found[file_id] = osp.join(folder, f)
    if regex is not None and not found:
        raise InputError(f'no file in {folder} matches {what} {pattern!r}')
    return found


def _file_id(path: str, pattern: Optional[str], what: str) -> str:
    match = _pattern_regex(pattern, what).fullmatch(osp.basename(path)) if pattern else None
    return match['id'] if match else osp.splitext(osp.basename(path))[0]


def pair_files(paths: Dict[str, str],
               patterns: Optional[Dict[str, Optional[str]]] = None) -> Tuple[list, dict]:
    """Pair the files of several folders (or several single files) by id.

    The first entry of ``paths`` leads: every id found there is looked up in the others.

    Args:
        paths (dict): ``{key: folder}`` (or ``{key: file}`` for one pair), e.g.
            ``{'image': 'imgs/', 'mask': 'masks/'}``.
        patterns (dict, optional): ``{key: file name pattern}`` (see :func:`list_images`);
            a missing key or ``None``: any image file, id = the name without extension.

    Returns:
        tuple: ``([{'name': id, key: path, ...}] for the ids found under every key,
        {key: [ids of the first folder with no file under key]})``.

    Raises:
        FileNotFoundError: A path does not exist, or files and folders are mixed.
        InputError: A pattern matches nothing.
    """
    patterns = {k: (patterns or {}).get(k) for k in paths}
    flags = {k: f'--{k}-pattern' for k in paths}
    for key, path in paths.items():
        if not osp.exists(path):
            raise FileNotFoundError(f'{key} not found: {path}')
    if any(osp.isfile(p) for p in paths.values()):
        for key, path in paths.items():
            if not osp.isfile(path):
                raise FileNotFoundError(f'{key} {path} is a folder while another input is a '
                                        'file: give files only or folders only')
        lead = next(iter(paths))
        name = _file_id(paths[lead], patterns[lead], flags[lead])
        return [dict(name=name, **paths)], {k: [] for k in paths}
    files = {k: list_images(p, patterns[k], flags[k]) for k, p in paths.items()}
    lead = next(iter(paths))
    common = [i for i in files[lead] if all(i in files[k] for k in files)]
    pairs = [dict(name=i, **{k: files[k][i] for k in files}) for i in common]
    missing = {k: [i for i in files[lead] if i not in files[k]] for k in files}
    return pairs, missing


def pair_by_stem(a: str, b: str, a_name: str, b_name: str, a_pattern: Optional[str] = None,
                 b_pattern: Optional[str] = None) -> Tuple[List[tuple], List[str]]:
    """Pair files of two folders (or two files) by id (:func:`pair_files`).

    Returns ``([(id, a_path, b_path)], [ids only in a])``; raises when nothing pairs.
    """
    pairs, missing = pair_files({a_name: a, b_name: b}, {a_name: a_pattern, b_name: b_pattern})
    if not pairs:
        raise FileNotFoundError(f'no {a_name} in {a} has a {b_name} of the same name in {b}')
    return [(p['name'], p[a_name], p[b_name]) for p in pairs], missing[b_name]


def read_json(path: str, what: str):
    """Parse a json file; errors name ``what`` and the file."""
    import json
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as exc:
        raise InputError(f'{what} {path} is not valid json: {exc}') from exc


# ---------------------------------------------------------------------- the file loop
def check_output_folder(out: str, inputs: Sequence[str]) -> None:
    """Refuse an output folder that is a file, or that holds input files (outputs written
    there would replace inputs, or existing inputs would pass for finished outputs).

    Raises:
        InputError: Naming the folder and the problem.
    """
    from mmseg_refiner.utils.io import check_output_dir
    check_output_dir(out, '--out')
    real = osp.realpath(out)
    for path in inputs:
        if osp.dirname(osp.realpath(path)) == real:
            raise InputError(f'--out {out} holds the input file {path}: outputs written there '
                             'would replace or be mistaken for inputs; choose another folder')


def run_over_pairs(args, pairs, unpaired, is_done, refine_one, desc: str, noun: str,
                   unpaired_msg: str) -> int:
    """The resumable loop of the file-refining subcommands.

    Skips pairs whose outputs exist (``is_done(stem)``) unless ``args.overwrite``, builds the
    refiner once, shows a progress bar, reports a failing pair with its name and goes on.

    Returns:
        int: exit status, 1 if any pair failed.
    """
    from tqdm import tqdm
    check_output_folder(args.out, [path for pair in pairs for path in pair[1:]])
    for stem in unpaired:
        print(unpaired_msg.format(stem=stem), file=sys.stderr)
    todo = [p for p in pairs if args.overwrite or not is_done(p[0])]
    if len(todo) < len(pairs):
        print(f'{len(pairs) - len(todo)} of {len(pairs)} already done in {args.out}, skipped')
    if not todo:
        return 0
    refiner = build_refiner(args)
    from mmseg_refiner.apis import check_options
    check_options(refiner, refine_options(args))  # one error for a bad option, not one per file
    failed, start = [], time.perf_counter()
    quiet = len(todo) < 2
    for stem, first, second in tqdm(todo, desc=desc, unit='img', file=sys.stdout, disable=quiet):
        try:
            refine_one(refiner, stem, first, second, args)
        except (ValueError, OSError) as exc:  # InputError is a ValueError
            failed.append(stem)
            print(f'error: {stem} ({first}, {second}): {exc}', file=sys.stderr)
    print(f'refined {len(todo) - len(failed)} {noun} in '
          f'{time.perf_counter() - start:.1f} s -> {args.out}')
    return 1 if failed else 0
