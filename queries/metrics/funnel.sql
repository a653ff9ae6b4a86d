-- Per funnel stage: cohort members (leads reaching the first stage in the period) reaching it, and the period view.
-- One pass over the leads: every count is a filtered count of the same rows.
with leads as (
    select l.reached___stage__
    from fct_leads as l
    -- a lead that counts in the period has a week on or after the period's (fct_leads is stored by last_week)
    where l.last_week >= $start_week
),

as_of as (
    select case when reached___stage__ <= $as_of then reached___stage__ end as reached___stage__
    from leads
),

flagged as (
    select
        reached___stage__,
        coalesce(__first__ >= $start and __first__ < $end, false) as in_cohort
    from as_of
)

select
    count(*) filter (where in_cohort) as cohort,
    count(reached___stage__) filter (where in_cohort) as reached___stage__,
    count(*) filter (where reached___stage__ >= $start and reached___stage__ < $end) as period___stage__
from flagged
