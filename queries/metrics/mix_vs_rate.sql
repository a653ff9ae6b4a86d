-- The S -> T (default: the key rate's stages) cohorts of a before and an after period, counted per value of one
-- segment column, each period as of its own moment; with $mature_only, members younger than the maturity horizon
-- (at that moment) are left out.
with leads as (
    select l.lead_id, l.__from__ as from_at, l.__to__ as to_at, l.__segment__ as segment
    from fct_leads as l
    where (l.__from__ >= $before_start and l.__from__ < $before_end) or (l.__from__ >= $after_start and l.__from__ < $after_end)
),

-- each period's cohort as of its own moment ($before_as_of, $as_of): a member that reached S by then
-- and, with $mature_only, is at least the maturity horizon old by then
cohorts as (
    select
        coalesce(cast(segment as varchar), '(none)') as segment,
        from_at >= $before_start and from_at < $before_end and from_at <= $before_as_of
            and not ($mature_only and $maturity_days > 0
                     and epoch_us(cast($before_as_of as timestamp)) - epoch_us(from_at) < $maturity_days * 86400000000)
            as in_before,
        from_at >= $after_start and from_at < $after_end and from_at <= $as_of
            and not ($mature_only and $maturity_days > 0
                     and epoch_us(cast($as_of as timestamp)) - epoch_us(from_at) < $maturity_days * 86400000000)
            as in_after,
        to_at is not null
            and ($window_days = 0 or epoch_us(to_at) - epoch_us(from_at) <= $window_days * 86400000000) as in_window,
        to_at <= $before_as_of as to_by_before,
        to_at <= $as_of as to_by_after
    from leads
),

grouped as (
    select
        segment,
        count(*) filter (where in_before) as n_before,
        count(*) filter (where in_before and in_window and to_by_before) as converted_before,
        count(*) filter (where in_after) as n_after,
        count(*) filter (where in_after and in_window and to_by_after) as converted_after
    from cohorts
    where in_before or in_after
    group by segment
)

select
    segment,
    n_before,
    converted_before,
    n_after,
    converted_after
from grouped
order by segment
