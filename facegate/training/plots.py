"""PNG charts of training and evaluation: the training curves and the ROC curve.

matplotlib is imported inside each function, with the non-interactive Agg backend, so this
module costs nothing to import and works on a machine without a display.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def training_curves(history: Mapping[str, Sequence[float]], path: Path, title: str = "") -> Path:
    """Plot loss (left) and every other metric (right) per epoch, train and ``val_``; save PNG."""
    plt = _pyplot()
    path = Path(path)
    base = sorted(k for k in history if not k.startswith("val_") and k != "epoch")
    fig, (ax_loss, ax_metrics) = plt.subplots(1, 2, figsize=(11, 4))
    for key in base:
        ax = ax_loss if key == "loss" else ax_metrics
        values = list(history[key])
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, marker="o", label=key)
        if f"val_{key}" in history:
            val = list(history[f"val_{key}"])
            ax.plot(np.arange(1, len(val) + 1), val, marker="o", linestyle="--", label=f"val_{key}")
    from matplotlib.ticker import MaxNLocator

    for ax, label in ((ax_loss, "binary cross-entropy"), (ax_metrics, "metric")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(title or "training curves")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    logger.info("wrote training curves to %s", path)
    return path


def roc_plot(
    far: np.ndarray, tar: np.ndarray, path: Path, label: str = "", auc: float | None = None
) -> Path:
    """Plot a ROC curve (TAR against FAR, FAR on a log axis from 1e-4) and save it as PNG."""
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 5))
    far = np.asarray(far, dtype=np.float64)
    tar = np.asarray(tar, dtype=np.float64)
    name = label or "model"
    if auc is not None:
        name = f"{name} (AUC {auc:.4f})"
    # A log axis cannot show FAR 0: those points are drawn at the axis' left edge.
    ax.step(np.maximum(far, 1e-4), tar, where="post", label=name)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1.0)
    ax.set_ylim(0.0, 1.01)
    for target in (1e-3, 1e-2):
        ax.axvline(target, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false accept rate (FAR)")
    ax.set_ylabel("true accept rate (TAR)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    logger.info("wrote ROC curve to %s", path)
    return path
