"""Process mining on an event log, vectorised with numpy.

Input is an :class:`EventArrays`: one integer code per event for case, activity and resource,
timestamps in microseconds (UTC). :func:`directly_follows` sorts the events by case, time and
file position (equal timestamps keep the file order, as pm4py does) and computes the
directly-follows graph: for every pair of activities *a → b* that follow each other in a case,
how often, and the waiting time between the two events (median, p90, mean, sum, max).
:func:`analyse` adds activity counts, start and end activities, variants, bottlenecks,
handovers, rework loops and the throughput-time distribution.

The numbers for the receipt log equal pm4py's ``discover_dfg`` / ``discover_performance_dfg``
(see ``tests/insights/test_process_pm4py.py``); medians are numpy medians (mean of the two
middle values for an even count), p90 is numpy's linear percentile.

Waiting and throughput times are calendar time by default; with ``hours`` (a
:class:`~rathaus.insights.process_hours.WorkingHours`) they are office time on working days of
the Land (:func:`~rathaus.insights.process_hours.work_clock`): the events are still ordered by
their real time, only the clock the waits are measured on changes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rathaus.insights.process_hours import WorkingHours, work_clock_outside

US = 1_000_000  # microseconds per second


@dataclass
class EventArrays:
    """An event log as parallel arrays (any order; :func:`sort_events` orders them)."""

    case: np.ndarray  # int64 codes into case_names
    activity: np.ndarray  # int64 codes into activity_names
    time_us: np.ndarray  # int64 microseconds since 1970-01-01 UTC
    position: np.ndarray  # int64 file order
    case_names: list[str]
    activity_names: list[str]
    resource: np.ndarray | None = None  # int64 codes into resource_names, -1 for none
    resource_names: list[str] = field(default_factory=list)
    resource_label: str = "Ressource"
    is_sorted: bool = False

    def __len__(self) -> int:
        return int(self.case.shape[0])


def _encode(values: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Integer codes in order of first appearance (a dict is faster than np.unique on str)."""
    index: dict[str, int] = {}
    setdefault = index.setdefault
    codes = [setdefault(v, len(index)) for v in values]
    return np.fromiter(codes, dtype=np.int64, count=len(codes)), list(index)


def from_columns(
    cases: Sequence[str],
    activities: Sequence[str],
    time_us: Sequence[int] | np.ndarray,
    resources: Sequence[str] | None = None,
    positions: Sequence[int] | np.ndarray | None = None,
    *,
    resource_label: str = "Ressource",
) -> EventArrays:
    """Build :class:`EventArrays` from plain columns (strings and microsecond timestamps)."""
    n = len(cases)
    case, case_names = _encode(cases)
    activity, activity_names = _encode(activities)
    resource, resource_names = None, []
    if resources is not None and any(resources):
        resource, resource_names = _encode(resources)
        if "" in resource_names:
            empty = resource_names.index("")
            resource = np.where(resource == empty, -1, resource)
    return EventArrays(
        case=case,
        activity=activity,
        time_us=np.asarray(time_us, dtype=np.int64),
        position=np.arange(n, dtype=np.int64)
        if positions is None
        else np.asarray(positions, dtype=np.int64),
        case_names=case_names,
        activity_names=activity_names,
        resource=resource,
        resource_names=resource_names,
        resource_label=resource_label,
    )


def sort_events(log: EventArrays) -> EventArrays:
    """Events ordered by case, then time, then file position (a stable order)."""
    if log.is_sorted:
        return log
    dc, dt, dp = np.diff(log.case), np.diff(log.time_us), np.diff(log.position)
    if bool(np.all((dc > 0) | ((dc == 0) & ((dt > 0) | ((dt == 0) & (dp > 0)))))):
        log.is_sorted = True  # already in order (the usual case): no copy, no sort
        return log
    order = np.lexsort((log.position, log.time_us, log.case))
    return EventArrays(
        case=log.case[order],
        activity=log.activity[order],
        time_us=log.time_us[order],
        position=log.position[order],
        case_names=log.case_names,
        activity_names=log.activity_names,
        resource=None if log.resource is None else log.resource[order],
        resource_names=log.resource_names,
        resource_label=log.resource_label,
        is_sorted=True,
    )


