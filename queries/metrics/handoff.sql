-- Handoff quality (docs/metrics.md, Handoff): one row per lead that reached the handoff's second stage
-- T (the handoff to sales) or its first stage F in [$start, $end), by $as_of. F and T are the key
-- rate's pair, bound as __from__ / __to__. A handoff is sent back when the first spell after the one
-- that reached T, outside the stages from T on, is an earlier funnel stage or a send-back outcome
-- ($sent_back), within $handoff_days of the handoff (0: any time by as_of). A lead that reached F
-- has moved when by as_of it reached T or entered a later funnel stage or an outcome at or after
-- reaching F; the metric adds the activity columns and counts per segment value.
with leads as (
    select
        l.lead_id,
        case when l.__from__ <= $as_of then l.__from__ end as from_at,
        case when l.__to__ <= $as_of then l.__to__ end as to_at,
        l.__segment__ as segment,
        l.amount_value,
        l.__attr__
    from fct_leads as l
    -- a lead that counts in the period has a week on or after the period's (fct_leads is stored by last_week)
    where l.last_week >= $start_week
),

members as (
    select
        lead_id,
        from_at,
        to_at,
        segment,
        amount_value,
        coalesce(to_at >= $start and to_at < $end, false) as handoff,
        coalesce(from_at >= $start and from_at < $end, false) as from_member,
        __attr__
    from leads
    where (to_at >= $start and to_at < $end) or (from_at >= $start and from_at < $end)
),

-- the spell that made the handoff: the first one entered at to_at in T or a later funnel stage
handoff_spells as (
    select s.lead_id, min(s.spell_no) as spell_no
    from fct_spells as s
    inner join members as m on m.lead_id = s.lead_id
    where m.handoff and s.entered_at = m.to_at and s.stage_order >= $to_order
    group by s.lead_id
),

-- the first spell after it outside the stages from T on (an earlier funnel stage or an outcome), by as_of
departures as (
    select
        s.lead_id,
        arg_min(s.stage, s.spell_no) as left_to,
        arg_min(s.is_funnel, s.spell_no) as left_to_funnel,
        arg_min(s.entered_at, s.spell_no) as left_at
    from fct_spells as s
    inner join handoff_spells as h on h.lead_id = s.lead_id
    where s.spell_no > h.spell_no and s.entered_at <= $as_of and coalesce(s.stage_order < $to_order, true)
    group by s.lead_id
),

-- a later funnel stage or an outcome entered at or after reaching F, by as_of
moves as (
    select s.lead_id, min(s.entered_at) as moved_at
    from fct_spells as s
    inner join members as m on m.lead_id = s.lead_id
    where m.from_member and s.entered_at >= m.from_at and s.entered_at <= $as_of and coalesce(s.stage_order > $from_order, true)
    group by s.lead_id
),

flagged as (
    select
        m.lead_id,
        coalesce(cast(m.segment as varchar), '(none)') as segment,
        m.from_at,
        m.to_at,
        m.handoff,
        m.handoff and epoch_us(cast($as_of as timestamp)) - epoch_us(m.to_at) >= $handoff_days * 86400000000 as settled,
        case
            when m.handoff and (d.left_to_funnel or list_contains(cast($sent_back as varchar[]), d.left_to))
                and ($handoff_days = 0 or epoch_us(d.left_at) - epoch_us(m.to_at) <= $handoff_days * 86400000000)
                then d.left_to
        end as sent_back_to,
        case when m.handoff and m.from_at is not null then (epoch_us(m.to_at) - epoch_us(m.from_at)) / 86400000000.0 end as days_to_accept,
        m.from_member,
        m.from_member and epoch_us(cast($as_of as timestamp)) - epoch_us(m.from_at) >= $handoff_days * 86400000000 as from_settled,
        m.to_at is not null or v.moved_at is not null as moved,
        d.left_at,
        m.amount_value,
        m.__attr__
    from members as m
    left join departures as d on d.lead_id = m.lead_id
    left join moves as v on v.lead_id = m.lead_id
)

select
    lead_id,
    segment,
    from_at,
    to_at,
    handoff,
    settled,
    settled and sent_back_to is not null as sent_back,
    case when settled and sent_back_to is not null then sent_back_to end as sent_back_to,
    case when settled and sent_back_to is not null then left_at end as sent_back_at,
    days_to_accept,
    from_member,
    from_settled,
    moved,
    amount_value,
    __attr__
from flagged
