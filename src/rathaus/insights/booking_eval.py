"""``rathaus eval bookings``: recall of the booking checks on known anomalies injected into a
real payment list, and how many hints the real payments get.

Protocol (seeded, so every run injects the same anomalies):

1. Read the list like an import with ``skip_invalid`` (rows without date or amount are left
   out). Pooled anonymised payees (``anonymous_pattern``) are never chosen for an injection.
2. Inject ``per_kind`` anomalies of each kind, every one with fresh payment ids:
   - ``duplikat``: an exact copy of a random real payment (supplier, amount, date, reference);
   - ``aehnlich``: a copy of a random real payment with a new reference, 1–7 days later (a
     weekend moved back to Friday), half with the same amount, half changed by up to ±0,5 %;
   - ``splitting``: 2 or 3 new payments to a random supplier, each 76–99 % of a random
     threshold of ``split_thresholds_cents``, within 14 days, on weekdays;
   - ``ausreisser``: a new payment to a random supplier with at least 10 payments, 10–50 times
     its median amount *and* above its largest real payment (supplier and factor are drawn
     again until it is: an amount inside a supplier's observed range is no outlier), on a
     random weekday.
3. Run all checks on real + injected payments. An injected anomaly counts as found when a flag
   of its kind contains it (a near duplicate may also be found as an exact duplicate; a split
   needs at least two of its parts in one ``splitting`` flag).
4. ``flags_per_1000``: flags that contain no injected payment, per 1000 real payments.
5. With several seeds (``seeds``), steps 2–4 are repeated on the list read once; 50 anomalies
   per kind leave one seed's recall uncertain by about ±3 of 50, so a target is judged on the
   mean over seeds, with its 95 % interval.
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
import random
import re
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from rathaus.insights.booking_checks import CheckConfig, Finding, Pay, run_checks, supplier_key
from rathaus.insights.bookings import parse_payments
from rathaus.insights.tabular import TableError

INJECTED_KINDS = ("duplikat", "aehnlich", "splitting", "ausreisser")
ACCEPTED = {
    "duplikat": {"duplikat"},
    "aehnlich": {"aehnlich", "duplikat"},
    "splitting": {"splitting"},
    "ausreisser": {"ausreisser"},
}


def read_pays(path: Path, limit: int | None = None) -> tuple[list[Pay], int]:
    """The payments of a list (gzip allowed) and the number of rows skipped."""
    if not path.is_file():
        raise TableError(f"Die Datei {path} gibt es nicht. Bitte den Pfad prüfen.")
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if limit:
        lines = data.split(b"\n")
        data = b"\n".join(lines[: limit + 1])
    parsed = parse_payments(data, path.name.removesuffix(".gz"), skip_invalid=True)
    pays = [
        Pay(
            id=r["row_number"],
            supplier=r["supplier"],
            amount_cents=r["amount_cents"],
            booked_on=r["booked_on"],
            reference=r["reference"],
            category=r["category"],
            unit=r["unit"],
            row=r["row_number"],
        )
        for r in parsed.rows
    ]
    return pays, len(parsed.skipped)


def _weekday(day: dt.date, back: bool = True) -> dt.date:
    while day.weekday() >= 5:
        day += dt.timedelta(days=-1 if back else 1)
    return day


def inject(
    pays: list[Pay], config: CheckConfig, *, seed: int = 2024, per_kind: int = 50
) -> tuple[list[Pay], list[dict[str, Any]]]:
    """Real payments plus injected anomalies, and the list of anomalies (kind, payment ids)."""
    rng = random.Random(seed)
    anonymous = re.compile(config.anonymous_pattern, re.IGNORECASE)
    eligible = [p for p in pays if p.amount_cents > 0 and not anonymous.search(p.supplier)]
    by_supplier: dict[str, list[Pay]] = defaultdict(list)
    for p in eligible:
        by_supplier[supplier_key(p.supplier)].append(p)
    suppliers = sorted(by_supplier)
    frequent = [s for s in suppliers if len(by_supplier[s]) >= 10]
    start = min(p.booked_on for p in pays)
    days = (max(p.booked_on for p in pays) - start).days
    next_id = max(p.id for p in pays) + 1
    out = list(pays)
    anomalies: list[dict[str, Any]] = []

    def add(p: Pay) -> int:
        nonlocal next_id
        p = replace(p, id=next_id, row=0)
        next_id += 1
        out.append(p)
        return p.id

    def new_ref() -> str:
        return f"INJ{rng.randrange(10**7, 10**8)}_1"

    for _ in range(per_kind):
        original = rng.choice(eligible)
        anomalies.append({"kind": "duplikat", "ids": [add(original)], "of": original.id})
    for i in range(per_kind):
        original = rng.choice(eligible)
        shifted = _weekday(original.booked_on + dt.timedelta(days=rng.randint(1, 7)))
        amount = original.amount_cents
        if i % 2:
            amount = round(amount * (1 + rng.uniform(-0.005, 0.005)))
        copy = replace(original, booked_on=shifted, amount_cents=amount, reference=new_ref())
        anomalies.append({"kind": "aehnlich", "ids": [add(copy)], "of": original.id})
    thresholds = sorted(config.split_thresholds_cents)
    for _ in range(per_kind):
        template = rng.choice(by_supplier[rng.choice(suppliers)])
        threshold = rng.choice(thresholds)
        first = _weekday(start + dt.timedelta(days=rng.randint(0, max(days - 14, 0))), False)
        ids = []
        for _part in range(rng.choice((2, 2, 3))):
            on = _weekday(first + dt.timedelta(days=rng.randint(0, 14)))
            amount = round(threshold * rng.uniform(0.76, 0.99))
            part = replace(
                template, booked_on=max(on, first), amount_cents=amount, reference=new_ref()
            )
            ids.append(add(part))
        anomalies.append({"kind": "splitting", "ids": ids, "threshold_cents": threshold})
    for _ in range(per_kind):
        # an outlier must lie outside the supplier's range: 10–50 times the median *and* above
        # its largest payment (otherwise draw again; see docs/bookings.md)
        while True:
            group = by_supplier[rng.choice(frequent)]
            median = statistics.median(p.amount_cents for p in group)
            factor = rng.uniform(10, 50)
            if median * factor > max(p.amount_cents for p in group):
                break
        on = _weekday(start + dt.timedelta(days=rng.randint(0, days)))
        template = rng.choice(group)
        outlier = replace(
            template, amount_cents=round(median * factor), booked_on=on, reference=new_ref()
        )
        anomalies.append({"kind": "ausreisser", "ids": [add(outlier)], "factor": round(factor, 1)})
    return out, anomalies


def _found(anomaly: dict[str, Any], flags_by_payment: dict[int, list[Finding]]) -> bool:
    accepted = ACCEPTED[anomaly["kind"]]
    if anomaly["kind"] == "splitting":
        hits: Counter[str] = Counter()
        for pid in anomaly["ids"]:
            for f in flags_by_payment.get(pid, []):
                if f.kind in accepted:
                    hits[f.key] += 1
        return any(n >= 2 for n in hits.values())
    return any(f.kind in accepted for pid in anomaly["ids"] for f in flags_by_payment.get(pid, []))


def _measure(real: list[Pay], config: CheckConfig, *, seed: int, per_kind: int) -> dict[str, Any]:
    """One seed: inject, run all checks, count found anomalies and flags on real payments."""
    pays, anomalies = inject(real, config, seed=seed, per_kind=per_kind)
    injected = {pid for a in anomalies for pid in a["ids"]}
    began = time.perf_counter()
    findings = run_checks(pays, config)
    seconds = time.perf_counter() - began
    flags_by_payment: dict[int, list[Finding]] = defaultdict(list)
    for f in findings:
        for pid in f.payment_ids:
            flags_by_payment[pid].append(f)
    per_kind_found: Counter[str] = Counter()
    missed = []
    for a in anomalies:
        if _found(a, flags_by_payment):
            per_kind_found[a["kind"]] += 1
        elif len(missed) < 20:
            missed.append(a)
    real_flags = [f for f in findings if not injected.intersection(f.payment_ids)]
    total = len(anomalies)
    return {
        "injected_anomalies": total,
        "recall": round(sum(per_kind_found.values()) / total, 4) if total else 0.0,
        "recall_by_kind": {
            k: round(per_kind_found[k] / per_kind, 4) if per_kind else 0.0 for k in INJECTED_KINDS
        },
        "flags_total": len(findings),
        "flags_on_real": len(real_flags),
        "flags_per_1000": round(1000 * len(real_flags) / len(real), 2) if real else 0.0,
        "flags_by_kind": dict(Counter(f.kind for f in findings)),
        "flags_on_real_by_kind": dict(Counter(f.kind for f in real_flags)),
        "seconds_checks": round(seconds, 2),
        "missed": missed,
    }


def _spread(values: list[float]) -> dict[str, Any]:
    """Mean, min, max and a 95 % interval for the mean over seeds (Student's t; the seeds are
    independent draws of anomalies from the same list)."""
    mean = statistics.fmean(values)
    out: dict[str, Any] = {"mean": round(mean, 4), "min": min(values), "max": max(values)}
    if len(values) > 1:
        from scipy.stats import t

        half = t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
        out["sd"] = round(statistics.stdev(values), 4)
        out["ci95"] = [round(mean - half, 4), round(mean + half, 4)]
    return out


def summarize_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread of recall (overall and per kind) and of flags per 1000 over several
    seeds, with the figures of each seed."""
    return {
        "seeds": [r["seed"] for r in runs],
        "recall": _spread([r["recall"] for r in runs]),
        "recall_by_kind": {
            k: _spread([r["recall_by_kind"][k] for r in runs]) for k in INJECTED_KINDS
        },
        "flags_per_1000": _spread([r["flags_per_1000"] for r in runs]),
        "flags_on_real_by_kind": {
            k: round(statistics.fmean(r["flags_on_real_by_kind"].get(k, 0) for r in runs), 1)
            for k in sorted({k for r in runs for k in r["flags_on_real_by_kind"]})
        },
        "per_seed": [
            {
                "seed": r["seed"],
                "recall": r["recall"],
                "recall_by_kind": r["recall_by_kind"],
                "flags_per_1000": r["flags_per_1000"],
            }
            for r in runs
        ],
        "seconds_checks": round(sum(r["seconds_checks"] for r in runs), 1),
    }


