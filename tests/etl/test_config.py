"""funnel.toml: mistakes are one-sentence errors naming the file, never a traceback later; a file
with its own funnel takes nothing of the demo's; the review's rates come from the file or the stages."""

from __future__ import annotations

import json

import pytest

from funnelboard.core.config import Alert, FunnelConfig, KeyRate, StageSla, check_config, load_config
from funnelboard.core.errors import UserError
from tests.conftest import write


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ('[funnel]\nstages = ["won"]\n', "at least two funnel stages"),
        ('[segments]\nchannel = 5\n', 'has [segments] channel = 5; expected the column\'s display name in quotes (channel = "Channel")'),
        ('[funnel]\nstages = ["lead", "mql", "lead"]\n', "names a stage twice"),
        ('[funnel]\nskipped_stages = "sometimes"\n', "expected 'count' or 'strict'"),
        ('[funnel]\nconversion_window_days = "90"\n', "conversion_window_days = '90'; expected a whole number"),
        ('[input]\nmax_future_days = "1; drop table x"\n', "max_future_days = '1; drop table x'"),
        ('[attributes]\namount = "x\\" varchar; COPY (SELECT 1) TO \'pwned.csv\'; --"\n', "[attributes] amount"),
        ('[attributes]\nscore = "Lead Score"\n', "[attributes] score 'Lead Score'"),
        ('[attributes]\ncurrency = "usd\')+alert(1)+(\'"\n', "currency to \"usd')+alert(1)+('\"; expected a three-letter ISO 4217 code"),
        ('[attributes]\ncurrency = "$"\n', "expected a three-letter ISO 4217 code"),
        ('[review]\nkey_rate = { from = "sql", to = "mql" }\n', "the second later"),
        ('[review]\nkey_rate = "sql"\n', "is not { from"),
        ('[review]\nlost = ["gone"]\n', "lost = 'gone', which is not an outcome"),
        ('[review]\nwin = 1\n', "has [review] win"),
        ('[sla_days]\nmql = "ten"\n', "[sla_days] mql = 'ten'"),
        ('[pipeline]\nfrom_stage = "won"\n', "[pipeline] from_stage = 'won'; expected a funnel stage before the last"),
        ('[pipeline]\nfrom_stage = "x\\" ; drop"\n', "[pipeline] from_stage = 'x\" ; drop'"),
        ('[pipeline]\nprobability = { opportunity = 2 }\n', "[pipeline] probability opportunity = 2; expected a share from 0 to 1"),
        ('[pipeline]\nprobability = { opportunity = nan }\n', "[pipeline] probability opportunity = nan"),
        ('[pipeline]\nprobability = { opportunity = true }\n', "[pipeline] probability opportunity = True"),
        ('[pipeline]\nprobability = { nowhere = 0.5 }\n', "[pipeline] probability for 'nowhere'; expected funnel stages before the last"),
        ('[pipeline]\nprobability = "high"\n', "[pipeline] probability that is not a table"),
        ('[pipeline]\nweights = 1\n', "[pipeline] weights; expected one of from_stage, probability, close_date"),
        ('[pipeline]\nclose_date = "close date"\n', "[pipeline] close_date"),
        ('[pipeline]\nforecast = { proposal = "maybe" }\n', "[pipeline] forecast proposal = 'maybe'; expected one of omitted, pipeline, best case, commit"),
        ('[pipeline]\nforecast = { won = "commit" }\n', "[pipeline] forecast for 'won'; expected funnel stages before the last"),
        ('[pipeline]\nforecast = { proposal = "closed" }\n', "[pipeline] forecast proposal = 'closed'"),
        ('[pipeline]\nrates = { EURO = 1.1 }\n', "[pipeline] rates for 'EURO'; expected ISO 4217 currency codes"),
        ('[pipeline]\nrates = { EUR = 0 }\n', "[pipeline] rates EUR = 0; expected a positive number of USD units per EUR"),
        ('[pipeline]\nrates = 1.1\n', "[pipeline] rates that is not a table"),
        ('[pipeline]\nrates_file = "missing.csv"\n', "rates_file"),
        ('[attributes]\ncurrency = "XYZ"\n', "[attributes] currency to 'XYZ'; expected a three-letter ISO 4217 code"),
        ('[sla]\nclock = "weekdays"\n', "[sla] clock = 'weekdays'; expected 'calendar' or 'business'"),
        ('[sla]\nhours = { won = 4 }\n', "[sla] hours won = 4; expected a funnel stage before the last"),
        ('[sla]\nhours = { mql = -1 }\n', "[sla] hours mql = -1"),
        ('[sla]\nhours = { mql = inf }\n', "[sla] hours mql = inf"),
        ('[sla]\nhours = 4\n', "[sla] hours = 4; expected a table of funnel stage = hours"),
        ('[sla]\nhours_by = { inbound = { mql = 1 } }\n', "hours_by without by naming the segment column"),
        ('[sla]\nby = "colour"\n', "[sla] by = 'colour', which is not a [segments] column"),
        ('[sla]\nby = "channel"\nhours_by = { inbound = 2 }\n', "[sla] hours_by inbound = 2; expected a table"),
        ('[sla]\nhours = { mql = 4 }\n\n[sla_days]\nmql = 1\n', "sets the SLA of stage 'mql' in both [sla_days] and [sla] hours"),
        ('[sla]\ndays = { mql = 4 }\n', "has [sla] days; expected one of by, clock, hours, hours_by"),
        ('[[alerts]]\nmetric = "key_rate"\nbelow = 0.1\n', "without a name of its own"),
        ('[[alerts]]\nname = "a"\nmetric = "revenue"\nbelow = 1\n', "alert 'a' on metric 'revenue'; expected one of key_rate"),
        ('[[alerts]]\nname = "a"\nmetric = "key_rate"\nbelow = 0.1\nabove = 0.5\n', "alert 'a' without one condition"),
        ('[[alerts]]\nname = "a"\nmetric = "key_rate"\nbelow = "low"\n', "alert 'a' without one condition"),
        ('[[alerts]]\nname = "a"\nmetric = "key_rate"\nbelow = 0.1\nweeks = 0\n', "alert 'a' weeks = 0"),
        ('[[alerts]]\nname = "a"\nmetric = "newly_stalled"\nabove = 40\nweeks = 2\n', "(1 for stalled, newly_stalled, sla_breaches)"),
        ('[[alerts]]\nname = "a"\nmetric = "key_rate"\nbelow = 0.1\nfilter = { colour = "red" }\n', "alert 'a' filter"),
        ('[[alerts]]\nname = "a"\nmetric = "key_rate"\nbelow = 0.1\nseverity = "panic"\n', "severity 'panic'"),
        ('[[alerts]]\nname = "a"\nmetric = "key_rate"\nbelow = 0.1\n[[alerts]]\nname = "a"\nmetric = "exits"\nabove = 1\n', "without a name of its own"),
        ('[alerts]\nname = "a"\n', "write each alert as its own [[alerts]] table"),
    ],
)
def test_a_bad_config_is_one_sentence(tmp_path, toml, says):
    path = write(tmp_path / "funnel.toml", toml)
    with pytest.raises(UserError) as err:
        load_config(path)
    message = str(err.value)
    assert says in message and str(path) in message and "\n" not in message


