-- The pipeline's change over the period [$start, $end), seen at $as_of, per segment value: the value
-- counted at the start (each deal's state after its last move before $start) and at the end, and
-- every move in between by kind, over the deals counted at the start or the end or with a move in
-- between that it is counted before or after. A deal counts while in the pipeline with a close date in the close window (pipeline_seen).
-- Per deal, start + created + pulled_in + increased - decreased - pushed_out - won - lost - exited = end.
with leads as (
    select l.lead_id, l.__segment__ as segment
    from fct_leads as l
),

seen as (
    select * from pipeline_seen
),

ends as (
    select
        lead_id,
        count(*) filter (where moved_at < $start and known_until >= $start) as start_deals,
        coalesce(sum(worth_after) filter (where moved_at < $start and known_until >= $start), 0.0) as start_value,
        count(*) filter (where moved_at < $end and known_until >= $end) as end_deals,
        coalesce(sum(worth_after) filter (where moved_at < $end and known_until >= $end), 0.0) as end_value
    from seen
    where is_counted and moved_at < $end
    group by lead_id
    having start_deals > 0 or end_deals > 0
),

-- a move in the period: coming into the count adds the value it comes in with (created when new to the
-- pipeline, pulled in when its close date moved into the window); a move that changes the value while
-- counted counts the change; leaving counts the value it leaves with (after any change on it): won,
-- lost, exited (out of the pipeline otherwise) or pushed out (still in it, its close date out of the window)
kinds as (
    select
        lead_id,
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
    group by lead_id
),

counted as (
    select lead_id from ends
    union
    select lead_id from per_lead
)

select
    coalesce(cast(l.segment as varchar), '(none)') as segment,
    sum(coalesce(e.start_deals, 0)) as start_deals,
    sum(coalesce(e.start_value, 0.0)) as start,
    sum(coalesce(p.n_created, 0)) as n_created,
    sum(coalesce(p.created, 0.0)) as created,
    sum(coalesce(p.n_pulled_in, 0)) as n_pulled_in,
    sum(coalesce(p.pulled_in, 0.0)) as pulled_in,
    sum(coalesce(p.n_increased, 0)) as n_increased,
    sum(coalesce(p.increased, 0.0)) as increased,
    sum(coalesce(p.n_decreased, 0)) as n_decreased,
    sum(coalesce(p.decreased, 0.0)) as decreased,
    sum(coalesce(p.n_pushed_out, 0)) as n_pushed_out,
    sum(coalesce(p.pushed_out, 0.0)) as pushed_out,
    sum(coalesce(p.n_won, 0)) as n_won,
    sum(coalesce(p.won, 0.0)) as won,
    sum(coalesce(p.n_lost, 0)) as n_lost,
    sum(coalesce(p.lost, 0.0)) as lost,
    sum(coalesce(p.n_exited, 0)) as n_exited,
    sum(coalesce(p.exited, 0.0)) as exited,
    sum(coalesce(e.end_deals, 0)) as end_deals,
    sum(coalesce(e.end_value, 0.0)) as "end"
from counted as c
inner join leads as l on l.lead_id = c.lead_id
left join ends as e on e.lead_id = c.lead_id
left join per_lead as p on p.lead_id = c.lead_id
group by 1
