"""Reports of the benchmarks: Markdown tables, JSON, plots."""
import json
from typing import List, Optional, Sequence, Tuple

from mmseg_refiner.evaluation import METRIC_NAMES as METRICS
from mmseg_refiner.evaluation import WORSE_POINTS
from mmseg_refiner.utils.io import atomic_write

MARKERS = 'osD^vP*X<>'


def markdown_table(rows: List[dict], columns: Sequence[Tuple[str, str, str]]) -> str:
    """A Markdown table of ``rows``; ``columns`` are (key, header, format spec)."""
    lines = [
        '| ' + ' | '.join(h for _, h, _ in columns) + ' |',
        '|' + '|'.join('---' if f == '' else '---:' for _, _, f in columns) + '|'
    ]
    for row in rows:
        cells = [format(row[k], f) if row.get(k) is not None else '' for k, _, f in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def quality_markdown(rows: List[dict], title: str) -> str:
    """Markdown of the quality summary: coarse only, or before -> after per variant and steps."""
    if 'steps' not in rows[0]:
        cols = [('kind', 'coarse kind', ''), ('num_images', 'images', 'd'),
                ('coarse_IoU', 'IoU', '.2f'), ('coarse_mBA', 'mBA', '.2f'),
                ('coarse_BIoU', 'BIoU', '.2f')]
    else:
        cols = [('kind', 'coarse kind', ''), ('variant', 'variant', ''), ('steps', 'steps', 'd')]
        cols += [('path', 'path', '')] if any('path' in r for r in rows) else []
        cols += [('num_images', 'images', 'd')]
        for m in METRICS:
            cols += [(f'coarse_{m}', f'{m} before', '.2f'), (m, f'{m} after', '.2f'),
                     (f'delta_{m}', f'Δ{m}', '+.2f')]
        cols += [('worse_2pt_share', f'worse >{WORSE_POINTS:g} IoU pts', '.1%'),
                 ('mean_unet_calls', 'U-Net calls', '.1f'), ('mean_seconds', 's / image', '.2f')]
    return f'### {title}\n\n{markdown_table(rows, cols)}\n'


UNET_COLUMNS = [('size', 'size', 'd'), ('batch', 'batch', 'd'), ('dtype', 'variant', ''),
                ('gflop', 'GFLOP / fwd', '.2f'), ('ms', 'ms / fwd', '.1f'),
                ('ms_per_sample', 'ms / sample', '.1f'), ('gflops_per_s', 'GFLOP/s', '.1f'),
                ('conv_share', 'of conv3x3 peak', '.0%'), ('matmul_ratio', 'of matmul', '.0%'),
                ('compile_s', 'compile s', '.0f'), ('peak_rss_mb', 'peak RSS MiB', '.0f'),
                ('peak_cuda_mb', 'peak CUDA MiB', '.0f')]
E2E_COLUMNS = [('mode', 'mode', ''), ('width', 'W', 'd'), ('height', 'H', 'd'),
               ('ms', 'end-to-end ms', '.1f'), ('unet_calls', 'U-Net calls', '.1f'),
               ('unet_samples', 'U-Net samples', '.1f'),
               ('unet_ms_in_run', 'U-Net ms (in run)', '.1f'),
               ('calls_x_unet_ms', 'calls x U-Net ms', '.1f'),
               ('e2e_ratio', 'end-to-end / (calls x U-Net)', '.2f'),
               ('overhead_ms', 'overhead ms', '.1f')]
TRAIN_COLUMNS = [('variant', 'variant', ''), ('batch', 'batch', 'd'), ('size', 'size', 'd'),
                 ('ms', 'ms / step', '.0f'), ('samples_per_s', 'samples/s', '.2f'),
                 ('peak_rss_mb', 'peak RSS MiB', '.0f')]


def peaks_markdown(matmul: dict, conv: dict) -> str:
    """Matmul 2048² and conv3x3 rates (GFLOP/s) per dtype and layout."""
    rows = [dict(op='matmul 2048²', dtype=d, layout='', rate=r) for d, r in matmul.items()]
    rows += [
        dict(op='conv3x3 64ch 192²', dtype=d, layout=layout, rate=r)
        for d, by_layout in conv.items() for layout, r in by_layout.items()
    ]
    cols = [('op', 'op', ''), ('dtype', 'dtype', ''), ('layout', 'layout', ''),
            ('rate', 'GFLOP/s', '.1f')]
    return f'### Peaks\n\n{markdown_table(rows, cols)}\n'


def speed_markdown(unet_rows: List[dict], e2e_rows: List[dict],
                   train_rows: Optional[List[dict]] = None, header: str = '',
                   peaks: str = '') -> str:
    """The speed report: machine line, peaks, U-Net, end to end, training."""
    out = f'{header}\n\n' if header else ''
    out += f'{peaks}\n' if peaks else ''
    if unet_rows:
        out += f'### U-Net forward\n\n{markdown_table(unet_rows, UNET_COLUMNS)}\n'
    if e2e_rows:
        out += f'\n### End to end (refine_mask)\n\n{markdown_table(e2e_rows, E2E_COLUMNS)}\n'
    if train_rows:
        out += f'\n### Training steps\n\n{markdown_table(train_rows, TRAIN_COLUMNS)}\n'
    return out


def machine_line(device, threads: int) -> str:
    """``CPU: <model>, N threads, native bf16, malloc, torch X`` (plus the GPU on CUDA)."""
    import torch

    from mmseg_refiner.utils.hardware import cpu_model, malloc_state, native_bf16
    line = (f'CPU: {cpu_model()}, {threads} threads, native bf16: '
            f'{"yes" if native_bf16("cpu") else "no"}, malloc: {malloc_state()}, '
            f'torch {torch.__version__}')
    if str(device).startswith('cuda'):
        line += f'; GPU: {torch.cuda.get_device_name(torch.device(device))}'
    return line


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save_figure(fig, path: str, title: str) -> None:
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100, format='png')
    _pyplot().close(fig)


