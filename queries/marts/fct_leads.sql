-- One row per lead: when it reached and entered each funnel stage (and in which local week), its
-- attributes, score and amount, and how often its close date was pushed while in the pipeline.
with spells as (
    select lead_id, spell_no, stage, stage_order, entered_at
    from int_spells
),

settings as (
    select skipped_stages, timezone
    from cfg_settings
),

attributes as (
    select a.lead_id, a.created_at, a.__attr__
    from int_lead_attributes as a
),

journeys as (
    select
        lead_id,
        min(entered_at) as first_event_at,
        -- rule "count": reaching a later funnel stage means reaching this one too
        min(entered_at) filter (where stage_order >= __stage_order__) as counted___stage__,
        -- rule "strict": only the stage itself
        min(entered_at) filter (where stage = __stage__) as entered___stage__,
        arg_max(stage, spell_no) as current_stage,
        arg_max(entered_at, spell_no) as current_since
    from spells
    group by lead_id
),

-- close-date slips over the deal's pipeline moves (fct_pipeline_moves): how often the close date moved
-- later, and the days from its first close date to its latest (negative: pulled in overall)
slips as (
    select
        lead_id,
        count(*) filter (where close_after > close_before) as close_pushes,
        datediff('day', arg_min(close_after, move_no) filter (where close_after is not null), arg_max(close_after, move_no)) as days_slipped
    from fct_pipeline_moves
    group by lead_id
),

reached as (
    select
        a.lead_id,
        coalesce(a.created_at, j.first_event_at) as created_at,
        case when st.skipped_stages = 'strict' then j.entered___stage__ else j.counted___stage__ end as reached___stage__,
        j.entered___stage__,
        j.current_stage,
        j.current_since,
        try_cast(a.__score__ as double) as score_value,
        try_cast(a.__amount__ as double) as amount_value,
        sl.close_pushes,
        sl.days_slipped,
        a.__attr__
    from attributes as a
    left join journeys as j on j.lead_id = a.lead_id
    left join slips as sl on sl.lead_id = a.lead_id
    cross join settings as st
),

-- local wall time of the instants the weekly metrics bucket by week; in UTC it is the stored
-- time, with no time-zone lookup per row (the lookup is ~85 ns a value: seconds at 10M events)
localised as (
    select
        r.*,
        case when st.timezone = 'UTC' then r.created_at else timezone(st.timezone, timezone('UTC', r.created_at)) end as created_local,
        case when st.timezone = 'UTC' then r.reached___stage__ else timezone(st.timezone, timezone('UTC', r.reached___stage__)) end as local___stage__
    from reached as r
    cross join settings as st
)

select
    l.lead_id,
    l.created_at,
    l.reached___stage__,
    l.entered___stage__,
    l.current_stage,
    l.current_since,
    cast(date_trunc('week', l.created_local) as date) as created_week,
    cast(date_trunc('week', l.local___stage__) as date) as week___stage__,
    -- the latest of the weeks above: a lead with last_week before a week counts in none of its KPIs
    greatest(cast(date_trunc('week', l.created_local) as date), cast(date_trunc('week', l.local___stage__) as date)) as last_week,
    l.score_value,
    l.amount_value,
    l.close_pushes,
    l.days_slipped,
    l.__attr__
from localised as l
-- stored by last_week: the weekly metrics' filter on it skips the row groups of older leads
order by last_week