def test_a_funnel_of_its_own_takes_nothing_of_the_demo_funnel(tmp_path):
    """Its own stages and no [labels]: no "maps label 'sales qualified' to 'sql'" from the demo map."""
    path = write(tmp_path / "funnel.toml", '[funnel]\nstages = ["new", "qualified", "demo", "closed_won"]\noutcomes = ["closed_lost"]\n')
    config = load_config(path)
    assert config.stages == ("new", "qualified", "demo", "closed_won")
    assert config.labels == {} and config.reasons == {} and config.sla_days == {} and config.segments == {}
    assert config.score_column is None and config.amount_column is None and config.numeric_attributes == ()
    assert config.currency is None  # the demo's USD is not a guess about anyone else's amounts
    assert config.timezone == "UTC" and config.min_sample == 30  # scalars still default key by key
    assert config.review_rate == KeyRate("new", "qualified", "New → Qualified rate")
    assert config.lost == ()  # no outcome named "lost": the win rate has no losses to count until [review] lost says


def test_stage_slas_come_from_sla_days_and_sla_hours_on_their_clocks(tmp_path):
    path = write(tmp_path / "funnel.toml", '[sla_days]\nsql = 3\n\n[sla]\nclock = "business"\nhours = { mql = 16 }\n'
                 'by = "channel"\nhours_by = { inbound = { mql = 4, sql = 10 } }\n')
    config = load_config(path)
    assert config.stage_slas == (
        StageSla("sql", None, "calendar", 72.0, 3.0), StageSla("mql", None, "business", 16.0),
        StageSla("mql", "inbound", "business", 4.0), StageSla("sql", "inbound", "business", 10.0),
    )
    assert config.sla_by == "channel" and [s.threshold_days for s in config.stage_slas] == [3.0, None, None, None]
    assert FunnelConfig.from_json(config.to_json()) == config  # as the warehouse keeps it
    # a config kept by a version before [sla] (no stage_slas in its JSON): its [sla_days] are the SLAs
    old = json.loads(config.to_json())
    del old["stage_slas"]
    assert FunnelConfig.from_json(json.dumps(old)).stage_slas == (StageSla("sql", None, "calendar", 72.0, 3.0),)
    # one of the two sections written: the other is not inherited (the SLAs are one family)
    assert load_config(write(tmp_path / "b.toml", '[sla]\nhours = { mql = 5 }\n')).sla_days == {}


def test_alerts_are_read_checked_and_kept_by_the_warehouse(tmp_path):
    path = write(tmp_path / "funnel.toml", '[[alerts]]\nname = "Referral MQLs"\nmetric = "reached_mql"\nbelow = 20\n'
                 'weeks = 2\nfilter = { channel = "referral" }\nseverity = "critical"\n')
    config = load_config(path)
    assert config.alerts == (Alert("Referral MQLs", "reached_mql", 20.0, True, 2, (("channel", "referral"),), "critical"),)
    assert config.alerts[0].condition() == "below 20" and FunnelConfig.from_json(config.to_json()) == config


