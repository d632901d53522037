"""TimeBudgetHook: linear learning-rate decay at the end of the budget, then a last iteration."""
from types import SimpleNamespace

import pytest
import torch

from mmseg_refiner.engine.time_budget import TimeBudgetHook


def test_lr_factor_is_flat_then_linear():
    hook = TimeBudgetHook(budget_s=100, anneal_frac=0.25, min_factor=0.1)
    assert hook.lr_factor(0) == hook.lr_factor(75) == 1.0
    assert hook.lr_factor(87.5) == pytest.approx(0.55)
    assert hook.lr_factor(100) == hook.lr_factor(150) == pytest.approx(0.1)
    assert TimeBudgetHook(budget_s=10, anneal_frac=0).lr_factor(9.9) == 1.0
    with pytest.raises(ValueError, match='budget_s'):
        TimeBudgetHook(budget_s=0)


def _runner(lr=1.0, it=4, max_iters=100):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    loop = SimpleNamespace(_max_iters=max_iters)
    return SimpleNamespace(optim_wrapper=SimpleNamespace(param_groups=optimizer.param_groups),
                           train_loop=loop, iter=it, max_iters=max_iters,
                           logger=SimpleNamespace(info=lambda msg: None))


def test_budget_decays_lr_and_ends_the_run(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr('mmseg_refiner.engine.time_budget.time.monotonic', lambda: clock[0])
    hook, runner = TimeBudgetHook(budget_s=100, anneal_frac=0.5, min_factor=0.0), _runner()
    hook.before_train_iter(runner, 0)  # starts the clock
    hook.after_train_iter(runner, 0)
    assert runner.train_loop._max_iters == 100
    clock[0] += 75  # half-way through the decay
    hook.before_train_iter(runner, 1)
    assert runner.optim_wrapper.param_groups[0]['lr'] == pytest.approx(0.5)
    clock[0] += 30  # budget spent: iteration 4 (runner.iter) becomes the last one
    hook.after_train_iter(runner, 4)
    assert runner.train_loop._max_iters == 5
