"""``mmseg-refiner`` command line: one subcommand per module of this package.

Each module listed in ``SUBCOMMANDS`` exposes ``add_parser(subparsers)`` (which sets ``func``).
Building the parser imports those modules only: they keep torch, mmengine and the models
inside the functions that run a command, so ``mmseg-refiner --help`` (and a typo in an
option) answers without loading the stack. ``tests/test_imports.py`` checks it.
"""
import argparse
import importlib
import sys

from mmseg_refiner.version import __version__

SUBCOMMANDS = ('refine', 'evaluate', 'benchmark', 'refine_coco', 'refine_semantic')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='mmseg-refiner',
        description='SegRefiner mask refinement for OpenMMLab (mmdet / mmseg) and plain files.')
    parser.add_argument('--version', action='version', version=f'mmseg_refiner {__version__}')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f'mmseg_refiner.cli.{name}')
        except ModuleNotFoundError as exc:
            if exc.name != f'mmseg_refiner.cli.{name}':
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    from mmseg_refiner.utils.hardware import DeviceError, prepare_process
    prepare_process()  # before torch loads: OpenMP waiting, malloc (utils/hardware.py)
    from mmseg_refiner.cli.common import error_text
    from mmseg_refiner.utils.io import InputError
    from mmseg_refiner.utils.stack_warnings import filter_stack_warnings

    filter_stack_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, 'func', None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DeviceError as exc:  # a usage error, like argparse's
        print(f'mmseg-refiner {args.command}: error: {exc}', file=sys.stderr)
        return 2
    except (InputError, FileNotFoundError, KeyError, ValueError) as exc:
        print(f'mmseg-refiner {args.command}: error: {error_text(exc)}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
