-- The pipeline's change over the period [$start, $end), seen at $as_of, per segment value: the value at
-- the start (each lead's value after its last move before $start) and at the end, and every move in
-- between by kind, over the leads in the pipeline at the start or the end or with a move in between.
-- Per lead, start + created + increased - decreased - won - lost - exited = end.
with leads as (
    select l.lead_id, l.__segment__ as segment
    from fct_leads as l
),

-- each lead's state at the start and at the end: its last move before then (by as_of) when that left it
-- in the pipeline, found by next_moved_at (the lead's next event) without grouping the moves
at_start as (
    select m.lead_id, m.value_after as value
    from fct_pipeline_moves as m
    where m.in_pipeline and m.moved_at < $start and m.moved_at <= $as_of
        and (m.next_moved_at is null or m.next_moved_at >= $start or m.next_moved_at > $as_of)
),

at_end as (
    select m.lead_id, m.value_after as value
    from fct_pipeline_moves as m
    where m.in_pipeline and m.moved_at < $end and m.moved_at <= $as_of
        and (m.next_moved_at is null or m.next_moved_at >= $end or m.next_moved_at > $as_of)
),

-- a move in the period: entering adds the value it enters with; a move that changes the amount while
-- in the pipeline counts the change; leaving counts the value it leaves with (after any change on it)
kinds as (
    select
        lead_id,
        not was_in_pipeline and in_pipeline as is_created,
        case when was_in_pipeline then amount_after - amount_before else 0.0 end as delta,
        case when was_in_pipeline and not in_pipeline then amount_after else 0.0 end as left_value,
        was_in_pipeline and not in_pipeline and stage = $won as is_won,
        was_in_pipeline and not in_pipeline and list_contains($lost, stage) as is_lost,
        was_in_pipeline and not in_pipeline and stage <> $won and not list_contains($lost, stage) as is_exited,
        value_after
    from fct_pipeline_moves
    where moved_at >= $start and moved_at < $end and moved_at <= $as_of
),

per_lead as (
    select
        lead_id,
        count(*) filter (where is_created) as n_created,
        coalesce(sum(value_after) filter (where is_created), 0.0) as created,
        count(*) filter (where delta > 0) as n_increased,
        coalesce(sum(delta) filter (where delta > 0), 0.0) as increased,
        count(*) filter (where delta < 0) as n_decreased,
        coalesce(-sum(delta) filter (where delta < 0), 0.0) as decreased,
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
    select lead_id from at_start
    union
    select lead_id from at_end
    union
    select lead_id from per_lead
)

select
    coalesce(cast(l.segment as varchar), '(none)') as segment,
    count(s.lead_id) as start_deals,
    coalesce(sum(s.value), 0.0) as start_value,
    sum(coalesce(p.n_created, 0)) as n_created,
    sum(coalesce(p.created, 0.0)) as created,
    sum(coalesce(p.n_increased, 0)) as n_increased,
    sum(coalesce(p.increased, 0.0)) as increased,
    sum(coalesce(p.n_decreased, 0)) as n_decreased,
    sum(coalesce(p.decreased, 0.0)) as decreased,
    sum(coalesce(p.n_won, 0)) as n_won,
    sum(coalesce(p.won, 0.0)) as won,
    sum(coalesce(p.n_lost, 0)) as n_lost,
    sum(coalesce(p.lost, 0.0)) as lost,
    sum(coalesce(p.n_exited, 0)) as n_exited,
    sum(coalesce(p.exited, 0.0)) as exited,
    count(e.lead_id) as end_deals,
    coalesce(sum(e.value), 0.0) as end_value
from counted as c
inner join leads as l on l.lead_id = c.lead_id
left join at_start as s on s.lead_id = c.lead_id
left join at_end as e on e.lead_id = c.lead_id
left join per_lead as p on p.lead_id = c.lead_id
group by 1
