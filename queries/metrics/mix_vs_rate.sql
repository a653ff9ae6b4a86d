-- The S -> T (default: the key rate's stages) cohorts of a before and an after period, counted per value of one
-- segment column; with $mature_only, members younger than the maturity horizon are left out of both.
with leads as (
    select l.lead_id, l.__from__ as from_at, l.__to__ as to_at, l.__segment__ as segment
    from fct_leads as l
),

as_of as (
    select
        coalesce(cast(segment as varchar), '(none)') as segment,
        case when from_at <= $as_of then from_at end as from_at,
        case when to_at <= $as_of then to_at end as to_at
    from leads
),

cohorts as (
    select
        segment,
        from_at >= $before_start and from_at < $before_end as in_before,
        from_at >= $after_start and from_at < $after_end as in_after,
        to_at is not null
            and ($window_days = 0 or epoch_us(to_at) - epoch_us(from_at) <= $window_days * 86400000000) as converted
    from as_of
    where ((from_at >= $before_start and from_at < $before_end) or (from_at >= $after_start and from_at < $after_end))
        and not ($mature_only and $maturity_days > 0
                 and epoch_us(cast($as_of as timestamp)) - epoch_us(from_at) < $maturity_days * 86400000000)
),

grouped as (
    select
        segment,
        count(*) filter (where in_before) as n_before,
        count(*) filter (where in_before and converted) as converted_before,
        count(*) filter (where in_after) as n_after,
        count(*) filter (where in_after and converted) as converted_after
    from cohorts
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
