"""Tables and plots of evaluation results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from statistics import NormalDist

import numpy as np

from voiceprint.eval.metrics import error_curve, rates_at
from voiceprint.eval.runner import SetResult


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def table(results: Sequence[SetResult]) -> str:
    header = (
        "| set | speakers | utts | refused | trials (target/non) | EER | minDCF(0.01) "
        "| top-1 (groups) | stranger accept. | FRR at threshold |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in results:
        top1 = "-" if r.top1 is None else f"{_pct(r.top1)} ({r.genuine_probes} probes, {r.groups})"
        stranger = (
            "-"
            if r.stranger_acceptance is None
            else f"{_pct(r.stranger_acceptance)} of {r.stranger_probes}"
        )
        frr = r.identification_frr if r.identification_frr is not None else r.frr
        lines.append(
            f"| {r.set} | {r.speakers} | {r.utterances} | {r.refused} "
            f"| {r.target_trials}/{r.nontarget_trials} | {_pct(r.eer)} | {r.min_dcf:.3f} "
            f"| {top1} | {stranger} | {_pct(frr)} |"
        )
    return "\n".join(lines)


def operating_points(results: Sequence[SetResult], scores: Sequence[float]) -> str:
    """False accept / false reject rates of verification trials at given score thresholds."""
    lines = [
        "| set | " + " | ".join(f"score >= {s:g}: FA / FR" for s in scores) + " |",
        "|---|" + "---|" * len(scores),
    ]
    for r in results:
        target, nontarget = np.array(r.target_scores), np.array(r.nontarget_scores)
        cells = []
        for threshold in scores:
            far, frr = rates_at(target, nontarget, threshold)
            cells.append(f"{_pct(far)} / {_pct(frr)}")
        lines.append(f"| {r.set} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: Sequence[SetResult], out_dir: Path) -> list[Path]:
    """DET curves and score histograms as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    probit = np.vectorize(NormalDist().inv_cdf, otypes=[float])
    ticks = np.array([0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])

    fig, ax = plt.subplots(figsize=(6, 6))
    for r in results:
        curve = error_curve(np.array(r.target_scores), np.array(r.nontarget_scores))
        keep = (curve.far > 5e-4) & (curve.frr > 5e-4) & (curve.far < 0.5) & (curve.frr < 0.5)
        ax.plot(
            probit(curve.far[keep]), probit(curve.frr[keep]), label=f"{r.set} (EER {_pct(r.eer)})"
        )
    ax.set_xticks(probit(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(probit(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlabel("false accept rate (%)")
    ax.set_ylabel("false reject rate (%)")
    ax.set_title("DET curves per set")
    ax.grid(True, alpha=0.3)
    ax.legend()
    det = out_dir / "det.png"
    fig.savefig(det, dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, axes = plt.subplots(len(results), 1, figsize=(7, 2.4 * len(results)), squeeze=False)
    for ax, r in zip(axes[:, 0], results, strict=True):
        bins = np.linspace(
            min(min(r.nontarget_scores), min(r.target_scores)),
            max(max(r.nontarget_scores), max(r.target_scores)),
            60,
        )
        ax.hist(r.nontarget_scores, bins=bins, density=True, alpha=0.6, label="different speakers")
        ax.hist(r.target_scores, bins=bins, density=True, alpha=0.6, label="same speaker")
        ax.axvline(r.threshold, color="k", linestyle="--", linewidth=1, label="threshold")
        ax.set_title(r.set, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    hist = out_dir / "scores.png"
    fig.savefig(hist, dpi=110)
    plt.close(fig)
    return [det, hist]
