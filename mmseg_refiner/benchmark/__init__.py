"""Speed and quality benchmarks of a refiner (``mmseg-refiner benchmark``, ``tools/benchmark.py``).

* :mod:`.speed`: matmul and conv3x3 peaks (fp32 / bf16, NCHW / channels_last), U-Net forward
  per size, batch and variant (fp32, bf16, bf16 channels_last, compiled) as GFLOP/s and as a
  share of the matching conv peak, end-to-end ``refine_mask`` time against (U-Net calls x
  U-Net time), peak memory; :mod:`.training`: training samples/s.
* :mod:`.quality`: coarse masks of three kinds (:mod:`.coarse`) refined per variant
  (:mod:`.variants`) and step count, scored, cached, resumable.
* :mod:`.side_by_side`: two refine jobs (new processes) side by side against one after the
  other, per OpenMP waiting setting.
* :mod:`.data`: the training data pipeline of a config, per part and transform, set against
  the training step (do data-loader workers starve the U-Net, or take its cores?).
* :mod:`.report`: Markdown tables, JSON and plots. Arguments: :mod:`mmseg_refiner.cli.benchmark`.

Every name of the former single module ``mmseg_refiner/benchmark.py`` is importable from here.
"""
from mmseg_refiner.cli.benchmark import add_arguments, main, run, run_quality, run_speed
from mmseg_refiner.evaluation import METRIC_NAMES as METRICS
from mmseg_refiner.evaluation import WORSE_POINTS
from mmseg_refiner.utils.io import IMAGE_EXTS  # noqa: F401  (former public name)

from .coarse import COARSE_KINDS, LOWRES_FACTOR, PERTURB_IOU, POLYGON_EPS, make_coarse
from .quality import QualityRun, ResultCache, list_pairs, refined_means
from .report import (MARKERS, markdown_table, plot_quality_vs_calls, plot_quality_vs_steps,
                     quality_markdown, speed_markdown)
from .speed import (UNET_VARIANTS, add_peak_shares, conv_rate, end_to_end_speed, matmul_rate,
                    synthetic_sample, unet_speed)
from .timing import UNetCallCounter, count_flops, peak_memory_mb, time_call
from .training import TRAIN_VARIANTS, train_speed
from .variants import DEFAULT_VARIANT, STOP_CRITERIA, Variant, parse_variant, unique_variants

_unique_variants = unique_variants  # former private names, used by older scripts
_refined_means = refined_means

__all__ = [
    'COARSE_KINDS', 'LOWRES_FACTOR', 'POLYGON_EPS', 'PERTURB_IOU', 'METRICS', 'WORSE_POINTS',
    'IMAGE_EXTS', 'make_coarse', 'UNetCallCounter', 'peak_memory_mb', 'time_call', 'count_flops',
    'unet_speed', 'matmul_rate', 'conv_rate', 'add_peak_shares', 'UNET_VARIANTS',
    'synthetic_sample', 'end_to_end_speed', 'TRAIN_VARIANTS', 'train_speed', 'list_pairs',
    'ResultCache', 'QualityRun', 'refined_means', 'STOP_CRITERIA', 'DEFAULT_VARIANT', 'Variant',
    'parse_variant', 'unique_variants', 'markdown_table', 'quality_markdown', 'speed_markdown',
    'plot_quality_vs_steps', 'plot_quality_vs_calls', 'MARKERS', 'add_arguments', 'run_speed',
    'run_quality', 'run', 'main'
]
