"""The docs stay true: every metric, model, command, page and SQL marker is where a reader looks for it."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from funnelboard.cli import main
from funnelboard.warehouse.metrics import REGISTRY
from funnelboard.warehouse.models import load_models

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# A marker in queries/: `__name__`. In a compound name (`week___stage__`) it matches the marker inside.
MARKER = re.compile(r"__[a-z0-9]+(?:_[a-z0-9]+)*__")
README_LIMIT = 8 * 1024


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def markers_in(text: str) -> set[str]:
    """The markers a SQL text uses, each compound name (`reached___stage__`) split into its marker."""
    return set(MARKER.findall(text))


def test_every_metric_is_defined_in_docs_metrics_and_listed_in_the_cli_reference():
    metrics_doc, cli_doc = doc("metrics.md"), doc("cli.md")
    for name in REGISTRY:
        assert f"`{name}`" in metrics_doc, name
        assert f"`{name}`" in cli_doc, name


def test_every_model_has_a_description_and_documented_columns():
    for model in load_models().values():
        assert model.description.strip(), model.name
        assert model.meta["columns"], model.name


def test_every_command_is_in_the_cli_reference():
    cli_doc = doc("cli.md")
    for name in main.commands:
        assert f"funnelboard {name}" in cli_doc, name


def test_markers_in_splits_compound_names():
    assert markers_in("l.week___stage__, greatest(l.__mql_week__), exited___outcome__") == {"__stage__", "__mql_week__", "__outcome__"}


def _marker_table() -> set[str]:
    """The markers named in the first column of the architecture page's marker table."""
    section = doc("architecture.md").split("## SQL markers", 1)[1].split("\n## ", 1)[0]
    return {m.group(1) for m in re.finditer(r"^\| `(__[a-z0-9_]+__)` \|", section, re.MULTILINE)}


def test_every_sql_marker_is_in_the_architecture_table():
    used: dict[str, list[str]] = {}
    for path in sorted((ROOT / "queries").rglob("*.sql")):
        for marker in markers_in(path.read_text(encoding="utf-8")):
            used.setdefault(marker, []).append(str(path.relative_to(ROOT)))
    assert used, "no marker found in queries/: the pattern or the folder is wrong"
    listed = _marker_table()
    missing = {m: files for m, files in used.items() if m not in listed}
    assert not missing, f"markers used in queries/ but not in the table of docs/architecture.md: {missing}"


def test_the_marker_table_lists_only_markers_in_use():
    used = set().union(*(markers_in(p.read_text(encoding="utf-8")) for p in (ROOT / "queries").rglob("*.sql")))
    stale = _marker_table() - used
    assert not stale, f"docs/architecture.md lists markers no query uses: {sorted(stale)}"


def _repository_files() -> list[str]:
    """Every file git tracks, and every new file it would (untracked and not ignored)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode()
    return [name for name in out.split("\0") if name]


def test_no_file_in_the_repository_cites_the_design_document_kept_outside_it():
    """What the code relies on lives in docs/ and is cited there, never in a file outside the repository."""
    outside = "DESIGN" + ".md"  # spelled in two parts so that this file does not mention it
    files = _repository_files()
    assert "README.md" in files and "tests/test_docs.py" in files
    citing = []
    for name in files:
        path = ROOT / name
        if name.endswith(outside) or (path.is_file() and outside.encode() in path.read_bytes()):
            citing.append(name)
    assert not citing, f"these files cite {outside}; cite docs/ instead: {citing}"


def _page_paths() -> dict[str, str]:
    """page module -> the path its dash.register_page gives (path_template when it has one: what a user sees)."""
    paths = {}
    for file in sorted((ROOT / "dashboard" / "pages").glob("[!_]*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
        constants = {
            t.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for t in node.targets
            if isinstance(t, ast.Name)
        }
        for node in ast.walk(tree):
            func = getattr(node, "func", None)
            if isinstance(node, ast.Call) and getattr(func, "attr", getattr(func, "id", None)) == "register_page":
                keywords = {k.arg: k.value for k in node.keywords}
                value = keywords.get("path_template", keywords.get("path"))
                assert value is not None, f"{file.name} registers a page without a path"
                paths[file.stem] = value.value if isinstance(value, ast.Constant) else constants[value.id]
    return paths


def test_every_dashboard_page_is_named_in_docs_dashboard():
    paths = _page_paths()
    pages = {f.stem for f in (ROOT / "dashboard" / "pages").glob("[!_]*.py")}
    assert set(paths) == pages, f"pages without a register_page this test can read: {sorted(pages - set(paths))}"
    dashboard_doc = doc("dashboard.md")
    missing = [p for p in paths.values() if not re.search("`" + re.escape(p) + "[`?&]", dashboard_doc)]
    assert not missing, f"docs/dashboard.md does not name these pages (as `{missing[0]}`): {missing}"


def _first_code_block(text: str) -> list[str]:
    fences = [i for i, line in enumerate(text.splitlines()) if line.startswith("```")]
    assert len(fences) >= 2, "the README has no code block"
    return text.splitlines()[fences[0] + 1 : fences[1]]


def test_the_readme_is_short_and_opens_with_two_commands_that_work_with_only_python3():
    readme = (ROOT / "README.md").read_bytes()
    assert len(readme) <= README_LIMIT, f"README.md is {len(readme):,} bytes; keep it under {README_LIMIT:,} and move detail to docs/"
    commands = [line for line in _first_code_block(readme.decode("utf-8")) if line.strip() and not line.lstrip().startswith("#")]
    assert len(commands) == 2, f"the README's first code block should hold exactly two commands: {commands}"
    for line in commands:
        # Stock Debian has python3 but no `python`, and forbids pip on the system Python (PEP 668):
        # each line makes its own virtual environment and runs everything from it.
        first, *rest = [part.strip() for part in line.split("&&")]
        assert first == "python3 -m venv .venv", line
        assert rest and all(part.startswith(".venv/bin/") for part in rest), line


def test_the_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert "architecture.md" in pages
    missing = [name for name in pages if f"(docs/{name})" not in readme]
    assert not missing, f"README.md does not link: {missing}"
