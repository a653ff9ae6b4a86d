-- Speed to lead: every lead that reached the clock's start stage in the period (and by $as_of), with
-- when it did, its first response recorded by $as_of (the [attributes] first_response timestamp),
-- when it reached the key rate's second stage (by $as_of), its value of the asked segment and of the
-- SLA's segment. The hours (calendar and business) and the groups are the caller's
-- (warehouse/metrics/response.py): a business-hour clock in the funnel's time zone is plain Python.
with cohort as (
    select
        l.lead_id,
        l.__from__ as start_at,
        trim(cast(l.__response__ as varchar)) as response_text,
        l.__to__ as to_at,
        coalesce(cast(l.__segment__ as varchar), '(none)') as segment_value,
        cast(l.__sla_by__ as varchar) as sla_value
    from fct_leads as l
    where l.last_week >= $start_week and l.__from__ >= $start and l.__from__ < $end and l.__from__ <= $as_of
),

-- the response text read as the loader reads entered_at: with an offset converted to UTC, without
-- one in the funnel's time zone ($tz)
answered as (
    select
        *,
        case
            when length(response_text) > 10 and regexp_matches(substr(response_text, 11), '[Zz+-]')
                then timezone('UTC', try_cast(response_text as timestamptz))
            else timezone('UTC', timezone($tz, try_cast(response_text as timestamp)))
        end as response_utc
    from cohort
)

select
    lead_id,
    start_at,
    case when response_utc <= $as_of then response_utc end as response_at,
    case when to_at <= $as_of then to_at end as converted_at,
    segment_value,
    sla_value
from answered
