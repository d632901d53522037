"""TransitionSampler: all schedule math of SegRefiner's discrete diffusion.

Each pixel is in a *fine* state (it takes the ground-truth value) or a *coarse* state (it
takes the coarse-mask value). The forward process only moves pixels fine -> coarse; the
reverse process moves them coarse -> fine. A plain object in the spirit of diffusers'
schedulers: schedule tensors plus two verbs, :meth:`q_sample` (training) and :meth:`step`
(one reverse step). Randomness only comes from an explicit ``torch.Generator``.
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from mmseg_refiner.registry import MODELS


@dataclass
class TransitionOutput:
    """Result of one reverse step.

    Attributes:
        mask (Tensor): (B, 1, H, W) float. The next state ``m_{t-1}`` (0/1), or, at the last
            step, the probability of foreground ``sigmoid(logits)``.
        fine_prob (Tensor): (B, 1, H, W) float in [0, 1]: cumulative probability that each
            pixel has reached the fine state.
        fine_map (Tensor, optional): (B, 1, H, W) bool: the sampled fine pixels (``None`` at
            the last step).
    """
    mask: torch.Tensor
    fine_prob: torch.Tensor
    fine_map: Optional[torch.Tensor] = None


def _rand_like(x: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Uniform noise shaped like ``x`` drawn from ``generator`` (on the generator's device)."""
    if generator is None:
        return torch.rand(x.shape, device=x.device, dtype=torch.float32)
    noise = torch.rand(x.shape, generator=generator, device=generator.device, dtype=torch.float32)
    return noise.to(x.device)


