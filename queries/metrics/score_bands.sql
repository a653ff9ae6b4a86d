-- Conversion by lead-score band (tens, 100 in the top band) of the leads created in the period.
with leads as (
    select l.created_at, l.score_value, l.__mql__ as mql_at, l.__sql__ as sql_at
    from fct_leads as l
    -- a lead that counts in the period has a week on or after the period's (fct_leads is stored by last_week)
    where l.last_week >= $start_week
),

scored as (
    select
        least(cast(floor(score_value / 10) as integer), 9) as band_no,
        mql_at <= $as_of as is_mql,
        sql_at <= $as_of as is_sql
    from leads
    where created_at >= $start and created_at < $end and created_at <= $as_of
        and score_value >= 0 and score_value <= 100
),

banded as (
    select
        band_no,
        count(*) as leads,
        count(*) filter (where is_mql) as mqls,
        count(*) filter (where is_sql) as sqls
    from scored
    group by band_no
)

select
    case when band_no = 9 then '90-100' else cast(band_no * 10 as varchar) || '-' || cast(band_no * 10 + 9 as varchar) end as band,
    leads,
    mqls,
    sqls,
    mqls / leads as mql_rate,
    case when mqls > 0 then sqls / mqls end as sql_rate
from banded
order by band_no
