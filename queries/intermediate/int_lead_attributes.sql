-- Each lead's attributes: the leads file wins, else the latest event that carries a value.
with events as (
    select e.lead_id, e.entered_at, e.stage_rank, e.file_id, e.source_line, e.__attr__
    from stg_events as e
),

leads as (
    select l.lead_id, l.created_at, l.file_id, l.source_line, l.__attr__
    from raw_leads as l
),

from_events as (
    select
        e.lead_id,
        arg_max(e.__attr__, (e.entered_at, e.stage_rank, e.file_id, e.source_line)) filter (where e.__attr__ is not null) as __attr__
    from events as e
    group by e.lead_id
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
