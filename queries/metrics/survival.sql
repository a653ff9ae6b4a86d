-- Kaplan-Meier survival in each funnel stage (but the last), per segment value, on a bounded grid:
-- the exact KM S(t) at t = 0, w, 2w, ... up to the stage's p99 duration, plus the KM quantile times.
with stages as (
    select stage, stage_order
    from cfg_stages
    where kind = 'funnel' and not is_last
),

-- Stages are keyed by their order number (stage_no) until the end: grouping and window partitions
-- on an integer are several times faster than on text at 10M spells. The spells and durations are
-- time_in_stage's: open spells censored at as_of.
durations as (
    select stage_order as stage_no, segment, completed, us / 86400000000.0 as days
    from spell_durations
    where entered_at >= $start and entered_at < $end
),

curves as (
    select stage_no, segment, count(*) as spells
    from durations
    group by stage_no, segment
),

-- The grid of a stage_no: the smallest step w of $widths that reaches the stage_no's p99 duration h in at
-- most $max_steps steps; h is the ceil(0.99 n)-th smallest duration of its completed spells (of all
-- its spells when none is completed), every segment value. S(t) is flat after the last completion.
horizons as (
    select stage_no, coalesce(quantile_disc(days, 0.99) filter (where completed), quantile_disc(days, 0.99)) as horizon
    from durations
    group by stage_no
),

widths as (
    select unnest(cast($widths as double[])) as width
),

step_counts as (
    select h.stage_no, w.width, greatest(cast(ceil(h.horizon / w.width - $slack) as bigint), 0) as steps
    from horizons as h
    cross join widths as w
),

finest as (
    select stage_no, min(width) as width
    from step_counts
    where steps <= $max_steps
    group by stage_no
),

grids as (
    select c.stage_no, c.width, c.steps
    from step_counts as c
    inner join finest as f on f.stage_no = c.stage_no and f.width = c.width
),

grid as (
    select stage_no, width, unnest(range(0, steps + 1)) as k
    from grids
),

-- Kaplan-Meier, as in time_in_stage: at each distinct duration t, d completions among the n spells
-- still at risk (duration >= t); S(t) is the running product of (1 - d / n), unchanged where d = 0.
-- (counts as doubles: exact below 2^53, and running sums of doubles are much faster than of int128)
at_each_time as (
    select
        stage_no,
        segment,
        days,
        cast(count(*) filter (where completed) as double) as d,
        cast(count(*) as double) as leaving
    from durations
    group by stage_no, segment, days
),

running as (
    select
        a.stage_no,
        a.segment,
        a.days,
        a.d,
        a.leaving,
        sum(a.leaving) over run as left_by,
        sum(a.d) over run as completed_by,
        c.spells
    from at_each_time as a
    inner join curves as c on c.stage_no = a.stage_no and c.segment = a.segment
    window run as (partition by a.stage_no, a.segment order by a.days rows between unbounded preceding and current row)
),

survival as (
    select
        stage_no,
        segment,
        days,
        completed_by,
        left_by - completed_by as censored_by,
        product(1 - d / (spells - left_by + leaving)) over (
            partition by stage_no, segment order by days rows between unbounded preceding and current row
        ) as s
    from running
),

-- Grid index of a duration: the first grid point at or after it (a millionth of a step of slack
-- absorbs the floating-point noise of the business-day clock). The counts and S are running
-- values, so a grid point takes those of the last duration at or before it.
by_step as (
    select
        v.stage_no,
        v.segment,
        greatest(cast(ceil(v.days / g.width - $slack) as bigint), 0) as k,
        max(v.completed_by) as completed,
        max(v.censored_by) as censored,
        min(v.s) as s
    from survival as v
    inner join grids as g on g.stage_no = v.stage_no
    group by v.stage_no, v.segment, k
),

on_grid as (
    select
        c.stage_no,
        c.segment,
        p.k * p.width as days,
        p.width,
        c.spells,
        coalesce(max(b.completed) over run, 0) as completed,
        coalesce(max(b.censored) over run, 0) as censored,
        coalesce(min(b.s) over run, 1.0) as survival
    from curves as c
    inner join grid as p on p.stage_no = c.stage_no
    left join by_step as b on b.stage_no = c.stage_no and b.segment = c.segment and b.k = p.k
    window run as (partition by c.stage_no, c.segment order by p.k rows between unbounded preceding and current row)
),

-- The KM p50 / p75 / p90 (time_in_stage's km_ columns) as points of their own, so each curve
-- crosses 50 % exactly at km_p50.
quantiles as (
    select
        stage_no,
        segment,
        unnest(['p50', 'p75', 'p90']) as quantile,
        unnest([
            min(days) filter (where s <= 0.5 + 1e-12),
            min(days) filter (where s <= 0.25 + 1e-12),
            min(days) filter (where s <= 0.1 + 1e-12)
        ]) as days
    from survival
    group by stage_no, segment
),

marks as (
    select stage_no, segment, days, string_agg(quantile, ' ' order by quantile) as km_quantile
    from quantiles
    where days is not null
    group by stage_no, segment, days
),

on_marks as (
    select m.stage_no, m.segment, m.days, c.spells, v.completed_by as completed, v.censored_by as censored, v.s as survival, m.km_quantile
    from marks as m
    inner join survival as v on v.stage_no = m.stage_no and v.segment = m.segment and v.days = m.days
    inner join curves as c on c.stage_no = m.stage_no and c.segment = m.segment
),

points as (
    select g.stage_no, g.segment, g.days, g.spells, g.completed, g.censored, g.survival, cast(null as varchar) as km_quantile
    from on_grid as g
    -- a grid point within the slack of a quantile point gives way to it (it would show the same drop earlier)
    where not exists (
        select 1
        from marks as m
        where m.stage_no = g.stage_no and m.segment = g.segment and abs(m.days - g.days) <= $slack * g.width
    )
    union all
    select stage_no, segment, days, spells, completed, censored, survival, km_quantile
    from on_marks
)

select
    st.stage,
    p.segment,
    p.days,
    cast(p.spells - p.completed - p.censored as bigint) as at_risk,
    cast(p.completed as bigint) as completed,
    cast(p.censored as bigint) as censored,
    p.survival,
    p.km_quantile
from points as p
inner join stages as st on st.stage_order = p.stage_no
order by st.stage_order, p.segment, p.days