@dataclass
class GroupStats:
    """Per group (edge, activity, …): count and waiting-time statistics in seconds."""

    keys: np.ndarray
    count: np.ndarray
    median: np.ndarray
    p90: np.ndarray
    mean: np.ndarray
    total: np.ndarray
    maximum: np.ndarray


def _sorted_groups(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``keys`` and ``values`` sorted by key, then value. Non-negative integers (microseconds)
    whose combination fits into int64 are sorted as one composite number (much faster than a
    two-key lexsort); anything else by ``np.lexsort``."""
    if (
        values.dtype.kind in "iu"
        and keys.dtype.kind in "iu"
        and values.min() >= 0
        and keys.min() >= 0
    ):
        span = int(values.max()) + 1
        if (int(keys.max()) + 1) * span < 2**62:
            combined = np.sort(keys.astype(np.int64) * span + values)
            return combined // span, combined % span
    order = np.lexsort((values, keys))
    return keys[order], values[order]


def group_stats(keys: np.ndarray, values: np.ndarray, divisor: float = 1.0) -> GroupStats:
    """Count, median, p90 (linear, as numpy), mean, sum and max of ``values / divisor`` per
    distinct key (``values`` in microseconds with ``divisor=US`` gives seconds)."""
    if keys.size == 0:
        empty = np.zeros(0)
        return GroupStats(
            keys.astype(np.int64), empty.astype(np.int64), empty, empty, empty, empty, empty
        )
    k, raw = _sorted_groups(keys, values)
    w = raw / divisor if divisor != 1.0 else raw.astype(np.float64)
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    count = np.diff(np.r_[starts, k.size])
    lo, hi = starts + (count - 1) // 2, starts + count // 2
    median = (w[lo] + w[hi]) / 2
    rank = 0.9 * (count - 1)
    below = np.floor(rank).astype(np.int64)
    low = starts + below
    high = np.minimum(low + 1, starts + count - 1)
    p90 = w[low] + (rank - below) * (w[high] - w[low])
    total = np.add.reduceat(w, starts)
    return GroupStats(
        keys=k[starts],
        count=count,
        median=median,
        p90=p90,
        mean=total / count,
        total=total,
        maximum=w[starts + count - 1],
    )


@dataclass
class DirectlyFollows:
    """The directly-follows graph of a sorted log, plus the pairs it was built from."""

    log: EventArrays
    same: np.ndarray  # bool per event i: event i+1 is in the same case
    source: np.ndarray  # activity code of the first event of each pair
    target: np.ndarray
    wait: np.ndarray  # seconds between the two events of each pair
    wait_us: np.ndarray  # the same in microseconds (int64)
    edges: GroupStats  # keys are source * n_activities + target
    clock: np.ndarray  # per event: the time waits are measured on (µs; calendar or office time)
    outside_hours: int = 0  # events outside the office hours (business hours only)

    def edge_pairs(self) -> list[tuple[int, int]]:
        n = len(self.log.activity_names)
        return [(int(k) // n, int(k) % n) for k in self.edges.keys]


def directly_follows(log: EventArrays, hours: WorkingHours | None = None) -> DirectlyFollows:
    """The directly-follows graph with edge frequencies and waiting times (the fast core);
    waits in calendar time, or in office time when ``hours`` is given."""
    log = sort_events(log)
    n_act = max(len(log.activity_names), 1)
    clock, outside = (log.time_us, 0) if hours is None else work_clock_outside(log.time_us, hours)
    same = log.case[1:] == log.case[:-1]
    source = log.activity[:-1][same]
    target = log.activity[1:][same]
    wait_us = np.diff(clock)[same]
    edges = group_stats(source * n_act + target, wait_us, US)
    return DirectlyFollows(log, same, source, target, wait_us / US, wait_us, edges, clock, outside)


# -- the full analysis -------------------------------------------------------------------------


@dataclass
class ActivityRow:
    name: str
    events: int
    cases: int
    start: int
    end: int
    wait_total_s: float
    wait_median_s: float | None


@dataclass
class EdgeRow:
    source: str
    target: str
    count: int
    cases: int
    median_s: float
    p90_s: float
    mean_s: float
    total_s: float
    max_s: float
    share_of_wait: float
    kind: str = "vorwärts"  # vorwärts, schleife (self-loop), rücksprung (back-edge)


@dataclass
class VariantRow:
    rank: int
    activities: list[str]
    cases: int
    share: float
    median_throughput_s: float


@dataclass
class HandoverRow:
    source: str
    target: str
    count: int
    median_s: float
    total_s: float


@dataclass
class ReworkRow:
    activity: str
    cases: int
    repeats: int
    share_of_cases: float


@dataclass
class Throughput:
    cases: int
    median_s: float
    p90_s: float
    mean_s: float
    min_s: float
    max_s: float
    values_s: list[float]


@dataclass
class TimeBasis:
    """Which clock the waiting and throughput times of an analysis were measured on."""

    mode: str = "kalender"  # kalender or arbeitszeit
    label: str = "Kalenderzeit: alle Stunden, auch Nächte, Wochenenden und Feiertage"
    day_s: float = 86400.0  # one day of this clock (an office day in business hours)
    land: str | None = None
    start: str | None = None
    end: str | None = None

    @classmethod
    def of(cls, hours: WorkingHours | None) -> TimeBasis:
        if hours is None:
            return cls()
        return cls(
            mode="arbeitszeit",
            label=hours.label,
            day_s=hours.day_s,
            land=hours.land,
            start=hours.start,
            end=hours.end,
        )

    @property
    def business(self) -> bool:
        return self.mode == "arbeitszeit"

    @property
    def office_day(self) -> str:
        """The length of one day of this clock in German, e.g. ``8 Std.`` or ``7,5 Std.``."""
        return f"{round(self.day_s / 3600, 2):g}".replace(".", ",") + " Std."

    def fmt(self, seconds: float | None) -> str:
        """A duration in German; in business hours a day is an office day (``Arbeitstage``)."""
        if self.business:
            return format_duration(seconds, day_s=self.day_s, day_unit="Arbeitstage")
        return format_duration(seconds)


@dataclass
class ProcessAnalysis:
    events: int
    cases: int
    variants_total: int
    resource_label: str
    activities: list[ActivityRow]
    edges: list[EdgeRow]
    start: dict[str, int]
    end: dict[str, int]
    variants: list[VariantRow]
    bottleneck_edges: list[EdgeRow]
    bottleneck_activities: list[ActivityRow]
    handovers: list[HandoverRow]
    handover_summary: dict[str, Any]
    rework: list[ReworkRow]
    rework_cases: int
    throughput: Throughput
    depth: dict[str, int]
    filters: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    time_basis: TimeBasis = field(default_factory=TimeBasis)

    def edge(self, source: str, target: str) -> EdgeRow | None:
        return next((e for e in self.edges if e.source == source and e.target == target), None)

    def to_dict(self, *, with_values: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_values:
            data["throughput"].pop("values_s")
        return data


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else 0.0


def layers(
    n: int, starts: list[int], pairs: list[tuple[int, int]], counts: list[int]
) -> tuple[list[int], set[tuple[int, int]]]:
    """Layer of each activity and the back-edges (rework jumps) of the graph.

    A depth-first search from the start activities, strongest edges first, marks an edge that
    returns to an activity still on the search path as a back-edge; without them the graph is
    acyclic and each activity's layer is its longest distance from a start (self-loops are
    neither)."""
    out: dict[int, list[tuple[int, int]]] = {}
    for (a, b), c in zip(pairs, counts, strict=True):
        if a != b:
            out.setdefault(a, []).append((-c, b))
    for targets in out.values():
        targets.sort()
    state = [0] * n  # 0 new, 1 on the path, 2 done
    back: set[tuple[int, int]] = set()
    topo: list[int] = []
    roots = list(starts) + [i for i in range(n) if i not in set(starts)]
    for root in roots:
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(out.get(root, [])))]
        while stack:
            node, it = stack[-1]
            for _, nxt in it:
                if state[nxt] == 1:
                    back.add((node, nxt))
                elif state[nxt] == 0:
                    state[nxt] = 1
                    stack.append((nxt, iter(out.get(nxt, []))))
                    break
            else:
                state[node] = 2
                topo.append(node)
                stack.pop()
    depth = [0] * n
    for node in reversed(topo):  # reverse post-order is a topological order without back-edges
        for _, nxt in out.get(node, []):
            if (node, nxt) not in back and depth[nxt] < depth[node] + 1:
                depth[nxt] = depth[node] + 1
    return depth, back


def analyse(
    log: EventArrays,
    *,
    min_edge_count: int = 1,
    top_variants: int | None = None,
    variants_shown: int = 20,
    hours: WorkingHours | None = None,
) -> ProcessAnalysis:
    """Everything the process page shows. ``top_variants`` keeps only the cases of the *k*
    most frequent variants; ``min_edge_count`` drops rarer edges from the edge list (the
    statistics of the remaining edges do not change); ``hours`` measures waiting and
    throughput times in office time instead of calendar time."""
    log = sort_events(log)
    notes: list[str] = []
    n_act = len(log.activity_names)
    first = (
        np.flatnonzero(np.r_[True, log.case[1:] != log.case[:-1]])
        if len(log)
        else np.zeros(0, np.int64)
    )
    last = np.r_[first[1:] - 1, len(log) - 1] if len(log) else first

    # variants: the activity sequence of every case
    acts = log.activity.tolist()
    names = log.activity_names
    seqs = [tuple(acts[a : b + 1]) for a, b in zip(first.tolist(), last.tolist(), strict=True)]
    variant_count = Counter(seqs)
    ranked = variant_count.most_common()
    variants_total = len(ranked)
    if top_variants is not None and top_variants < variants_total:
        keep = {v for v, _ in ranked[:top_variants]}
        case_keep = np.fromiter((s in keep for s in seqs), dtype=bool, count=len(seqs))
        event_keep = np.repeat(case_keep, last - first + 1)
        kept = sum(c for _, c in ranked[:top_variants])
        notes.append(
            f"Gefiltert auf die {top_variants} häufigsten Varianten: {kept} von {len(seqs)} Fällen."
        )
        sub = EventArrays(
            case=log.case[event_keep],
            activity=log.activity[event_keep],
            time_us=log.time_us[event_keep],
            position=log.position[event_keep],
            case_names=log.case_names,
            activity_names=log.activity_names,
            resource=None if log.resource is None else log.resource[event_keep],
            resource_names=log.resource_names,
            resource_label=log.resource_label,
            is_sorted=True,
        )
        result = analyse(
            sub, min_edge_count=min_edge_count, variants_shown=variants_shown, hours=hours
        )
        result.notes = notes + result.notes
        result.filters["top_variants"] = top_variants
        result.variants_total = variants_total
        return result

    dfg = directly_follows(log, hours)
    if hours is not None and dfg.outside_hours:
        notes.append(
            f"{dfg.outside_hours} von {len(log)} Ereignissen "
            f"({round(100 * dfg.outside_hours / len(log))} %) liegen außerhalb der Arbeitszeit (abends, "
            "am Wochenende oder an Feiertagen); die Zeit bis zum nächsten Arbeitsbeginn zählt "
            "für sie nicht. Sind es viele, passt die gewählte Arbeitszeit nicht – oder die "
            "Zeitpunkte wurden ohne Zeitzone exportiert und gelten als UTC."
        )
    n_cases = int(first.size)
    through = (dfg.clock[last] - dfg.clock[first]) / US
    case_through = dict(zip(range(n_cases), through.tolist(), strict=True))

    # activities
    events_per = np.bincount(log.activity, minlength=n_act)
    case_act = np.unique(log.case * n_act + log.activity, return_counts=True)
    cases_per = np.bincount(case_act[0] % n_act, minlength=n_act)
    start_per = np.bincount(log.activity[first], minlength=n_act)
    end_per = np.bincount(log.activity[last], minlength=n_act)
    incoming = group_stats(dfg.target, dfg.wait_us, US)
    in_total = dict(zip(incoming.keys.tolist(), incoming.total.tolist(), strict=True))
    in_median = dict(zip(incoming.keys.tolist(), incoming.median.tolist(), strict=True))
    activities = [
        ActivityRow(
            name=names[i],
            events=int(events_per[i]),
            cases=int(cases_per[i]),
            start=int(start_per[i]),
            end=int(end_per[i]),
            wait_total_s=float(in_total.get(i, 0.0)),
            wait_median_s=in_median.get(i),
        )
        for i in range(n_act)
    ]
    activities.sort(key=lambda a: (-a.events, a.name))

    # edges, with the number of distinct cases per edge and the process layer for back-edges
    pairs = dfg.edge_pairs()
    pair_case = (
        np.repeat(np.arange(n_cases), last - first + 1)[:-1][dfg.same]
        if len(log)
        else np.zeros(0, np.int64)
    )
    edge_case = np.unique((dfg.source * n_act + dfg.target) * max(n_cases, 1) + pair_case)
    cases_per_edge = Counter((edge_case // max(n_cases, 1)).tolist())
    starts = [i for i in range(n_act) if start_per[i] > 0]
    depth, back = layers(n_act, starts, pairs, dfg.edges.count.tolist())
    total_wait = float(dfg.wait.sum()) or 1.0
    edges: list[EdgeRow] = []
    st = dfg.edges
    for j, (a, b) in enumerate(pairs):
        kind = "schleife" if a == b else ("rücksprung" if (a, b) in back else "vorwärts")
        edges.append(
            EdgeRow(
                source=names[a],
                target=names[b],
                count=int(st.count[j]),
                cases=int(cases_per_edge[int(st.keys[j])]),
                median_s=float(st.median[j]),
                p90_s=float(st.p90[j]),
                mean_s=float(st.mean[j]),
                total_s=float(st.total[j]),
                max_s=float(st.maximum[j]),
                share_of_wait=float(st.total[j]) / total_wait,
                kind=kind,
            )
        )
    edges.sort(key=lambda e: (-e.count, e.source, e.target))
    shown_edges = [e for e in edges if e.count >= min_edge_count]

    # variants
    variant_rows = []
    through_by_variant: dict[tuple[int, ...], list[float]] = {}
    for index, seq in enumerate(seqs):
        through_by_variant.setdefault(seq, []).append(case_through[index])
    for rank, (seq, count) in enumerate(ranked[:variants_shown], start=1):
        variant_rows.append(
            VariantRow(
                rank=rank,
                activities=[names[a] for a in seq],
                cases=count,
                share=count / n_cases if n_cases else 0.0,
                median_throughput_s=float(np.median(through_by_variant[seq])),
            )
        )

    # bottlenecks: where waiting time accumulates
    bottleneck_edges = sorted(
        (e for e in edges if e.total_s > 0), key=lambda e: (-e.total_s, -e.count)
    )[:10]
    bottleneck_activities = sorted(
        (a for a in activities if a.wait_total_s > 0), key=lambda a: -a.wait_total_s
    )[:10]

    # handovers between resources (or groups)
    handovers: list[HandoverRow] = []
    summary: dict[str, Any] = {"available": False, "label": log.resource_label}
    if log.resource is not None:
        r_src = log.resource[:-1][dfg.same]
        r_dst = log.resource[1:][dfg.same]
        known = (r_src >= 0) & (r_dst >= 0)
        change = known & (r_src != r_dst)
        stay = known & (r_src == r_dst)
        n_res = max(len(log.resource_names), 1)
        hs = group_stats(r_src[change] * n_res + r_dst[change], dfg.wait_us[change], US)
        order = np.argsort(-hs.total, kind="stable")[:10]
        for j in order.tolist():
            key = int(hs.keys[j])
            handovers.append(
                HandoverRow(
                    source=log.resource_names[key // n_res],
                    target=log.resource_names[key % n_res],
                    count=int(hs.count[j]),
                    median_s=float(hs.median[j]),
                    total_s=float(hs.total[j]),
                )
            )
        summary = {
            "available": True,
            "label": log.resource_label,
            "handovers": int(change.sum()),
            "same": int(stay.sum()),
            "median_handover_s": float(np.median(dfg.wait[change])) if change.any() else None,
            "median_same_s": float(np.median(dfg.wait[stay])) if stay.any() else None,
            "share_of_wait": float(dfg.wait[change].sum()) / total_wait,
        }

    # rework: an activity repeated within a case
    repeated = case_act[1] > 1
    rep_act = case_act[0][repeated] % n_act
    rep_cases = np.bincount(rep_act, minlength=n_act)
    rep_extra = np.bincount(rep_act, weights=case_act[1][repeated] - 1, minlength=n_act)
    rework = [
        ReworkRow(
            activity=names[i],
            cases=int(rep_cases[i]),
            repeats=int(rep_extra[i]),
            share_of_cases=int(rep_cases[i]) / n_cases if n_cases else 0.0,
        )
        for i in np.flatnonzero(rep_cases).tolist()
    ]
    rework.sort(key=lambda r: (-r.cases, r.activity))
    rework_cases = int(np.unique(case_act[0][repeated] // n_act).size)

    throughput = Throughput(
        cases=n_cases,
        median_s=_pct(through, 50),
        p90_s=_pct(through, 90),
        mean_s=float(through.mean()) if through.size else 0.0,
        min_s=float(through.min()) if through.size else 0.0,
        max_s=float(through.max()) if through.size else 0.0,
        values_s=through.tolist(),
    )
    return ProcessAnalysis(
        events=len(log),
        cases=n_cases,
        variants_total=variants_total,
        resource_label=log.resource_label,
        activities=activities,
        edges=shown_edges,
        start={names[i]: int(start_per[i]) for i in np.flatnonzero(start_per).tolist()},
        end={names[i]: int(end_per[i]) for i in np.flatnonzero(end_per).tolist()},
        variants=variant_rows,
        bottleneck_edges=bottleneck_edges,
        bottleneck_activities=bottleneck_activities,
        handovers=handovers,
        handover_summary=summary,
        rework=rework,
        rework_cases=rework_cases,
        throughput=throughput,
        depth={names[i]: depth[i] for i in range(n_act)},
        filters={"min_edge_count": min_edge_count, "top_variants": top_variants},
        notes=notes,
        time_basis=TimeBasis.of(hours),
    )


def format_duration(
    seconds: float | None, *, day_s: float = 86400.0, day_unit: str = "Tage"
) -> str:
    """German short form: ``45 s``, ``12 min``, ``3,5 Std.``, ``4,2 Tage`` (a day is ``day_s``
    seconds, e.g. ``2,5 Arbeitstage`` of 8 hours)."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    s = abs(seconds)
    if s < 60:
        text = f"{s:.0f} s"
    elif s < 3600:
        text = f"{s / 60:.0f} min"
    elif s < day_s:
        text = f"{s / 3600:.1f} Std.".replace(".", ",", 1)
    else:
        text = f"{s / day_s:.1f} {day_unit}".replace(".", ",", 1)
    return ("-" if seconds < 0 else "") + text
