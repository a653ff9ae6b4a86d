-- One row per lead: when it reached and entered each funnel stage, its attributes, score and amount.
with spells as (
    select lead_id, spell_no, stage, stage_order, entered_at
    from int_spells
),

settings as (
    select skipped_stages
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
        arg_max(stage, spell_no) as current_stage
    from spells
    group by lead_id
)

select
    a.lead_id,
    coalesce(a.created_at, j.first_event_at) as created_at,
    case when st.skipped_stages = 'strict' then j.entered___stage__ else j.counted___stage__ end as reached___stage__,
    j.entered___stage__,
    j.current_stage,
    try_cast(a.__score__ as double) as score_value,
    try_cast(a.__amount__ as double) as amount_value,
    a.__attr__
from attributes as a
left join journeys as j on j.lead_id = a.lead_id
cross join settings as st
