"""The benchmark's PNG figures (matplotlib's Agg canvas: no display, no global pyplot state).

- `roc_pr_curves`: ROC and precision-recall curves of every rim method on one pair of axes;
- `rate_violins`: per-patient LTPR and LFPR of every method, as violins;
- `bland_altman`: per-patient lesion volume, prediction minus truth against their mean;
- `count_scatter`: per-patient lesion counts, prediction against truth, with Lin's CCC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..metrics.agreement import lins_ccc
from ..metrics.rim import ranking_curves, ranking_metrics

Pairs = Mapping[str, tuple[Sequence[float], Sequence[float]]]


def _figure(columns: int, width_in: float = 5.0) -> tuple[Figure, list]:
    figure = Figure(figsize=(width_in * columns, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, columns)
    return figure, list(np.atleast_1d(axes))


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path)
    return path


def roc_pr_curves(curves: Pairs, path: Path, title: str = "rim lesions") -> Path:
    """``curves``: method → (truth labels 0/1, scores)."""
    figure, (roc, pr) = _figure(2)
    for name, (labels, scores) in curves.items():
        points, areas = ranking_curves(labels, scores), ranking_metrics(labels, scores)
        roc.plot(points["fpr"], points["tpr"], label=f"{name} (AUC {areas['roc_auc']:.3f})")
        pr.step(points["tpr"][1:], points["precision"], where="pre",
                label=f"{name} (AP {areas['pr_auc']:.3f})")
    roc.plot([0, 1], [0, 1], linestyle=":", color="grey")
    roc.set(xlabel="1 − specificity", ylabel="sensitivity", title=f"{title}: ROC")
    pr.set(xlabel="recall", ylabel="precision", title=f"{title}: precision-recall")
    for axes in (roc, pr):
        axes.set(xlim=(0, 1), ylim=(0, 1.02))
        axes.legend(fontsize="small", loc="lower right" if axes is roc else "lower left")
    return _save(figure, path)


def rate_violins(rates: Pairs, path: Path) -> Path:
    """``rates``: method → (per-patient LTPRs, per-patient LFPRs); NaNs are left out."""
    figure, axes = _figure(2, width_in=max(5.0, 1.4 * len(rates)))
    names = list(rates)
    for index, (axis, rate) in enumerate(zip(axes, ("LTPR", "LFPR"), strict=True)):
        values = [np.asarray(rates[name][index], float) for name in names]
        values = [v[~np.isnan(v)] if (~np.isnan(v)).any() else np.array([np.nan])
                  for v in values]
        shown = [i for i, v in enumerate(values) if not np.isnan(v).all()]
        if shown:
            axis.violinplot([values[i] for i in shown], positions=[i + 1 for i in shown],
                            showmedians=True)
        axis.set_xticks(range(1, len(names) + 1), names, rotation=20, ha="right",
                        fontsize="small")
        axis.set(ylim=(-0.02, 1.02), ylabel=f"per-patient {rate}", title=rate)
    return _save(figure, path)


def bland_altman(volumes: Pairs, path: Path, unit: str = "µL") -> Path:
    """``volumes``: method → (truth volumes, predicted volumes), one pair per patient."""
    figure, (axis,) = _figure(1, width_in=6.5)
    for name, (truth, pred) in volumes.items():
        truth, pred = np.asarray(truth, float), np.asarray(pred, float)
        difference = pred - truth
        line = axis.scatter((truth + pred) / 2, difference,
                            label=f"{name} (bias {difference.mean():.0f} {unit})")
        colour = line.get_facecolor()[0]
        for level in difference.mean() + np.array([-1.96, 0.0, 1.96]) * difference.std():
            axis.axhline(level, color=colour, linestyle="--", linewidth=0.8)
    axis.axhline(0, color="grey", linewidth=0.8)
    axis.set(xlabel=f"mean of truth and prediction ({unit})",
             ylabel=f"prediction − truth ({unit})",
             title="lesion volume per patient (Bland–Altman; bias ± 1.96 SD)")
    axis.legend(fontsize="small")
    return _save(figure, path)


def count_scatter(counts: Pairs, path: Path) -> Path:
    """``counts``: method → (truth lesion counts, predicted counts), one pair per patient."""
    figure, (axis,) = _figure(1, width_in=6.0)
    highest = 1.0
    for name, (truth, pred) in counts.items():
        axis.scatter(truth, pred, label=f"{name} (CCC {lins_ccc(truth, pred):.2f})")
        highest = max(highest, *truth, *pred)
    axis.plot([0, highest], [0, highest], linestyle=":", color="grey")
    axis.set(xlabel="truth lesions", ylabel="predicted lesions",
             title="lesion count per patient (Lin's CCC)")
    axis.legend(fontsize="small")
    return _save(figure, path)
