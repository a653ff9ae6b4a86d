-- Spells entered per funnel stage in the period, split by what came next as of $as_of.
with spells as (
    select s.stage, s.stage_order, s.entered_at, s.exited_at, s.next_stage, s.next_kind
    from fct_spells as s
),

stages as (
    select stage, stage_order
    from cfg_stages
    where kind = 'funnel' and not is_last
),

classified as (
    select
        s.stage,
        s.stage_order,
        case when s.exited_at <= $as_of then s.next_kind else 'open' end as kind,
        case when s.exited_at <= $as_of then s.next_stage end as next_stage
    from spells as s
    inner join stages as st on st.stage = s.stage
    where s.entered_at >= $start and s.entered_at < $end and s.entered_at <= $as_of
),

counted as (
    select
        st.stage,
        st.stage_order,
        count(c.kind) as entered,
        count(*) filter (where c.kind = 'advanced') as advanced,
        count(*) filter (where c.kind = 'exited') as exited,
        count(*) filter (where c.kind = 'regressed') as regressed,
        count(*) filter (where c.kind = 'open') as "open",
        count(*) filter (where c.kind = 'exited' and c.next_stage = __outcome__) as exited___outcome__
    from stages as st
    left join classified as c on c.stage = st.stage
    group by st.stage, st.stage_order
)

select
    stage,
    entered,
    advanced,
    exited,
    regressed,
    "open",
    exited___outcome__
from counted
order by stage_order
