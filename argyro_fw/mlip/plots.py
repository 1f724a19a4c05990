"""PNG plots of an active-learning iteration: force parity of each committee member on the
validation set, and the histogram of per-frame committee force uncertainty."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_iteration(out_dir: str | Path, uncertainty: np.ndarray, threshold: float,
                   parity: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    paths = []
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(uncertainty, bins=30)
    ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:g} eV/A")
    ax.set_xlabel("committee force uncertainty (eV/A)")
    ax.set_ylabel("frames")
    ax.legend()
    fig.tight_layout()
    paths.append(out / "uncertainty.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, (ref, pred) in parity.items():
        ax.plot(ref, pred, ".", ms=2, label=Path(name).stem)
    lim = [min(float(np.min(r)) for r, _ in parity.values()), max(float(np.max(r)) for r, _ in parity.values())]
    ax.plot(lim, lim, "k-", lw=0.8)
    ax.set_xlabel("reference force component (eV/A)")
    ax.set_ylabel("model force component (eV/A)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "force_parity.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
