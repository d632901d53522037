"""Tests of mmseg_refiner.utils.hardware: devices, native bf16 detection, threads."""
import logging

import pytest
import torch

from mmseg_refiner.utils import hardware
from mmseg_refiner.utils.hardware import DeviceError, native_bf16, resolve_device, setup_threads


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)


@pytest.mark.parametrize('given', ['auto', None, 'AUTO', ' auto '])
def test_auto_is_cpu_without_cuda(no_cuda, given):
    assert resolve_device(given) == 'cpu'


def test_auto_is_cuda_when_available(two_gpus):
    assert resolve_device('auto') == 'cuda'
    assert resolve_device('cuda:1') == 'cuda:1'
    assert resolve_device('CPU') == 'cpu'


def test_cuda_without_cuda_names_the_available_devices(no_cuda):
    with pytest.raises(DeviceError, match=r"'cuda' is not available; available here: cpu"):
        resolve_device('cuda')
    assert issubclass(DeviceError, ValueError)


@pytest.mark.parametrize('bad', ['gpu', 'cuda:x', 'cuda1', 'tpu:0', ''])
def test_malformed_device_is_a_clear_error(no_cuda, bad):
    with pytest.raises(DeviceError, match='unknown device .* use auto, cpu, cuda'):
        resolve_device(bad)


def test_missing_gpu_index(two_gpus):
    with pytest.raises(
            DeviceError, match="'cuda:2' is not available; available here: "
            'cpu, cuda, cuda:0, cuda:1'):
        resolve_device('cuda:2')


@pytest.mark.parametrize(
    'flags, capability, expected',
    [
        ({'avx512f', 'avx512_bf16'}, 'AVX512', True),
        ({'amx_bf16', 'amx_tile'}, 'AVX512', True),
        ({'fp', 'asimd', 'bf16'}, 'DEFAULT', True),  # Arm with BF16
        ({'avx2', 'avx512f', 'avx512bw'}, 'AVX512', False),  # AVX-512 without BF16: emulated
        (set(), 'AMX', True),  # no /proc/cpuinfo, torch says AMX
        (set(), 'AVX2', False),
    ])
def test_native_bf16_on_cpu(monkeypatch, flags, capability, expected):
    monkeypatch.setattr(hardware, '_cpu_flags', lambda: frozenset(flags))
    monkeypatch.setattr(hardware, '_torch_cpu_capability', lambda: capability)
    assert native_bf16('cpu') is expected
    assert native_bf16(torch.device('cpu')) is expected


def test_native_bf16_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda: False)
    assert native_bf16('cuda') is False
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda: True)
    assert native_bf16('cuda:0') is True


def test_cpu_flags_parse_proc_cpuinfo():
    flags = hardware._cpu_flags()
    assert isinstance(flags, frozenset)  # empty where /proc/cpuinfo does not exist


@pytest.fixture
def threads_restored():
    before = torch.get_num_threads()
    hardware._threads_set = None
    yield
    torch.set_num_threads(before)
    hardware._threads_set = None


def test_setup_threads_defaults_to_usable_cores(monkeypatch, threads_restored, caplog):
    monkeypatch.setattr(hardware, 'usable_cores', lambda: 1)
    logger = logging.getLogger('test_hardware')
    with caplog.at_level(logging.INFO, logger='test_hardware'):
        assert setup_threads(logger=logger) == 1
        assert setup_threads(1, logger=logger) == 1  # same count: not logged again
    assert torch.get_num_threads() == 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert lines[0].startswith('threads: 1 (torch and OpenCV; 1 cores usable; OpenMP waiting: ')


def test_setup_threads_can_leave_opencv_alone(monkeypatch, threads_restored, caplog):
    import cv2
    monkeypatch.setattr(hardware, 'usable_cores', lambda: 2)
    before = cv2.getNumThreads()
    logger = logging.getLogger('test_hardware')
    try:
        cv2.setNumThreads(1)
        with caplog.at_level(logging.INFO, logger='test_hardware'):
            assert setup_threads(2, logger=logger, opencv=False) == 2
        assert cv2.getNumThreads() == 1 and torch.get_num_threads() == 2
        setup_threads(2, logger=logger)
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith('threads: 2 (torch; 2 cores usable; ')


