-- Each lead's attributes: the leads file wins, else the latest event that carries a value.
-- The events are read three times, each from stg_events itself: a CTE read more than once is
-- stored whole by DuckDB, and these are the events with every attribute.
with leads as (
    select l.lead_id, l.created_at, l.file_id, l.source_line, l.__attr__
    from raw_leads as l
),

-- the lead's events in event order, sorted without their attributes (sorting millions of events
-- is cheap when the attributes' text does not travel with them): its last event, and whether that
-- event ties with an earlier one
ordered as (
    select
        e.lead_id, e.entered_at, e.stage_rank, e.file_id, e.source_line,
        lead(e.lead_id) over by_time is null as is_last,
        -- an earlier event has the same place in the order
        rank() over by_time < row_number() over by_time as tied
    from stg_events as e
    window by_time as (partition by e.lead_id order by e.entered_at, e.stage_rank, e.file_id, e.source_line)
),

-- how many of the lead's events have each attribute
seen as (
    select e.lead_id, count(e.__attr__) as seen___attr__
    from stg_events as e
    group by e.lead_id
),

-- the last event's values are the latest ones, unless it lacks a value an earlier event has (that
-- value is then the latest) or ties with the event before it: such a lead takes the slower path
from_last as (
    select
        e.lead_id,
        e.__attr__,
        -- two zeros: Spark's greatest takes at least two arguments, and there may be no attribute
        o.tied or greatest(0, 0, case when e.__attr__ is null and s.seen___attr__ > 0 then 1 else 0 end) > 0 as slow
    from stg_events as e
    inner join ordered as o
        on o.lead_id = e.lead_id and o.entered_at = e.entered_at and o.stage_rank is not distinct from e.stage_rank
        and o.file_id = e.file_id and o.source_line = e.source_line
    inner join seen as s on s.lead_id = e.lead_id
    where o.is_last
),

-- the slower path: one pass over the lead's events in event order, with their attributes; on its
-- last event, the running last non-empty value of each attribute is the latest one
from_running as (
    select o.lead_id, o.__attr__
    from (
        select
            e.lead_id,
            lead(e.lead_id) over by_time is null as is_last,
            last_value(e.__attr__ ignore nulls) over (by_time rows between unbounded preceding and current row) as __attr__
        from stg_events as e
        where e.lead_id in (select f.lead_id from from_last as f where f.slow)
        window by_time as (partition by e.lead_id order by e.entered_at, e.stage_rank, e.file_id, e.source_line)
    ) as o
    where o.is_last
),

from_events as (
    select f.lead_id, f.__attr__
    from from_last as f
    where not f.slow
    union all
    select r.lead_id, r.__attr__
    from from_running as r
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
