import pytest
import torch

from mmseg_refiner.models import TransitionSampler


def get_sampler(**kwargs):
    return TransitionSampler(**kwargs)


def test_reference_schedule():
    s = get_sampler()
    torch.testing.assert_close(s.betas_cumprod.float(),
                               torch.tensor([0.8, 0.64, 0.48, 0.32, 0.16, 0.0]))
    assert s.betas_cumprod_prev[0] == 1.0 and s.betas_cumprod_prev[5] == pytest.approx(0.16)


@pytest.mark.parametrize('kwargs', [dict(num_timesteps=0), dict(beta_start=0.2, beta_end=0.5)])
def test_bad_schedule_raises(kwargs):
    with pytest.raises(ValueError):
        get_sampler(**kwargs)


def test_q_sample_with_injected_noise_is_exact():
    s = get_sampler()
    m0, mT = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    noise = torch.tensor([0.1, 0.7, 0.79, 0.81]).view(1, 1, 2, 2).repeat(2, 1, 1, 1)
    out = s.q_sample(m0, mT, torch.tensor([0, 5]), noise=noise)
    assert out[0].flatten().tolist() == [1, 1, 1, 0]  # keep fine where noise < 0.8
    assert out[1].flatten().tolist() == [0, 0, 0, 0]  # t = 5: everything coarse


def test_q_sample_rate_and_seed():
    s = get_sampler()
    m0, mT = torch.ones(1, 1, 200, 200), torch.zeros(1, 1, 200, 200)
    a = s.q_sample(m0, mT, torch.tensor([2]), generator=torch.Generator().manual_seed(3))
    b = s.q_sample(m0, mT, torch.tensor([2]), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert abs(a.mean().item() - 0.48) < 0.01


def test_timesteps_validation():
    s = get_sampler()
    assert s.timesteps() == [5, 4, 3, 2, 1, 0]
    assert s.timesteps(2) == [1, 0]
    assert s.timesteps([5, 3, 0]) == [5, 3, 0]
    for bad in (0, 7, [0, 3], [6], []):
        with pytest.raises(ValueError):
            s.timesteps(bad)


def test_step_formula_and_last_step():
    s = get_sampler()
    logits = torch.tensor([0.0, 10.0, -10.0, 2.0]).view(1, 1, 2, 2)
    coarse = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 2, 2)
    fine0 = torch.zeros_like(coarse)
    out = s.step(logits, 5, coarse, fine0, noise=torch.full_like(coarse, 0.1))
    conf = 2 * (logits.sigmoid() - 0.5).abs()
    expected = conf * (0.16 - 0.0) / (1 - conf * 0.0)
    torch.testing.assert_close(out.fine_prob, expected)
    # noise 0.1: fine where fine_prob > 0.1 (confident pixels take the prediction)
    assert out.mask.flatten().tolist() == [1.0, 1.0, 0.0, 1.0]
    last = s.step(logits, 0, coarse, out.fine_prob, last=True)
    torch.testing.assert_close(last.mask, logits.sigmoid())
    assert last.fine_map is None


def test_full_reverse_loop_with_dummy_model_is_seeded():
    s = get_sampler()
    coarse = (torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    target = torch.zeros_like(coarse)
    target[..., 4:12, 4:12] = 1

    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        mask, fine = coarse.clone(), torch.zeros_like(coarse)
        for i, t in enumerate(s.timesteps()):
            logits = (target * 2 - 1) * 8  # a confident dummy model that predicts `target`
            out = s.step(logits, t, coarse, fine, last=(t == 0), generator=gen)
            mask, fine = out.mask, out.fine_prob
        return mask, fine

    (m1, f1), (m2, f2) = run(1), run(1)
    assert torch.equal(m1, m2) and torch.equal(f1, f2)
    assert ((m1 >= 0.5).float() == target).all()
    assert (f1 > 0.99).all()  # the cumulative fine probability reaches ~1 at t = 0


def test_mask_only_changes_where_pixels_turned_fine():
    s = get_sampler()
    g = torch.Generator().manual_seed(4)
    coarse = (torch.rand(2, 1, 24, 24, generator=g) > 0.5).float()
    fine = torch.zeros_like(coarse)
    for t in (5, 4, 3, 2, 1):
        logits = torch.randn(2, 1, 24, 24, generator=g) * 4
        out = s.step(logits, t, coarse, fine, generator=g)
        assert torch.equal(out.mask[~out.fine_map], coarse[~out.fine_map])
        assert torch.equal(out.mask[out.fine_map], (logits >= 0).float()[out.fine_map])
        assert (out.fine_prob >= fine).all()  # fine probability never decreases
        fine = out.fine_prob
