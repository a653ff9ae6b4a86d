-- The pipeline's moves known at $as_of that matter from $since on (held at $since or made after it:
-- held_until >= $since, a range of the mart's row groups; the caller passes no later than as_of, as a
-- move whose next move is not known by as_of is held from then on), each priced in the reporting currency
-- at one rate ($rates per $currencies, bound from [pipeline] rates; a deal without a currency is in
-- the reporting currency) and counted when in the pipeline with a close date in
-- [$close_from, $close_to] (both NULL: every deal in the pipeline counts). A reader keeps the moves
-- it needs (category: the CRM's forecast category, else the stage's, else pipeline): the ones counted at a moment T (held_at T: moved before T, next move at T or later, or
-- not known by as_of) or made in a period. The lead's attributes come along: the request's filters
-- apply here.
with ps_rates as (
    select unnest($currencies) as currency, unnest($rates) as rate
),

ps_forecast as (
    select unnest($forecast_stages) as stage, unnest($forecast_categories) as category
)

select
    m.lead_id,
    m.moved_at,
    m.next_moved_at,
    m.stage,
    m.stage_order,
    m.was_in_pipeline,
    m.in_pipeline,
    m.amount_before,
    m.amount_after,
    m.currency_before,
    m.currency_after,
    m.close_before,
    m.close_after,
    -- the forecast category: the CRM's, else the stage's ([pipeline] forecast), else pipeline
    coalesce(m.category_after, f.category, 'pipeline') as category,
    m.amount_before * coalesce(rb.rate, 1.0) as worth_before,
    m.amount_after * coalesce(ra.rate, 1.0) as worth_after,
    m.was_in_pipeline and ($close_from is null or m.close_before between $close_from and $close_to) as was_counted,
    m.in_pipeline and ($close_from is null or m.close_after between $close_from and $close_to) as is_counted,
    case when m.next_moved_at is null or m.next_moved_at > $as_of then cast('9999-12-31 00:00:00' as timestamp) else m.next_moved_at end as known_until,
    m.first_in_pipeline,
    m.__attr__
from fct_pipeline_moves as m
left join ps_rates as rb on rb.currency = m.currency_before
left join ps_rates as ra on ra.currency = m.currency_after
left join ps_forecast as f on f.stage = m.stage
where m.held_until >= $since and m.moved_at <= $as_of
