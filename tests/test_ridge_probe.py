"""The ridge readout (probe.kind: ridge): what it pools, that it reads a linear signal and not noise,
that lambda is chosen without looking at val, and that it is what `probe_encoder` runs when asked."""

import numpy as np
import pytest
import torch

from trainers.probe.ridge import RidgeFit, fit_ridge, pooled_features, ridge_probe_task, time_pooled

T, TOKENS, WIDTH, CLASSES = 4, 6, 8, 5


def test_time_pooled_keeps_each_time_step_apart():
    features = torch.zeros(1, T * TOKENS, WIDTH)
    features[0, 2 * TOKENS : 3 * TOKENS, 0] = torch.arange(TOKENS, dtype=torch.float32)  # time step 2, channel 0
    pooled = time_pooled(features, T)
    means, stds = pooled[0, : T * WIDTH].view(T, WIDTH), pooled[0, T * WIDTH :].view(T, WIDTH)
    assert means[2, 0] == pytest.approx(2.5) and stds[2, 0] == pytest.approx(np.arange(TOKENS).std())
    assert means.abs().sum() == pytest.approx(2.5) and (stds[[0, 1, 3]] == 0).all()


def test_poolings_keep_what_they_say():
    features = torch.randn(3, T * TOKENS, WIDTH)
    assert pooled_features(features, T, "flat").shape == (3, T * TOKENS * WIDTH)
    means = pooled_features(features, T, "mean").view(3, T, WIDTH)
    assert torch.allclose(means[:, 1], features[:, TOKENS : 2 * TOKENS].mean(1), atol=1e-6)
    assert torch.equal(pooled_features(features, T, "mean_std"), time_pooled(features, T))
    with pytest.raises(ValueError, match="flat, mean, mean_std"):
        pooled_features(features, T, "max")


@pytest.mark.parametrize("dims", [7, 120])  # fewer dims than clips (primal), more (dual)
def test_the_eigen_solution_equals_the_plain_ridge_on_standardised_features(dims):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, dims, generator=generator) * torch.linspace(0.5, 3, dims) + 1.0
    labels = torch.randint(0, 3, (40,), generator=generator)
    model = RidgeFit(x)
    standardised = (x.double() - x.double().mean(0)) / x.double().std(0, unbiased=False)
    onehot = torch.nn.functional.one_hot(labels, 3).double()
    rows = torch.arange(40)
    for relative, solution in zip((1e-3, 0.1, 10.0), model.solve(rows, onehot, (1e-3, 0.1, 10.0))):
        plain = fit_ridge(standardised, labels, 3, relative * dims)
        expected = torch.cat([standardised, torch.ones(40, 1, dtype=torch.float64)], 1) @ plain
        assert torch.allclose(model.scores(solution, rows, at=rows), expected, atol=1e-4)
        assert torch.allclose(model.scores(solution, rows, x=model.standardise(x)), expected, atol=1e-4)


def test_fit_ridge_is_least_squares_when_lambda_is_tiny():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=generator)
    labels = torch.randint(0, 2, (50,), generator=generator)
    weights = fit_ridge(x, labels, 2, lam=1e-9)
    design = torch.cat([x.double(), torch.ones(50, 1, dtype=torch.float64)], 1)
    expected = torch.linalg.lstsq(design, torch.nn.functional.one_hot(labels, 2).double()).solution
    assert torch.allclose(weights, expected, atol=1e-6)


def _clips(count: int, seed: int, signal: bool):
    """Clips whose class sets the mean of channel `label` at the LAST time step only (order in time matters)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, CLASSES, (count,), generator=generator)
    features = torch.randn(count, T * TOKENS, WIDTH, generator=generator)
    if signal:
        for i, label in enumerate(labels):
            features[i, (T - 1) * TOKENS :, label] += 2.0
    return features, labels


def test_reads_a_linear_signal_and_not_noise():
    train, train_y = _clips(400, 0, signal=True)
    val, val_y = _clips(200, 1, signal=True)
    noise, noise_y = _clips(400, 2, signal=False)
    noise_val, noise_val_y = _clips(200, 3, signal=False)
    for pooling in ("flat", "mean", "mean_std"):
        kwargs = dict(lambdas=[1e-3, 0.1, 10.0], folds=5, seed=0, time_steps=T, pooling=pooling)
        assert ridge_probe_task(train, train_y, val, val_y, CLASSES, **kwargs)["accuracy"] > 0.9, pooling
        assert ridge_probe_task(noise, noise_y, noise_val, noise_val_y, CLASSES, **kwargs)["accuracy"] < 0.35, pooling


def test_lambda_is_chosen_on_train_not_on_val():
    train, train_y = _clips(300, 0, signal=True)
    val, val_y = _clips(100, 1, signal=True)
    kwargs = dict(lambdas=[1e-4, 0.01, 1.0, 100.0], folds=5, seed=0, time_steps=T)
    honest = ridge_probe_task(train, train_y, val, val_y, CLASSES, **kwargs)
    shuffled = ridge_probe_task(train, train_y, val, val_y[torch.randperm(100)], CLASSES, **kwargs)
    assert honest["lambda"] == shuffled["lambda"]
    assert [h["holdout_accuracy"] for h in honest["heads"]] == [h["holdout_accuracy"] for h in shuffled["heads"]]
    assert honest["accuracy"] > shuffled["accuracy"]


def test_bad_lambdas_are_refused():
    from trainers.probe.config import ProbeConfig

    with pytest.raises(ValueError, match="ridge_lambdas"):
        ProbeConfig(kind="ridge", ridge_lambdas=[0.0]).validate()
