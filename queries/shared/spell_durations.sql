-- The spells of every funnel stage but the last that began by $as_of, with their length in
-- microseconds: a completed spell's duration, an open one's age at $as_of (censored there), on the
-- calendar clock or the business-day clock. A business-day length is rounded to a whole microsecond:
-- that removes the clock's float noise (under 0.5 us), which could otherwise split an exact tie
-- between a completed and an open spell. Joined to the stages on their number: at 10M spells that
-- is cheaper than on the name. A reader keeps the columns it needs and filters the period itself.
select
    s.lead_id,
    s.spell_no,
    s.stage,
    s.stage_order,
    s.entered_at,
    coalesce(cast(s.__segment__ as varchar), '(none)') as segment,
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
from fct_spells as s
inner join cfg_stages as st on st.stage_order = s.stage_order
where st.kind = 'funnel' and not st.is_last and s.entered_at <= $as_of
