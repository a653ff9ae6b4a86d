-- Score threshold review: of the leads created in two periods (the current one and the one before) with
-- a score in [0, 100], per candidate threshold ($thresholds), how many score at or above it, and how
-- many of those, and of all, reached T (the key rate's second stage) and the win by as_of; per segment value.
with leads as (
    select l.created_at, l.score_value, l.__segment__ as segment, l.__to__ as to_at, l.__won__ as won_at
    from fct_leads as l
    -- a lead that counts in either period has a week on or after the earlier period's (fct_leads is stored by last_week)
    where l.last_week >= $start_week
),

scored as (
    select
        case when created_at >= $start and created_at < $end then 'current' else 'previous' end as period,
        coalesce(cast(segment as varchar), '(none)') as segment,
        score_value,
        coalesce(to_at <= $as_of, false) as reached_to,
        coalesce(won_at <= $as_of, false) as reached_won
    from leads
    where ((created_at >= $start and created_at < $end) or (created_at >= $previous_start and created_at < $previous_end))
        and created_at <= $as_of
        and score_value >= 0 and score_value <= 100
),

thresholds as (
    select unnest($thresholds) as threshold
),

counted as (
    select
        s.period,
        s.segment,
        t.threshold,
        count(*) as leads,
        count(*) filter (where s.reached_to) as reached,
        count(*) filter (where s.reached_won) as won,
        count(*) filter (where s.score_value >= t.threshold) as passed,
        count(*) filter (where s.score_value >= t.threshold and s.reached_to) as passed_reached,
        count(*) filter (where s.score_value >= t.threshold and s.reached_won) as passed_won
    from scored as s
    cross join thresholds as t
    group by s.period, s.segment, t.threshold
)

select period, segment, threshold, leads, reached, won, passed, passed_reached, passed_won
from counted
order by period, segment, threshold
