"""Checks on command-line config overrides (``--cfg-options``) before they are merged."""
import difflib
from typing import Iterable, Optional


def check_option_keys(cfg, options: Optional[dict], what: str = '--cfg-options',
                      known: Iterable[str] = ()) -> None:
    """Refuse overrides whose top-level key the config does not have.

    mmengine's ``Config.merge_from_dict`` adds any new key, so a misspelt one
    (``trian_cfg.max_iters=1``) would be ignored without a word.

    Args:
        cfg (Config): The config the overrides go into.
        options (dict, optional): ``{dotted key: value}``.
        what (str): The option that gave them, for the message.
        known (Iterable[str]): Top-level keys that are valid although ``cfg`` lacks them
            (e.g. the Runner's arguments).

    Raises:
        KeyError: Naming the key and the closest valid ones.
    """
    valid = set(cfg.keys()) | set(known)
    for key in options or {}:
        head = key.split('.', 1)[0]
        if head not in valid:
            close = difflib.get_close_matches(head, sorted(valid), n=3)
            hint = f' (did you mean {" or ".join(close)}?)' if close else ''
            raise KeyError(f'{what} {key}: the config has no {head!r}{hint}')


def runner_keys() -> set:
    """Top-level keys mmengine's Runner reads although a config may lack them."""
    import inspect

    from mmengine.runner import Runner
    keys = set(inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'}
    return keys | {'custom_imports', 'runner_type', 'tta_model', 'tta_pipeline'}
