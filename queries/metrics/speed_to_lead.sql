-- Speed to lead: every lead that reached the clock's start stage in the period (and by $as_of), with
-- when it did, the text of its first response (the [attributes] first_response column; read as a
-- time by the caller, as the loader reads entered_at: an offset converted, none in the funnel's zone),
-- when it reached the key rate's second stage (by $as_of), its value of the asked segment and of the
-- SLA's segment. The hours (calendar and business) and the groups are the caller's
-- (warehouse/metrics/response.py): a business-hour clock in the funnel's time zone is plain Python.
select
    l.lead_id,
    l.__from__ as start_at,
    trim(cast(l.__response__ as varchar)) as response_text,
    case when l.__to__ <= $as_of then l.__to__ end as converted_at,
    coalesce(cast(l.__segment__ as varchar), '(none)') as segment_value,
    cast(l.__sla_by__ as varchar) as sla_value
from fct_leads as l
where l.last_week >= $start_week and l.__from__ >= $start and l.__from__ < $end and l.__from__ <= $as_of
