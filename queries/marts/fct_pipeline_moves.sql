-- Pipeline value, move by move: every event of a lead (in event order) with the lead's amount and
-- whether it is in the pipeline before and after it. A lead is in the pipeline after an event when the
-- event's stage is a funnel stage from [pipeline] from_stage on, before the last (the win), and the
-- lead has an amount by then (its latest non-empty amount). Only the events that touch the pipeline
-- (in it before or after) are kept; next_moved_at is the lead's next event of any kind.
with events as (
    select
        e.lead_id, e.stage, e.stage_order, e.is_funnel, e.entered_at, e.stage_rank, e.file_id, e.source_line,
        try_cast(e.__amount__ as double) as amount
    from stg_events as e
),

settings as (
    select
        s.pipeline_from_order,
        (select max(c.stage_order) from cfg_stages as c where c.kind = 'funnel') as last_order
    from cfg_settings as s
),

ordered as (
    select
        e.lead_id,
        e.stage,
        e.stage_order,
        e.entered_at,
        row_number() over by_time as move_no,
        lead(e.entered_at) over by_time as next_moved_at,
        last_value(e.amount ignore nulls) over (by_time rows between unbounded preceding and current row) as amount_after,
        e.is_funnel and e.stage_order >= st.pipeline_from_order and e.stage_order < st.last_order as in_stage
    from events as e
    cross join settings as st
    window by_time as (partition by e.lead_id order by e.entered_at, e.stage_rank, e.file_id, e.source_line)
),

flagged as (
    select
        o.*,
        o.in_stage and o.amount_after is not null as in_pipeline
    from ordered as o
),

moved as (
    select
        f.*,
        coalesce(lag(f.in_pipeline) over by_move, false) as was_in_pipeline,
        lag(f.amount_after) over by_move as amount_before
    from flagged as f
    window by_move as (partition by f.lead_id order by f.move_no)
)

select
    m.lead_id,
    m.move_no,
    m.entered_at as moved_at,
    m.next_moved_at,
    m.stage,
    m.stage_order,
    m.was_in_pipeline,
    m.in_pipeline,
    m.amount_before,
    m.amount_after,
    case when m.was_in_pipeline then m.amount_before else 0.0 end as value_before,
    case when m.in_pipeline then m.amount_after else 0.0 end as value_after
from moved as m
where m.was_in_pipeline or m.in_pipeline
-- stored in time order: a period's moves are a range of row groups
order by moved_at
