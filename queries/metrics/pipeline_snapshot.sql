-- The open pipeline at the end of each week: per moment in $moments (the end of each local week, or
-- as_of for a week still running), the leads in the pipeline then (their last move before the moment
-- left them in it) by stage and segment value, counted and summed.
with leads as (
    select l.lead_id, l.__segment__ as segment
    from fct_leads as l
),

moments as (
    select unnest($moments) as moment
),

held as (
    select mo.moment, m.lead_id, m.stage, m.stage_order, m.value_after
    from fct_pipeline_moves as m
    inner join moments as mo
        on m.moved_at < mo.moment and (m.next_moved_at is null or m.next_moved_at >= mo.moment)
    where m.in_pipeline
)

select
    h.moment,
    h.stage,
    h.stage_order,
    coalesce(cast(l.segment as varchar), '(none)') as segment,
    count(*) as deals,
    sum(h.value_after) as value
from held as h
inner join leads as l on l.lead_id = h.lead_id
group by all
order by h.moment, h.stage_order, segment
