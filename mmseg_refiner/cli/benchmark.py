"""``mmseg-refiner benchmark speed|quality``: the same code as ``tools/benchmark.py``."""


def add_parser(subparsers) -> None:
    from mmseg_refiner import benchmark
    p = subparsers.add_parser(
        'benchmark', help='speed (U-Net, end to end, memory) and quality (coarse vs refined)',
        description=benchmark.__doc__)
    benchmark.add_arguments(p)
    p.set_defaults(func=benchmark.run)
