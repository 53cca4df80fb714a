"""The booking checks of the Kämmerei on plain payment rows: duplicates, near duplicates, split
orders under procurement thresholds, Benford, outliers, unusual dates and new suppliers.

Every check is a small function from a list of :class:`Pay` to a list of :class:`Finding`; no
database, so the evaluation (:mod:`rathaus.insights.booking_eval`) and the service
(:mod:`rathaus.insights.bookings`) run the very same code. A finding is a *hint* for a person
in the Kämmerei, never an accusation: each explanation says what was seen, with its numbers,
and what the usual harmless reasons are. Each finding has a stable ``key`` (its kind and the
payments or group it is about), so running the checks again recognises earlier findings.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS: dict[str, str] = {
    "duplikat": "Doppelte Zahlung",
    "aehnlich": "Ähnliche Zahlung",
    "splitting": "Mögliche Auftragsteilung",
    "benford": "Ziffernverteilung (Benford)",
    "ausreisser": "Ungewöhnlich hoher Betrag",
    "datum": "Ungewöhnlicher Buchungstag",
    "neu": "Neuer Lieferant mit hohem Betrag",
}

BENFORD = [math.log10(1 + 1 / d) for d in range(1, 10)]
WEEKDAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")


@dataclass(frozen=True)
class Pay:
    """One payment as the checks see it; ``amount_cents`` in the list's currency."""

    id: int
    supplier: str
    amount_cents: int
    booked_on: dt.date
    reference: str = ""
    category: str = ""
    unit: str = ""
    row: int = 0


@dataclass
class CheckConfig:
    """Thresholds of the checks. Amounts in cents of the list's currency."""

    checks: tuple[str, ...] = tuple(KINDS)
    currency: str = "€"
    # near duplicates: amount within max(tolerance_pct %, tolerance_cents), dates within days
    near_days: int = 7
    near_tolerance_pct: float = 1.0
    near_tolerance_cents: int = 100
    near_max_group: int = 4
    near_p: float = 0.0175
    near_gap_width: float = 1.5
    near_prior_weight: float = 1.0
    near_class_pct: float = 0.1
    # a pair with a payment on a weekday the supplier is rarely paid on (off its payment
    # run) counts as less routine; the list's weekday shares count like this many payments
    # (0 = weekdays ignored)
    near_weekday_weight: float = 20.0
    # split orders: each payment in [band × threshold, threshold), within days, sum ≥ threshold
    split_thresholds_cents: tuple[int, ...] = (1_000_00, 5_000_00, 25_000_00, 100_000_00)
    split_days: int = 30
    split_band: float = 0.75
    split_p: float = 0.025
    split_prior_weight: float = 50.0
    # Benford first digits per supplier
    benford_min_payments: int = 100
    benford_min_amount_cents: int = 10_00
    benford_mad: float = 0.015
    benford_p: float = 0.001
    # outliers on a log scale (median / MAD)
    outlier_z: float = 6.0
    outlier_factor: float = 10.0
    outlier_min_supplier: int = 8
    outlier_category_z: float = 8.0
    outlier_category_factor: float = 20.0
    outlier_min_category: int = 30
    # unusual dates
    holiday_country: str = "DE"
    holiday_subdiv: str | None = "BW"
    # new suppliers
    new_amount_cents: int = 25_000_00
    new_days: int = 30
    new_warmup_days: int = 90
    # payments to pooled, anonymised payees (private persons) are not one supplier
    anonymous_pattern: str = (
        r"\bredacted\b|personal data|personal details|anonymi|geschw[äa]rzt|privatperson"
    )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = list(self.checks)
        data["split_thresholds_cents"] = list(self.split_thresholds_cents)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name in ("checks", "split_thresholds_cents"):
            if name in known:
                known[name] = tuple(known[name])
        return cls(**known)


@dataclass
class Finding:
    """A hint for the review queue: what, about which payments, why (German), how strong."""

    kind: str
    key: str
    supplier: str
    payment_ids: list[int]
    score: float
    explanation: str
    details: dict[str, Any] = field(default_factory=dict)


# -- formatting --------------------------------------------------------------------------------


