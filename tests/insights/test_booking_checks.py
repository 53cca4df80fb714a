"""The booking checks on small constructed payment lists: each finds what it should, and not
what it should not."""

from __future__ import annotations

import datetime as dt
import random

from rathaus.insights.booking_checks import (
    CheckConfig,
    Pay,
    benford,
    benford_suppliers,
    exact_duplicates,
    money,
    near_duplicates,
    new_suppliers,
    outliers,
    run_checks,
    split_orders,
    unusual_dates,
)

D = dt.date(2024, 3, 5)  # a Tuesday
CFG = CheckConfig(holiday_country="DE", holiday_subdiv="BW")


def pay(i, supplier="Muster GmbH", cents=100_000, on=D, ref=None, category="Material"):  # type: ignore[no-untyped-def]
    return Pay(i, supplier, cents, on, ref if ref is not None else f"R{i}", category)


def background(n=30, supplier="Muster GmbH", seed=1):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    return [
        pay(1000 + i, supplier, rng.randint(50_000, 150_000), D + dt.timedelta(days=7 * i))
        for i in range(n)
    ]


def test_money_is_german():
    assert money(147160) == "1.471,60 €"
    assert money(-5) == "-0,05 €"


def test_exact_duplicate_found_and_explained():
    found = exact_duplicates([pay(1, ref="A1"), pay(2, ref="A1"), pay(3, ref="A2")], CFG)
    assert [f.payment_ids for f in found] == [[1, 2]]
    assert "1.000,00 €" in found[0].explanation and "05.03.2024" in found[0].explanation


def test_exact_duplicate_needs_same_reference_date_and_supplier():
    payments = [
        pay(1, ref="A1"),
        pay(2, ref="A2"),
        pay(3, ref="A1", on=D + dt.timedelta(days=1)),
        pay(4, supplier="Andere AG", ref="A1"),
    ]
    assert exact_duplicates(payments, CFG) == []


def test_near_duplicate_found_with_different_reference():
    payments = [
        *background(),
        pay(1, cents=1_234_500),
        pay(2, cents=1_236_000, on=D + dt.timedelta(days=3)),
    ]
    found = near_duplicates(payments, CFG)
    assert [f.payment_ids for f in found] == [[1, 2]]
    assert "verschiedenen Belegnummern" in found[0].explanation


def test_near_duplicate_not_for_far_dates_other_amounts_or_positions_of_one_document():
    payments = [
        *background(),
        pay(1, cents=1_234_500),
        pay(2, cents=1_234_500, on=D + dt.timedelta(days=20)),  # too far apart
        pay(3, cents=2_000_000),
        pay(4, cents=2_200_000, on=D + dt.timedelta(days=1)),  # 10 % apart
        pay(5, cents=3_000_000, ref="4711_1"),
        pay(6, cents=3_000_000, ref="4711_2"),  # positions of one document
    ]
    assert near_duplicates(payments, CFG) == []


def test_weekly_rent_is_not_a_near_duplicate():
    rent = [pay(i, "Vermieter KG", 250_000, D + dt.timedelta(days=7 * i)) for i in range(40)]
    assert near_duplicates(rent, CFG) == []
    same_day_batch = [pay(100 + i, "Post AG", 22_500, D, ref=f"P{i}") for i in range(10)]
    assert near_duplicates(same_day_batch, CFG) == []


def test_split_order_under_threshold():
    payments = [
        *background(),
        pay(1, cents=2_400_000, on=D),
        pay(2, cents=2_300_000, on=D + dt.timedelta(days=9)),
    ]
    config = CheckConfig(split_thresholds_cents=(2_500_000,))
    found = split_orders(payments, config)
    assert [f.payment_ids for f in found] == [[1, 2]]
    assert "25.000,00 €" in found[0].explanation and "47.000,00 €" in found[0].explanation


def test_no_split_when_far_apart_or_far_below_threshold():
    config = CheckConfig(split_thresholds_cents=(2_500_000,))
    apart = [pay(1, cents=2_400_000), pay(2, cents=2_300_000, on=D + dt.timedelta(days=60))]
    low = [pay(1, cents=1_000_000), pay(2, cents=1_600_000, on=D + dt.timedelta(days=2))]
    assert split_orders(apart, config) == []
    assert split_orders(low, config) == []


def test_benford_counts_and_flags_a_fixed_price_supplier():
    assert benford([123_00, 1_500_00, 9_00, 5]).observed[0] == 2  # 9,00 and 0,05 are below 10
    rng = random.Random(3)
    natural = [pay(i, "Natur AG", round(10 ** rng.uniform(3, 7))) for i in range(600)]
    fixed = [pay(1000 + i, "Fix GmbH", rng.choice([79_000, 89_000, 99_000])) for i in range(200)]
    found = benford_suppliers(natural + fixed, CheckConfig())
    assert [f.supplier for f in found] == ["Fix GmbH"]
    assert "Benford" in found[0].explanation


