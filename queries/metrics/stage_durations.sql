-- The spells time_in_stage, survival and duration_distribution read, one sortable 64-bit key each:
-- key = ((stage_order * $segment_count + segment number) * 2^50 + duration in microseconds) * 2 + completed.
-- Sorted, the keys hold each (stage, segment value) group's durations in ascending order, so the
-- Kaplan-Meier steps, quantiles, grid and bins are linear passes over one array (warehouse/durations.py).
-- The spells and durations are time_in_stage's (queries/shared/spell_durations.sql).
with durations as (
    select stage_order, array_position($segments, segment) - 1 as segment_no, completed, us
    from spell_durations
    where entered_at >= $start and entered_at < $end
)

select ((stage_order * $segment_count + segment_no) * 1125899906842624 + us) * 2 + cast(completed as bigint) as duration_key
from durations
order by duration_key
