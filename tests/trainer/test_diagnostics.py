"""TrainingMonitor rules, driven by synthetic losses, logits and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dogbreed.diagnostics import TrainingMonitor, global_grad_norm


def model_with_gradients(scale: float) -> nn.Module:
    model = nn.Linear(4, 3)
    for p in model.parameters():
        p.grad = torch.full_like(p, scale)
    return model


# ---- head initialisation -------------------------------------------------------------------------


def test_small_logits_from_fresh_head_pass():
    torch.manual_seed(0)
    head = nn.Linear(512, 120)
    logits = head(torch.randn(32, 512) * 0.1)
    assert TrainingMonitor().check_head_init(logits, 120) == []


def test_zero_logits_give_ln_num_classes_and_pass():
    monitor = TrainingMonitor()
    labels = torch.randint(0, 10, (8,))
    assert monitor.check_head_init(torch.zeros(8, 10), 10, labels=labels) == []


def test_large_logits_are_reported_with_loss_and_std():
    torch.manual_seed(0)
    logits = torch.randn(16, 10) * 20
    monitor = TrainingMonitor()
    found = monitor.check_head_init(logits, 10)
    assert len(found) == 2
    assert all(w.startswith("poor_head_init: ") for w in found)
    assert f"ln(10) = {math.log(10):.3f}" in found[0]
    assert "standard deviation" in found[1]
    assert monitor.warnings == found


def test_confidently_wrong_head_is_reported_with_labels():
    # Logits concentrated on class 0 while every label is class 1: loss ~ 8, ln(5) ~ 1.6.
    logits = torch.zeros(4, 5)
    logits[:, 0] = 8.0
    found = TrainingMonitor(head_init_logit_std=100).check_head_init(logits, 5, labels=torch.ones(4, dtype=torch.long))
    assert len(found) == 1 and "initial loss is 8.0" in found[0]


def test_non_finite_logits_are_reported():
    logits = torch.zeros(2, 3)
    logits[0, 0] = float("nan")
    assert "NaN or inf" in TrainingMonitor().check_head_init(logits, 3)[0]


def test_head_init_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\[N, 10\]"):
        TrainingMonitor().check_head_init(torch.zeros(4, 7), 10)


# ---- gradients ---------------------------------------------------------------------------------


def test_global_grad_norm_matches_clip_grad_norm():
    model = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 2))
    model(torch.randn(3, 5)).sum().backward()
    expected = float(nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
    assert global_grad_norm(model.parameters()) == pytest.approx(expected, rel=1e-5)


def test_no_gradients_means_no_check():
    monitor = TrainingMonitor(grad_check_every=1)
    assert monitor.after_backward(nn.Linear(2, 2), step=0) == []
    assert monitor.grad_norms == []


def test_healthy_gradients_pass_and_are_recorded():
    monitor = TrainingMonitor(grad_check_every=1)
    assert monitor.after_backward(model_with_gradients(0.1), step=0) == []
    assert monitor.grad_norms == [(0, pytest.approx(0.1 * math.sqrt(15)))]


def test_exploding_gradients():
    found = TrainingMonitor(grad_check_every=1).after_backward(model_with_gradients(1e4), step=7)
    assert len(found) == 1
    assert found[0].startswith("exploding_gradients: the gradient norm is 3.87e+04 at step 7")


def test_non_finite_gradients_are_exploding():
    model = model_with_gradients(1.0)
    model.weight.grad[0, 0] = float("inf")
    found = TrainingMonitor(grad_check_every=1).after_backward(model, step=3)
    assert found and found[0].startswith("exploding_gradients: the gradient norm is inf at step 3")


def test_vanishing_gradients():
    found = TrainingMonitor(grad_check_every=1).after_backward(model_with_gradients(1e-12), step=2)
    assert len(found) == 1 and found[0].startswith("vanishing_gradients: ")


def test_gradients_are_only_checked_every_n_steps():
    monitor = TrainingMonitor(grad_check_every=10)
    model = model_with_gradients(1e4)
    results = [monitor.after_backward(model, step) for step in range(25)]
    assert [step for step, r in enumerate(results) if r] == [0, 10, 20]
    assert [s for s, _ in monitor.grad_norms] == [0, 10, 20]


def test_repeated_warnings_are_capped():
    monitor = TrainingMonitor(grad_check_every=1, max_repeats=2)
    model = model_with_gradients(1e4)
    for step in range(10):
        monitor.after_backward(model, step)
    assert len(monitor.warnings) == 3
    assert monitor.warnings[-1] == "exploding_gradients: exploding_gradients fired again; further exploding_gradients warnings are suppressed"


# ---- loss curves -------------------------------------------------------------------------------


def feed(monitor: TrainingMonitor, train: list[float], val: list[float | None]) -> list[list[str]]:
    return [monitor.after_epoch(epoch, t, v) for epoch, (t, v) in enumerate(zip(train, val, strict=True))]


def test_steadily_improving_run_has_no_warnings():
    monitor = TrainingMonitor()
    feed(monitor, [2.0, 1.5, 1.2, 1.0, 0.9, 0.8], [2.1, 1.6, 1.3, 1.1, 1.0, 0.95])
    assert monitor.warnings == []


def test_loss_not_decreasing_after_window():
    monitor = TrainingMonitor(loss_window=3)
    results = feed(monitor, [2.0, 1.5, 1.52, 1.51, 1.50, 1.51, 1.5, 1.49], [None] * 8)
    fired = [epoch for epoch, r in enumerate(results) if r]
    # Epoch 4 is the first with three epochs (2, 3, 4) and no 1% gain over the best before (1.5);
    # then at most once per window.
    assert fired == [4, 7]
    assert results[4][0].startswith("loss_not_decreasing: the training loss has not improved by 1% in the last 3 epochs")


def test_overfitting_needs_patience_epochs_in_a_row():
    monitor = TrainingMonitor(overfit_patience=2)
    train = [2.0, 1.5, 1.2, 1.0, 0.9, 0.8]
    val = [2.0, 1.6, 1.7, 1.5, 1.6, 1.7]  # rises at 2 (streak 1), falls at 3, rises at 4 and 5
    results = feed(monitor, train, val)
    assert [epoch for epoch, r in enumerate(results) if r] == [5]
    assert results[5][0].startswith("overfitting: validation loss has risen for 2 epochs while the training loss fell")


def test_overfitting_fires_once_per_streak():
    monitor = TrainingMonitor(overfit_patience=1)
    feed(monitor, [5, 4, 3, 2, 1], [1.0, 1.1, 1.2, 1.3, 1.4])
    assert [w for w in monitor.warnings if w.startswith("overfitting")] == [monitor.warnings[0]]


def test_no_validation_set_skips_overfitting():
    monitor = TrainingMonitor(overfit_patience=1)
    feed(monitor, [2.0, 1.0, 0.5], [None, None, None])
    assert monitor.warnings == []


def test_diverged_loss_is_reported():
    monitor = TrainingMonitor()
    found = monitor.after_epoch(0, float("nan"), 1.0)
    assert found and found[0].startswith("loss_not_finite: epoch 0")


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError):
        TrainingMonitor(grad_check_every=0)
