-- The deals behind the pipeline waterfall's bars over [$start, $end) as of $as_of: one row per lead in
-- the pipeline at the start ('start') and at the end ('end'), and per move of the period by kind, a
-- move that changes the amount and leaves counting twice (its change, then its exit), as in
-- pipeline_changes; value is what the row adds to its bar (positive).
with leads as (
    select l.lead_id, l.__attr__
    from fct_leads as l
),

at_start as (
    select m.lead_id, 'start' as change, 0 as kind_order, m.moved_at, m.stage, m.amount_after as amount_before,
           m.amount_after, m.value_after as value
    from fct_pipeline_moves as m
    where m.in_pipeline and m.moved_at < $start and m.moved_at <= $as_of
        and (m.next_moved_at is null or m.next_moved_at >= $start or m.next_moved_at > $as_of)
),

at_end as (
    select m.lead_id, 'end' as change, 7 as kind_order, m.moved_at, m.stage, m.amount_after as amount_before,
           m.amount_after, m.value_after as value
    from fct_pipeline_moves as m
    where m.in_pipeline and m.moved_at < $end and m.moved_at <= $as_of
        and (m.next_moved_at is null or m.next_moved_at >= $end or m.next_moved_at > $as_of)
),

in_period as (
    select m.lead_id, m.moved_at, m.stage, m.was_in_pipeline, m.in_pipeline, m.amount_before, m.amount_after, m.value_after
    from fct_pipeline_moves as m
    where m.moved_at >= $start and m.moved_at < $end and m.moved_at <= $as_of
),

moves as (
    select lead_id, 'created' as change, 1 as kind_order, moved_at, stage, amount_before, amount_after, value_after as value
    from in_period
    where not was_in_pipeline and in_pipeline
    union all
    select lead_id, case when amount_after > amount_before then 'increased' else 'decreased' end, case when amount_after > amount_before then 2 else 3 end,
           moved_at, stage, amount_before, amount_after, abs(amount_after - amount_before)
    from in_period
    where was_in_pipeline and amount_after <> amount_before
    union all
    select lead_id, case when stage = $won then 'won' when list_contains($lost, stage) then 'lost' else 'exited' end,
           case when stage = $won then 4 when list_contains($lost, stage) then 5 else 6 end,
           moved_at, stage, amount_before, amount_after, amount_after
    from in_period
    where was_in_pipeline and not in_pipeline
),

everything as (
    select * from at_start
    union all
    select * from moves
    union all
    select * from at_end
)

select
    e.change,
    e.lead_id,
    e.moved_at,
    e.stage,
    e.amount_before,
    e.amount_after,
    e.value,
    l.__attr__
from everything as e
inner join leads as l on l.lead_id = e.lead_id
where $change is null or e.change = $change
order by e.kind_order, e.moved_at, e.lead_id
