"""funnelboard.warehouse.stats: known values worked out by hand, and properties that must hold for any counts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from funnelboard.warehouse.stats import benjamini_hochberg, two_proportion_p_value, wilson_interval


@pytest.mark.parametrize(
    ("x", "n", "expected"),
    [
        # p = 0.3, z^2 = 3.8415: centre = (0.3 + 0.19207) / 1.38415 = 0.35550,
        # half = 1.95996 / 1.38415 * sqrt(0.021 + 0.0096037) = 0.24771.
        (3, 10, (0.1078, 0.6032)),
        # x = 0: the lower end is exactly 0, the upper z^2 / (n + z^2) = 3.8415 / 13.8415.
        (0, 10, (0.0, 0.2775)),
        # x = n mirrors x = 0.
        (10, 10, (0.7225, 1.0)),
        # p = 0.5, n = 100: centre 0.5, half = 1.96 / 1.038415 * sqrt(0.0025 + 0.000096) = 0.0962.
        (50, 100, (0.4038, 0.5962)),
    ],
)
def test_wilson_known_values(x, n, expected):
    low, high = wilson_interval(x, n)
    assert (round(low, 4), round(high, 4)) == expected


def test_wilson_of_nothing_is_everything():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_two_proportion_known_value():
    # 30/100 against 20/100: pooled 0.25, se = sqrt(0.25 * 0.75 * 0.02) = 0.061237,
    # z = 0.1 / 0.061237 = 1.63299, two-sided p = erfc(1.63299 / sqrt 2) = 0.102470.
    assert two_proportion_p_value(30, 100, 20, 100) == pytest.approx(0.1024704, abs=1e-6)
    # Symmetric in the two groups.
    assert two_proportion_p_value(20, 100, 30, 100) == pytest.approx(0.1024704, abs=1e-6)
    # Equal rates: z = 0, p = 1.
    assert two_proportion_p_value(5, 10, 50, 100) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "args",
    [(3, 10, 0, 0), (0, 0, 3, 10), (0, 10, 0, 20), (10, 10, 20, 20)],
    ids=["rest empty", "group empty", "pooled 0", "pooled 1"],
)
def test_two_proportion_untestable_is_none(args):
    assert two_proportion_p_value(*args) is None


def test_benjamini_hochberg_by_hand():
    # Sorted p: 0.01, 0.02, 0.03, 0.04, 0.20 with m = 5 -> p*m/rank:
    # 0.05, 0.05, 0.05, 0.05, 0.20; the running minimum from the top leaves them so.
    # The None is not counted in m and stays None; input order is kept.
    p = [0.03, None, 0.01, 0.20, 0.04, 0.02]
    q = benjamini_hochberg(p)
    assert q[1] is None
    assert q == pytest.approx([0.05, None, 0.05, 0.20, 0.05, 0.05])


def test_benjamini_hochberg_running_minimum_and_cap():
    # Sorted p: 0.01, 0.04, 0.035 -> 0.01, 0.035, 0.04; m = 3:
    # raw 0.03, 0.0525, 0.04 -> running min from the top: 0.03, 0.04, 0.04.
    assert benjamini_hochberg([0.01, 0.04, 0.035]) == pytest.approx([0.03, 0.04, 0.04])
    # 0.9 * 2 / 1 = 1.8 is capped at 1 (and so is the larger one).
    assert benjamini_hochberg([0.9, 0.95]) == pytest.approx([0.95, 0.95])
    assert benjamini_hochberg([0.6, 0.7, 0.8]) == pytest.approx([0.8, 0.8, 0.8])
    assert benjamini_hochberg([0.99]) == [0.99]
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([None, None]) == [None, None]


counts = st.integers(min_value=1, max_value=5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@given(counts, st.floats(min_value=0.5, max_value=4.0))
def test_wilson_contains_the_rate_and_lies_in_0_1(xn, z):
    x, n = xn
    low, high = wilson_interval(x, n, z)
    assert 0.0 <= low <= x / n <= high <= 1.0


@given(counts, counts)
def test_p_value_is_a_probability_or_none(a, b):
    p = two_proportion_p_value(*a, *b)
    pooled = (a[0] + b[0]) / (a[1] + b[1])
    assert (p is None) == (pooled in (0.0, 1.0))
    if p is not None:
        assert 0.0 <= p <= 1.0 and not math.isnan(p)


p_lists = st.lists(st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)), max_size=40)


@given(p_lists)
def test_q_is_at_least_p_at_most_1_and_none_stays_none(p):
    q = benjamini_hochberg(p)
    assert len(q) == len(p)
    for pi, qi in zip(p, q):
        assert (pi is None) == (qi is None)
        if pi is not None:
            assert pi <= qi <= 1.0


@given(p_lists)
def test_q_is_monotone_in_the_rank_of_p(p):
    q = benjamini_hochberg(p)
    pairs = sorted((pi, qi) for pi, qi in zip(p, q) if pi is not None)
    for (p1, q1), (p2, q2) in zip(pairs, pairs[1:]):
        assert q1 <= q2
        if p1 == p2:
            assert q1 == q2
