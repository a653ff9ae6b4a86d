"""Buyer roles from job titles (etl/sources/roles.py): the keywords docs/sources.md lists, in their order."""

from __future__ import annotations

from pathlib import Path

import pytest

from funnelboard.etl.generate import BUYER_ROLES as DEMO_ROLES
from funnelboard.etl.sources.roles import BUYER_ROLES, role_of_title

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("title, role", [
    ("VP Customer Operations", "operations lead"),
    ("Head of Contact Centre", "operations lead"),
    ("Director of Shared Services", "operations lead"),
    ("Head of Procurement", "procurement"),
    ("IT Procurement Manager", "procurement"),      # procurement comes before IT
    ("CFO", "C-level"),                             # C-level comes before finance
    ("Chief Operating Officer", "C-level"),
    ("Managing Director", "C-level"),
    ("President & CEO", "C-level"),
    ("Vice President, Customer Operations", "operations lead"),  # a VP is not C-level
    ("Product Owner", "other"),
    ("Digital Marketing Manager", "other"),
    ("IT Service Manager", "IT"),
    ("Director of IT Infrastructure", "IT"),
    ("Head of Finance Operations", "finance"),      # finance comes before operations
    ("Financial Controller", "finance"),
    ("Marketing Manager", "other"),
    ("Edit tracking", "other"),                     # "it" in a word, not the word IT
    ("  ", None),
    (None, None),
])
def test_role_of_title(title, role):
    assert role_of_title(title) == role


def test_roles_are_the_demo_generators_and_the_docs_list_them():
    assert BUYER_ROLES == DEMO_ROLES
    section = (ROOT / "docs" / "sources.md").read_text().split("## Buyer roles from job titles", 1)[1].split("\n## ", 1)[0]
    assert [r for r in BUYER_ROLES if f"| `{r}` |" not in section] == []
