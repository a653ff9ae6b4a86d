"""Buyer roles from CRM contacts: a job title read by keywords, and the decision makers among a deal's contacts.

The `buyer_role` attribute is the main contact's function in the demo's words (etl/generate.py
BUYER_ROLES): what a segment by buyer role compares. CRMs keep a free-text job title (Salesforce
`Title`, HubSpot `jobtitle`), so the adapters read it by keywords, in this order (the first group
with a match wins, so "CFO" is C-level and "IT Procurement Manager" is procurement):

  C-level          chief, ceo, cfo, coo, cio, cto, cxo, president (not vice president), founder,
                   co-founder, managing director
  procurement      procurement, purchasing, purchaser, sourcing, buyer, vendor management, category manager
  IT               IT (upper case), information technology, technology, infrastructure, systems, software
  finance          finance, financial, controller, comptroller, accounting, accountant, treasury,
                   treasurer, fp&a
  operations lead  operations, ops, customer service, customer support, customer experience, cx,
                   contact cent(er|re), call cent(er|re), service delivery, back office, shared services,
                   workforce, outsourcing
  other            any other non-empty title

`decision_makers` is the number of a deal's contacts whose buying role marks a decision maker (the
roles each adapter names), as text; a deal with roles but none of them deciding has 0.
"""

from __future__ import annotations

import re

BUYER_ROLES = ("operations lead", "procurement", "C-level", "IT", "finance", "other")

_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("C-level", re.compile(r"\b(chief|ceo|cfo|coo|cio|cto|cxo|(?<!vice )(?<!vice-)president|founder|co-founder|managing director)\b", re.I)),
    ("procurement", re.compile(r"\b(procurement|purchasing|purchaser|sourcing|buyer|vendor management|category manager)\b", re.I)),
    ("IT", re.compile(r"\bIT\b|\b(?i:information technology|technology|infrastructure|systems|software)\b")),
    ("finance", re.compile(r"\b(finance|financial|controller|comptroller|accounting|accountant|treasury|treasurer|fp&a)(?!\w)", re.I)),
    ("operations lead", re.compile(
        r"\b(operations|operational|ops|customer service|customer support|customer experience|cx|contact cent(?:er|re)|"
        r"call cent(?:er|re)|service delivery|back office|shared services|workforce|outsourcing)\b", re.I)),
)


def role_of_title(title: str | None) -> str | None:
    """The buyer role a job title names by its keywords (module docstring); None for an empty title."""
    text = (title or "").strip()
    if not text:
        return None
    for role, pattern in _KEYWORDS:
        if pattern.search(text):
            return role
    return "other"
