-- Each lead's attributes: the leads file wins, else the latest event that carries a value.
with events as (
    select e.lead_id, e.entered_at, e.stage_rank, e.file_id, e.source_line, e.__attr__
    from stg_events as e
),

leads as (
    select l.lead_id, l.created_at, l.file_id, l.source_line, l.__attr__
    from raw_leads as l
),

-- one pass over the lead's events in event order, no GROUP BY: on its last event, the
-- running last non-empty value of each attribute is the latest one
ordered as (
    select
        e.lead_id,
        lead(e.lead_id) over by_time is null as is_last,
        last_value(e.__attr__ ignore nulls) over (by_time rows between unbounded preceding and current row) as __attr__
    from events as e
    window by_time as (partition by e.lead_id order by e.entered_at, e.stage_rank, e.file_id, e.source_line)
),

from_events as (
    select o.lead_id, o.__attr__
    from ordered as o
    where o.is_last
),

from_leads as (
    select
        l.lead_id,
        arg_max(l.created_at, (l.file_id, l.source_line)) filter (where l.created_at is not null) as created_at,
        arg_max(l.__attr__, (l.file_id, l.source_line)) filter (where l.__attr__ is not null) as __attr__
    from leads as l
    group by l.lead_id
)

select
    coalesce(e.lead_id, l.lead_id) as lead_id,
    l.created_at,
    coalesce(l.__attr__, e.__attr__) as __attr__
from from_events as e
full outer join from_leads as l on l.lead_id = e.lead_id