def test_setup_threads_clamps_with_a_warning(monkeypatch, threads_restored, caplog):
    monkeypatch.setattr(hardware, 'usable_cores', lambda: 1)
    logger = logging.getLogger('test_hardware')
    with caplog.at_level(logging.INFO, logger='test_hardware'):
        assert setup_threads(64, logger=logger) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and 'threads=64 is more than the 1 cores' in warnings[0]


@pytest.mark.parametrize('bad', [0, -2])
def test_setup_threads_rejects_non_positive(threads_restored, bad):
    with pytest.raises(ValueError, match=f'threads must be a positive number, got {bad}'):
        setup_threads(bad)


def test_setup_threads_sets_opencv_too(monkeypatch, threads_restored):
    cv2 = pytest.importorskip('cv2')
    monkeypatch.setattr(hardware, 'usable_cores', lambda: 1)
    before = cv2.getNumThreads()
    try:
        setup_threads(1, logger=logging.getLogger('test_hardware'))
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


def test_cpu_model_line_is_text():
    assert isinstance(hardware.cpu_model(), str) and hardware.cpu_model()


def _fresh_python(code, env=None):
    """Run ``code`` in a new interpreter (torch not imported yet) and return its stdout."""
    import os
    import subprocess
    import sys
    full = {k: v for k, v in os.environ.items() if k not in hardware.OPENMP_USER_KEYS}
    full.update(env or {})
    out = subprocess.run([sys.executable, '-c', code], env=full, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


SHOW_OPENMP = ('import os; print(*(os.environ.get(k, "-") for k in ("OMP_WAIT_POLICY", '
               '"GOMP_SPINCOUNT")))')


def test_calm_openmp_shortens_spinning_before_torch_loads():
    code = ('from mmseg_refiner.utils.hardware import calm_openmp; print(calm_openmp()); ' +
            SHOW_OPENMP)
    assert _fresh_python(code) == ['True', '-', '1000']
    # the user's choice wins: nothing is set
    assert _fresh_python(code, dict(OMP_WAIT_POLICY='ACTIVE')) == ['False', 'ACTIVE', '-']
    assert _fresh_python(code, dict(GOMP_SPINCOUNT='5')) == ['False', '-', '5']


def test_calm_openmp_is_a_no_op_once_torch_is_imported():
    code = ('import torch; from mmseg_refiner.utils.hardware import calm_openmp; '
            'print(calm_openmp()); ' + SHOW_OPENMP)
    assert _fresh_python(code) == ['False', '-', '-']


def test_cli_applies_it_before_torch():
    code = ('import sys; from mmseg_refiner.cli import main\n'
            'try:\n    main(["--help"])\nexcept SystemExit:\n    pass\n'
            'print("torch" in sys.modules)\n' + SHOW_OPENMP)
    assert _fresh_python(code)[-3:] == ['False', '-', '1000']


class FakeLibc:
    """Records mallopt calls; answers ``ok`` (1 = accepted, as glibc)."""

    def __init__(self, ok=1, max_mmap=None):
        self.calls, self.ok, self.max_mmap = [], ok, max_mmap

    def mallopt(self, param, value):
        self.calls.append((param, value))
        if param == hardware.M_MMAP_THRESHOLD and self.max_mmap and value > self.max_mmap:
            return 0
        return self.ok


def test_keep_freed_memory_raises_both_glibc_thresholds():
    libc = FakeLibc()
    assert hardware.keep_freed_memory(environ={}, libc=libc)
    # both thresholds, together: a trim threshold alone pins glibc's mmap threshold low
    assert sorted(libc.calls) == sorted(hardware.MALLOC_OPTIONS.items())
    assert {p for p, _ in libc.calls} == {-3, -1}  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    assert all(v >= 64 << 20 for _, v in libc.calls)
    # glibc refusing a value: not in effect, and no trim threshold alone
    refusing = FakeLibc(ok=0)
    assert not hardware.keep_freed_memory(environ={}, libc=refusing)
    assert all(p == hardware.M_MMAP_THRESHOLD for p, _ in refusing.calls)
    # older glibc: mmap threshold at most 32 MiB, then the trim threshold
    old = FakeLibc(max_mmap=32 << 20)
    assert hardware.keep_freed_memory(environ={}, libc=old)
    assert old.calls == [(-3, 256 << 20), (-3, 32 << 20), (-1, 256 << 20)]


@pytest.mark.parametrize('environ', [
    dict(MALLOC_TRIM_THRESHOLD_='0'),
    dict(MALLOC_MMAP_THRESHOLD_='131072'),
    dict(GLIBC_TUNABLES='glibc.malloc.trim_threshold=0'),
    dict(LD_PRELOAD='/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'),
])
def test_keep_freed_memory_leaves_the_users_allocator_choice(environ):
    libc = FakeLibc()
    assert not hardware.keep_freed_memory(environ=environ, libc=libc)
    assert libc.calls == []
    assert hardware.malloc_user_choice(environ).startswith(next(iter(environ)))
    assert hardware.malloc_user_choice(dict(GLIBC_TUNABLES='glibc.cpu.x=1')) is None


def test_entry_points_keep_freed_memory_only_when_asked_and_the_log_says_so():
    if hardware._glibc() is None:
        pytest.skip('not glibc: there is no mallopt to call')
    log = ('import logging, sys; from mmseg_refiner.utils import hardware as h\n'
           'logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")\n'
           'print("kept:", h._malloc_kept); h.setup_threads(1, logging.getLogger("t"))\n')
    # a fresh interpreter, as the CLI starts
    cli = ('from mmseg_refiner.cli import main\n'
           'try:\n    main(["--help"])\nexcept SystemExit:\n    pass\n')
    asked = {hardware.KEEP_FREED_MEMORY_ENV: '1', 'LD_PRELOAD': ''}
    out = ' '.join(_fresh_python(cli + log, asked))
    assert 'kept: True' in out and 'malloc: freed memory kept' in out
    # not asked (the default: more memory held when image sizes vary): nothing changes
    out = ' '.join(_fresh_python(cli + log,
                                 {hardware.KEEP_FREED_MEMORY_ENV: '', 'LD_PRELOAD': ''}))
    assert 'kept: False' in out and 'malloc: glibc default' in out
    assert not hardware.keep_freed_memory_if_asked({})


def test_pin_device_hides_or_selects_gpus_before_mmengine_picks_one(monkeypatch):
    import sys
    monkeypatch.delitem(sys.modules, 'mmengine.device', raising=False)
    env = {}
    assert hardware.pin_device('cpu', env) == 'cpu' and env == {'CUDA_VISIBLE_DEVICES': ''}
    env = {}
    assert hardware.pin_device('cuda:1', env) == 'cuda' and env == {'CUDA_VISIBLE_DEVICES': '1'}
    env = {'CUDA_VISIBLE_DEVICES': '4,6'}  # counted within what is visible already
    assert hardware.pin_device(' CUDA:1 ', env) == 'cuda' and env['CUDA_VISIBLE_DEVICES'] == '6'
    for device in ('auto', None, 'cuda'):
        env = {}
        assert hardware.pin_device(device, env) == (device or 'auto') and env == {}
    with pytest.raises(DeviceError, match="CUDA_VISIBLE_DEVICES='4,6' shows 2 GPU"):
        hardware.pin_device('cuda:2', {'CUDA_VISIBLE_DEVICES': '4,6'})
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        hardware.pin_device('gpu', {})


def test_pin_device_after_mmengine_chose_is_an_error(monkeypatch):
    import sys
    import types
    monkeypatch.setitem(sys.modules, 'mmengine.device', types.ModuleType('mmengine.device'))
    with pytest.raises(RuntimeError, match='before mmengine is imported'):
        hardware.pin_device('cpu', {})
    assert hardware.pin_device('auto', {}) == 'auto'  # nothing to pin: fine at any time
