"""Periods of whole months (appliance/stats_report.py): a month, a quarter, a year, from-to; what a wrong
one says."""

from __future__ import annotations

import pytest

from appliance.errors import KluisError
from appliance.stats_report import Period, between, parse_period, period_choices


@pytest.mark.parametrize("text, first, last", [
    ("2026-11", "2026-11", "2026-11"), ("2026-K4", "2026-10", "2026-12"), ("2026-q1", "2026-01", "2026-03"),
    ("2026Q2", "2026-04", "2026-06"), ("2026", "2026-01", "2026-12"), ("", None, None), (None, None, None),
])
def test_a_period_is_a_run_of_months(text, first, last):
    assert parse_period(text) == Period(first, last)


def test_from_to_takes_months_or_dates_and_either_may_be_open():
    assert between("2026-09-15", "2026-12-31") == Period("2026-09", "2026-12")
    assert between(None, "2026-02") == Period(None, "2026-02")
    assert between("2026-02", None).dutch() == "vanaf februari 2026"
    assert between("2026-01", "2026-12").dutch() == "het jaar 2026"
    assert between("2026-09", "2026-12").dutch() == "september 2026 t/m december 2026"


@pytest.mark.parametrize("text", ["2026-13", "2026-02-30", "november", "2026-K5", "26-11"])
def test_a_wrong_period_is_refused_with_what_was_wrong(text):
    with pytest.raises(KluisError, match=r"not a (month|date)"):
        parse_period(text)


def test_a_period_that_ends_before_it_starts_is_refused():
    with pytest.raises(KluisError, match="ends"):
        between("2026-12", "2026-01")


def test_the_choices_are_the_years_quarters_and_months_with_data():
    assert period_choices(["2026-11", "2026-10", "2025-12"]) == [
        ("2026", "year"), ("2026-K4", "quarter"), ("2026-11", "month"), ("2026-10", "month"),
        ("2025", "year"), ("2025-K4", "quarter"), ("2025-12", "month")]
