"""One seeded random generator per key: the package's only recipe for reproducible draws.

``keyed_generator(seed, 'GenerateCoarseMask', 'people/0001', 3)`` is a
``np.random.Generator`` that depends on its parts alone: integers are used as they are,
strings by their CRC-32, so the same key gives the same stream in any process, in any
order, on any machine. Training transforms
(:mod:`mmseg_refiner.datasets.transforms.rng`), the offline coarse masks
(``tools/make_coarse.py``) and the benchmark's coarse kinds all draw from it.
"""
import zlib
from typing import Union

import numpy as np


def key_entropy(*parts: Union[int, str]) -> list:
    """The parts as non-negative integers: ints as they are, strings by their CRC-32."""
    entropy = []
    for part in parts:
        if isinstance(part, str):
            entropy.append(zlib.crc32(part.encode('utf-8')))
        elif isinstance(part, (int, np.integer)) and part >= 0:
            entropy.append(int(part))
        else:
            raise ValueError(f'key parts must be non-negative ints or strings, got {part!r}')
    return entropy


def keyed_generator(*parts: Union[int, str]) -> np.random.Generator:
    """A ``np.random.Generator`` seeded from ``parts`` (see the module docstring)."""
    return np.random.default_rng(key_entropy(*parts))
