-- Per funnel stage: cohort members (leads reaching the first stage in the period) reaching it, and the period view.
with leads as (
    select l.reached___stage__
    from fct_leads as l
),

as_of as (
    select case when reached___stage__ <= $as_of then reached___stage__ end as reached___stage__
    from leads
),

cohort as (
    select reached___stage__
    from as_of
    where __first__ >= $start and __first__ < $end
)

select
    (select count(*) from cohort) as cohort,
    (select count(reached___stage__) from cohort) as reached___stage__,
    count(*) filter (where reached___stage__ >= $start and reached___stage__ < $end) as period___stage__
from as_of
