-- How long spells last in each funnel stage (but the last), per segment value: spells counted in
-- bins of a round width, completed ones by duration and open ones by their age at as_of.
with stages as (
    select stage, stage_order
    from cfg_stages
    where kind = 'funnel' and not is_last
),

-- The spells and durations of time_in_stage: open spells censored at as_of.
durations as (
    select stage, segment, completed, us / 86400000000.0 as days
    from spell_durations
    where entered_at >= $start and entered_at < $end
),

curves as (
    select distinct stage, segment
    from durations
),

-- The bins of a stage: the smallest width w of $widths whose bins [k w, (k + 1) w) up to the one
-- holding the stage's p99 duration h number at most $max_bins; h is the ceil(0.99 n)-th smallest
-- duration of its completed spells (of all its spells when none is completed), every segment value.
horizons as (
    select stage, coalesce(quantile_disc(days, 0.99) filter (where completed), quantile_disc(days, 0.99)) as horizon
    from durations
    group by stage
),

widths as (
    select unnest(cast($widths as double[])) as width
),

bin_counts as (
    select h.stage, w.width, cast(floor(h.horizon / w.width + $slack) as bigint) + 1 as bins
    from horizons as h
    cross join widths as w
),

narrowest as (
    select stage, min(width) as width
    from bin_counts
    where bins <= $max_bins
    group by stage
),

grids as (
    select c.stage, c.width, c.bins
    from bin_counts as c
    inner join narrowest as w on w.stage = c.stage and w.width = c.width
),

-- bins 0 .. bins - 1, and bin number `bins` for every longer duration
grid as (
    select stage, width, bins, unnest(range(0, bins + 1)) as k
    from grids
),

-- A duration within slack * w below a bin's start counts in that bin (floating-point noise).
binned as (
    select d.stage, d.segment, least(cast(floor(d.days / g.width + $slack) as bigint), g.bins) as k, d.completed
    from durations as d
    inner join grids as g on g.stage = d.stage
),

counts as (
    select stage, segment, k, count(*) filter (where completed) as completed, count(*) filter (where not completed) as open
    from binned
    group by stage, segment, k
)

select
    c.stage,
    c.segment,
    g.k * g.width as bin_start,
    case when g.k < g.bins then (g.k + 1) * g.width end as bin_end,
    coalesce(n.completed, 0) as completed,
    coalesce(n.open, 0) as open
from curves as c
inner join grid as g on g.stage = c.stage
inner join stages as st on st.stage = c.stage
left join counts as n on n.stage = c.stage and n.segment = c.segment and n.k = g.k
where g.k < g.bins or n.k is not null
order by st.stage_order, c.segment, g.k
