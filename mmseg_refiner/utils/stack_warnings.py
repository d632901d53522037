"""Quiet the OpenMMLab stack's known, harmless warnings in this project's own entry points.

The command line (``mmseg-refiner``) and ``tools/*.py`` call :func:`filter_stack_warnings` when
they start; importing the package never does, so a host process that imports the plugin
sees every warning it saw before. Each filter matches one message from one module: a new
warning, or a known message from elsewhere, still shows.
"""
import logging
import warnings

# (message regex, category, regex of the module the warning is attributed to).
# setuptools >= 81 warns when pkg_resources is imported; mmengine imports it to resolve
# ``mmdet::`` / ``mmseg::`` config bases (and reloads it, which attributes the warning to
# importlib).
KNOWN_WARNINGS = ((r'pkg_resources is deprecated as an API', UserWarning,
                   r'(mmengine\.utils\.package_utils|importlib)$'), )

# Deprecation notices mmengine writes through its logger (not the warnings module) every time
# a Runner's CheckpointHook starts: nothing a user of this project can act on.
KNOWN_LOG_MESSAGES = (
    '"FileClient" will be deprecated in future.',
    '"HardDiskBackend" is the alias of "LocalBackend"',
)


class _KnownLogMessages(logging.Filter):
    """Drops the WARNING records of :data:`KNOWN_LOG_MESSAGES`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and
                    record.getMessage().startswith(KNOWN_LOG_MESSAGES))


def filter_stack_warnings(logger: logging.Logger = None) -> None:
    """Ignore :data:`KNOWN_WARNINGS` (and :data:`KNOWN_LOG_MESSAGES` on ``logger``).

    Args:
        logger (logging.Logger, optional): A logger to filter as well, e.g. ``runner.logger``
            (mmengine's ``print_log(logger='current')`` writes to the newest Runner's).
            Defaults to None.
    """
    for message, category, module in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category, module=module)
    if logger is not None and not any(isinstance(f, _KnownLogMessages) for f in logger.filters):
        logger.addFilter(_KnownLogMessages())