def test_outlier_per_supplier_and_not_for_ordinary_amounts():
    base = background(40)
    assert outliers(base, CFG) == []
    found = outliers([*base, pay(1, cents=5_000_000)], CFG)
    assert [f.payment_ids for f in found] == [[1]]
    assert "-Fache" in found[0].explanation


def test_unusual_dates_weekend_and_holiday():
    payments = [
        pay(1, on=dt.date(2024, 3, 9)),  # Saturday
        pay(2, on=dt.date(2024, 1, 6)),  # Heilige Drei Könige (BW), a Saturday too
        pay(3, on=dt.date(2024, 5, 30)),  # Fronleichnam (BW), a Thursday
        pay(4, on=D),
    ]
    found = unusual_dates(payments, CFG)
    assert sorted(f.payment_ids[0] for f in found) == [1, 2, 3]
    assert any("Feiertag" in f.explanation for f in found)
    berlin = CheckConfig(holiday_country="DE", holiday_subdiv="BE")
    assert [f.payment_ids for f in unusual_dates([pay(3, on=dt.date(2024, 5, 30))], berlin)] == []


def test_new_supplier_with_large_amount():
    old = background(30)
    newcomer = [pay(1, "Neu GmbH", 3_000_000, D + dt.timedelta(days=200))]
    small = [pay(2, "Klein GmbH", 50_000, D + dt.timedelta(days=200))]
    found = new_suppliers(old + newcomer + small, CFG)
    assert [f.supplier for f in found] == ["Neu GmbH"]


def test_anonymised_payees_are_not_one_supplier():
    payments = [
        pay(1, "Redacted personal data", 50_000),
        pay(2, "Redacted personal data", 50_000, ref="X"),
    ]
    assert near_duplicates(payments, CFG) == []


def test_run_checks_is_deterministic_with_stable_keys():
    payments = [*background(), pay(1, ref="A"), pay(2, ref="A")]
    first = [f.key for f in run_checks(payments, CFG)]
    assert first == [f.key for f in run_checks(list(reversed(payments)), CFG)]
    assert "duplikat:1,2" in first


def test_copy_off_the_weekly_rhythm_is_a_near_duplicate():
    rent = [pay(i, "Vermieter KG", 250_000, D + dt.timedelta(days=7 * i)) for i in range(40)]
    copy = pay(99, "Vermieter KG", 250_000, D + dt.timedelta(days=7 * 10 + 3), ref="X99")
    found = near_duplicates([*rent, copy], CFG)
    assert found and all(99 in f.payment_ids for f in found)
    assert "Abstand von 7 Tagen" in found[0].explanation


def test_payment_days_after_a_same_day_batch_is_flagged_but_the_batch_is_not():
    batches = [
        pay(100 * m + i, "Post AG", 22_500, D + dt.timedelta(days=28 * m), ref=f"P{m}-{i}")
        for m in range(12)
        for i in range(8)
    ]
    assert near_duplicates(batches, CFG) == []
    late = pay(9999, "Post AG", 22_500, D + dt.timedelta(days=28 * 5 + 4), ref="Q1")
    found = near_duplicates([*batches, late], CFG)
    assert [9999 in f.payment_ids for f in found] == [True]
    assert len(found[0].payment_ids) == 2  # the odd payment and one partner, not the batch


def _town_list(seed=5):  # type: ignore[no-untyped-def]
    """A small but real-looking list: 12 suppliers over two years, mostly 500–3.000 €, few
    payments in the band just under 5.000 € (as in a real list)."""
    rng = random.Random(seed)
    rows = []
    for s in range(12):
        for k in range(25):
            cents = rng.randint(50_000, 300_000) if k % 25 else rng.randint(380_000, 495_000)
            rows.append(pay(5000 + 100 * s + k, f"Firma {s}", cents, D + dt.timedelta(days=29 * k)))
    return rows


SPLIT_5000 = CheckConfig(split_thresholds_cents=(500_000,))


