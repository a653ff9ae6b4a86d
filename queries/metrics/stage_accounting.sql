-- Spells entered per funnel stage in the period, split by what came next as of $as_of.
with spells as (
    select s.stage_order, s.entered_at, s.exited_at, s.next_stage, s.next_kind
    from fct_spells as s
),

stages as (
    select stage, stage_order
    from cfg_stages
    where kind = 'funnel' and not is_last
),

-- what came next, counted per stage first: a few dozen groups, so the split below reads those,
-- not millions of spells (joined on the stage's number: cheaper than its name)
classified as (
    select
        s.stage_order,
        case when s.exited_at <= $as_of then s.next_kind else 'open' end as kind,
        case when s.exited_at <= $as_of then s.next_stage end as next_stage,
        count(*) as spells
    from spells as s
    inner join stages as st on st.stage_order = s.stage_order
    where s.entered_at >= $start and s.entered_at < $end and s.entered_at <= $as_of
    group by 1, 2, 3
),

counted as (
    select
        st.stage,
        st.stage_order,
        coalesce(sum(c.spells), 0) as entered,
        coalesce(sum(c.spells) filter (where c.kind = 'advanced'), 0) as advanced,
        coalesce(sum(c.spells) filter (where c.kind = 'exited'), 0) as exited,
        coalesce(sum(c.spells) filter (where c.kind = 'regressed'), 0) as regressed,
        coalesce(sum(c.spells) filter (where c.kind = 'open'), 0) as "open",
        coalesce(sum(c.spells) filter (where c.kind = 'exited' and c.next_stage = __outcome__), 0) as exited___outcome__
    from stages as st
    left join classified as c on c.stage_order = st.stage_order
    group by st.stage, st.stage_order
)

select
    stage,
    cast(entered as bigint) as entered,
    cast(advanced as bigint) as advanced,
    cast(exited as bigint) as exited,
    cast(regressed as bigint) as regressed,
    cast("open" as bigint) as "open",
    cast(exited___outcome__ as bigint) as exited___outcome__
from counted
order by stage_order
