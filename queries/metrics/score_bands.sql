-- Conversion by lead-score band (tens, 100 in the top band) of the leads created in the period: the share
-- reaching the key rate's first stage, and the key rate itself (of those, the share reaching its second).
with leads as (
    select l.created_at, l.score_value, l.__from__ as from_at, l.__to__ as to_at
    from fct_leads as l
    -- a lead that counts in the period has a week on or after the period's (fct_leads is stored by last_week)
    where l.last_week >= $start_week
),

scored as (
    select
        least(cast(floor(score_value / 10) as integer), 9) as band_no,
        from_at <= $as_of as reached_from,
        to_at <= $as_of as reached_to
    from leads
    where created_at >= $start and created_at < $end and created_at <= $as_of
        and score_value >= 0 and score_value <= 100
),

banded as (
    select
        band_no,
        count(*) as leads,
        count(*) filter (where reached_from) as reached_from,
        count(*) filter (where reached_to) as reached_to
    from scored
    group by band_no
)

select
    case when band_no = 9 then '90-100' else cast(band_no * 10 as varchar) || '-' || cast(band_no * 10 + 9 as varchar) end as band,
    leads,
    reached_from,
    reached_to,
    reached_from / leads as from_rate,
    case when reached_from > 0 then reached_to / reached_from end as key_rate
from banded
order by band_no