def test_split_at_a_supplier_with_few_payments_is_found_by_the_blended_rate():
    # Klein Bau: four payments in two years, one of them once in the band 3.750–5.000 €
    klein = [
        pay(1, "Klein Bau GmbH", 62_000, D),
        pay(2, "Klein Bau GmbH", 420_000, D + dt.timedelta(days=200)),
        pay(3, "Klein Bau GmbH", 71_000, D + dt.timedelta(days=400)),
        pay(4, "Klein Bau GmbH", 58_000, D + dt.timedelta(days=700)),
    ]
    split = [
        pay(11, "Klein Bau GmbH", 440_000, D + dt.timedelta(days=500)),
        pay(12, "Klein Bau GmbH", 470_000, D + dt.timedelta(days=505)),
    ]
    payments = [*_town_list(), *klein, *split]
    found = split_orders(payments, SPLIT_5000)
    assert [f.payment_ids for f in found] == [[11, 12]]
    # its own rate alone (one band payment in four) says too little to flag anything
    own_only = CheckConfig(split_thresholds_cents=(500_000,), split_prior_weight=0)
    assert split_orders(payments, own_only) == []
    text = found[0].explanation
    assert "Von seinen übrigen Zahlungen liegen 1 in diesem Betragsband (25,0 %)" in text
    assert "in der ganzen Liste" in text and "9.100,00 €" in text
    details = found[0].details
    assert details["own_share"] == 0.25 and details["blended_share"] < 0.1
    assert details["chance"] < SPLIT_5000.split_p


def test_regular_band_payments_and_a_busy_month_are_not_split_orders():
    # a fortnightly service fee of 4.500 € for two years: two or three in every 30 days
    fee = [
        pay(100 + k, "Wartung AG", 450_000, D + dt.timedelta(days=14 * k), ref=f"W{k}")
        for k in range(52)
    ]
    # a building project: 30 payments in one month, a fifth of them in the band, as all year
    rng = random.Random(9)
    project = [
        pay(
            300 + k,
            "Hochbau KG",
            rng.randint(380_000, 490_000) if k % 5 == 0 else rng.randint(60_000, 300_000),
            D + dt.timedelta(days=(k if k < 30 else 30 * (k - 29))),
        )
        for k in range(50)
    ]
    payments = [*_town_list(), *fee, *project]
    found = split_orders(payments, SPLIT_5000)
    assert [f.supplier for f in found] == []


def _weekly_runs():  # type: ignore[no-untyped-def]
    """A wholesaler paid in a Tuesday run for 60 weeks, three invoices a run, each one of ten
    usual amounts; week 10 has an invoice over 612,40 €, week 11 none."""
    rng = random.Random(4)
    amounts = [61_240, 18_990, 33_500, 120_000, 7_450, 45_015, 99_900, 27_300, 54_120, 80_080]
    rows = []
    for week in range(60):
        for k in range(3):
            cents = rng.choice(amounts[1:] if week == 11 else amounts)
            if (week, k) == (10, 0):
                cents = 61_240  # the invoice copied below
            on = D + dt.timedelta(days=7 * week)
            rows.append(pay(10 * week + k, "Baustoff Großhandel", cents, on, ref=f"G{week}-{k}"))
    return rows


def test_second_payment_off_the_payment_run_day_is_a_near_duplicate():
    runs = _weekly_runs()
    original = runs[30]  # week 10, 612,40 €
    monday = pay(9999, "Baustoff Großhandel", 61_240, D + dt.timedelta(days=76), ref="X1")
    # six days after a Tuesday is "about a week": without weekdays, the rhythm explains it
    assert near_duplicates([*runs, monday], CheckConfig(near_weekday_weight=0)) == []
    weekdays = CheckConfig(near_weekday_weight=20)
    found = near_duplicates([*runs, monday], weekdays)
    assert [f.payment_ids for f in found] == [[original.id, 9999]]
    text = found[0].explanation
    assert "liegt außerhalb der üblichen Zahltage: an einem Montag" in text
    assert "an diesen Lieferanten sonst 0,0 %" in text
    off = found[0].details["off_day"]
    assert off["payment_id"] == 9999 and off["weekday"] == "Montag" and off["factor"] < 0.1
    # the same copy in the next Tuesday run is the supplier's routine
    tuesday = pay(9999, "Baustoff Großhandel", 61_240, D + dt.timedelta(days=77), ref="X1")
    assert near_duplicates([*runs, tuesday], weekdays) == []


def test_weekdays_change_nothing_for_a_supplier_paid_on_every_working_day():
    rng = random.Random(3)
    spread = [
        pay(i, "Bäckerei Huber", rng.choice((1_250, 1_300, 1_350)) * 100, D + dt.timedelta(days=d))
        for i, d in enumerate(d for d in range(0, 200) if (D + dt.timedelta(days=d)).weekday() < 5)
    ]
    plain = near_duplicates(spread, CheckConfig(near_weekday_weight=0))
    with_days = near_duplicates(spread, CheckConfig(near_weekday_weight=20))
    assert [f.key for f in with_days] == [f.key for f in plain]
    assert all(f.details["off_day"] is None for f in with_days)
