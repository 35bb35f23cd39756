"""Small holes an adversarial pass found: a request with a key given twice, a summary's count of malformed step
lines it did not read, and a viewer piped into ``head``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bitnet_tui.session.analysis.summary import read_summary
from tests.control.helpers import reply_to

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"


def test_a_request_with_a_key_given_twice_is_refused_not_taken_by_its_last_key(tmp_path):
    from bitnet_tui.instrument.server import ControlServer
    from tests.control.helpers import RecordingRun

    run = RecordingRun()
    server = ControlServer(run, tmp_path / "x.sock")
    try:
        reply = reply_to(server.path, b'{"cmd": "ping", "cmd": "stop"}\n')
        assert reply["ok"] is False and "given twice" in reply["error"]
        assert run.sent == []
    finally:
        server.close()


def test_summary_never_miscounts_step_lines_it_does_not_read(tmp_path):
    lines = FIXTURE.read_text().splitlines()
    bad = [i for i, line in enumerate(lines) if json.loads(line)["kind"] == "step"][:200]
    for i in bad:  # written as the writer writes: a summary skips these lines unread
        d = json.loads(lines[i])
        d["loss"] = "x"
        lines[i] = json.dumps(d, separators=(",", ":"))
    last = max(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "step")
    d = json.loads(lines[last])
    d["loss"] = "x"
    lines[last] = json.dumps(d, separators=(",", ":"))  # the last step line, which it does read
    p = tmp_path / "m.jsonl"
    p.write_text("\n".join(lines) + "\n")
    (warning,) = [w for w in read_summary(p).warnings if "malformed" in w]
    assert "(;" not in warning and "not read one by one here (diagnose counts them)" in warning


def test_a_viewer_piped_into_head_exits_0(tmp_path):
    prog = Path(sys.executable).with_name("bitnet-tui")
    if not prog.exists() or shutil.which("head") is None:
        return
    for cmd in ("summary", "diagnose"):
        r = subprocess.run(["bash", "-c", f"set -o pipefail; {prog} {cmd} {FIXTURE} | head -1"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0 and "Exception ignored" not in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_errors_a_user_reads_carry_no_errno_prefix():
    import errno

    from bitnet_tui.session.control.peer import ControlError
    from bitnet_tui.session.log.errors import SessionWriteError

    for e in (ControlError(errno.ETIMEDOUT, "the run did not answer within 5 s"),
              SessionWriteError(errno.ENOSPC, "session log x.jsonl is incomplete (3 bytes unwritten)")):
        assert not str(e).startswith("[Errno") and e.errno in (errno.ETIMEDOUT, errno.ENOSPC)