@MODELS.register_module()
class TransitionSampler:
    """The coarse/fine transition schedule of SegRefiner.

    ``betas_cumprod[t]`` is the probability that a pixel is still fine after ``t + 1`` forward
    steps; the reference uses ``linspace(0.8, 0, 6)``.

    Args:
        num_timesteps (int): T. Defaults to 6.
        beta_start (float): ``betas_cumprod[0]``. Defaults to 0.8.
        beta_end (float): ``betas_cumprod[T-1]``; 0 means all coarse. Defaults to 0.0.
    """

    def __init__(self, num_timesteps: int = 6, beta_start: float = 0.8, beta_end: float = 0.0):
        if num_timesteps < 1:
            raise ValueError(f'num_timesteps must be >= 1, got {num_timesteps}')
        if not 0.0 <= beta_end <= beta_start <= 1.0:
            raise ValueError('need 0 <= beta_end <= beta_start <= 1, got '
                             f'beta_start={beta_start}, beta_end={beta_end}')
        self.num_timesteps = num_timesteps
        self.betas_cumprod = torch.linspace(beta_start, beta_end, num_timesteps,
                                            dtype=torch.float64)
        self.betas_cumprod_prev = torch.cat(
            [torch.ones(1, dtype=torch.float64), self.betas_cumprod[:-1]])

    def __repr__(self):
        return (f'{type(self).__name__}(num_timesteps={self.num_timesteps}, betas_cumprod='
                f'{[round(float(b), 4) for b in self.betas_cumprod]})')

    # -- training ---------------------------------------------------------------------------
    def sample_timesteps(self, batch_size: int, device=None,
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw ``t`` uniformly from ``{0, ..., T-1}``: (B,) long."""
        gen_device = generator.device if generator is not None else device
        t = torch.randint(0, self.num_timesteps, (batch_size, ), generator=generator,
                          device=gen_device)
        return t.to(device)

    def q_sample(self, m0: torch.Tensor, mT: torch.Tensor, t: torch.Tensor,
                 generator: Optional[torch.Generator] = None,
                 noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Sample ``m_t ~ q(m_t | m_0, m_T)``.

        Each pixel keeps the ground truth with probability ``betas_cumprod[t]``, else takes
        the coarse value.

        Args:
            m0 (Tensor): Ground truth (B, 1, H, W), 0/1 float.
            mT (Tensor): Coarse mask (B, 1, H, W), 0/1 float.
            t (Tensor): Timesteps (B,) long.
            generator (torch.Generator, optional): Source of the transition noise.
            noise (Tensor, optional): Uniform noise (B, 1, H, W) to use instead (exact tests).

        Returns:
            Tensor: ``m_t`` (B, 1, H, W), same dtype as ``m0``.
        """
        if m0.shape != mT.shape:
            raise ValueError(f'm0 {tuple(m0.shape)} and mT {tuple(mT.shape)} differ in shape')
        keep = self.betas_cumprod.to(m0.device)[t.long()].float().view(-1, *[1] * (m0.dim() - 1))
        noise = _rand_like(m0, generator) if noise is None else noise
        stay_fine = noise < keep
        return torch.where(stay_fine, m0, mT)

    # -- inference --------------------------------------------------------------------------
    def timesteps(self, steps: Optional[Sequence[int]] = None) -> list:
        """The reverse schedule: ``steps`` validated, default ``[T-1, ..., 0]``.

        ``steps`` may be an int ``n`` (the last ``n`` timesteps) or an explicit descending
        list of timesteps.
        """
        if steps is None:
            return list(range(self.num_timesteps - 1, -1, -1))
        if isinstance(steps, int):
            if not 1 <= steps <= self.num_timesteps:
                raise ValueError(f'steps must be in [1, {self.num_timesteps}], got {steps}')
            return list(range(steps - 1, -1, -1))
        steps = [int(s) for s in steps]
        if not steps or any(not 0 <= s < self.num_timesteps for s in steps):
            raise ValueError(f'timesteps must lie in [0, {self.num_timesteps}), got {steps}')
        if any(a <= b for a, b in zip(steps, steps[1:])):
            raise ValueError(f'timesteps must be strictly descending, got {steps}')
        return steps

    def fine_transition_prob(self, logits: torch.Tensor, t: int) -> torch.Tensor:
        """Coarse -> fine transition probability of one reverse step at ``t``.

        Confidence ``c = 2|sigmoid(logits) - 0.5|``; ``p_cf = c (b_{t-1} - b_t) / (1 - c b_t)``
        (paper Eq. 8; ``b`` = ``betas_cumprod``).
        """
        conf = 2 * (logits.float().sigmoid() - 0.5).abs()
        b_t = float(self.betas_cumprod[t])
        b_prev = float(self.betas_cumprod_prev[t])
        return conf * (b_prev - b_t) / (1 - conf * b_t)

    def step(self, logits: torch.Tensor, t: int, coarse: torch.Tensor, fine_prob: torch.Tensor,
             last: bool = False, generator: Optional[torch.Generator] = None,
             noise: Optional[torch.Tensor] = None) -> TransitionOutput:
        """One reverse step ``m_t -> m_{t-1}``.

        Args:
            logits (Tensor): U-Net output at ``t`` (B, 1, H, W).
            t (int): Current timestep.
            coarse (Tensor): The original coarse mask ``m_T`` (B, 1, H, W), 0/1 float.
            fine_prob (Tensor): Fine-state probability so far (B, 1, H, W).
            last (bool): Whether this is the final step. Defaults to False.
            generator (torch.Generator, optional): Source of the sampling noise.
            noise (Tensor, optional): Uniform noise (B, 1, H, W) to use instead.

        Returns:
            TransitionOutput: the next mask state and the updated fine probability.
        """
        # 1. cumulative fine probability: p <- p + (1 - p) * p_cf
        fine_prob = fine_prob + (1 - fine_prob) * self.fine_transition_prob(logits, t)
        if last:
            # 2a. last step: the foreground probability is the output.
            return TransitionOutput(mask=logits.float().sigmoid(), fine_prob=fine_prob)
        # 2b. sample which pixels are fine; fine pixels take the prediction, the others the
        #     ORIGINAL coarse mask (pixels never move back to an intermediate state).
        noise = _rand_like(fine_prob, generator) if noise is None else noise
        fine_map = noise < fine_prob
        mask = torch.where(fine_map, (logits >= 0).to(coarse.dtype), coarse)
        return TransitionOutput(mask=mask, fine_prob=fine_prob, fine_map=fine_map)
