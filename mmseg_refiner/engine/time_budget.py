"""TimeBudgetHook: train for a wall-clock budget, annealing the learning rate at the end."""
import time
from typing import Optional

from mmengine.hooks import Hook

from mmseg_refiner.registry import HOOKS


@HOOKS.register_module()
class TimeBudgetHook(Hook):
    """Stop an iteration-based run after ``budget_s`` seconds, with a final checkpoint.

    For rented accelerators billed by the minute: the number of iterations that fit is not
    known in advance, so the run is sized in seconds. Over the last ``anneal_frac`` of the
    budget every learning rate decays linearly from its value to ``min_factor`` times it
    (the time-based counterpart of a schedule's final decay); when the budget is spent, the
    current iteration becomes the last one, so :class:`~mmengine.hooks.CheckpointHook`
    (``save_last=True``, its default) writes ``iter_<n>.pth`` and the loop ends.

    Note:
        Keep the iteration-based schedulers to a warm-up that ends well before
        ``(1 - anneal_frac) * budget_s``: after that this hook owns the learning rate.

    Args:
        budget_s (float): Training seconds, counted from the first training iteration
            (start-up and data-loader warm-up are not counted).
        anneal_frac (float): Final fraction of the budget with the linear decay; 0 turns
            it off. Defaults to 0.25.
        min_factor (float): Learning-rate factor at the end of the budget. Defaults to 0.05.
    """

    priority = 'ABOVE_NORMAL'  # before CheckpointHook (VERY_LOW) reads max_iters

    def __init__(self, budget_s: float, anneal_frac: float = 0.25, min_factor: float = 0.05):
        if budget_s <= 0 or not 0 <= anneal_frac <= 1 or not 0 <= min_factor <= 1:
            raise ValueError(f'need budget_s > 0, 0 <= anneal_frac <= 1, 0 <= min_factor <= 1; '
                             f'got {budget_s}, {anneal_frac}, {min_factor}')
        self.budget_s = float(budget_s)
        self.anneal_frac = float(anneal_frac)
        self.min_factor = float(min_factor)
        self._start: Optional[float] = None
        self._base_lrs = None

    def _elapsed(self) -> float:
        return 0.0 if self._start is None else time.monotonic() - self._start

    def lr_factor(self, elapsed: float) -> float:
        """Learning-rate factor after ``elapsed`` seconds (1 until the decay starts)."""
        begin = self.budget_s * (1 - self.anneal_frac)
        if elapsed <= begin or self.anneal_frac == 0:
            return 1.0
        done = min(1.0, (elapsed - begin) / (self.budget_s - begin))
        return 1.0 + (self.min_factor - 1.0) * done

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Start the clock at the first iteration; decay the learning rate near the end."""
        if self._start is None:
            self._start = time.monotonic()
        factor = self.lr_factor(self._elapsed())
        if factor < 1.0:
            groups = runner.optim_wrapper.param_groups
            if self._base_lrs is None:
                self._base_lrs = [g['lr'] for g in groups]
            for group, base in zip(groups, self._base_lrs):
                group['lr'] = base * factor

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Make this iteration the last once the budget is spent."""
        if self._elapsed() >= self.budget_s and runner.iter + 1 < runner.max_iters:
            runner.logger.info(f'TimeBudgetHook: {self._elapsed():.0f} s of {self.budget_s:.0f} s '
                               f'spent, stopping after iteration {runner.iter + 1}')
            runner.train_loop._max_iters = runner.iter + 1
