-- Spells: runs of consecutive events of one stage, per lead, in event order.
-- Two window passes and no GROUP BY: the first numbers the events and looks ahead from each
-- one (events, reasons and the first reason still to come); a spell is the event that starts
-- it, and the second pass takes the spell's counts as differences to the next spell's start.
with events as (
    select lead_id, stage, stage_order, stage_rank, is_funnel, is_terminal, entered_at, reason, file_id, source_line
    from stg_events
),

ordered as (
    select
        lead_id, stage, stage_order, is_funnel, is_terminal, entered_at,
        row_number() over by_time as event_no,
        lag(stage) over by_time as previous_event_stage,
        count(*) over from_here as events_from,
        count(reason) over from_here as reasons_from,
        first_value(reason ignore nulls) over from_here as next_reason,
        first_value(case when reason is not null then entered_at end ignore nulls) over from_here as next_reason_at
    from events
    window
        by_time as (partition by lead_id order by entered_at, stage_rank, file_id, source_line),
        from_here as (
            partition by lead_id order by entered_at, stage_rank, file_id, source_line
            rows between current row and unbounded following
        )
),

starts as (
    select lead_id, stage, stage_order, is_funnel, is_terminal, entered_at, event_no,
           events_from, reasons_from, next_reason, next_reason_at
    from ordered
    where previous_event_stage is distinct from stage
),

spells as (
    select
        lead_id,
        -- a running sum, as the spell number always was (its type is the sum's, HUGEINT in DuckDB)
        sum(1) over (partition by lead_id order by event_no rows between unbounded preceding and current row) as spell_no,
        stage,
        stage_order,
        is_funnel,
        is_terminal,
        entered_at,
        lead(entered_at) over by_spell as exited_at,
        lead(stage) over by_spell as next_stage,
        lead(stage_order) over by_spell as next_stage_order,
        last_value(case when is_funnel then stage end ignore nulls) over (
            partition by lead_id order by event_no rows between unbounded preceding and 1 preceding
        ) as stage_left,
        -- the first reason at or after the spell's start is the spell's when it comes before the next spell
        reasons_from - coalesce(lead(reasons_from) over by_spell, 0) > 0 as has_reason,
        next_reason,
        next_reason_at,
        events_from - coalesce(lead(events_from) over by_spell, 0) as events
    from starts
    window by_spell as (partition by lead_id order by event_no)
)

select
    lead_id,
    spell_no,
    stage,
    stage_order,
    is_funnel,
    is_terminal,
    entered_at,
    exited_at,
    next_stage,
    next_stage_order,
    case
        when next_stage is null then case when is_terminal then 'terminal' else 'open' end
        when next_stage_order is null then 'exited'
        when not is_funnel then 'returned'
        when next_stage_order > stage_order then 'advanced'
        else 'regressed'
    end as next_kind,
    stage_left,
    case when has_reason then next_reason end as reason,
    case when has_reason then next_reason_at end as reason_at,
    events
from spells
