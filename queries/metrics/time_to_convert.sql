-- Among the period's cohort of stage S: the share of mature members reaching stage T within N days, and the median days S -> T.
with leads as (
    select l.lead_id, l.__from__ as from_at, l.__to__ as to_at
    from fct_leads as l
    -- a lead that counts in the period has a week on or after the period's (fct_leads is stored by last_week)
    where l.last_week >= $start_week
),

as_of as (
    select
        lead_id,
        case when from_at <= $as_of then from_at end as from_at,
        case when to_at <= $as_of then to_at end as to_at
    from leads
),

cohort as (
    select
        epoch_us(cast($as_of as timestamp)) - epoch_us(from_at) >= $within_days * 86400000000 as mature,
        to_at is not null as reached_to,
        (epoch_us(to_at) - epoch_us(from_at)) / 86400000000.0 as days
    from as_of
    where from_at >= $start and from_at < $end
),

counted as (
    select
        count(*) as entered,
        count(*) filter (where mature) as mature,
        count(*) filter (where mature and reached_to and days <= $within_days) as reached_within,
        count(*) filter (where reached_to) as reached,
        quantile_cont(days, 0.5) filter (where reached_to) as median_days
    from cohort
)

select
    $from_stage as from_stage,
    $to_stage as to_stage,
    entered,
    mature,
    reached_within,
    case when mature > 0 then reached_within / mature end as share_within,
    reached,
    median_days
from counted
