"""Refiner benchmarks: ``python tools/benchmark.py speed|quality ...`` (``--help`` for options).

Same as ``mmseg-refiner benchmark``; the code lives in :mod:`mmseg_refiner.benchmark`.
"""
import sys

from mmseg_refiner.benchmark import main

if __name__ == '__main__':
    sys.exit(main())
