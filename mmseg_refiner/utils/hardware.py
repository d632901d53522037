"""What the machine at hand offers: devices, native bfloat16, threads; process set-up.

Every entry point (the CLI, ``tools/test.py``, the hook, the benchmark) resolves its
``--device`` and ``--threads`` here, so the choices and their error messages are the same
everywhere. torch is imported inside the functions: importing this module stays cheap.
"""
import functools
import logging
import os
import re
from typing import List, Optional

# CPU feature flags (Linux /proc/cpuinfo) that mean bf16 matmul/conv run natively:
# AVX512-BF16 (Intel Cooper Lake+, AMD Zen 4+), AMX-BF16 (Intel Sapphire Rapids+), Arm BF16.
BF16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16', 'bf16')

_threads_set = None  # the count setup_threads applied last (logged once per change)

# GNU OpenMP (torch's thread pool on Linux) lets an idle thread spin 300,000 times before it
# sleeps. Two processes on the same cores (two CLI jobs, a test run next to a training run)
# then spin on the cores the other needs. Measured (docs/fast_path.md, 2-core AMD EPYC): two
# refine jobs side by side took 1.53x as long as the same jobs one after the other; with a
# spin count of 1,000 they take 0.77-0.85x; a job alone costs 0-20 % more (two runs), fully
# passive waiting (OMP_WAIT_POLICY=PASSIVE) 16 %. Entry points apply this before torch
# is imported (libgomp reads it once, when it loads); OMP_WAIT_POLICY or GOMP_SPINCOUNT in
# the environment means the user chose, and nothing is set.
OPENMP_ENV = {'GOMP_SPINCOUNT': '1000'}
OPENMP_USER_KEYS = ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')
# The settings `mmseg-refiner benchmark side-by-side` compares by default.
OPENMP_SETTINGS = ('default', 'GOMP_SPINCOUNT=1000', 'OMP_WAIT_POLICY=PASSIVE')

# glibc malloc serves blocks above its mmap threshold (128 KiB, adapting up to 32 MiB) with a
# fresh mmap and returns freed memory above its trim threshold to the kernel, so every U-Net
# call pays page faults to zero its activations again. Raising both keeps freed activations
# in the heap for the next call: measured on the shipped U-Net at 384x384 (docs/fast_path.md,
# 2-core AMD EPYC) 0.42-0.44 -> 0.38-0.39 s per bf16 forward, 0.82-0.83 -> 0.69-0.72 s fp32.
# The price is memory when shapes vary: 40 refinements of random 300-1200 px images peaked at
# 3.1 instead of 2.0 GB RSS (2.7 instead of 1.1 GB held) for no speed gain. So it is opt-in:
# KEEP_FREED_MEMORY_ENV=1, or keep_freed_memory() in your own process. Both thresholds must be
# set together: a trim threshold alone pins the mmap threshold at 128 KiB (slower than glibc's
# default). mallopt(3) parameter numbers:
M_MMAP_THRESHOLD, M_TRIM_THRESHOLD = -3, -1
MALLOC_OPTIONS = {M_MMAP_THRESHOLD: 256 << 20, M_TRIM_THRESHOLD: 256 << 20}
# Older glibc refuses an mmap threshold above 32 MiB (its adaptive maximum on 64-bit).
MALLOC_MMAP_FALLBACK = 32 << 20
# The user chose the allocator or its settings: leave it.
MALLOC_USER_KEYS = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_',
                    'MALLOC_MMAP_MAX_')
OTHER_ALLOCATORS = ('jemalloc', 'tcmalloc', 'mimalloc')

KEEP_FREED_MEMORY_ENV = 'MMSEG_REFINER_KEEP_FREED_MEMORY'

_malloc_kept = False  # keep_freed_memory has applied MALLOC_OPTIONS in this process


class DeviceError(ValueError):
    """A requested device does not exist on this machine (the message lists those that do)."""


