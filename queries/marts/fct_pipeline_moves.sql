-- Pipeline value, move by move: every event of a lead (in event order) with the deal's values before
-- and after it and whether it is in the pipeline before and after it. A deal's amount, close date,
-- currency and forecast category after an event are the latest non-empty ones of its events so far.
-- It is in the pipeline after an event when the event's stage is a funnel stage from
-- [pipeline] from_stage on, before the last (the win), and it has an amount by then. Only the events
-- that touch the pipeline (in it before or after) are kept; next_moved_at is the lead's next event of
-- any kind.
with settings as (
    select
        s.pipeline_from_order,
        (select max(c.stage_order) from cfg_stages as c where c.kind = 'funnel') as last_order
    from cfg_settings as s
),

pipeline_leads as (
    select distinct e.lead_id
    from stg_events as e
    cross join settings as st
    where e.is_funnel and e.stage_order >= st.pipeline_from_order and e.stage_order < st.last_order
),

events as (
    select
        e.lead_id, e.stage, e.stage_order, e.entered_at, e.stage_rank, e.file_id, e.source_line,
        e.is_funnel and e.stage_order >= st.pipeline_from_order and e.stage_order < st.last_order as in_stage,
        try_cast(e.__amount__ as double) as amount,
        try_cast(left(e.__close_date__, 10) as date) as close_date,
        e.__deal_currency__ as currency,
        -- a CRM's spelling, case- and underscore-blind ("BEST_CASE", "Best Case"), and the other names CRMs
        -- store: HubSpot's OMIT, Salesforce's API names BestCase and Forecast (its Commit)
        case lower(trim(replace(e.__forecast__, '_', ' ')))
            when 'omit' then 'omitted'
            when 'bestcase' then 'best case'
            when 'forecast' then 'commit'
            else lower(trim(replace(e.__forecast__, '_', ' ')))
        end as category
    from stg_events as e
    cross join settings as st
    -- only a lead with an event in a pipeline stage can be in the pipeline: the others' events are not sorted
    where e.lead_id in (select p.lead_id from pipeline_leads as p)
),

-- the lead's attributes (as fct_leads has them), carried so that the pipeline's queries filter and split
-- here without joining fct_leads
attributes as (
    select a.lead_id, a.__attr__
    from int_lead_attributes as a
),

-- one pass in event order: the values after each event, and before it (after the previous one)
ordered as (
    select
        e.lead_id,
        e.stage,
        e.stage_order,
        e.entered_at,
        e.in_stage,
        row_number() over by_time as move_no,
        lead(e.entered_at) over by_time as next_moved_at,
        lag(e.in_stage) over by_time as was_in_stage,
        last_value(e.amount ignore nulls) over so_far as amount_after,
        last_value(e.close_date ignore nulls) over so_far as close_after,
        last_value(e.currency ignore nulls) over so_far as currency_after,
        last_value(e.category ignore nulls) over so_far as category_after,
        last_value(e.amount ignore nulls) over before as amount_before,
        last_value(e.close_date ignore nulls) over before as close_before,
        last_value(e.currency ignore nulls) over before as currency_before,
        last_value(e.category ignore nulls) over before as category_before
    from events as e
    window
        by_time as (partition by e.lead_id order by e.entered_at, e.stage_rank, e.file_id, e.source_line),
        so_far as (partition by e.lead_id order by e.entered_at, e.stage_rank, e.file_id, e.source_line rows between unbounded preceding and current row),
        before as (partition by e.lead_id order by e.entered_at, e.stage_rank, e.file_id, e.source_line rows between unbounded preceding and 1 preceding)
),

-- in the pipeline after the move, and before it (after the lead's previous move)
flagged as (
    select
        o.*,
        o.in_stage and o.amount_after is not null as in_pipeline,
        coalesce(o.was_in_stage and o.amount_before is not null, false) as was_in_pipeline
    from ordered as o
),

-- the moves that touch the pipeline; every move in it is among them, so its first one is too
moved as (
    select
        f.*,
        min(case when f.in_pipeline then f.entered_at end) over (partition by f.lead_id) as first_in_pipeline
    from flagged as f
    where f.was_in_pipeline or f.in_pipeline
)

select
    m.lead_id,
    m.move_no,
    m.entered_at as moved_at,
    m.next_moved_at,
    -- how long the state after the move may hold in the pipeline: to the next move (9999-12-31 after the
    -- last); a move that leaves the pipeline holds nothing, so its held_until is its own moment
    case when m.in_pipeline then coalesce(m.next_moved_at, cast('9999-12-31 00:00:00' as timestamp)) else m.entered_at end as held_until,
    m.stage,
    m.stage_order,
    m.was_in_pipeline,
    m.in_pipeline,
    m.amount_before,
    m.amount_after,
    case when m.was_in_pipeline then m.amount_before else 0.0 end as value_before,
    case when m.in_pipeline then m.amount_after else 0.0 end as value_after,
    m.currency_before,
    m.currency_after,
    m.close_before,
    m.close_after,
    m.category_before,
    m.category_after,
    m.first_in_pipeline,
    a.__attr__
from moved as m
left join attributes as a on a.lead_id = m.lead_id
-- stored in held_until order: every move that matters at or after a moment T (in the pipeline and held
-- at T, or made after T) has held_until >= T, so a period's reader reads a range of row groups at the end
order by held_until, moved_at
