-- The changes of a period: one row per move a lead made in [$start, $end) by $as_of (docs/metrics.md,
-- Changes). A funnel spell's entry is `entered`; its end is `advanced` (the next spell is a later
-- funnel stage, skips included), `went_back` (an earlier one) or, when the next spell is an outcome,
-- that outcome spell's entry is `exited` from the funnel stage it left; a spell crossing its stage's
-- stall threshold is `newly_stalled`, one left after crossing it `recovered`. The weekly review's
-- cards add `new` (created_at), `won` (reached_at of the last stage) and `lost` (first lost outcome
-- by as_of, not won by then): the closes of the win rate.
-- the spells that can change in the period: entered before its end, not left before its start
with spells as (
    select
        s.lead_id, s.stage, s.stage_order, s.is_funnel, s.entered_at, s.exited_at, s.next_stage, s.next_stage_order,
        s.stage_left, case when s.reason_at <= $as_of then s.reason end as reason
    from fct_spells as s
    where s.entered_at < $end and s.entered_at <= $as_of and (s.exited_at is null or s.exited_at >= $start)
),

entries as (
    select
        lead_id,
        case when is_funnel then 'entered' else 'exited' end as change,
        case when is_funnel then stage else stage_left end as stage,
        case when is_funnel then null else stage end as to_stage,
        entered_at as changed_at,
        case when is_funnel then null else coalesce(reason, '(no reason recorded)') end as reason
    from spells
    where entered_at >= $start
),

moves as (
    select
        lead_id,
        case when next_stage_order > stage_order then 'advanced' else 'went_back' end as change,
        stage,
        next_stage as to_stage,
        exited_at as changed_at,
        cast(null as varchar) as reason
    from spells
    where is_funnel and next_stage_order is not null and exited_at < $end and exited_at <= $as_of
),

-- funnel spells before the last stage that can change in the period, with their stall moment
-- (epoch microseconds, the shared step stall_moments: entered_at + the threshold's days, or the
-- business-hour deadline of an SLA on that clock)
stall_clock as (
    select m.lead_id, m.stage, m.exited_at, m.breached_us as stall_us
    from stall_moments as m
    where m.breached_us is not null and m.entered_at < $end and (m.exited_at is null or m.exited_at >= $start)
),

stalls as (
    select
        lead_id,
        'newly_stalled' as change,
        stage,
        cast(null as varchar) as to_stage,
        make_timestamp(cast(floor(stall_us) as bigint)) as changed_at,
        cast(null as varchar) as reason
    from stall_clock
    where stall_us >= epoch_us(cast($start as timestamp)) and stall_us < epoch_us(cast($end as timestamp))
        and stall_us < epoch_us(cast($as_of as timestamp)) and (exited_at is null or stall_us < epoch_us(exited_at))
),

recoveries as (
    select
        lead_id,
        'recovered' as change,
        stage,
        cast(null as varchar) as to_stage,
        exited_at as changed_at,
        cast(null as varchar) as reason
    from stall_clock
    where exited_at >= $start and exited_at < $end and exited_at <= $as_of and stall_us < epoch_us(exited_at)
),

-- the closes of the win rate: a win when the last stage is reached, else the first lost outcome
leads as (
    select l.lead_id, l.created_at, l.__won__ as won_at
    from fct_leads as l
),

losses as (
    select s.lead_id, min(s.entered_at) as lost_at, arg_min(s.stage, s.entered_at) as outcome
    from fct_spells as s
    where list_contains($lost, s.stage) and s.entered_at <= $as_of
    group by s.lead_id
),

lead_changes as (
    select
        l.lead_id,
        'new' as change,
        cast(null as varchar) as stage,
        cast(null as varchar) as to_stage,
        l.created_at as changed_at,
        cast(null as varchar) as reason
    from leads as l
    where l.created_at >= $start and l.created_at < $end and l.created_at <= $as_of
    union all
    select l.lead_id, 'won' as change, $won_stage as stage, cast(null as varchar) as to_stage, l.won_at as changed_at, cast(null as varchar) as reason
    from leads as l
    where l.won_at >= $start and l.won_at < $end and l.won_at <= $as_of
    union all
    select o.lead_id, 'lost' as change, cast(null as varchar) as stage, o.outcome as to_stage, o.lost_at as changed_at, cast(null as varchar) as reason
    from losses as o
    left join leads as l on l.lead_id = o.lead_id
    where o.lost_at >= $start and o.lost_at < $end and not coalesce(l.won_at <= $as_of, false)
),

changes as (
    select lead_id, change, stage, to_stage, changed_at, reason from entries
    union all
    select lead_id, change, stage, to_stage, changed_at, reason from moves
    union all
    select lead_id, change, stage, to_stage, changed_at, reason from stalls
    union all
    select lead_id, change, stage, to_stage, changed_at, reason from recoveries
    union all
    select lead_id, change, stage, to_stage, changed_at, reason from lead_changes
),

attributes as (
    select a.lead_id, case when $latest then a.current_stage end as stage_now, a.amount_value, a.__attr__
    from fct_leads as a
)

select
    c.lead_id,
    c.change,
    c.stage,
    c.to_stage,
    c.changed_at,
    c.reason,
    a.stage_now,
    a.amount_value,
    a.__attr__
from changes as c
inner join attributes as a on a.lead_id = c.lead_id
