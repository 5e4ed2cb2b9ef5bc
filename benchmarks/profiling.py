"""Profiling one reconcile run of the benchmark's runner: cProfile stats or a pyinstrument call tree.

``--profile-dir DIR`` (with ``--profiler cprofile``, the default) writes each run's cProfile stats,
``DIR/CONFIG-RUN.prof``, for ``pstats`` or snakeviz. ``--profiler pyinstrument`` writes
``DIR/CONFIG-RUN.html`` (an interactive call tree) and ``DIR/CONFIG-RUN.txt`` (the same tree as text)
instead: ``make profile`` does that for the 100,000-user dry-run.

pyinstrument samples the stack every millisecond rather than tracing every call, so it inflates the
run far less than cProfile and its tree shows where the wall time goes, the event loop's waits
included. It runs with ``async_mode="disabled"``: it samples the whole main thread, so the work
of every task of the run (the page readers, the decoders, the planner) shows under the event
loop's frames rather than only the awaiting coroutine's. It sees the main thread only: work
handed to another thread or process is not in its tree. Either way, profiled wall times are
not for the record.
"""

from __future__ import annotations

import cProfile
from pathlib import Path
from typing import Any, Protocol

PROFILERS = ("cprofile", "pyinstrument")


class RunProfiler(Protocol):
    enabled: bool

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def write(self) -> list[Path]:
        """Write what was profiled; the files written."""
        ...


class NoProfiler:
    enabled = False

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def write(self) -> list[Path]:
        return []


class CProfiler:
    enabled = True

    def __init__(self, stem: Path) -> None:
        self.stem = stem
        self.profiler = cProfile.Profile()

    def start(self) -> None:
        self.profiler.enable()

    def stop(self) -> None:
        self.profiler.disable()

    def write(self) -> list[Path]:
        path = self.stem.with_suffix(".prof")
        self.profiler.dump_stats(path)
        return [path]


class PyinstrumentProfiler:
    enabled = True

    def __init__(self, stem: Path) -> None:
        try:
            from pyinstrument import Profiler
        except ImportError as error:
            raise SystemExit(
                "--profiler pyinstrument needs pyinstrument: pip install -e '.[profile]' (make profile does it)"
            ) from error
        self.stem = stem
        self.profiler = Profiler(interval=0.001, async_mode="disabled")

    def start(self) -> None:
        self.profiler.start()

    def stop(self) -> None:
        self.profiler.stop()

    def write(self) -> list[Path]:
        html, text = self.stem.with_suffix(".html"), self.stem.with_suffix(".txt")
        html.write_text(self.profiler.output_html())
        text.write_text(self.profiler.output_text(unicode=True, color=False))
        return [html, text]


def run_profiler(job: dict[str, Any], run_name: str) -> RunProfiler:
    """The profiler the job asks for (``profile_dir``, ``profiler``), for the run named ``run_name``."""
    directory = job.get("profile_dir")
    if not directory:
        return NoProfiler()
    stem = Path(directory) / f"{Path(job['config']).stem}-{run_name.replace(' ', '-')}"
    if job.get("profiler", "cprofile") == "pyinstrument":
        return PyinstrumentProfiler(stem)
    return CProfiler(stem)
