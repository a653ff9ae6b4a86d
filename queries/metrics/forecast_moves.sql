-- The moves between forecast categories over [$start, $end) as of $as_of: per deal, its category when
-- counted at the start ('(new)' when not) and at the end, or how it left the count in the period
-- (closed when won, lost, pushed out, exited), grouped by segment value and that pair where they differ.
with seen as (
    select s.*, s.__segment__ as segment
    from pipeline_seen as s
),

ends as (
    select
        lead_id,
        max(segment) as segment,
        max(category) filter (where moved_at < $start and known_until >= $start) as from_category,
        max(worth_after) filter (where moved_at < $start and known_until >= $start) as from_value,
        max(category) filter (where moved_at < $end and known_until >= $end) as to_category,
        max(worth_after) filter (where moved_at < $end and known_until >= $end) as to_value
    from seen
    where is_counted and moved_at < $end
    group by lead_id
),

-- a deal that left the count in the period and is not counted at its end: its last way out
gone as (
    select
        lead_id,
        max(segment) as segment,
        arg_max(
            case when stage = $won then 'closed' when list_contains($lost, stage) then 'lost' when in_pipeline then 'pushed out' else 'exited' end,
            moved_at
        ) as way_out,
        arg_max(worth_after, moved_at) as out_value
    from seen
    where moved_at >= $start and moved_at < $end and was_counted and not is_counted
    group by lead_id
),

pairs as (
    select
        coalesce(e.lead_id, g.lead_id) as lead_id,
        coalesce(e.segment, g.segment) as segment,
        coalesce(e.from_category, '(new)') as from_category,
        coalesce(e.from_value, 0.0) as from_value,
        coalesce(e.to_category, g.way_out) as to_category,
        coalesce(e.to_value, g.out_value) as to_value
    from ends as e
    full join gone as g on g.lead_id = e.lead_id
)

select
    coalesce(cast(p.segment as varchar), '(none)') as segment,
    p.from_category,
    p.to_category,
    count(*) as deals,
    sum(p.from_value) as from_value,
    sum(p.to_value) as to_value
from pairs as p
where p.to_category is not null and p.from_category <> p.to_category
group by all
order by segment, p.from_category, p.to_category
