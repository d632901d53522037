"""Named refinement settings ("variants") compared by the quality benchmark.

A variant is a set of :class:`~mmseg_refiner.apis.RefineOptions` for one cached run. Names:
``guarded`` / ``unguarded`` / ``[unguarded-]adaptive-[coarse-|change-]THR`` (see
:func:`parse_variant`), or generic ``key=value`` pairs joined by ``,``, e.g.
``preset=reference``, ``autocast=fp32``, ``guard=off``, ``stop_thr=0.4,stop_criterion=change``.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

STOP_CRITERIA = ('coarse', 'change')
DEFAULT_VARIANT = 'guarded'
# 'guarded' | 'unguarded' | ['guarded-' | 'unguarded-'] 'adaptive-' ['coarse-' | 'change-'] THR
_VARIANT_RE = re.compile(r'(?P<alone>guarded|unguarded)'
                         r'|(?:(?P<guard>guarded|unguarded)-)?adaptive-'
                         r'(?:(?P<criterion>coarse|change)-)?(?P<thr>\d*\.?\d+)')
_WORDS = {'on': True, 'true': True, 'off': False, 'false': False, 'none': None}
# options a variant may not set: they are the sweep's axes or identify the run
_NOT_VARIANT_KEYS = ('mode', 'steps', 'seed')


@dataclass(frozen=True)
class Variant:
    """A named refinement setting of the quality benchmark (see :func:`parse_variant`).

    Attributes:
        name (str): The name it was parsed from (shown in the reports).
        guard (bool, optional): Growth guard on (the config's guard options, else
            ``DEFAULT_GUARD``) or off; None (a generic variant without ``guard=``): on,
            unless :meth:`RefineOptions.resolve` turns it off (``preset=reference``).
        stop_thr (float): Adaptive stopping threshold in [0, 1]; 0 = the fixed schedule.
        stop_criterion (str): 'coarse' (share of pixels still coarse) or 'change' (share
            changed by the last step); see :meth:`DiffusionRefiner.refine_batch`.
        options (dict): Further :class:`RefineOptions` (``preset``, ``autocast``, ...) of a
            generic ``key=value`` variant. Defaults to none.
    """
    name: str
    guard: Optional[bool] = True
    stop_thr: float = 0.0
    stop_criterion: str = 'coarse'
    options: Dict[str, object] = field(default_factory=dict, compare=False, hash=False)


def _named_variant(name: str) -> Variant:
    match = _VARIANT_RE.fullmatch(str(name))
    if match is None:
        raise ValueError(f'unknown benchmark variant {name!r}: use guarded, unguarded, '
                         '[unguarded-]adaptive-[coarse-|change-]THR (e.g. adaptive-change-0.01) '
                         'or KEY=VALUE[,KEY=VALUE] of the refine options (e.g. preset=reference)')
    if match['alone']:
        return Variant(name, guard=match['alone'] == 'guarded')
    thr = float(match['thr'])
    if thr > 1:
        raise ValueError(f'variant {name!r}: the stop threshold is a share of pixels and must '
                         f'be in [0, 1], got {thr}')
    return Variant(name, guard=match['guard'] != 'unguarded', stop_thr=thr,
                   stop_criterion=match['criterion'] or 'coarse')


def _option_value(key: str, text: str):
    """The value of ``key=text``, checked by :class:`RefineOptions` (ValueError if bad)."""
    from mmseg_refiner.apis.options import RefineOptions
    if key not in RefineOptions.names() or key in _NOT_VARIANT_KEYS:
        valid = [n for n in RefineOptions.names() if n not in _NOT_VARIANT_KEYS]
        raise ValueError(f'unknown variant option {key!r}; valid: {valid}')
    word = text.strip().lower()
    if word in _WORDS:
        value = _WORDS[word]
    else:
        convert = RefineOptions.cli_spec(key)[1].get('type', str)
        try:
            value = convert(text)
        except ValueError:
            raise ValueError(f'variant option {key}={text!r}: expected '
                             f'{convert.__name__}') from None
    if value is not None and not (key == 'guard' and value is True):
        RefineOptions.check(key, value)
    return value


def _generic_variant(name: str) -> Variant:
    options = {}
    for part in name.split(','):
        key, sep, text = part.partition('=')
        if not sep or not key.strip():
            raise ValueError(f'benchmark variant {name!r}: expected KEY=VALUE pairs joined by '
                             f'",", got {part!r}')
        options[key.strip()] = _option_value(key.strip(), text)
    guard = options.pop('guard', None)  # None: not given
    stop_thr = options.pop('stop_thr', None) or 0.0
    criterion = options.pop('stop_criterion', None) or 'coarse'
    return Variant(name, guard=guard, stop_thr=float(stop_thr), stop_criterion=criterion,
                   options=options)


def parse_variant(name: str) -> Variant:
    """Parse a variant name into (guard, stop threshold, stop criterion, other options).

    Syntax: ``guarded`` (guard on, fixed schedule: the default), ``unguarded`` (guard off,
    fixed schedule: the reference behaviour), or
    ``[guarded-|unguarded-]adaptive-[coarse-|change-]THR``: adaptive stopping at threshold
    ``THR`` (a decimal number in [0, 1]), guard on unless ``unguarded-`` is given, criterion
    'coarse' unless ``change-`` is given. Examples: ``adaptive-0.45``,
    ``adaptive-change-0.01``, ``unguarded-adaptive-0.45``. ``adaptive-0`` runs the fixed
    schedule exactly (and shares its cached results with ``guarded``). The 'coarse' share is
    bounded below by the schedule (at least ~84/68/52/36/20 % of the pixels are still coarse
    after 1-5 calls), so only its thresholds above those values stop early; the 'change'
    share after the first call is at most 0.16 x the share the refiner would change, so
    small 'change' thresholds stop after one call (docs/guard_and_adaptive.md).

    Generic: ``KEY=VALUE[,KEY=VALUE...]`` with the fields of :class:`RefineOptions` except
    mode, steps and seed (``on``/``off``/``none`` for booleans and None), e.g.
    ``preset=reference``, ``autocast=fp32``, ``guard=off``. The guard is on unless
    ``guard=off`` is given or, as in :meth:`RefineOptions.resolve`, the variant sets
    ``preset=reference`` without ``guard=``.

    Raises:
        ValueError: ``name`` does not follow the syntax, or a value is not valid.
    """
    if '=' in str(name):
        return _generic_variant(str(name))
    return _named_variant(name)


def unique_variants(variants: Sequence) -> List[Variant]:
    """Parse names (Variant objects pass through), dropping repeated names."""
    unique = {}
    for v in variants:
        v = v if isinstance(v, Variant) else parse_variant(v)
        unique.setdefault(v.name, v)
    return list(unique.values())
