-- Spells: runs of consecutive events of one stage, per lead, in event order.
with events as (
    select lead_id, stage, stage_order, stage_rank, is_funnel, is_terminal, entered_at, reason, file_id, source_line
    from stg_events
),

ordered as (
    select
        lead_id, stage, stage_order, stage_rank, is_funnel, is_terminal, entered_at, reason,
        row_number() over by_time as event_no,
        lag(stage) over by_time as previous_event_stage
    from events
    window by_time as (partition by lead_id order by entered_at, stage_rank, file_id, source_line)
),

numbered as (
    select
        *,
        sum(case when previous_event_stage is distinct from stage then 1 else 0 end) over (
            partition by lead_id order by event_no rows between unbounded preceding and current row
        ) as spell_no
    from ordered
),

spells as (
    select
        lead_id,
        spell_no,
        any_value(stage) as stage,
        any_value(stage_order) as stage_order,
        any_value(is_funnel) as is_funnel,
        any_value(is_terminal) as is_terminal,
        min(entered_at) as entered_at,
        arg_min(reason, event_no) filter (where reason is not null) as reason,
        arg_min(entered_at, event_no) filter (where reason is not null) as reason_at,
        count(*) as events
    from numbered
    group by lead_id, spell_no
),

linked as (
    select
        *,
        lead(stage) over by_spell as next_stage,
        lead(stage_order) over by_spell as next_stage_order,
        lead(entered_at) over by_spell as exited_at,
        last_value(case when is_funnel then stage end ignore nulls) over (
            partition by lead_id order by spell_no rows between unbounded preceding and 1 preceding
        ) as stage_left
    from spells
    window by_spell as (partition by lead_id order by spell_no)
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
    reason,
    reason_at,
    events
from linked
