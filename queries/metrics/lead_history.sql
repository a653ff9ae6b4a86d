-- One lead's timeline: every spell entered by as_of, how long it lasted (so far, if open) and its reason.
with spells as (
    select
        s.lead_id, s.spell_no, s.stage, s.is_funnel, s.entered_at, s.exited_at, s.next_stage,
        s.reason, s.reason_at, s.duration_days, s.entered_bd, s.exited_bd
    from fct_spells as s
    where s.lead_id = $lead_id
)

select
    spell_no,
    stage,
    entered_at,
    case when exited_at <= $as_of then exited_at end as exited_at,
    case when exited_at <= $as_of then next_stage end as next_stage,
    case
        when exited_at <= $as_of then
            case when $business_days then exited_bd - entered_bd else duration_days end
        when $business_days then $as_of_bd - entered_bd
        else (epoch_us(cast($as_of as timestamp)) - epoch_us(entered_at)) / 86400000000.0
    end as days,
    not coalesce(exited_at <= $as_of, false) as current,
    case when reason_at <= $as_of then reason end as reason
from spells
where entered_at <= $as_of
order by spell_no
