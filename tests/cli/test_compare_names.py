"""Issue 24: compare shortened names to their shared start (`h128_lr1.5e-3_d…` beside `h128_lr1.5e-3_a…`),
hiding what differs; the part that tells runs apart now stays."""

from __future__ import annotations

from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from tests.dashboard import synth


def test_compare_keeps_the_part_of_the_names_that_differs(tmp_path):
    a = synth.write_run(tmp_path, "2026-01-01T10-00-00_h128_lr1.5e-3_decay_all_adam", cut_at=None)
    b = synth.write_run(tmp_path, "2026-01-01T10-05-00_h128_lr1.5e-3_decay_all_adamw", cut_at=None)
    r = CliRunner().invoke(app, ["compare", str(a), str(b)])
    assert r.exit_code == 0, r.output
    rows = [ln.split()[0] for ln in r.stdout.splitlines() if ln.startswith(("…", "h128"))]
    assert len(rows) == 2 and rows[0] != rows[1], r.stdout
    assert rows[0].endswith("_adam") and rows[1].endswith("_adamw"), rows
    assert all(len(x) <= 16 for x in rows)


def test_distinct_names_keep_what_differs_wherever_it_is():
    from bitnet_tui.app.cli.render import distinct_names

    mid = distinct_names(["h128_lr1e-3_decay_all_yes_adam_seed0", "h128_lr3e-3_decay_all_yes_adam_seed0"], 16)
    assert mid[0] != mid[1] and "lr1e-3" in mid[0] and "lr3e-3" in mid[1], mid
    same = distinct_names(["2026-12-03T10-00-00_h64_lr1e-3", "2026-12-03T10-05-00_h64_lr1e-3"], 16)
    assert same[0] != same[1], same  # the same settings twice: the start time tells them apart
    assert distinct_names(["h64_lr1e-3", "h64_lr3e-3"], 16) == ["h64_lr1e-3", "h64_lr3e-3"]  # short: as they are
