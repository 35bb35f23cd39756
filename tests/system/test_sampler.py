"""The system sampler in a real run: its ``system`` events reach the log between the header and ``run_ended``."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch
import torch.nn.functional as F

from bitnet_model.nn.model import BitNetLM
from bitnet_tui.instrument.config import MonitorConfig
from bitnet_tui.instrument.emitter import Emitter
from bitnet_tui.instrument.monitor import Monitor
from bitnet_tui.instrument.system import start_sampler
from bitnet_tui.session.log.events import SystemSample
from bitnet_tui.session.log.reader import read_session


def train(tiny, tmp_path, every: float, seconds: float) -> list[dict]:
    torch.manual_seed(0)
    model = BitNetLM(tiny().model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 300, (2, 16))
    with Monitor(model, opt, sessions_dir=str(tmp_path), run_name="sys", eval_every=1000,
                 options=MonitorConfig(control=False, vocab_size=300, system_every=every)) as mon:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            logits, _ = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1), x.flatten())
            loss.backward()
            opt.step()
            opt.zero_grad()
            mon.step(loss)
        path = mon.session_path
    assert path is not None
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_real_run_logs_system_samples_between_its_header_and_its_end(tiny, tmp_path):
    lines = train(tiny, tmp_path, every=0.1, seconds=0.8)
    kinds = [d["kind"] for d in lines]
    assert kinds[0] == "run_started" and kinds[-1] == "run_ended"
    assert kinds.count("system") >= 3, kinds
    data = read_session(next(tmp_path.glob("*.jsonl")))
    samples = [e for e in data.events if isinstance(e, SystemSample)]
    assert data.warnings == []
    s = samples[-1]
    assert s.rss_mb is not None and 10 < s.rss_mb < 1e6
    assert s.threads is not None and s.threads >= 2  # the training thread and the sampler
    assert s.cpus is not None and s.cpus >= 1 and s.cpu_percent is not None and s.cpu_percent >= 0
    assert s.gpu_util is None and s.gpu_mem_mb is None  # a CPU run has no device figures
    assert [e.step for e in samples] == sorted(e.step for e in samples) and samples[-1].step > 0


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "bitnet-tui-system"]


def test_system_every_0_starts_no_sampler_its_closer_stops_one_and_a_bad_interval_is_refused():
    off = Emitter()
    start_sampler(off, lambda: 0, torch.device("cpu"), 0)()
    assert off.subscribers == [] and sampler_threads() == []
    on = Emitter()
    stop = start_sampler(on, lambda: 0, torch.device("cpu"), 0.1)
    assert len(on.subscribers) == 1 and len(sampler_threads()) == 1
    stop()
    assert sampler_threads() == []
    for bad in (-1, 0.01, True, "2"):
        with pytest.raises(ValueError, match="system_every"):
            MonitorConfig(system_every=bad)