def money(cents: int, currency: str = "€") -> str:
    """``1.471,60 €`` (German grouping and decimal comma)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole:,}".replace(",", ".") + f",{rest:02d} {currency}".rstrip()


def day(value: dt.date) -> str:
    return value.strftime("%d.%m.%Y")


def _num(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}".replace(".", ",")


def supplier_key(name: str) -> str:
    """Suppliers compared without case, punctuation and extra spaces."""
    return " ".join(re.sub(r"[^\w]+", " ", name.casefold()).split())


def _by_supplier(payments: Iterable[Pay], config: CheckConfig) -> dict[str, list[Pay]]:
    """Payments per supplier; pooled anonymised payees (``anonymous_pattern``) and payments
    without a supplier are left out, as they are many different people."""
    anonymous = (
        re.compile(config.anonymous_pattern, re.IGNORECASE) if config.anonymous_pattern else None
    )
    groups: dict[str, list[Pay]] = defaultdict(list)
    for p in payments:
        key = supplier_key(p.supplier)
        if key and not (anonymous and anonymous.search(p.supplier)):
            groups[key].append(p)
    return groups


def reference_stem(reference: str) -> str:
    """A reference without a trailing position number (``46282935_2`` → ``46282935``): two
    positions of the same document are not two documents."""
    return re.sub(r"\s*[_/.\-]\s*\d{1,3}$", "", reference.strip().casefold())


def poisson_tail(k: int, lam: float) -> float:
    """P(X ≥ k) for X ~ Poisson(lam)."""
    if k <= 0:
        return 1.0
    term = math.exp(-lam)
    below = term
    for i in range(1, k):
        term *= lam / i
        below += term
    return max(0.0, 1.0 - below)


def binomial_tail(k: int, n: int, share: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, share)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    share = min(max(share, 0.0), 1.0)
    return sum(math.comb(n, i) * share**i * (1 - share) ** (n - i) for i in range(k, n + 1))


def _ids_key(kind: str, payments: Iterable[Pay]) -> str:
    return f"{kind}:" + ",".join(str(i) for i in sorted(p.id for p in payments))


def _listing(payments: Sequence[Pay], currency: str, limit: int = 6) -> str:
    shown = [
        f"{money(p.amount_cents, currency)} am {day(p.booked_on)}"
        + (f" (Beleg {p.reference})" if p.reference else "")
        for p in sorted(payments, key=lambda p: (p.booked_on, p.id))[:limit]
    ]
    more = len(payments) - limit
    return "; ".join(shown) + (f" und {more} weitere" if more > 0 else "")


# -- the checks --------------------------------------------------------------------------------


def exact_duplicates(payments: Sequence[Pay], config: CheckConfig) -> list[Finding]:
    """Same supplier, amount, date and reference (or both without reference)."""
    groups: dict[tuple[str, int, dt.date, str], list[Pay]] = defaultdict(list)
    for p in payments:
        key = (supplier_key(p.supplier), p.amount_cents, p.booked_on, p.reference.casefold())
        groups[key].append(p)
    findings = []
    for (_s, amount, on, ref), group in groups.items():
        if len(group) < 2 or amount == 0:
            continue
        what = f"dieselbe Belegnummer {group[0].reference}" if ref else "keine Belegnummer"
        findings.append(
            Finding(
                kind="duplikat",
                key=_ids_key("duplikat", group),
                supplier=group[0].supplier,
                payment_ids=sorted(p.id for p in group),
                score=1.0,
                explanation=(
                    f"{len(group)} Zahlungen an {group[0].supplier} über je "
                    f"{money(amount, config.currency)} am {day(on)} haben {what}. Das kann eine "
                    "doppelt erfasste Rechnung sein – oder ein doppelt exportierter Datensatz. "
                    "Bitte mit dem Beleg abgleichen."
                ),
                details={"amount_cents": amount, "date": on.isoformat(), "count": len(group)},
            )
        )
    return findings


class _Components:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def _active_days(group: Sequence[Pay]) -> int:
    dates = [p.booked_on for p in group]
    return (max(dates) - min(dates)).days + 1


def _gap_band(gap: int, width: float) -> tuple[float, float]:
    """Gaps (days) that count as "about ``gap``": ``1 + d`` within a factor ``width`` of
    ``1 + gap`` (0 → only 0; 3 → 2…5; 7 → 5…11)."""
    return (1 + gap) / width - 1, (1 + gap) * width - 1


def _neighbour_gaps(members: Sequence[Pay], stems: dict[int, str]) -> list[int]:
    """For each payment, the days to the nearest other payment of another document."""
    ordered = sorted(members, key=lambda p: (p.booked_on, p.id))
    best: list[int | None] = [None] * len(ordered)
    for indices in (range(len(ordered)), range(len(ordered) - 1, -1, -1)):
        last: tuple[str, dt.date] | None = None  # latest document seen and its date
        other: dt.date | None = None  # latest date of any other document before that
        for i in indices:
            p = ordered[i]
            stem = stems[p.id]
            seen = other if last is not None and last[0] == stem else (last and last[1])
            if seen is not None:
                gap = abs((p.booked_on - seen).days)
                best[i] = gap if best[i] is None else min(best[i], gap)  # type: ignore[type-var]
            if last is None or last[0] != stem:
                other = last[1] if last else None
            last = (stem, p.booked_on)
    return [g for g in best if g is not None]


def _timing(payments: Sequence[Pay]) -> Callable[[float, float], float]:
    """For a supplier: how many of its other payments lie, on average, between ``low`` and
    ``high`` days away from one of its payments (any amount; a pair under test is taken out).
    Weekly payment runs make 0 and 7 days common and 3 days rare."""
    per_day: dict[dt.date, int] = defaultdict(int)
    for p in payments:
        per_day[p.booked_on] += 1
    n = len(payments)
    cache: dict[tuple[int, int], float] = {}

    def around(low: float, high: float) -> float:
        band = (math.ceil(max(low, 0)), math.floor(high))
        if band not in cache:
            total = 0
            for on, count in per_day.items():
                for d in range(band[0], band[1] + 1):
                    if d == 0:
                        total += count * (count - 1)
                    else:
                        total += count * (
                            per_day.get(on + dt.timedelta(days=d), 0)
                            + per_day.get(on - dt.timedelta(days=d), 0)
                        )
            cache[band] = max(0.0, (total - 2) / max(n - 2, 1))
        return cache[band]

    return around


@dataclass
class _OffDay:
    """A payment of a pair on a weekday the supplier is rarely paid on: its own share of
    payments on that weekday (without the pair), the list's, the blend and the factor
    (``blended × 5``, at most 1: no effect when payments spread evenly over the working days)."""

    payment: Pay
    own_share: float | None
    list_share: float
    share: float
    factor: float


@dataclass
class _Rhythm:
    """How usual a gap of ``gap`` days between two payments of about one amount is for a
    supplier: ``usual`` of ``others`` further payments of that amount have their nearest
    neighbour (another document) about as far away; ``chance`` blends that share with a
    uniform-timing prior for suppliers with few such payments."""

    others: int
    usual: int
    chance: float
    typical_gap: float | None
    off_day: _OffDay | None = None


def _rhythm(
    a: Pay,
    b: Pay,
    ordered: Sequence[Pay],
    amounts: list[int],
    stems: dict[int, str],
    timing: Callable[[float, float], float],
    config: CheckConfig,
) -> _Rhythm:
    spread = max(abs(b.amount_cents - a.amount_cents), a.amount_cents * config.near_class_pct / 100)
    lo = bisect.bisect_left(amounts, a.amount_cents - spread)
    hi = bisect.bisect_right(amounts, a.amount_cents + spread)
    others = [p for p in ordered[lo:hi] if p.id != a.id and p.id != b.id]
    gap = abs((b.booked_on - a.booked_on).days)
    low, high = _gap_band(gap, config.near_gap_width)
    gaps = _neighbour_gaps(others, stems)
    usual = sum(1 for d in gaps if low <= d <= high)
    share = (len(others) + 1) / max(len(ordered), 1)
    prior = 1 - math.exp(-share * timing(low, high))
    weight = config.near_prior_weight
    chance = (usual + weight * prior) / (len(others) + weight)
    typical = statistics.median(gaps) if len(gaps) >= 3 else None
    return _Rhythm(len(others), usual, chance, typical)


def near_duplicates(payments: Sequence[Pay], config: CheckConfig) -> list[Finding]:
    """Same supplier, amount within the tolerance, dates at most ``near_days`` apart and a
    different document (positions of one document, ``4711_1``/``4711_2``, count as one).

    Suppliers paid the same amount again and again (weekly rent, postage, day rates, same-day
    batches) produce such pairs by routine. So each pair is set against the supplier's own
    rhythm for that amount (see :func:`_rhythm`): among its other payments of about that amount
    (within the pair's own difference), how many have their nearest neighbour of another
    document about as many days away as the pair? A pair is flagged only when that share is
    below ``near_p``; groups of more than ``near_max_group`` payments are batches. A pair with
    a payment on a weekday the supplier is rarely paid on (off its payment run, see
    :func:`_off_day`) has that share lowered, as such a second payment is rarely routine."""
    groups = _by_supplier(payments, config)
    listed = [0] * 7
    for group in groups.values():
        for p in group:
            listed[p.booked_on.weekday()] += 1
    total = max(sum(listed), 1)
    list_weekdays = [c / total for c in listed]
    findings = []
    for group in groups.values():
        findings.extend(_near_in_group(group, config, list_weekdays))
    return findings


def _off_day(
    a: Pay, b: Pay, counts: list[int], n: int, list_weekdays: list[float], config: CheckConfig
) -> _OffDay | None:
    """The payment of the pair on the weekday least usual for the supplier, when that weekday
    is rarer than an even spread over five working days (see ``near_weekday_weight``).

    Most lists are paid in runs (Oxford: 89 % on Tuesdays); a second payment of the same
    amount outside the run is a manual or urgent payment and so less likely routine."""
    weight = config.near_weekday_weight
    if weight <= 0:
        return None
    rarest: _OffDay | None = None
    for p in (a, b):
        w = p.booked_on.weekday()
        own = counts[w] - sum(1 for q in (a, b) if q.booked_on.weekday() == w)
        rest = n - 2
        share = (own + weight * list_weekdays[w]) / (rest + weight)
        factor = min(1.0, 5 * share)
        if factor < 1.0 and (rarest is None or factor < rarest.factor):
            own_share = own / rest if rest > 0 else None
            rarest = _OffDay(p, own_share, list_weekdays[w], share, factor)
    return rarest


def _off_day_text(off: _OffDay | None) -> str:
    if off is None:
        return ""
    weekday = WEEKDAYS[off.payment.booked_on.weekday()]
    own = (
        ""
        if off.own_share is None
        else f"an diesen Lieferanten sonst {_num(100 * off.own_share)} %, "
    )
    return (
        f". Die Zahlung am {day(off.payment.booked_on)} liegt außerhalb der üblichen Zahltage: "
        f"an einem {weekday} gehen {own}in der ganzen Liste {_num(100 * off.list_share)} % der "
        f"Zahlungen (gewichtet {_num(100 * off.share)} %); eine zweite Zahlung außerhalb des "
        "Zahllaufs ist seltener Routine"
    )


def _off_day_details(off: _OffDay | None) -> dict[str, Any] | None:
    if off is None:
        return None
    return {
        "payment_id": off.payment.id,
        "weekday": WEEKDAYS[off.payment.booked_on.weekday()],
        "own_share": None if off.own_share is None else round(off.own_share, 4),
        "list_share": round(off.list_share, 4),
        "blended_share": round(off.share, 4),
        "factor": round(off.factor, 4),
    }


def _near_in_group(
    group: Sequence[Pay], config: CheckConfig, list_weekdays: list[float]
) -> list[Finding]:
    """The near duplicates among one supplier's payments (see :func:`near_duplicates`)."""
    findings: list[Finding] = []
    if len(group) < 2:
        return findings
    ordered = sorted((p for p in group if p.amount_cents > 0), key=lambda p: p.amount_cents)
    wcounts = [0] * 7
    for p in ordered:
        wcounts[p.booked_on.weekday()] += 1
    stems = {p.id: reference_stem(p.reference) for p in ordered}
    amounts = [p.amount_cents for p in ordered]
    by_id = {p.id: p for p in ordered}
    active = _active_days(group)
    timing = _timing(ordered)
    components = _Components()
    rhythms: dict[int, _Rhythm] = {}
    pairs: list[tuple[float, int, int]] = []
    for i, a in enumerate(ordered):
        tol = max(config.near_tolerance_cents, a.amount_cents * config.near_tolerance_pct / 100)
        for b in ordered[i + 1 :]:
            if b.amount_cents - a.amount_cents > tol:
                break
            if abs((b.booked_on - a.booked_on).days) > config.near_days:
                continue
            if stems[a.id] == stems[b.id]:
                continue  # same document: an exact duplicate or positions of one booking
            rhythm = _rhythm(a, b, ordered, amounts, stems, timing, config)
            rhythm.off_day = _off_day(a, b, wcounts, len(ordered), list_weekdays, config)
            if rhythm.off_day is not None:
                rhythm.chance *= rhythm.off_day.factor
            if rhythm.chance >= config.near_p:
                continue  # the supplier's usual rhythm for this amount
            components.union(a.id, b.id)
            pairs.append((rhythm.chance, a.id, b.id))
            for p in (a, b):
                if p.id not in rhythms or rhythms[p.id].chance > rhythm.chance:
                    rhythms[p.id] = rhythm
    clusters: dict[int, list[Pay]] = defaultdict(list)
    for pid in components.parent:
        clusters[components.find(pid)].append(by_id[pid])
    for root, cluster in list(clusters.items()):
        if len(cluster) > config.near_max_group:
            del clusters[root]  # a chain of similar payments: its closest pairs instead
            used: set[int] = set()
            members = {p.id for p in cluster}
            for _chance, aid, bid in sorted(p for p in pairs if p[1] in members):
                if aid not in used and bid not in used:
                    used.update((aid, bid))
                    clusters[-aid] = [by_id[aid], by_id[bid]]
    for cluster in clusters.values():
        if len(cluster) < 2:
            continue
        rhythm = min((rhythms[p.id] for p in cluster), key=lambda r: r.chance)
        amounts_c = [p.amount_cents for p in cluster]
        dates = [p.booked_on for p in cluster]
        span = (max(dates) - min(dates)).days
        spread = max(amounts_c) - min(amounts_c)
        same = spread == 0
        if rhythm.others == 0:
            usual = "Sonst erhält dieser Lieferant keinen solchen Betrag"
        else:
            usual = (
                f"Sonst erhält dieser Lieferant einen solchen Betrag {rhythm.others}-mal in "
                f"{active} Tagen"
                + (
                    f", üblich im Abstand von {_num(rhythm.typical_gap, 0)} Tagen"
                    if rhythm.typical_gap is not None
                    else ""
                )
                + (
                    "; keine davon liegt so dicht an einer weiteren"
                    if rhythm.usual == 0
                    else f"; nur {rhythm.usual}-mal liegt eine solche so dicht an einer weiteren"
                )
            )
        findings.append(
            Finding(
                kind="aehnlich",
                key=_ids_key("aehnlich", cluster),
                supplier=cluster[0].supplier,
                payment_ids=sorted(p.id for p in cluster),
                score=round(max(0.1, min(0.95, 1 - rhythm.chance) - 0.02 * span), 3),
                explanation=(
                    f"{len(cluster)} Zahlungen an {cluster[0].supplier} mit "
                    + ("gleichem Betrag" if same else "fast gleichem Betrag")
                    + f" innerhalb von {span} Tagen, aber verschiedenen Belegnummern: "
                    + _listing(cluster, config.currency)
                    + f". {usual}{_off_day_text(rhythm.off_day)}. Das kann eine doppelt bezahlte "
                    "Rechnung sein (z. B. "
                    "Rechnung und Mahnung) – oder zwei echte Rechnungen über denselben "
                    "Betrag. Bitte die Belege vergleichen."
                ),
                details={
                    "span_days": span,
                    "amount_spread_cents": spread,
                    "similar_payments": rhythm.others,
                    "similar_as_close": rhythm.usual,
                    "active_days": active,
                    "typical_gap_days": rhythm.typical_gap,
                    "off_day": _off_day_details(rhythm.off_day),
                    "chance": round(rhythm.chance, 5),
                    "tolerance_pct": config.near_tolerance_pct,
                    "window_days": config.near_days,
                },
            )
        )
    return findings


def _band(amount: int, config: CheckConfig) -> int | None:
    for threshold in sorted(config.split_thresholds_cents):
        if amount < threshold:
            return threshold if amount >= config.split_band * threshold else None
    return None


def _band_counts(groups: dict[str, list[Pay]], config: CheckConfig) -> tuple[dict[int, int], int]:
    """For each threshold, how many payments (all suppliers) lie in its band; and all payments."""
    counts: dict[int, int] = defaultdict(int)
    total = 0
    for group in groups.values():
        for p in group:
            total += 1
            threshold = _band(p.amount_cents, config)
            if threshold is not None:
                counts[threshold] += 1
    return counts, total


@dataclass
class _SplitChance:
    """How usual ``len(window)`` band payments within ``split_days`` are for a supplier."""

    share: float  # blended share of the supplier's payments in the band
    own_share: float | None  # the supplier's own share (None without other payments)
    list_share: float  # share in the whole list
    nearby: int  # the supplier's payments (any amount) in the window's days
    expected: float  # band payments expected in ``split_days + 1`` days
    chance: float


def _split_chance(
    window: Sequence[Pay],
    group: Sequence[Pay],
    band_count: int,
    list_counts: tuple[int, int],
    active: int,
    config: CheckConfig,
) -> _SplitChance:
    """The supplier's share of payments in the band, outside the window, blended with the
    share in the rest of the list (empirical Bayes: the list's share counts like
    ``split_prior_weight`` payments, so a supplier with few payments gets about the list's
    share and one with many its own). Two tests, and the larger probability counts:

    - over time: so many band payments within ``split_days + 1`` days, if the supplier's
      payments came evenly over its active days with the blended share in the band (Poisson);
    - within the window: so many of the supplier's payments in these days in the band, if
      each were in it with the blended share (binomial). A supplier paid often in a busy month
      (a building project) is then not flagged for the band payments of that month alone."""
    others = band_count - len(window)
    paid = len(group) - len(window)
    # the list's share without the payments under test (in a short list they would count)
    in_band, listed = list_counts
    list_share = (in_band - len(window)) / (listed - len(window)) if listed > len(window) else 0.0
    weight = config.split_prior_weight
    share = (others + weight * list_share) / (paid + weight) if paid + weight > 0 else 0.0
    days = config.split_days + 1
    expected = share * paid * days / max(active, 30)
    end = window[0].booked_on + dt.timedelta(days=config.split_days)
    nearby = sum(1 for p in group if window[0].booked_on <= p.booked_on <= end)
    chance = max(poisson_tail(len(window) - 1, expected), binomial_tail(len(window), nearby, share))
    return _SplitChance(
        share=share,
        own_share=others / paid if paid else None,
        list_share=list_share,
        nearby=nearby,
        expected=expected,
        chance=chance,
    )


def split_orders(payments: Sequence[Pay], config: CheckConfig) -> list[Finding]:
    """Several payments to one supplier within ``split_days`` days, each just under a
    procurement threshold (at least ``split_band`` of it), together at or above it.

    A supplier regularly paid amounts in that band (weekly agency invoices) reaches the sum by
    routine: a group is only flagged when so many band payments in so few days are unlikely
    for this supplier (see :func:`_split_chance`; probability below ``split_p``). A supplier
    with few payments says little about its own habits, so its share of band payments is
    blended with the share in the whole list."""
    findings = []
    groups = _by_supplier(payments, config)
    counts, listed = _band_counts(groups, config)
    for group in groups.values():
        banded: dict[int, list[Pay]] = defaultdict(list)
        for p in group:
            threshold = _band(p.amount_cents, config)
            if threshold is not None:
                banded[threshold].append(p)
        active = _active_days(group)
        for threshold, items in banded.items():
            if len(items) < 2:
                continue
            items.sort(key=lambda p: (p.booked_on, p.id))
            i = 0
            while i < len(items):
                j = i
                while (
                    j + 1 < len(items)
                    and (items[j + 1].booked_on - items[i].booked_on).days <= config.split_days
                ):
                    j += 1
                window = items[i : j + 1]
                total = sum(p.amount_cents for p in window)
                if len(window) < 2 or total < threshold:
                    i += 1
                    continue
                odds = _split_chance(
                    window, group, len(items), (counts[threshold], listed), active, config
                )
                if odds.chance < config.split_p:
                    findings.append(
                        _split_finding(window, threshold, len(items), active, odds, config)
                    )
                    i = j + 1
                else:
                    i += 1
    return findings


def _split_finding(
    window: Sequence[Pay],
    threshold: int,
    band_count: int,
    active: int,
    odds: _SplitChance,
    config: CheckConfig,
) -> Finding:
    span = (window[-1].booked_on - window[0].booked_on).days
    total = sum(p.amount_cents for p in window)
    others = band_count - len(window)
    if odds.own_share is None:
        own = "Sonst erhält dieser Lieferant keine Zahlungen"
    elif others == 0:
        own = "Keine seiner übrigen Zahlungen liegt in diesem Betragsband"
    else:
        own = (
            f"Von seinen übrigen Zahlungen liegen {others} in diesem Betragsband "
            f"({_num(100 * odds.own_share)} %)"
        )
    habit = (
        f"{own}, in der ganzen Liste {_num(100 * odds.list_share)} % der Zahlungen; gewichtet "
        f"nach der Zahl seiner Zahlungen {_num(100 * odds.share)} %. Danach wären in "
        f"{config.split_days + 1} Tagen {_num(odds.expected, 2)} solche Zahlungen zu erwarten; "
        f"hier sind es {len(window)} von {odds.nearby} Zahlungen an ihn in diesen Tagen "
        f"(Wahrscheinlichkeit {_num(100 * odds.chance)} %)"
    )
    return Finding(
        kind="splitting",
        key=_ids_key("splitting", window),
        supplier=window[0].supplier,
        payment_ids=sorted(p.id for p in window),
        score=round(min(1.0, 0.5 + 0.1 * len(window) - 0.005 * span), 3),
        explanation=(
            f"{len(window)} Zahlungen an {window[0].supplier} innerhalb von {span} Tagen liegen "
            f"jede knapp unter der Wertgrenze von {money(threshold, config.currency)}, zusammen "
            f"aber bei {money(total, config.currency)}: "
            + _listing(window, config.currency)
            + f". {habit}. Das kann eine Aufteilung eines Auftrags sein, um die Wertgrenze zu "
            "unterschreiten – oder es sind unabhängige Aufträge. Bitte die Vergabeunterlagen "
            "ansehen."
        ),
        details={
            "threshold_cents": threshold,
            "total_cents": total,
            "span_days": span,
            "window_days": config.split_days,
            "band_payments": band_count,
            "active_days": active,
            "nearby_payments": odds.nearby,
            "own_share": None if odds.own_share is None else round(odds.own_share, 5),
            "list_share": round(odds.list_share, 5),
            "blended_share": round(odds.share, 5),
            "expected": round(odds.expected, 4),
            "chance": round(odds.chance, 5),
        },
    )


def first_digit(cents: int) -> int | None:
    """First significant digit of the amount in whole currency units (≥ 1)."""
    units = abs(cents) // 100
    if units < 1:
        return None
    return int(str(units)[0])


def chi2_sf_8(x: float) -> float:
    """Survival function of the chi-square distribution with 8 degrees of freedom."""
    half = x / 2
    return math.exp(-half) * sum(half**i / math.factorial(i) for i in range(4))


@dataclass
class BenfordResult:
    n: int
    observed: list[int]
    shares: list[float]
    expected: list[float]
    mad: float
    chi2: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def benford(amounts: Iterable[int], min_amount_cents: int = 10_00) -> BenfordResult:
    """First-digit counts against Benford's law: mean absolute deviation (MAD) and chi-square."""
    counts = [0] * 9
    for cents in amounts:
        if abs(cents) < min_amount_cents:
            continue
        digit = first_digit(cents)
        if digit:
            counts[digit - 1] += 1
    n = sum(counts)
    shares = [c / n if n else 0.0 for c in counts]
    mad = sum(abs(s - e) for s, e in zip(shares, BENFORD, strict=True)) / 9 if n else 0.0
    chi2 = sum((c - n * e) ** 2 / (n * e) for c, e in zip(counts, BENFORD, strict=True)) if n else 0
    return BenfordResult(
        n=n,
        observed=counts,
        shares=[round(s, 4) for s in shares],
        expected=[round(e, 4) for e in BENFORD],
        mad=round(mad, 5),
        chi2=round(chi2, 2),
        p_value=chi2_sf_8(chi2) if n else 1.0,
    )


def benford_suppliers(payments: Sequence[Pay], config: CheckConfig) -> list[Finding]:
    """Suppliers with at least ``benford_min_payments`` payments whose first digits deviate
    from Benford's law (MAD above ``benford_mad`` and chi-square p below ``benford_p``)."""
    findings = []
    for skey, group in _by_supplier(payments, config).items():
        if len(group) < config.benford_min_payments:
            continue
        result = benford((p.amount_cents for p in group), config.benford_min_amount_cents)
        if result.n < config.benford_min_payments:
            continue
        if result.mad <= config.benford_mad or result.p_value >= config.benford_p:
            continue
        worst = max(range(9), key=lambda d: result.shares[d] - result.expected[d])
        findings.append(
            Finding(
                kind="benford",
                key=f"benford:{skey}",
                supplier=group[0].supplier,
                payment_ids=sorted(p.id for p in group),
                score=round(min(1.0, result.mad / (4 * config.benford_mad)), 3),
                explanation=(
                    f"Die ersten Ziffern der {result.n} Beträge an {group[0].supplier} weichen "
                    f"vom Benford-Gesetz ab (mittlere Abweichung MAD {_num(result.mad, 3)}, "
                    f"Grenze {_num(config.benford_mad, 3)}; Chi-Quadrat {_num(result.chi2)}). "
                    f"Am stärksten: Ziffer {worst + 1} mit {_num(100 * result.shares[worst])} % "
                    f"statt {_num(100 * result.expected[worst])} %. Feste Preise, Tarife oder "
                    "eine Untergrenze der Liste erklären das oft; ein Anlass, die Zahlungen "
                    "stichprobenartig anzusehen, kein Befund."
                ),
                details={"benford": result.to_dict()},
            )
        )
    return findings


def _robust_z(values: list[float]) -> tuple[float, float]:
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    return median, max(1.4826 * mad, 0.25)


def outliers(payments: Sequence[Pay], config: CheckConfig) -> list[Finding]:
    """Amounts far above what a supplier (or a category) usually gets, on a log scale: robust
    z-score (median and MAD of the logarithms) and a minimum factor over the median."""
    hits: dict[int, list[dict[str, Any]]] = defaultdict(list)
    by_id = {p.id: p for p in payments}

    def scan(groups: dict[str, list[Pay]], minimum: int, z_limit: float, factor: float, what):  # type: ignore[no-untyped-def]
        for name, group in groups.items():
            positive = [p for p in group if p.amount_cents > 0]
            if len(positive) < minimum:
                continue
            logs = [math.log(p.amount_cents) for p in positive]
            median, scale = _robust_z(logs)
            top = sorted(logs)[-2:]
            for p, value in zip(positive, logs, strict=True):
                z = (value - median) / scale
                ratio = math.exp(value - median)
                largest = value >= top[-1] and (len(top) < 2 or value > top[0])
                if ratio >= factor and (z >= z_limit or largest):
                    hits[p.id].append(
                        {
                            "group": what,
                            "name": name,
                            "n": len(positive),
                            "median_cents": round(math.exp(median)),
                            "z": round(z, 1),
                            "factor": round(ratio, 1),
                            "largest": largest,
                        }
                    )

    scan(
        {s: g for s, g in _by_supplier(payments, config).items()},
        config.outlier_min_supplier,
        config.outlier_z,
        config.outlier_factor,
        "Lieferant",
    )
    categories: dict[str, list[Pay]] = defaultdict(list)
    for p in payments:
        if p.category.strip():
            categories[p.category.strip()].append(p)
    scan(
        categories,
        config.outlier_min_category,
        config.outlier_category_z,
        config.outlier_category_factor,
        "Kategorie",
    )
    findings = []
    for pid, reasons in hits.items():
        p = by_id[pid]
        parts = []
        for r in reasons:
            subject = (
                f"an {p.supplier}" if r["group"] == "Lieferant" else f"der Kategorie „{r['name']}“"
            )
            parts.append(
                f"das {_num(r['factor'])}-Fache des üblichen Betrags {subject} "
                f"(Median {money(r['median_cents'], config.currency)} aus {r['n']} Zahlungen, "
                f"robuster z-Wert {_num(r['z'])})"
            )
        findings.append(
            Finding(
                kind="ausreisser",
                key=f"ausreisser:{pid}",
                supplier=p.supplier,
                payment_ids=[pid],
                score=round(min(1.0, max(r["z"] for r in reasons) / 12), 3),
                explanation=(
                    f"Die Zahlung über {money(p.amount_cents, config.currency)} am "
                    f"{day(p.booked_on)} ist " + " und ".join(parts) + ". Das kann eine "
                    "Jahresrechnung, eine Schlussrechnung oder ein Tippfehler im Betrag sein. "
                    "Bitte Betrag und Beleg prüfen."
                ),
                details={"reasons": reasons},
            )
        )
    return findings


def _holiday_lookup(config: CheckConfig, years: Iterable[int]) -> Callable[[dt.date], str | None]:
    try:
        import holidays

        calendar = holidays.country_holidays(
            config.holiday_country,
            subdiv=config.holiday_subdiv or None,
            years=sorted(set(years)),
            language="de",  # German names where the country's calendar has them
        )
    except (NotImplementedError, KeyError):
        return lambda _d: None
    return lambda d: calendar.get(d)


def unusual_dates(payments: Sequence[Pay], config: CheckConfig) -> list[Finding]:
    """Payments booked on a Saturday, Sunday or public holiday (country/Land as configured);
    one hint per day."""
    if not payments:
        return []
    holiday = _holiday_lookup(config, (p.booked_on.year for p in payments))
    days: dict[dt.date, list[Pay]] = defaultdict(list)
    reasons: dict[dt.date, str] = {}
    for p in payments:
        on = p.booked_on
        if on not in reasons:
            name = holiday(on)
            if name:
                reasons[on] = f"ein Feiertag ({name})"
            elif on.weekday() >= 5:
                reasons[on] = f"ein {WEEKDAYS[on.weekday()]}"
            else:
                reasons[on] = ""
        if reasons[on]:
            days[on].append(p)
    findings = []
    for on, group in sorted(days.items()):
        suppliers = sorted({p.supplier for p in group})
        total = sum(p.amount_cents for p in group)
        findings.append(
            Finding(
                kind="datum",
                key=f"datum:{on.isoformat()}",
                supplier=suppliers[0] if len(suppliers) == 1 else "",
                payment_ids=sorted(p.id for p in group),
                score=0.3,
                explanation=(
                    f"Der {day(on)} ist {reasons[on]}; an diesem Tag sind {len(group)} "
                    f"Zahlung{'en' if len(group) != 1 else ''} über zusammen "
                    f"{money(total, config.currency)} gebucht"
                    + (
                        f" (an {', '.join(suppliers[:3])}"
                        + (" u. a.)" if len(suppliers) > 3 else ")")
                    )
                    + ". Das ist oft ein Buchungslauf oder ein Datumsfehler; ungewöhnlich ist "
                    "es dennoch. Bitte prüfen, wer die Zahlung freigegeben hat."
                ),
                details={"date": on.isoformat(), "reason": reasons[on], "total_cents": total},
            )
        )
    return findings


def new_suppliers(payments: Sequence[Pay], config: CheckConfig) -> list[Finding]:
    """Suppliers first seen after the first ``new_warmup_days`` days of the list whose payments
    in their first ``new_days`` days reach ``new_amount_cents``."""
    if not payments:
        return []
    start = min(p.booked_on for p in payments)
    findings = []
    for skey, group in _by_supplier(payments, config).items():
        first = min(p.booked_on for p in group)
        if (first - start).days < config.new_warmup_days:
            continue
        early = [p for p in group if (p.booked_on - first).days <= config.new_days]
        total = sum(p.amount_cents for p in early)
        if total < config.new_amount_cents:
            continue
        findings.append(
            Finding(
                kind="neu",
                key=f"neu:{skey}",
                supplier=group[0].supplier,
                payment_ids=sorted(p.id for p in early),
                score=round(min(1.0, 0.4 + 0.1 * total / config.new_amount_cents), 3),
                explanation=(
                    f"{group[0].supplier} erscheint erst am {day(first)} in der Liste und "
                    f"erhält in den ersten {config.new_days} Tagen {len(early)} "
                    f"Zahlung{'en' if len(early) != 1 else ''} über zusammen "
                    f"{money(total, config.currency)} (Grenze "
                    f"{money(config.new_amount_cents, config.currency)}). Neue Geschäftspartner "
                    "sind normal; bei hohen Beträgen lohnt ein Blick auf Stammdaten, Bankverbindung "
                    "und Vergabe."
                ),
                details={"first_date": first.isoformat(), "total_cents": total},
            )
        )
    return findings


CHECKS: dict[str, Callable[[Sequence[Pay], CheckConfig], list[Finding]]] = {
    "duplikat": exact_duplicates,
    "aehnlich": near_duplicates,
    "splitting": split_orders,
    "benford": benford_suppliers,
    "ausreisser": outliers,
    "datum": unusual_dates,
    "neu": new_suppliers,
}


def run_checks(payments: Sequence[Pay], config: CheckConfig | None = None) -> list[Finding]:
    """All enabled checks, findings sorted by kind and descending score."""
    config = config or CheckConfig()
    findings: list[Finding] = []
    for kind in config.checks:
        findings.extend(CHECKS[kind](payments, config))
    order = {k: i for i, k in enumerate(KINDS)}
    findings.sort(key=lambda f: (order[f.kind], -f.score, f.key))
    return findings
