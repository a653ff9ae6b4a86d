"""One format per kind of number (dashboard/theme.py): counts with thousands separators, rates with
one decimal, money with separators (and its currency when one is given)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from funnelboard.dashboard.theme import NOT_AVAILABLE, fmt_count, fmt_money, fmt_pct


@pytest.mark.parametrize("value,shown", [(0, "0"), (999, "999"), (1000, "1,000"), (12632, "12,632"), (2_000_000, "2,000,000"), (None, NOT_AVAILABLE)])
def test_counts_have_thousands_separators(value, shown):
    assert fmt_count(value) == shown


@pytest.mark.parametrize("value,shown", [(0.30454, "30.5%"), (0, "0.0%"), (1, "100.0%"), (0.0005, "0.1%"), (None, NOT_AVAILABLE)])
def test_rates_have_one_decimal(value, shown):
    assert fmt_pct(value) == shown


@pytest.mark.parametrize("value,shown", [(52000, "52,000"), (1234.5, "1,234.5"), (Decimal("52000.00"), "52,000"), ("7300.256", "7,300.26"),
                                         (0, "0"), (-1500, "-1,500"), (None, NOT_AVAILABLE), ("", NOT_AVAILABLE), ("n/a", "n/a")])
def test_money_has_separators_and_at_most_two_decimals(value, shown):
    assert fmt_money(value) == shown


def test_money_names_its_currency_when_given():
    assert fmt_money(52000, "USD") == "USD 52,000"
