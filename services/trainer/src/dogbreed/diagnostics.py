"""Cheap training checks in the spirit of SageMaker Debugger's built-in rules.

``TrainingMonitor`` looks at numbers the training loop already has (the first batch's logits, the
gradients after ``backward()``, the per-epoch losses) and returns plain-language warnings. The
training loop logs each one as a ``WARNING ...`` line, and the evaluation report lists them.

Rules (Debugger's names in brackets):

- ``poor_head_init`` [PoorWeightInitialization]: before training, a freshly initialised head should
  give roughly uniform predictions, i.e. a loss near ``ln(num_classes)`` and small logits.
- ``exploding_gradients`` / ``vanishing_gradients`` [ExplodingTensor, VanishingGradient]: the global
  gradient norm, every ``grad_check_every`` steps, is non-finite, huge, or vanishingly small.
- ``loss_not_decreasing`` [LossNotDecreasing]: the training loss has not improved for a window of
  epochs.
- ``overfitting`` [Overfit]: validation loss rose while training loss fell for ``overfit_patience``
  epochs in a row.

Everything here is pure (no I/O, no logging) and costs at most one pass over the gradients every
``grad_check_every`` steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    step: int | None = None
    epoch: int | None = None

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


def global_grad_norm(parameters: Iterable[torch.Tensor]) -> float | None:
    """L2 norm over all gradients (as ``clip_grad_norm_`` computes it), or None when there are none."""
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    if not grads:
        return None
    norms = torch._foreach_norm(grads) if hasattr(torch, "_foreach_norm") else [g.norm() for g in grads]
    return float(torch.linalg.vector_norm(torch.stack([n.float() for n in norms])))


class TrainingMonitor:
    """Collects warnings about a training run; every ``check``/``after`` method returns the new ones.

    Call ``after_backward`` on *unscaled* gradients: with an fp16 ``GradScaler``, after
    ``scaler.unscale_(optimizer)``; otherwise every norm is multiplied by the loss scale.
    """

    def __init__(
        self,
        *,
        grad_check_every: int = 50,
        exploding_grad_norm: float = 1e3,
        vanishing_grad_norm: float = 1e-7,
        loss_window: int = 3,
        min_relative_improvement: float = 0.01,
        overfit_patience: int = 2,
        head_init_loss_ratio: float = 1.5,
        head_init_logit_std: float = 2.0,
        max_repeats: int = 3,
    ):
        if grad_check_every < 1:
            raise ValueError("grad_check_every must be >= 1")
        if loss_window < 1 or overfit_patience < 1:
            raise ValueError("loss_window and overfit_patience must be >= 1")
        self.grad_check_every = grad_check_every
        self.exploding_grad_norm = exploding_grad_norm
        self.vanishing_grad_norm = vanishing_grad_norm
        self.loss_window = loss_window
        self.min_relative_improvement = min_relative_improvement
        self.overfit_patience = overfit_patience
        self.head_init_loss_ratio = head_init_loss_ratio
        self.head_init_logit_std = head_init_logit_std
        self.max_repeats = max_repeats

        self.findings: list[Finding] = []
        self.grad_norms: list[tuple[int, float]] = []  # (step, norm) at every check
        self.train_losses: list[float] = []
        self.val_losses: list[float | None] = []
        self._fired: dict[str, int] = {}
        self._overfit_streak = 0
        self._last_loss_warning_epoch: int | None = None

    @property
    def warnings(self) -> list[str]:
        """Every warning so far, in order, as ``"rule: message"`` strings."""
        return [str(f) for f in self.findings]

    # ---- helpers -----------------------------------------------------------------------------

    def _emit(self, rule: str, message: str, *, step: int | None = None, epoch: int | None = None) -> list[str]:
        """Record a finding unless this rule already fired ``max_repeats`` times (then say so once)."""
        count = self._fired.get(rule, 0) + 1
        self._fired[rule] = count
        if count > self.max_repeats + 1:
            return []
        if count == self.max_repeats + 1:
            message = f"{rule} fired again; further {rule} warnings are suppressed"
        finding = Finding(rule, message, step=step, epoch=epoch)
        self.findings.append(finding)
        return [str(finding)]

    # ---- rules -------------------------------------------------------------------------------

    def check_head_init(self, logits: torch.Tensor, num_classes: int, labels: torch.Tensor | None = None) -> list[str]:
        """Check the untrained network's logits for one batch (call once, before the first step).

        A well-initialised classification head predicts close to uniformly: the cross-entropy is
        near ``ln(num_classes)`` and the logits are small. Without ``labels``, the loss expected
        under random labels (mean over classes of ``-log softmax``) is used instead.
        """
        logits = logits.detach().float()
        if logits.ndim != 2 or logits.shape[1] != num_classes:
            raise ValueError(f"expected logits of shape [N, {num_classes}], got {list(logits.shape)}")
        out: list[str] = []
        if not torch.isfinite(logits).all():
            return self._emit("poor_head_init", "the initial logits contain NaN or inf; check the input normalisation and the weights")
        log_probs = torch.log_softmax(logits, dim=1)
        if labels is not None:
            initial_loss = float(-log_probs.gather(1, labels.view(-1, 1).long()).mean())
            loss_kind = "initial loss"
        else:
            initial_loss = float(-log_probs.mean())
            loss_kind = "initial loss expected under random labels"
        expected = math.log(num_classes)
        logit_std = float(logits.std()) if logits.numel() > 1 else 0.0
        if initial_loss > self.head_init_loss_ratio * expected:
            out += self._emit(
                "poor_head_init",
                f"{loss_kind} is {initial_loss:.3f}, far above ln({num_classes}) = {expected:.3f} "
                "that a freshly initialised head should give; the head may be badly initialised "
                "(re-initialise it with small weights) or the inputs badly normalised",
                step=0,
            )
        if logit_std > self.head_init_logit_std:
            out += self._emit(
                "poor_head_init",
                f"the initial logits have standard deviation {logit_std:.2f} (> {self.head_init_logit_std}); "
                "an untrained head should output near-uniform predictions -- check the head's "
                "initialisation and the input normalisation",
                step=0,
            )
        return out

    def after_backward(self, model: nn.Module | Iterable[torch.Tensor], step: int) -> list[str]:
        """Check the global gradient norm every ``grad_check_every`` steps (and at step 0)."""
        if step % self.grad_check_every != 0:
            return []
        params = model.parameters() if isinstance(model, nn.Module) else model
        norm = global_grad_norm(params)
        if norm is None:
            return []
        self.grad_norms.append((step, norm))
        if not math.isfinite(norm):
            return self._emit(
                "exploding_gradients",
                f"the gradient norm is {norm} at step {step}; lower the learning rate, clip gradients, "
                "or check the inputs for NaN (an fp16 loss scaler skips such steps, but a run of them means trouble)",
                step=step,
            )
        if norm > self.exploding_grad_norm:
            return self._emit(
                "exploding_gradients",
                f"the gradient norm is {norm:.3g} at step {step} (> {self.exploding_grad_norm:g}); "
                "lower the learning rate or clip gradients",
                step=step,
            )
        if norm < self.vanishing_grad_norm:
            return self._emit(
                "vanishing_gradients",
                f"the gradient norm is {norm:.3g} at step {step} (< {self.vanishing_grad_norm:g}); the "
                "trainable layers are barely learning -- check that the right layers are unfrozen and the "
                "learning rate is not tiny",
                step=step,
            )
        return []

    def after_epoch(self, epoch: int, train_loss: float, val_loss: float | None) -> list[str]:
        """Check the loss curves after each epoch (``val_loss`` None when there is no validation set)."""
        self.train_losses.append(float(train_loss))
        self.val_losses.append(None if val_loss is None else float(val_loss))
        out: list[str] = []
        if not math.isfinite(train_loss) or (val_loss is not None and not math.isfinite(val_loss)):
            out += self._emit(
                "loss_not_finite",
                f"epoch {epoch}: train loss {train_loss}, validation loss {val_loss}; training diverged -- "
                "lower the learning rate",
                epoch=epoch,
            )
            return out
        out += self._check_loss_not_decreasing(epoch)
        out += self._check_overfitting(epoch)
        return out

    def _check_loss_not_decreasing(self, epoch: int) -> list[str]:
        losses = self.train_losses
        window = self.loss_window
        if len(losses) <= window:
            return []
        # Warn at most once per window, so a long plateau does not repeat the same line every epoch.
        if self._last_loss_warning_epoch is not None and epoch - self._last_loss_warning_epoch < window:
            return []
        best_before = min(losses[:-window])
        best_recent = min(losses[-window:])
        if best_recent <= best_before * (1 - self.min_relative_improvement):
            return []
        self._last_loss_warning_epoch = epoch
        return self._emit(
            "loss_not_decreasing",
            f"the training loss has not improved by {self.min_relative_improvement:.0%} in the last "
            f"{window} epochs (best {best_recent:.4f} vs {best_before:.4f} before); the learning rate "
            "may be too low or too high, or the trainable layers frozen",
            epoch=epoch,
        )

    def _check_overfitting(self, epoch: int) -> list[str]:
        if len(self.train_losses) < 2:
            return []
        train_prev, train_now = self.train_losses[-2:]
        val_prev, val_now = self.val_losses[-2:]
        if val_prev is None or val_now is None:
            self._overfit_streak = 0
            return []
        if val_now > val_prev and train_now < train_prev:
            self._overfit_streak += 1
        else:
            self._overfit_streak = 0
            return []
        if self._overfit_streak != self.overfit_patience:
            return []  # fire once per streak
        return self._emit(
            "overfitting",
            f"validation loss has risen for {self.overfit_patience} epochs while the training loss fell "
            f"(now {val_now:.4f} vs {train_now:.4f}); use early stopping, more augmentation or weight decay, "
            "or fewer trainable layers",
            epoch=epoch,
        )


def summarise(findings: Sequence[Finding]) -> dict[str, int]:
    """Count findings per rule (for metadata and reports)."""
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.rule] = counts.get(finding.rule, 0) + 1
    return counts