def plot_quality_vs_steps(rows: List[dict], path: str, title: str = '') -> None:
    """PNG: IoU / mBA / BIoU after refinement vs steps, one line per kind (colour) and
    variant (marker), coarse dashed."""
    fig, axes = _pyplot().subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.2))
    variants = list(dict.fromkeys(r['variant'] for r in rows))
    for ax, m in zip(axes, METRICS):
        for i, kind in enumerate(dict.fromkeys(r['kind'] for r in rows)):
            for j, variant in enumerate(variants):
                kr = sorted((r for r in rows if r['kind'] == kind and r['variant'] == variant),
                            key=lambda r: r['steps'])
                label = kind if len(variants) == 1 else f'{kind} / {variant}'
                ax.plot([r['steps'] for r in kr], [r[m] for r in kr], color=f'C{i}',
                        marker=MARKERS[j % len(MARKERS)], ls='-', label=label)
            ax.axhline(kr[0][f'coarse_{m}'], color=f'C{i}', ls='--', lw=1)
        ax.set_xlabel('reverse steps')
        ax.set_ylabel(f'{m} (%)')
        ax.grid(alpha=0.3)
    axes[0].legend(title='coarse kind (dashed: input)', fontsize=7)
    _save_figure(fig, path, title)


def _plot_calls_panel(ax, rows: List[dict], kind: str, metric: str, variants: list) -> None:
    for j, variant in enumerate(variants):
        vr = sorted((r for r in rows if r['kind'] == kind and r['variant'] == variant),
                    key=lambda r: r['mean_unet_calls'])
        xs, ys = [r['mean_unet_calls'] for r in vr], [r[metric] for r in vr]
        ax.plot(xs, ys, color=f'C{j}', marker=MARKERS[j % len(MARKERS)], label=variant)
        for x, y, r in zip(xs, ys, vr):
            ax.annotate(str(r['steps']), (x, y), xytext=(3, 3), fontsize=7,
                        textcoords='offset points')
    ax.axhline(vr[0][f'coarse_{metric}'], color='grey', ls='--', lw=1)
    ax.set(title=kind, xlabel='mean U-Net calls per mask', ylabel=f'{metric} (%)')
    ax.grid(alpha=0.3)


def plot_quality_vs_calls(rows: List[dict], path: str, title: str = '') -> None:
    """PNG: mean IoU and mBA vs mean U-Net calls per mask, one row of panels per kind.

    One marker per (variant, steps): a variant's step counts are joined by a line and
    labelled with their steps; the coarse input is the dashed grey line.
    """
    kinds = list(dict.fromkeys(r['kind'] for r in rows))
    variants = list(dict.fromkeys(r['variant'] for r in rows))
    fig, axes = _pyplot().subplots(len(kinds), 2, figsize=(9, 3.2 * len(kinds)), squeeze=False)
    for axrow, kind in zip(axes, kinds):
        for ax, m in zip(axrow, ('IoU', 'mBA')):
            _plot_calls_panel(ax, rows, kind, m, variants)
    axes[0][0].legend(title='variant (labels: steps)', fontsize=7)
    _save_figure(fig, path, title)


def write_text(text: str, path: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path) as tmp, open(tmp, 'w') as f:
        f.write(text)


def write_json(obj, path: str) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(json.dumps(obj, indent=2), path)
