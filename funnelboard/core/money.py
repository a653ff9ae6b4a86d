"""What money values may be: ISO 4217 currency codes and forecast categories (docs/metrics.md,
Pipeline value). The config check, the loader's quarantine and the models read them from here."""

from __future__ import annotations

# The active ISO 4217 alphabetic codes (funds, precious metals and test codes left out).
CURRENCIES = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP
GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD
KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK
NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS
SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VED VND VUV WST
XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
""".split())

# Forecast categories, from least to most certain; "closed" is the won deal's. A CRM's spelling is
# read case- and underscore-blind ("Best Case", "BEST_CASE"), with the other names CRMs store: HubSpot's
# OMIT, Salesforce's API names BestCase and Forecast (its Commit). queries/marts/fct_pipeline_moves.sql
# reads it the same way.
FORECAST_CATEGORIES = ("omitted", "pipeline", "best case", "commit", "closed")
FORECAST_ALIASES = {"omit": "omitted", "bestcase": "best case", "forecast": "commit"}


def forecast_category(text: str) -> str | None:
    """The category a CRM's spelling names, or None."""
    key = text.replace("_", " ").strip().lower()
    key = FORECAST_ALIASES.get(key, key)
    return key if key in FORECAST_CATEGORIES else None


def forecast_category_sql(expr: str) -> str:
    """The same reading in SQL: the category `expr` names, or NULL."""
    key = f"lower(trim(replace({expr}, '_', ' ')))"
    aliases = " ".join(f"when '{k}' then '{v}'" for k, v in FORECAST_ALIASES.items())
    known = ", ".join(f"'{c}'" for c in FORECAST_CATEGORIES)
    return f"(case {key} {aliases} else case when {key} in ({known}) then {key} end end)"
