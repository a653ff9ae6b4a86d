-- The pipeline's change over the period [$start, $end), seen at $as_of, per segment value: the value at
-- the start (each lead's value after its last move before $start) and at the end, and every move in
-- between by kind. Per lead, start + created + increased - decreased - won - lost - exited = end.
with leads as (
    select l.lead_id, l.__segment__ as segment
    from fct_leads as l
),

moves as (
    select
        m.lead_id, m.move_no, m.moved_at, m.stage, m.was_in_pipeline, m.in_pipeline,
        m.amount_before, m.amount_after, m.value_before, m.value_after
    from fct_pipeline_moves as m
    where m.moved_at < $end and m.moved_at <= $as_of
),

-- each lead's value after its last move before the period, and after its last move in it
ends as (
    select
        lead_id,
        coalesce(arg_max(in_pipeline, move_no) filter (where moved_at < $start), false) as start_in,
        coalesce(arg_max(value_after, move_no) filter (where moved_at < $start), 0.0) as start_value,
        arg_max(in_pipeline, move_no) as end_in,
        arg_max(value_after, move_no) as end_value
    from moves
    group by lead_id
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
    from moves
    where moved_at >= $start
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
)

select
    coalesce(cast(l.segment as varchar), '(none)') as segment,
    count(*) filter (where e.start_in) as start_deals,
    sum(e.start_value) as start_value,
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
    count(*) filter (where e.end_in) as end_deals,
    sum(e.end_value) as end_value
from ends as e
inner join leads as l on l.lead_id = e.lead_id
left join per_lead as p on p.lead_id = e.lead_id
group by 1