def test_a_file_without_its_own_stages_keeps_the_default_funnel(tmp_path):
    path = write(tmp_path / "funnel.toml", '[labels]\n"Closed Won" = "won"\n')
    config = load_config(path)
    assert config.stages[-1] == "won" and config.labels == {"Closed Won": "won"}  # the section it wrote, whole
    assert config.reasons and config.segments  # the sections it did not write
    assert config.currency == "USD" and load_config(write(tmp_path / "eur.toml", '[attributes]\namount = "amount"\ncurrency = "EUR"\n')).currency == "EUR"
    assert config.review_rate == KeyRate("mql", "sql", "SQL rate") and config.lost == ("lost",)


def test_two_stages_and_a_named_key_rate(tmp_path):
    path = write(
        tmp_path / "funnel.toml",
        '[funnel]\nstages = ["mql", "won"]\noutcomes = ["lost", "junk"]\n\n'
        '[review]\nkey_rate = { from = "mql", to = "won", name = "Close rate" }\nlost = ["lost", "junk"]\n',
    )
    config = load_config(path)
    assert config.review_rate == KeyRate("mql", "won", "Close rate") and config.lost == ("lost", "junk")
    again = type(config).from_json(config.to_json())
    assert again == config and again.review_rate.name == "Close rate"


def test_check_config_explains_every_problem(tmp_path):
    path = write(
        tmp_path / "funnel.toml",
        '[funnel]\nstages = ["lead", "Sales Qualified"]\ntimezone = "Mars/Base"\n\n[labels]\n"x" = "nowhere"\n\n[extra]\n',
    )
    config, problems = check_config(path)
    assert config is None and len(problems) == 4, problems
    assert all(p.startswith(f"config '{path}' ") and p.endswith(".") and "\n" not in p for p in problems)
    joined = " | ".join(problems)
    for says in ("unknown section [extra]", "stage 'Sales Qualified'", "unknown time zone 'Mars/Base'", "maps label 'x' to 'nowhere'"):
        assert says in joined
    good = write(tmp_path / "good.toml", '[funnel]\nstages = ["a", "b"]\n')
    assert check_config(good) == (load_config(good), [])


def test_a_rates_file_is_read_beside_the_config_and_each_bad_line_is_named(tmp_path):
    (tmp_path / "fx.csv").write_text("currency,month,rate\nEUR,2026-10,1.07\nEUR,2026-11,1.09\n\nGBP,2026-11,1.27\n")
    config = load_config(write(tmp_path / "funnel.toml", '[attributes]\ncurrency = "USD"\n\n[pipeline]\nrates_file = "fx.csv"\n'))
    assert config.monthly_rates == (("EUR", "2026-10", 1.07), ("EUR", "2026-11", 1.09), ("GBP", "2026-11", 1.27))
    for text, says in (("currency,month,rate\nEUR,2026-13,1.1\n", "line 2 (EUR,2026-13,1.1) is not a currency code, a month like 2026-11"),
                       ("currency,month,rate\nEUR,2026-11,-1\n", "line 2 (EUR,2026-11,-1)"),
                       ("currency,month,rate\nEUR,2026-11,1\nEUR,2026-11,1.1\n", "gives EUR for 2026-11 twice (line 3)"),
                       ("month,rate\n2026-11,1\n", "whose first line is not the header currency,month,rate")):
        (tmp_path / "fx.csv").write_text(text)
        with pytest.raises(UserError) as err:
            load_config(tmp_path / "funnel.toml")
        assert says in str(err.value) and "\n" not in str(err.value)


def test_deal_currencies_need_a_reporting_currency(tmp_path):
    path = write(tmp_path / "funnel.toml", '[funnel]\nstages = ["new", "won"]\noutcomes = ["lost"]\n\n[pipeline]\ndeal_currency = "currency"\n')
    with pytest.raises(UserError, match=r"without \[attributes\] currency; name the reporting currency"):
        load_config(path)


def test_own_attributes_without_a_currency_do_not_inherit_the_demo_s_rates(tmp_path):
    config = load_config(write(tmp_path / "funnel.toml", '[attributes]\namount = "value"\n'))
    assert (config.currency, config.deal_currency_column, config.fixed_rates) == (None, None, {})
    assert config.close_date_column == "close_date" and config.pipeline_from == "opportunity"  # the rest of [pipeline] is the default's
    euro = load_config(write(tmp_path / "funnel.toml", '[attributes]\namount = "value"\ncurrency = "EUR"\n'))
    assert (euro.deal_currency_column, euro.fixed_rates) == (None, {})  # the demo's rates are to USD
    kept = load_config(write(tmp_path / "funnel.toml", '[attributes]\namount = "value"\ncurrency = "USD"\n'))
    assert (kept.deal_currency_column, kept.fixed_rates) == ("currency", {"EUR": 1.08, "GBP": 1.27})
