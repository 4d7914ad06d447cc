"""Per-label statistics over cases: the one rule for what is counted and what is left out.

``evaluate``'s summary.json, ``compare``'s table and the study report all aggregate through here:

- a case where the label is empty in both prediction and reference (or absent from the case's metrics, which
  lists the labels present on either side) is left out of every metric of that label: ``n_both_empty``;
- a value that is not finite is left out of that metric only and counted in ``skipped``: the infinite
  distances (HD, HD95, HD99.9, ASSD) of a one-sided empty case, and undefined ratios (NaN);
- what is left gives the mean and the population standard deviation.

The mean over labels (summary.json's ``foreground_mean``, the tables' "mean" column) is the mean of the
per-label means of the labels that have one.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ImprovedNNUNetLib.evaluation.results import METRIC_KEYS, STATUS_BOTH_EMPTY, STATUS_OK, CaseMetrics

NUMERIC_KEYS = tuple(k for k in METRIC_KEYS if k != "status")


@dataclass
class Stat:
    """Mean, population standard deviation and count of some values (NaN, NaN, 0 for none)."""

    mean: float
    sd: float
    count: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat:
        values = np.asarray(list(values), dtype=float)
        if values.size == 0:
            return cls(math.nan, math.nan, 0)
        return cls(float(values.mean()), float(values.std()), int(values.size))

    def text(self, scale: float = 1.0, digits: int = 1) -> str:
        return "-" if self.count == 0 else f"{self.mean * scale:.{digits}f}±{self.sd * scale:.{digits}f}"


@dataclass
class LabelAggregate:
    """One label's statistics over cases, with the counts of what was left out."""

    label: int
    n_cases: int  # cases aggregated
    n_both_empty: int  # left out of every metric
    n_one_side_empty: int  # counted; their distances are infinite, so skipped by the distance metrics
    stats: dict[str, Stat] = field(default_factory=dict)  # by summary.json key

    @property
    def n_counted(self) -> int:
        """Cases where the label is on at least one side."""
        return self.n_cases - self.n_both_empty

    def skipped(self, key: str) -> int:
        """Counted cases left out of ``key`` because their value is not finite."""
        return self.n_counted - self.stats[key].count


def counted(metrics: CaseMetrics, label: int):
    """The label's metrics of one case, or None where the label is empty on both sides."""
    m = metrics.labels.get(label)
    return None if m is None or m.status == STATUS_BOTH_EMPTY else m


def label_values(cases: Mapping[str, CaseMetrics], label: int, key: str) -> dict[str, float]:
    """{case id: value} of one metric of one label: the counted cases with a finite value."""
    out = {}
    for case, metrics in cases.items():
        m = counted(metrics, label)
        if m is not None:
            value = m.to_dict()[key]
            if math.isfinite(value):
                out[case] = value
    return out


def aggregate_label(cases: Iterable[CaseMetrics], label: int, keys: Iterable[str] = NUMERIC_KEYS) -> LabelAggregate:
    """The label's statistics over ``cases`` (the rule in this module's docstring)."""
    cases = list(cases)
    kept = [m for m in (counted(c, label) for c in cases) if m is not None]
    rows = [m.to_dict() for m in kept]
    stats = {key: Stat.of(v for v in (r[key] for r in rows) if math.isfinite(v)) for key in keys}
    return LabelAggregate(label, len(cases), len(cases) - len(kept), sum(m.status != STATUS_OK for m in kept), stats)


def mean_of_labels(aggregates: Iterable[LabelAggregate], key: str) -> Stat:
    """Mean (and spread) over labels of the per-label means of ``key``; labels without one are left out."""
    return Stat.of(a.stats[key].mean for a in aggregates if a.stats[key].count)
