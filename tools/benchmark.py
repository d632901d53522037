"""Refiner benchmarks: ``python tools/benchmark.py speed|quality ...`` (``--help`` for options).

Same as ``mmseg-refiner benchmark``; the code lives in :mod:`mmseg_refiner.benchmark`, the
arguments in :mod:`mmseg_refiner.cli.benchmark`.
"""
import sys

from mmseg_refiner.cli.benchmark import main
from mmseg_refiner.utils.stack_warnings import filter_stack_warnings

if __name__ == '__main__':
    filter_stack_warnings()
    sys.exit(main())