def evaluate_bookings(
    path: Path,
    *,
    config: CheckConfig | None = None,
    seed: int = 2024,
    per_kind: int = 50,
    limit: int | None = None,
    seeds: int = 1,
) -> dict[str, Any]:
    """Inject, check, measure; see the module docstring for the protocol. With ``seeds`` > 1
    the list is read once and the injection is repeated with ``seed``, ``seed + 1``, …; the
    single-seed fields stay those of ``seed`` and ``multi_seed`` holds mean and spread."""
    config = config or CheckConfig(holiday_country="GB", holiday_subdiv="ENG", currency="£")
    began = time.perf_counter()
    real, skipped = read_pays(path, limit)
    first = _measure(real, config, seed=seed, per_kind=per_kind)
    result: dict[str, Any] = {
        "data": path.name,
        "seed": seed,
        "real_payments": len(real),
        "skipped_rows": skipped,
        **first,
        "config": config.to_dict(),
    }
    if seeds > 1:
        runs = [{"seed": seed, **first}]
        runs += [
            {"seed": s, **_measure(real, config, seed=s, per_kind=per_kind)}
            for s in range(seed + 1, seed + seeds)
        ]
        result["multi_seed"] = summarize_seeds(runs)
        result["multi_seed"]["seconds_total"] = round(time.perf_counter() - began, 1)
    return result