def available_devices() -> List[str]:
    """``['cpu']`` plus ``'cuda'`` and ``'cuda:<i>'`` for every visible GPU."""
    import torch
    devices = ['cpu']
    if torch.cuda.is_available():
        devices += ['cuda'] + [f'cuda:{i}' for i in range(torch.cuda.device_count())]
    return devices


def _device_name(device: Optional[str], hint: str = '') -> str:
    """``device`` normalised ('auto' for None), or DeviceError (``hint`` ends the message)."""
    name = 'auto' if device is None else str(device).strip().lower()
    if not re.fullmatch(r'auto|cpu|cuda(:\d+)?', name):
        raise DeviceError(f'unknown device {device!r}: use auto, cpu, cuda or cuda:<index>{hint}')
    return name


def resolve_device(device: Optional[str] = 'auto') -> str:
    """The torch device string to use for ``device``.

    Args:
        device (str, optional): 'auto' or None (``'cuda'`` when available, else ``'cpu'``),
            'cpu', 'cuda' or 'cuda:<index>'. Defaults to 'auto'.

    Returns:
        str: A device that exists, e.g. 'cpu' or 'cuda:1'.

    Raises:
        DeviceError: ``device`` is malformed or not available; the message lists the
            available devices.
    """
    available = available_devices()
    name = _device_name(device, f'; available here: {", ".join(available)}')
    if name == 'auto':
        return 'cuda' if 'cuda' in available else 'cpu'
    if name not in available:
        raise DeviceError(f'device {device!r} is not available; available here: '
                          f'{", ".join(available)}')
    return name


def pin_device(device: Optional[str], environ=None) -> str:
    """Make a framework that takes "CUDA when available" (mmengine's Runner) use ``device``.

    ``'cpu'`` hides every GPU from this process (``CUDA_VISIBLE_DEVICES=''``), ``'cuda:<i>'``
    shows only GPU ``i`` (counted within an existing ``CUDA_VISIBLE_DEVICES``); ``'auto'``,
    ``None`` and ``'cuda'`` change nothing. Call it before torch initialises CUDA and before
    ``mmengine.device`` is imported (it picks the device once, at import); then check the
    returned name with :func:`resolve_device`.

    Args:
        device (str, optional): 'auto', 'cpu', 'cuda' or 'cuda:<index>'.
        environ (dict, optional): The environment to update. Defaults to ``os.environ``.

    Returns:
        str: The device as the process will see it: 'auto', 'cpu' or 'cuda'.

    Raises:
        DeviceError: ``device`` is malformed, or names a GPU that ``CUDA_VISIBLE_DEVICES``
            does not show.
        RuntimeError: Too late: ``mmengine.device`` is already imported.
    """
    import sys
    environ = os.environ if environ is None else environ
    name = _device_name(device)  # no availability here: that would initialise CUDA
    if name in ('auto', 'cuda'):
        return name
    if 'mmengine.device' in sys.modules:
        raise RuntimeError(f'device {device!r} must be chosen before mmengine is imported '
                           '(it picks its device once, at import)')
    if name == 'cpu':
        environ['CUDA_VISIBLE_DEVICES'] = ''
        return 'cpu'
    index = int(name.split(':')[1])
    visible = environ.get('CUDA_VISIBLE_DEVICES')
    if visible is None:
        environ['CUDA_VISIBLE_DEVICES'] = str(index)
        return 'cuda'
    ids = [v.strip() for v in visible.split(',') if v.strip()]
    if index >= len(ids):
        raise DeviceError(f'device {device!r} is not available: CUDA_VISIBLE_DEVICES='
                          f'{visible!r} shows {len(ids)} GPU(s)')
    environ['CUDA_VISIBLE_DEVICES'] = ids[index]
    return 'cuda'


