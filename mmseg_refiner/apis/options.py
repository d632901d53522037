"""RefineOptions: the inference options of every entry point, defined once.

The API functions (``refine_mask(..., options=...)``), the command line (one flag per field,
built by :func:`mmseg_refiner.cli.common.add_refine_options`), :class:`SegRefinerHook`
(``refine_options=dict(...)``) and ``tools/test.py`` (``--refiner-*``) all read this
dataclass. A field's ``metadata`` holds its help text, its command-line spelling and its
check, so a new option is one field here plus the code that uses it.

``None`` means "the refiner config's ``test_cfg``": :meth:`RefineOptions.resolve` returns
``{**test_cfg, **given options}``, the ``cfg`` dict that travels to the strategies and to
:meth:`DiffusionRefiner.refine_batch` (``refiner.test_cfg`` itself is never changed).

Example::

    opts = RefineOptions(preset='reference', steps=4)
    refine_mask(refiner, image, mask, options=opts, seed=0)
    refine_mask(refiner, image, mask, preset='reference', steps=4, seed=0)  # the same
"""
import dataclasses
import importlib
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

StepsType = Union[None, int, List[int]]


def _check_choice(name: str, where: str) -> Callable[[Any], None]:
    """A check against the tuple of valid values at ``where`` ('module:NAME'), imported when
    a value is checked, not at module import (``mmseg-refiner --help`` stays light)."""

    def check(value) -> None:
        module, attr = where.split(':')
        valid = tuple(getattr(importlib.import_module(module), attr))
        if value not in valid:
            raise ValueError(f'{name} must be one of {valid}, got {value!r}')

    return check


def _check_int(name: str, low: int, high: Optional[int] = None) -> Callable[[Any], None]:

    def check(value) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low \
                or (high is not None and value > high):
            span = f'>= {low}' if high is None else f'in [{low}, {high}]'
            raise ValueError(f'{name} must be an integer {span}, got {value!r}')

    return check


