-- One row per loaded event, with its stage's order and rank and its reason normalised.
with events as (
    select e.lead_id, e.stage, e.entered_at, e.reason, e.file_id, e.source_line, e.__attr__
    from raw_events as e
),

stages as (
    select stage, stage_order, stage_rank, kind, is_terminal
    from cfg_stages
),

reasons as (
    select reason_key, reason
    from cfg_reasons
)

select
    e.lead_id,
    e.stage,
    s.stage_order,
    s.stage_rank,
    s.kind = 'funnel' as is_funnel,
    s.is_terminal,
    e.entered_at,
    coalesce(r.reason, e.reason) as reason,
    e.file_id,
    e.source_line,
    e.__attr__
from events as e
left join stages as s on s.stage = e.stage
left join reasons as r on r.reason_key = case
    -- whitespace to collapse: a regular expression only where there is some (most reasons have none)
    when contains(e.reason, '  ') or contains(e.reason, chr(9)) or contains(e.reason, chr(10))
        or contains(e.reason, chr(11)) or contains(e.reason, chr(12)) or contains(e.reason, chr(13))
        then lower(regexp_replace(e.reason, '\s+', ' ', 'g'))
    else lower(e.reason)
end
