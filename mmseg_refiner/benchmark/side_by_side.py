"""Two refinement jobs side by side against one after the other, per OpenMP setting.

Each job is a fresh interpreter (``python -m mmseg_refiner.benchmark.side_by_side``) that
loads the refiner with the default threads, refines a synthetic frame once to warm up, then
``refines`` more times, and prints one JSON line. For each setting (environment variables such
as ``GOMP_SPINCOUNT=1000``; ``default`` = none of :data:`OPENMP_USER_KEYS`), the driver runs
two jobs one after the other and two started together, and reports both wall times and their
ratio (the fast-path goal: side by side not slower than one after the other).
"""
import argparse
import json
import logging
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from mmseg_refiner.benchmark.timing import check_positive
from mmseg_refiner.utils.hardware import OPENMP_SETTINGS, OPENMP_USER_KEYS


def parse_setting(text: str) -> Dict[str, str]:
    """``'default'`` -> ``{}``; ``'KEY=VALUE[,KEY=VALUE]'`` -> a dict of environment variables."""
    if text == 'default':
        return {}
    env = {}
    for item in text.split(','):
        key, sep, value = item.partition('=')
        if not sep or not key.strip():
            raise ValueError(f'setting {text!r}: expected default or KEY=VALUE[,KEY=VALUE], '
                             f'e.g. GOMP_SPINCOUNT=1000')
        env[key.strip()] = value.strip()
    return env


def job_command(config: Optional[str] = None, checkpoint: Optional[str] = None,
                device: str = 'cpu', refines: int = 3, size: Tuple[int, int] = (480, 854),
                threads: Optional[int] = None) -> List[str]:
    """The command line of one job (a new interpreter running :func:`job_main`)."""
    cmd = [
        sys.executable, '-m', 'mmseg_refiner.benchmark.side_by_side', '--device', device,
        '--refines',
        str(refines), '--size',
        str(size[0]),
        str(size[1])
    ]
    cmd += ['--config', config] if config else []
    cmd += ['--checkpoint', checkpoint] if checkpoint else []
    cmd += ['--threads', str(threads)] if threads else []
    return cmd


def _environment(setting: Dict[str, str]) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OPENMP_USER_KEYS}
    env.update(setting)
    return env


def _run_jobs(cmd: List[str], env: Dict[str, str], together: bool,
              jobs: int) -> Tuple[float, List[dict]]:
    """Wall seconds of ``jobs`` runs of ``cmd`` (started together or one by one), and theirs."""
    start, outs = time.perf_counter(), []
    if together:
        procs = [
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(jobs)
        ]
        outs = [p.communicate() + (p.returncode, ) for p in procs]
    else:
        for _ in range(jobs):
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            outs.append((p.stdout, p.stderr, p.returncode))
    wall = time.perf_counter() - start
    results = []
    for stdout, stderr, code in outs:
        if code != 0:
            raise RuntimeError(f'side-by-side job failed (exit {code}): {" ".join(cmd)}\n'
                               f'{stderr[-2000:]}')
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return wall, results


def side_by_side(settings: Sequence[str] = OPENMP_SETTINGS, jobs: int = 2,
                 **job_args) -> List[dict]:
    """One row per setting: wall seconds of ``jobs`` jobs one after the other and together.

    Args:
        settings (list[str]): ``default`` or ``KEY=VALUE[,KEY=VALUE]`` (:func:`parse_setting`).
        jobs (int): Jobs per group. Defaults to 2.
        **job_args: :func:`job_command`'s arguments (config, checkpoint, refines, size, ...).
    """
    parsed = [(s, parse_setting(s)) for s in settings]  # bad settings fail before any work
    check_positive(jobs=jobs, refines=job_args.get('refines', 1),
                   size=list(job_args.get('size', (1, 1))))
    cmd, rows = job_command(**job_args), []
    for name, setting in parsed:
        env = _environment(setting)
        seq_wall, seq = _run_jobs(cmd, env, False, jobs)
        par_wall, par = _run_jobs(cmd, env, True, jobs)
        rows.append(
            dict(setting=name, jobs=jobs, alone_refine_s=[r['refine_s']
                                                          for r in seq], sequential_s=seq_wall,
                 side_by_side_s=par_wall, side_by_side_refine_s=[r['refine_s'] for r in par],
                 ratio=par_wall / seq_wall, threads=seq[0]['threads']))
    return rows


def markdown(rows: List[dict], header: str, refines: int) -> str:
    """The table of :func:`side_by_side`'s rows under a machine line."""
    lines = [
        header, '', f'| OpenMP setting | job alone, {refines} refines (s) | jobs one after the '
        'other (s) | side by side (s) | side by side / one after the other |',
        '|---|---:|---:|---:|---:|'
    ]
    for r in rows:
        alone = ' / '.join(f'{s:.1f}' for s in r['alone_refine_s'])
        lines.append(f"| {r['setting']} | {alone} | {r['sequential_s']:.1f} | "
                     f"{r['side_by_side_s']:.1f} | {r['ratio']:.2f} |")
    return '\n'.join(lines) + '\n'


def job_main(argv: Optional[Sequence[str]] = None) -> int:
    """One job: load, warm up, time ``--refines`` refinements; print a JSON line."""
    from mmseg_refiner.cli.benchmark import POSITIVE
    p = argparse.ArgumentParser(description='one side-by-side benchmark job')
    p.add_argument('--config')
    p.add_argument('--checkpoint')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=POSITIVE)
    p.add_argument('--refines', type=POSITIVE, default=3)
    p.add_argument('--size', type=POSITIVE, nargs=2, default=[480, 854])
    args = p.parse_args(argv)
    start = time.perf_counter()

    from mmseg_refiner.apis import init_refiner, refine_mask
    from mmseg_refiner.benchmark.speed import synthetic_sample
    from mmseg_refiner.utils.hardware import keep_freed_memory_if_asked, setup_threads
    keep_freed_memory_if_asked()  # as the CLI (the OpenMP setting is the environment's as given)
    threads = setup_threads(args.threads, logger=logging.getLogger('side_by_side'))
    refiner = init_refiner(args.config, args.checkpoint, device=args.device)
    image, coarse = synthetic_sample(*args.size)
    refine_mask(refiner, image, coarse, seed=0)  # warm-up
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(args.refines):
        refine_mask(refiner, image, coarse, seed=i)
    print(json.dumps(dict(threads=threads, load_s=load_s, refine_s=time.perf_counter() - start)))
    return 0


if __name__ == '__main__':
    sys.exit(job_main())