def _plain(value):
    """numpy scalars (``np.int64(2)``) and lists of them as Python numbers."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.tolist() if hasattr(value, 'tolist') and hasattr(value, 'dtype') else value


def _check_steps(value) -> None:
    steps = [value] if isinstance(value, numbers.Integral) else value
    if not isinstance(steps, (list, tuple)) or not steps or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in steps):
        raise ValueError(f'steps must be an integer or a list of timesteps, got {value!r}')
    if isinstance(value, numbers.Integral) and value < 1:
        raise ValueError(f'steps must be >= 1, got {value}')


def _check_share(name: str) -> Callable[[Any], None]:

    def check(value) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                not 0 <= value <= 1:
            raise ValueError(f'{name} must be a share in [0, 1], got {value!r}')

    return check


def _check_guard(value) -> None:
    from mmseg_refiner.inference.guard import resolve_guard
    try:
        resolve_guard(value)
    except (KeyError, TypeError) as exc:
        raise ValueError(f'guard: {exc}') from None


def _check_bool(name: str) -> Callable[[Any], None]:

    def check(value) -> None:
        if not isinstance(value, bool):
            raise ValueError(f'{name} must be True or False, got {value!r}')

    return check


def _option(default, help: str, check: Callable, cfg_key: bool = True, **cli) -> Any:
    """A dataclass field with its documentation and command line.

    Args:
        default: The field's default (``None``: the config's ``test_cfg`` value).
        help (str): One sentence for ``--help`` and the docs.
        check (callable): ``check(value)`` raises ValueError naming the problem.
        cfg_key (bool): The field is a ``test_cfg`` key (``mode`` and ``seed`` are not).
        **cli: The command line: ``kind`` ('value', 'flag' (a switch that sets ``const``)),
            ``type`` (str -> value), ``metavar``, ``flag`` (the option name without the
            leading ``--``, default the field name with dashes), ``const``, ``cli_default`` (the
            command line's default when it differs from the API's).
    """
    return field(default=default, metadata=dict(help=help, check=check, cfg_key=cfg_key, cli=cli))


@dataclass
class RefineOptions:
    """Inference options of :func:`refine_mask`, :func:`refine_masks` and
    :func:`refine_label_map` (and every command line, hook and script built on them).

    Every field but ``mode`` and ``seed`` is a key of the refiner's ``test_cfg``
    (:data:`mmseg_refiner.models.refiner.DEFAULT_TEST_CFG`); ``None`` keeps the config's value.

    Attributes:
        mode (str): Strategy: 'auto' (``hr`` for objects longer than ``test_cfg.hr_size``,
            else ``instance``), 'instance', 'global' or 'hr'. Defaults to 'auto'.
        steps (None | int | list[int]): Reverse timesteps: n = the last n of T, or an explicit
            descending list. Defaults to None (``test_cfg.steps``, all T).
        seed (int, optional): Seed of the sampling noise; None is not reproducible.
        guard (None | bool | dict): Growth guard (:mod:`mmseg_refiner.inference.guard`):
            True, False (off, the reference behaviour) or a dict of its options.
        stop_thr (float, optional): Adaptive stopping threshold in [0, 1]; 0 = the fixed
            schedule.
        stop_criterion (str, optional): What ``stop_thr`` measures: 'coarse' (share of
            pixels still coarse and disputed) or 'change' (share changed by the last step).
        autocast (str, optional): U-Net precision: 'auto', 'fp32' (exact), 'bf16', 'fp16'.
        compile (bool, optional): ``torch.compile`` the U-Net (slow first call).
        preset (str, optional): 'default' or 'reference' (the paper's inference; it turns
            the growth guard off unless ``guard`` is given).
        batch_size (int, optional): Crops per U-Net call.
        crop_size (int, optional): Working resolution of the U-Net (px).
    """
    mode: str = _option(
        'auto', 'inference strategy: auto (hr for objects longer than test_cfg.hr_size, else '
        'instance), instance, global or hr (default: auto)',
        _check_choice('mode', 'mmseg_refiner.inference.strategies:MODES'), cfg_key=False,
        metavar='MODE')
    steps: StepsType = _option(
        None, "reverse steps, the last N of the T timesteps (default: the config's, all T)",
        _check_steps, type=int, metavar='N')
    seed: Optional[int] = _option(None, 'seed of the sampling noise (default: 0)',
                                  _check_int('seed', 0, 2**63 - 1), cfg_key=False, type=int,
                                  metavar='N', cli_default=0)
    guard: Union[None, bool, dict] = _option(
        None, 'turn the growth guard off (the reference behaviour: changes anywhere, new '
        'detached regions allowed)', _check_guard, kind='flag', flag='no-guard', const=False)
    stop_thr: Optional[float] = _option(
        None, "adaptive stopping: stop a mask once the share of pixels still coarse (or "
        "changed by the last step, see --stop-criterion) is below FLOAT; 0 = the full fixed "
        "schedule (default: the config's test_cfg.stop_thr, 0)", _check_share('stop_thr'),
        type=float, metavar='FLOAT')
    stop_criterion: Optional[str] = _option(
        None, "what --stop-thr measures: coarse (pixels still coarse and disputed) or change "
        "(pixels changed by the last step) (default: the config's, coarse)",
        _check_choice('stop_criterion', 'mmseg_refiner.models.refiner:STOP_CRITERIA'),
        metavar='NAME')
    autocast: Optional[str] = _option(
        None, "U-Net precision: auto (bf16 where the CPU/GPU has it natively), fp32 (exact), "
        "bf16 or fp16 (default: the config's, auto)",
        _check_choice('autocast', 'mmseg_refiner.models.refiner:AUTOCAST_MODES'), metavar='NAME')
    compile: Optional[bool] = _option(
        None, 'torch.compile the U-Net: faster bulk runs after a slow first call',
        _check_bool('compile'), kind='flag', const=True)
    preset: Optional[str] = _option(
        None, "default or reference (the paper's inference, growth guard off) "
        "(default: the config's, default)",
        _check_choice('preset', 'mmseg_refiner.inference.strategies:PRESETS'), metavar='NAME')
    batch_size: Optional[int] = _option(None, "crops per U-Net call (default: the config's)",
                                        _check_int('batch_size', 1), type=int, metavar='N')
    crop_size: Optional[int] = _option(
        None, "working resolution of the U-Net in px, 16-2048 and a multiple of the model's "
        "downsampling (16 for the shipped one) (default: the config's)",
        _check_int('crop_size', 16, 2048), type=int, metavar='PX')

    def __post_init__(self):
        for f in fields(self):  # np.int64(2) works like 2 everywhere downstream
            setattr(self, f.name, _plain(getattr(self, f.name)))

    # ------------------------------------------------------------------ construction
    @classmethod
    def names(cls) -> List[str]:
        """The option names, in field order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, options: Optional[dict]) -> 'RefineOptions':
        """Options from a dict (as written in configs); unknown keys are an error."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(cls.names()))
        if unknown:
            raise ValueError(f'unknown refine option(s) {unknown}; valid: {cls.names()}')
        return cls(**options)

    @classmethod
    def from_args(cls, args, prefix: str = '') -> 'RefineOptions':
        """Options from an argparse namespace built with
        :func:`mmseg_refiner.cli.common.add_refine_options` (same ``prefix``)."""
        given = {f.name: getattr(args, prefix + f.name, None) for f in fields(cls)}
        return cls(**{k: v for k, v in given.items() if v is not None})

    @classmethod
    def coerce(cls, options: Union[None, dict, 'RefineOptions']) -> 'RefineOptions':
        """``None`` / a dict / RefineOptions -> RefineOptions."""
        if options is None or isinstance(options, dict):
            return cls.from_dict(options)
        if isinstance(options, cls):
            return options
        raise TypeError(f'options must be a RefineOptions or a dict, got {type(options)}')

    def merged(self, **overrides) -> 'RefineOptions':
        """A copy with the ``overrides`` that are not None (unknown names: TypeError)."""
        unknown = sorted(set(overrides) - set(self.names()))
        if unknown:
            raise TypeError(f'unknown refine option(s) {unknown}; valid: {self.names()}')
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> Dict[str, Any]:
        """The options that are set (not None), e.g. for a hook config or a cache header."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self) if getattr(self, f.name) is not None
        }

    # ------------------------------------------------------------------ use
    def validate(self) -> 'RefineOptions':
        """Check every option that is set; raises ValueError naming the option."""
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                f.metadata['check'](value)
        return self

    def resolve(self, test_cfg: dict) -> dict:
        """The effective inference config: ``test_cfg`` with the options that are set.

        With ``preset='reference'`` (given here or in ``test_cfg``) the growth guard is off
        unless ``guard`` is given here or the config changed ``test_cfg.guard``.

        Args:
            test_cfg (dict): The refiner's ``test_cfg`` (not modified).

        Returns:
            dict: A new dict with the keys of ``test_cfg``.

        Raises:
            ValueError: An option (given, or the config's value) is not valid.
        """
        self.validate()
        cfg = dict(test_cfg)
        cfg.update({
            f.name: getattr(self, f.name)
            for f in fields(self) if f.metadata['cfg_key'] and getattr(self, f.name) is not None
        })
        for f in fields(self):  # the config's own values are checked alike
            if f.metadata['cfg_key'] and cfg.get(f.name) is not None:
                f.metadata['check'](cfg[f.name])
        if cfg.get('preset') == 'reference' and self.guard is None and \
                cfg.get('guard') is True:
            cfg['guard'] = None
        return cfg

    @staticmethod
    def cli_spec(name: str) -> Tuple[str, dict]:
        """``(help, command-line settings)`` of a field (see :func:`_option`)."""
        meta = {f.name: f.metadata for f in fields(RefineOptions)}[name]
        return meta['help'], dict(meta['cli'])

    @staticmethod
    def check(name: str, value) -> None:
        """Validate one option value (ValueError naming the option)."""
        {f.name: f.metadata for f in fields(RefineOptions)}[name]['check'](value)
