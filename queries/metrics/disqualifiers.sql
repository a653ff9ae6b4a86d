-- Exits from the funnel: outcome spells entered in the period, by outcome and normalised reason, in Pareto order.
with spells as (
    select s.stage, s.is_funnel, s.entered_at, case when s.reason_at <= $as_of then s.reason end as reason, s.__by__ as grp
    from fct_spells as s
),

exits as (
    select
        coalesce(cast(grp as varchar), '(none)') as grp,
        stage as outcome,
        coalesce(reason, '(no reason recorded)') as reason
    from spells
    where not is_funnel and entered_at >= $start and entered_at < $end and entered_at <= $as_of
),

counted as (
    select grp, outcome, reason, count(*) as exits
    from exits
    group by grp, outcome, reason
),

shares as (
    select
        grp,
        outcome,
        reason,
        exits,
        exits / sum(exits) over (partition by grp) as share,
        sum(exits) over (
            partition by grp order by exits desc, outcome, reason rows between unbounded preceding and current row
        ) / sum(exits) over (partition by grp) as cumulative_share
    from counted
)

select
    grp,
    outcome,
    reason,
    exits,
    share,
    cumulative_share
from shares
order by grp, exits desc, outcome, reason
