-- The pipeline's change over the period [$start, $end), seen at $as_of, per segment value: the value
-- counted at the start (each deal's state after its last move before $start) and at the end, and
-- every move in between by kind, over the deals counted at the start or the end or with a move in
-- between that it is counted before or after. A deal counts while in the pipeline with a close date in the close window (pipeline_seen).
-- Per deal, start + created + pulled_in + increased - decreased - pushed_out - won - lost - exited = end.
with seen as (
    select s.*, s.__segment__ as segment
    from pipeline_seen as s
),

-- the deals counted at the start and at the end: each deal's one move held then (moved before it, its
-- next move at or after it, or not known by as_of)
at_start as (
    select lead_id, segment, worth_after as value
    from seen
    where is_counted and moved_at < $start and known_until >= $start
),

at_end as (
    select lead_id, segment, worth_after as value
    from seen
    where is_counted and moved_at < $end and known_until >= $end
),

-- a move in the period: coming into the count adds the value it comes in with (created when new to the
-- pipeline, pulled in when its close date moved into the window); a move that changes the value while
-- counted counts the change; leaving counts the value it leaves with (after any change on it): won,
-- lost, exited (out of the pipeline otherwise) or pushed out (still in it, its close date out of the window)
kinds as (
    select
        lead_id,
        segment,
        not was_counted and is_counted and not was_in_pipeline as is_created,
        not was_counted and is_counted and was_in_pipeline as is_pulled_in,
        case when was_counted then worth_after - worth_before else 0.0 end as delta,
        case when was_counted and not is_counted then worth_after else 0.0 end as left_value,
        was_counted and not is_counted and stage = $won as is_won,
        was_counted and not is_counted and list_contains($lost, stage) as is_lost,
        was_counted and not is_counted and not in_pipeline and stage <> $won and not list_contains($lost, stage) as is_exited,
        was_counted and not is_counted and in_pipeline as is_pushed_out,
        worth_after
    from seen
    where moved_at >= $start and moved_at < $end and (was_counted or is_counted)
),

per_lead as (
    select
        lead_id,
        segment,
        count(*) filter (where is_created) as n_created,
        coalesce(sum(worth_after) filter (where is_created), 0.0) as created,
        count(*) filter (where is_pulled_in) as n_pulled_in,
        coalesce(sum(worth_after) filter (where is_pulled_in), 0.0) as pulled_in,
        count(*) filter (where delta > 0) as n_increased,
        coalesce(sum(delta) filter (where delta > 0), 0.0) as increased,
        count(*) filter (where delta < 0) as n_decreased,
        coalesce(-sum(delta) filter (where delta < 0), 0.0) as decreased,
        count(*) filter (where is_pushed_out) as n_pushed_out,
        coalesce(sum(left_value) filter (where is_pushed_out), 0.0) as pushed_out,
        count(*) filter (where is_won) as n_won,
        coalesce(sum(left_value) filter (where is_won), 0.0) as won,
        count(*) filter (where is_lost) as n_lost,
        coalesce(sum(left_value) filter (where is_lost), 0.0) as lost,
        count(*) filter (where is_exited) as n_exited,
        coalesce(sum(left_value) filter (where is_exited), 0.0) as exited
    from kinds
    group by lead_id, segment
),

-- one row per deal and side (start, end, the period's moves), summed per segment value below
counted as (
    select segment, 1 as start_deals, value as start_value, 0 as end_deals, 0.0 as end_value,
           0 as n_created, 0.0 as created, 0 as n_pulled_in, 0.0 as pulled_in, 0 as n_increased, 0.0 as increased,
           0 as n_decreased, 0.0 as decreased, 0 as n_pushed_out, 0.0 as pushed_out, 0 as n_won, 0.0 as won,
           0 as n_lost, 0.0 as lost, 0 as n_exited, 0.0 as exited
    from at_start
    union all
    select segment, 0, 0.0, 1, value, 0, 0.0, 0, 0.0, 0, 0.0, 0, 0.0, 0, 0.0, 0, 0.0, 0, 0.0, 0, 0.0
    from at_end
    union all
    select segment, 0, 0.0, 0, 0.0, n_created, created, n_pulled_in, pulled_in, n_increased, increased, n_decreased, decreased,
           n_pushed_out, pushed_out, n_won, won, n_lost, lost, n_exited, exited
    from per_lead
)

select
    coalesce(cast(c.segment as varchar), '(none)') as segment,
    sum(c.start_deals) as start_deals,
    sum(c.start_value) as start,
    sum(c.n_created) as n_created,
    sum(c.created) as created,
    sum(c.n_pulled_in) as n_pulled_in,
    sum(c.pulled_in) as pulled_in,
    sum(c.n_increased) as n_increased,
    sum(c.increased) as increased,
    sum(c.n_decreased) as n_decreased,
    sum(c.decreased) as decreased,
    sum(c.n_pushed_out) as n_pushed_out,
    sum(c.pushed_out) as pushed_out,
    sum(c.n_won) as n_won,
    sum(c.won) as won,
    sum(c.n_lost) as n_lost,
    sum(c.lost) as lost,
    sum(c.n_exited) as n_exited,
    sum(c.exited) as exited,
    sum(c.end_deals) as end_deals,
    sum(c.end_value) as "end"
from counted as c
group by 1