@functools.lru_cache(maxsize=None)
def _cpu_flags() -> frozenset:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where it does not exist)."""
    try:
        with open('/proc/cpuinfo') as f:
            text = f.read()
    except OSError:
        return frozenset()
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(':')
        if key.strip().lower() in ('flags', 'features'):  # x86: flags, Arm: Features
            flags.update(value.split())
    return frozenset(flags)


def _torch_cpu_capability() -> str:
    """torch's dispatch level for vectorized CPU kernels, e.g. 'AVX512' or 'AMX'."""
    import torch
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return ''


def native_bf16(device: str = 'cpu') -> bool:
    """Whether bfloat16 matmuls and convolutions run natively (fast) on ``device``.

    On CPU: one of :data:`BF16_CPU_FLAGS` in ``/proc/cpuinfo``, or torch reports an AMX
    dispatch level. Elsewhere (AVX2, AVX512 without BF16) bf16 is emulated and slower than
    fp32. On CUDA: ``torch.cuda.is_bf16_supported()`` (Ampere and newer).

    Args:
        device (str | torch.device): The device. Defaults to 'cpu'.
    """
    import torch
    dev = torch.device(device)
    if dev.type == 'cuda':
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if dev.type != 'cpu':
        return False
    return bool(_cpu_flags() & set(BF16_CPU_FLAGS)) or 'AMX' in _torch_cpu_capability()


def cpu_model() -> str:
    """The CPU model line (``model name`` of ``/proc/cpuinfo``, else the platform's)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine() or 'unknown CPU'


def usable_cores() -> int:
    """Cores this process may run on (``os.sched_getaffinity``, else ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def calm_openmp(environ=None) -> bool:
    """Make idle OpenMP threads sleep soon instead of spin (:data:`OPENMP_ENV`), if possible.

    Call it first thing in an entry point. It sets nothing when the environment already has
    one of :data:`OPENMP_USER_KEYS` (the user's choice), or once torch is imported (libgomp
    reads them when it loads).

    Args:
        environ (dict, optional): The environment to update. Defaults to ``os.environ``.

    Returns:
        bool: True if the variables are in effect for the torch this process will import.
    """
    import sys
    environ = os.environ if environ is None else environ
    if 'torch' not in sys.modules and not any(k in environ for k in OPENMP_USER_KEYS):
        environ.update(OPENMP_ENV)
    return all(environ.get(k) == v for k, v in OPENMP_ENV.items())


@functools.lru_cache(maxsize=None)
def _glibc():
    """The running C library if it is glibc (it has ``mallopt``), else None."""
    import ctypes
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        return libc if hasattr(libc, 'mallopt') else None
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl, Windows)
        return None


def malloc_user_choice(environ=None) -> Optional[str]:
    """What in the environment already chose the allocator's behaviour, or None."""
    environ = os.environ if environ is None else environ
    for key in MALLOC_USER_KEYS:
        if key in environ:
            return f'{key}={environ[key]}'
    if 'glibc.malloc.' in environ.get('GLIBC_TUNABLES', ''):
        return 'GLIBC_TUNABLES=' + environ['GLIBC_TUNABLES']
    preload = environ.get('LD_PRELOAD', '')
    if any(name in preload for name in OTHER_ALLOCATORS):
        return f'LD_PRELOAD={preload}'
    return None


