"""Small statistics for the segment views: Wilson intervals, the two-proportion z-test, Benjamini-Hochberg.

Plain math on counts, no numpy or scipy, so the numbers are easy to check by hand
(docs/metrics.md, "Segment conversion").
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the two-sided 95 % normal quantile


def wilson_interval(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a rate x / n; honest near 0 and 1 and for small n.

    With n = 0 nothing is known and the interval is the whole of [0, 1].
    """
    if n < 0 or x < 0 or x > n:
        raise ValueError(f"wilson_interval needs 0 <= x <= n, got x={x}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = x / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # In exact arithmetic x = 0 gives low = 0 and x = n gives high = 1; keep rounding noise out.
    low = 0.0 if x == 0 else max(0.0, centre - half)
    high = 1.0 if x == n else min(1.0, centre + half)
    return (low, high)


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test of x1/n1 against x2/n2.

    None when either group is empty or the pooled rate is 0 or 1 (no variance to test against).
    """
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    if pooled <= 0 or pooled >= 1:
        return None
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))


def benjamini_hochberg(p_values: list[float | None]) -> list[float | None]:
    """Benjamini-Hochberg q-values in the input order; None stays None and does not count in m.

    q_(i) = min over j >= i of p_(j) * m / j, at most 1, where p_(1) <= ... <= p_(m).
    """
    ranked = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(ranked)
    q: list[float | None] = [None] * len(p_values)
    running = 1.0
    for rank in range(m, 0, -1):
        p, i = ranked[rank - 1]
        running = min(running, p * (m / rank))  # m / rank >= 1 first, so rounding never takes q below p
        q[i] = running
    return q
