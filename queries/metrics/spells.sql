-- The spells behind a spell-level mark: every spell entered in the period (and by $as_of), with
-- where it went by $as_of, its reason and its length, narrowed by the mark's filters (each NULL
-- when not asked). The periods and definitions are those of the charts that count spells:
-- stage_accounting (next), disqualifiers (reason, stage_left, entered_week), duration_distribution
-- and survival (the length of spell_durations: a completed spell's duration, an open one's age at
-- $as_of, calendar or business days; a bin or grid point with the charts' own rounding rule).
-- No order: the caller sorts and cuts.
with spells as (
    select
        s.lead_id,
        s.spell_no,
        s.stage,
        s.stage_order,
        s.entered_at,
        coalesce(s.exited_at <= $as_of, false) as left_by_as_of,
        s.exited_at,
        s.next_stage,
        s.next_kind,
        s.is_terminal,
        s.stage_left,
        case when s.reason_at <= $as_of then s.reason end as reason,
        s.entered_week,
        case
            when s.exited_at <= $as_of then
                case
                    when $business_days then cast(round((s.exited_bd - s.entered_bd) * 86400000000) as bigint)
                    else epoch_us(s.exited_at) - epoch_us(s.entered_at)
                end
            when $business_days then cast(round(($as_of_bd - s.entered_bd) * 86400000000) as bigint)
            else epoch_us(cast($as_of as timestamp)) - epoch_us(s.entered_at)
        end as us,
        try_cast(s.__amount__ as double) as amount_value,
        s.__attr__
    from fct_spells as s
    where s.entered_at >= $start and s.entered_at < $end and s.entered_at <= $as_of
),

described as (
    select
        lead_id,
        spell_no,
        stage,
        stage_order,
        entered_at,
        case when left_by_as_of then exited_at end as left_at,
        case when left_by_as_of then next_stage end as left_to,
        case when left_by_as_of then next_kind when is_terminal then 'terminal' else 'open' end as next_kind,
        reason,
        coalesce(stage_left, '(none)') as stage_left,
        entered_week,
        us / 86400000000.0 as duration_days,
        amount_value,
        __attr__
    from spells
)

select
    lead_id,
    spell_no,
    stage,
    stage_order,
    entered_at,
    left_at,
    left_to,
    next_kind,
    reason,
    stage_left,
    entered_week,
    duration_days,
    amount_value,
    __attr__
from described
where
    ($spell_stages is null or list_contains(cast($spell_stages as varchar[]), stage))
    and (
        $next_kind is null
        or next_kind = $next_kind
        or ($next_kind = 'closed' and next_kind <> 'open')
    )
    and ($left_to is null or left_to = $left_to)
    and ($reason is null or coalesce(reason, '(no reason recorded)') = $reason)
    and (
        $not_reasons is null
        or not list_contains(cast($not_reasons as varchar[][]), [stage, coalesce(reason, '(no reason recorded)')])
    )
    and ($stage_left is null or stage_left = $stage_left)
    and ($week is null or entered_week = cast($week as date))
    -- a duration bin [min_days, max_days): with a step w, the bins of duration_distribution
    -- (floor(days / w + slack)); without one, plain bounds
    and (
        $min_days is null
        or case
            when $step is null then duration_days >= $min_days
            else floor(duration_days / $step + $slack) >= round($min_days / $step)
        end
    )
    and (
        $max_days is null
        or case
            when $step is null then duration_days < $max_days
            else floor(duration_days / $step + $slack) < round($max_days / $step)
        end
    )
    -- still in the stage after t days (survival's at_risk): with a step w, survival's grid
    -- (ceil(days / w - slack) > t / w); without one, days > t
    and (
        $longer_than is null
        or case
            when $step is null then duration_days > $longer_than
            else ceil(duration_days / $step - $slack) > round($longer_than / $step)
        end
    )