def keep_freed_memory(environ=None, libc=None) -> bool:
    """Keep freed tensor memory in the process for reuse (glibc :data:`MALLOC_OPTIONS`).

    Works at any time (``mallopt`` acts on the running allocator), also inside a host
    framework's process. Speeds up repeated U-Net calls of the same shapes by 1.1-1.2x, but
    holds more memory when shapes vary (see :data:`MALLOC_OPTIONS`): the entry points and the
    hook call it only when ``MMSEG_REFINER_KEEP_FREED_MEMORY=1``
    (:func:`keep_freed_memory_if_asked`). It sets nothing when the environment already chose
    (:func:`malloc_user_choice`: glibc's ``MALLOC_*_`` variables or tunables,
    jemalloc/tcmalloc/mimalloc preloaded) or the C library is not glibc.

    Args:
        environ (dict, optional): The environment to read. Defaults to ``os.environ``.
        libc (optional): The C library to configure (tests pass a fake). Defaults to the
            running glibc.

    Returns:
        bool: True if the options are in effect in this process.
    """
    global _malloc_kept
    if _malloc_kept and libc is None:
        return True
    if malloc_user_choice(environ):
        return False
    real = libc is None
    libc = _glibc() if real else libc
    if libc is None:
        return False
    # the mmap threshold first: a trim threshold alone would pin it at 128 KiB
    applied = any(
        libc.mallopt(M_MMAP_THRESHOLD, value) == 1
        for value in (MALLOC_OPTIONS[M_MMAP_THRESHOLD], MALLOC_MMAP_FALLBACK))
    applied = applied and libc.mallopt(M_TRIM_THRESHOLD, MALLOC_OPTIONS[M_TRIM_THRESHOLD]) == 1
    if real:
        _malloc_kept = _malloc_kept or applied
    return applied


def malloc_state() -> str:
    """How this process's allocator treats freed memory, in words (for logs and reports)."""
    if _malloc_kept:
        return 'freed memory kept'
    return malloc_user_choice() or ('glibc default' if _glibc() else 'not glibc')


def keep_freed_memory_if_asked(environ=None) -> bool:
    """:func:`keep_freed_memory` when ``MMSEG_REFINER_KEEP_FREED_MEMORY=1`` is set."""
    environ = os.environ if environ is None else environ
    return environ.get(KEEP_FREED_MEMORY_ENV) == '1' and keep_freed_memory(environ)


def prepare_process() -> None:
    """What every entry point does first, before torch loads.

    :func:`calm_openmp` (idle OpenMP threads sleep soon: side-by-side jobs) and, when asked,
    :func:`keep_freed_memory` (:func:`keep_freed_memory_if_asked`).
    """
    calm_openmp()
    keep_freed_memory_if_asked()


def setup_threads(threads: Optional[int] = None, logger: Optional[logging.Logger] = None,
                  opencv: bool = True) -> int:
    """Set the torch and OpenCV thread counts once, and say so in one log line.

    Args:
        threads (int, optional): Threads to use; None = the cores this process may use
            (:func:`usable_cores`). More than that is clamped, with a warning.
        logger (logging.Logger, optional): Where the line goes; None = mmengine's current
            logger. Defaults to None.
        opencv (bool): Also set OpenCV's threads. False leaves them to the caller (the
            training Runner sets them from ``env_cfg.mp_cfg.opencv_num_threads``).
            Defaults to True.

    Returns:
        int: The thread count applied.

    Raises:
        ValueError: ``threads`` is 0 or negative.
    """
    global _threads_set
    import torch
    cores = usable_cores()
    log = logger or _default_logger()
    if threads is None:
        threads = cores
    threads = int(threads)
    if threads <= 0:
        raise ValueError(f'threads must be a positive number, got {threads} '
                         f'(this process may use {cores} cores)')
    if threads > cores:
        log.warning(f'threads={threads} is more than the {cores} cores this process may use: '
                    f'using {cores} (more threads than cores only oversubscribes them)')
        threads = cores
    torch.set_num_threads(threads)
    if opencv:
        try:
            import cv2
            cv2.setNumThreads(threads)
        except ImportError:
            pass
    if _threads_set != threads:
        wait = ', '.join(f'{k}={os.environ[k]}' for k in OPENMP_USER_KEYS if k in os.environ)
        log.info(f'threads: {threads} ({"torch and OpenCV" if opencv else "torch"}; {cores} '
                 f'cores usable; OpenMP waiting: {wait or "default"}; malloc: '
                 f'{malloc_state()})')
        _threads_set = threads
    return threads


def _default_logger() -> logging.Logger:
    try:
        from mmengine.logging import MMLogger
        return MMLogger.get_current_instance()
    except ImportError:
        return logging.getLogger('mmseg_refiner')
