"""The log-rank test of two time-in-stage curves (warehouse/durations.py `log_rank`): a published
worked example, a plain-Python oracle on random groups, and what must hold whatever the data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelboard.warehouse.durations import Group, log_rank
from tests.oracle.oracle_review import log_rank as oracle_log_rank


def group(pairs: list[tuple[int, bool]]) -> Group:
    pairs = sorted(pairs, key=lambda p: (p[0], p[1]))
    return Group(1, "(all)", np.array([d for d, _ in pairs], dtype=np.int64), np.array([c for _, c in pairs], dtype=bool))


# Gehan (1965), remission weeks of leukaemia patients: 6-MP (+ = censored) against placebo. The
# log-rank test of these two groups is the textbook example: placebo observed 21, expected 10.75,
# chi-square 16.79 on 1 degree of freedom (R's survdiff prints "Chisq= 16.8", p = 4.17e-05).
SIX_MP = [(6, True), (6, True), (6, True), (6, False), (7, True), (9, False), (10, True), (10, False), (11, False), (13, True),
          (16, True), (17, False), (19, False), (20, False), (22, True), (23, True), (25, False), (32, False), (32, False),
          (34, False), (35, False)]
PLACEBO = [(t, True) for t in (1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23)]


def test_the_published_example():
    test = log_rank(group(SIX_MP), group(PLACEBO))
    assert test.observed == 21
    assert test.expected == pytest.approx(10.75, abs=0.005)
    # p of chi-square 16.79 on 1 df
    assert test.p_value == pytest.approx(4.17e-05, rel=0.01)


def test_the_same_curve_is_no_difference_and_an_empty_side_is_no_test():
    same = group([(d, d % 3 != 0) for d in range(1, 40)])
    assert log_rank(same, same).p_value == pytest.approx(1.0)
    assert log_rank(group([]), same).p_value is None
    assert log_rank(group([(5, False), (9, False)]), group([(7, False)])).p_value is None  # nothing completed


def test_the_slower_group_completes_fewer_than_expected():
    fast = group([(d, True) for d in range(1, 30)])
    slow = group([(3 * d, True) for d in range(1, 30)])
    test = log_rank(fast, slow)
    assert test.observed < test.expected and test.p_value < 0.01


pairs = st.lists(st.tuples(st.integers(0, 12), st.booleans()), max_size=25)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(pairs, pairs)
def test_it_agrees_with_a_plain_python_log_rank(a, b):
    test = log_rank(group(a), group(b))
    observed, expected, p = oracle_log_rank(a, b)
    assert test.observed == observed
    assert test.expected == pytest.approx(expected, abs=1e-9)
    assert (test.p_value is None) == (p is None)
    if p is not None:
        assert test.p_value == pytest.approx(p, abs=1e-9)
        # swapping the groups tests the same thing
        assert log_rank(group(b), group(a)).p_value == pytest.approx(p, abs=1e-9)
