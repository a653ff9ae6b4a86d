"""`funnelboard views list|remove`: one user's saved views (or the shared list), from the shell."""

from __future__ import annotations

from click.testing import CliRunner

from funnelboard.cli.main import main
from funnelboard.core import saved_views as sv


def test_views_lists_and_removes_one_users_views_only(tmp_path):
    db = tmp_path / "wh.duckdb"
    path = sv.views_path(db)
    sv.save(path, "maya", "Referral", "/segments?channel=referral")
    sv.save(path, "maya", "apac", "/funnel?region=APAC")
    sv.save(path, "", "Shared", "/")
    runner = CliRunner()

    listed = runner.invoke(main, ["views", "list", "--db", str(db), "--user", "maya"])
    assert listed.exit_code == 0 and listed.output == "apac\t/funnel?region=APAC\nReferral\t/segments?channel=referral\n"
    assert runner.invoke(main, ["views", "list", "--db", str(db)]).output == "Shared\t/\n"

    removed = runner.invoke(main, ["views", "remove", "Referral", "--db", str(db), "--user", "maya"])
    assert removed.exit_code == 0, removed.output
    assert sv.views_of(path, "maya") == [("apac", "/funnel?region=APAC")] and sv.views_of(path, "") == [("Shared", "/")]

    missing = runner.invoke(main, ["views", "remove", "Shared", "--db", str(db), "--user", "maya"])  # not hers
    assert missing.exit_code == 2 and missing.output == f"error: there is no saved view 'Shared' of user 'maya' in {path}.\n"
    assert sv.views_of(path, "") == [("Shared", "/")]


def test_a_damaged_views_file_is_one_line_and_exit_2_and_stays(tmp_path):
    db = tmp_path / "wh.duckdb"
    sv.views_path(db).write_text("{oops")
    for args in (["views", "list"], ["views", "remove", "x"]):
        result = CliRunner().invoke(main, [*args, "--db", str(db)])
        assert result.exit_code == 2 and result.output.count("\n") == 1 and "fix or remove it" in result.output, result.output
    assert sv.views_path(db).read_text() == "{oops"


def test_no_views_file_lists_nothing(tmp_path):
    result = CliRunner().invoke(main, ["views", "list", "--db", str(tmp_path / "wh.duckdb")])
    assert result.exit_code == 0 and result.output == ""
