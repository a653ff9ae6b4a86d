-- The maturity horizon of a conversion S -> T: the 90th percentile of the time from reaching S to reaching T,
-- in days, over every lead that reached both by $as_of (NULL when none did), with how many conversions there
-- are and how many take longer than the window. Run without the request's filters: it describes the pair.
with pairs as (
    select l.__from__ as from_at, l.__to__ as to_at
    from fct_leads as l
    where l.__to__ <= $as_of and l.__from__ <= l.__to__
),

days as (
    select (epoch_us(to_at) - epoch_us(from_at)) / 86400000000.0 as days
    from pairs
)

select
    quantile_cont(days, 0.9) as horizon_days,
    count(*) as conversions,
    count(*) filter (where $window_days > 0 and days > $window_days) as beyond_window
from days
