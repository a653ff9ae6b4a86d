-- The spells time_in_stage, survival and duration_distribution read, one sortable 64-bit key each:
-- key = ((stage_order * $segment_count + segment number) * 2^50 + duration in microseconds) * 2 + completed.
-- Sorted, the keys hold each (stage, segment value) group's durations in ascending order, so the
-- Kaplan-Meier steps, quantiles, grid and bins are linear passes over one array (warehouse/durations.py).
with spells as (
    select s.stage_order, s.entered_at, s.exited_at, s.entered_bd, s.exited_bd, s.__segment__ as segment
    from fct_spells as s
),

stages as (
    select stage_order
    from cfg_stages
    where kind = 'funnel' and not is_last
),

-- The same spells and durations as time_in_stage.sql (joined on the stage's number: reading the
-- stage's name costs more): entered in the period and by as_of, open
-- spells censored at as_of. A business-day duration is a whole number of microseconds (rounding
-- removes the clock's float noise); a calendar one is the difference of the two instants.
durations as (
    select
        st.stage_order,
        array_position($segments, coalesce(cast(s.segment as varchar), '(none)')) - 1 as segment_no,
        coalesce(s.exited_at <= $as_of, false) as completed,
        case
            when s.exited_at <= $as_of then
                case
                    when $business_days then cast(round((s.exited_bd - s.entered_bd) * 86400000000) as bigint)
                    else epoch_us(s.exited_at) - epoch_us(s.entered_at)
                end
            when $business_days then cast(round(($as_of_bd - s.entered_bd) * 86400000000) as bigint)
            else epoch_us(cast($as_of as timestamp)) - epoch_us(s.entered_at)
        end as us
    from spells as s
    inner join stages as st on st.stage_order = s.stage_order
    where s.entered_at >= $start and s.entered_at < $end and s.entered_at <= $as_of
)

select ((stage_order * $segment_count + segment_no) * 1125899906842624 + us) * 2 + cast(completed as bigint) as duration_key
from durations
order by duration_key
