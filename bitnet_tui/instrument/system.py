"""What the training process costs the machine: a ``system`` event every few seconds, taken off the training thread.

A daemon thread of rank 0 wakes every ``system_every`` seconds, reads the process' CPU share, resident memory and
threads and the machine's load average through psutil, and on CUDA the device's utilisation and temperature through
NVML (torch's ``torch.cuda.utilization``/``temperature``, which need ``nvidia-ml-py``) and its memory in use (NVML's
figure for the device, else what torch's allocator holds). Nothing here synchronises the device or touches the
model. The event goes out through the run's emitter under its lock, so consumers never see two events at once;
no sample goes out before ``run_started`` or after ``run_ended``. A figure the platform refuses is left out of the
event; a sampler that cannot start (no psutil) is no sampler, never an error in the user's loop.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from bitnet_tui.instrument.emitter import Emitter
from bitnet_tui.session.log.events import Event, RunEnded, RunStarted, SystemSample

MB = float(1 << 20)


class SystemSampler:
    """``start()`` the thread, ``close()`` it (the run's closers do); :meth:`sample` is one reading."""

    def __init__(self, emitter: Emitter, step_of: Callable[[], int], device: Any, every: float, *,
                 started: bool = False) -> None:
        """``started``: the run's header has gone out already (a sampler started mid-run)."""
        import psutil

        self._emitter, self._step_of, self._every = emitter, step_of, every
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # the first call starts the interval the next one measures
        self._cpus = psutil.cpu_count() or None
        self._gpu = gpu_reader(device)
        self._stop = threading.Event()
        self._started, self._ended = started, False
        emitter.subscribe(self._observe)
        self._thread = threading.Thread(target=self._loop, name="bitnet-tui-system", daemon=True)

    def start(self) -> SystemSampler:
        self._thread.start()
        return self

    def sample(self) -> SystemSample:
        figures: dict[str, Any] = {"cpus": self._cpus}
        try:
            p = self._proc
            with p.oneshot():
                figures.update(cpu_percent=float(p.cpu_percent(None)), rss_mb=p.memory_info().rss / MB,
                               threads=int(p.num_threads()))
        except Exception:  # psutil.Error, or a platform without one of them: those figures are left out
            pass
        try:
            figures["load1"] = float(os.getloadavg()[0])
        except (OSError, AttributeError):
            pass
        if self._gpu is not None:
            figures.update(self._gpu())
        return SystemSample(step=self._step_of(), time=time.time(), **figures)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                ev = self.sample()
            except Exception:  # never let a reading end the thread with a traceback on the user's terminal
                continue
            with self._emitter.lock:
                if self._ended:
                    return
                if self._started:  # never before the header: a log's first line is run_started
                    self._emitter.emit(ev)

    def _observe(self, ev: Event) -> None:
        if isinstance(ev, RunStarted):
            self._started = True
        elif isinstance(ev, RunEnded):
            self._ended = True

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def gpu_reader(device: Any) -> Callable[[], dict[str, float]] | None:
    """For a CUDA ``device``: a function that reads its figures (the ones NVML refuses are left out); else None."""
    if getattr(device, "type", "") != "cuda":
        return None
    import torch

    index = device.index if device.index is not None else torch.cuda.current_device()
    total = torch.cuda.get_device_properties(index).total_memory / MB
    nvml: dict[str, Callable[[int], float]] = {  # looked up at each call: an older torch may lack one
        "gpu_util": lambda i: torch.cuda.utilization(i), "gpu_temp_c": lambda i: torch.cuda.temperature(i),
        "gpu_mem_mb": lambda i: torch.cuda.device_memory_used(i) / MB}

    def read() -> dict[str, float]:
        out = {"gpu_mem_mb": torch.cuda.memory_reserved(index) / MB, "gpu_mem_total_mb": total}
        for key, fn in list(nvml.items()):
            try:
                out[key] = float(fn(index))
            except Exception:  # no nvidia-ml-py, or a device NVML does not see: not asked again
                del nvml[key]
        return out

    return read


def start_sampler(emitter: Emitter, step_of: Callable[[], int], device: Any, every: float) -> Callable[[], None]:
    """Start rank 0's sampler (``every`` 0: none); returns what stops it."""
    if not every:
        return lambda: None
    try:
        sampler = SystemSampler(emitter, step_of, device, every).start()
    except Exception:  # no psutil in this environment: the run goes on without system figures
        return lambda: None
    return sampler.close
