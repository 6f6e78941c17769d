"""Logging: loguru for the library, bridged into Dagster's run log.

Library code logs through loguru with a ``component`` bound::

    from robosf_assets.logs import get_logger
    log = get_logger("training.ppo")
    log.info("iteration {} done", i)

Entry points (CLI, benchmarks) call :func:`configure_logging` once. The Dagster layer
wraps a core call in :func:`dagster_log_bridge` so the same messages also land in the run
log::

    with dagster_log_bridge(context.log):
        result = train_expert(cfg)

Nothing here imports Dagster: the bridge accepts any object with ``debug``, ``info``,
``warning`` and ``error`` methods. Long loops report progress through
:class:`ProgressLogger`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from loguru import logger

__all__ = [
    "ProgressLogger",
    "configure_logging",
    "dagster_log_bridge",
    "format_duration",
    "format_progress",
    "get_logger",
    "logger",
]

LEVEL_ENV = "ROBOSF_LOG_LEVEL"
DEFAULT_LEVEL = "INFO"

# The stderr sink added by configure_logging, so a second call replaces it instead of
# adding another one.
_stderr_sink_id: int | None = None
_configure_lock = threading.Lock()


def get_logger(component: str) -> Any:
    """Loguru's logger with ``component`` bound (shown in the stderr format and the
    Dagster bridge)."""
    return logger.bind(component=component)


def _stderr_format(record: dict[str, Any]) -> str:
    component = "{extra[component]} " if "component" in record["extra"] else ""
    return (
        "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
        f"<cyan>{component}</cyan>{{message}}\n{{exception}}"
    )


def _resolve_level(level: str | int | None) -> str | int:
    if level is not None:
        source, value = "level argument", level
    elif os.environ.get(LEVEL_ENV):
        source, value = LEVEL_ENV, os.environ[LEVEL_ENV].strip().upper()
    else:
        return DEFAULT_LEVEL
    if isinstance(value, str):
        value = value.upper()
        try:
            logger.level(value)
        except ValueError:
            raise ValueError(
                f"{source}={value!r} is not a log level; use one of TRACE, DEBUG, INFO, "
                "SUCCESS, WARNING, ERROR, CRITICAL"
            ) from None
    return value


def configure_logging(level: str | int | None = None) -> int:
    """Send log messages to stderr in a compact format, once.

    Idempotent: every call leaves exactly one stderr sink from this module (loguru's
    default handler is removed on the first call). Calling again changes the level.

    :param level: minimum level. Default: ``$ROBOSF_LOG_LEVEL`` if set, else ``INFO``.
    :return: the loguru handler id of the stderr sink.
    :raises ValueError: for an unknown level name, naming where it came from.
    """
    global _stderr_sink_id
    resolved = _resolve_level(level)
    with _configure_lock:
        if _stderr_sink_id is None:
            try:
                logger.remove(0)  # loguru's default stderr handler
            except ValueError:
                pass
        else:
            try:
                logger.remove(_stderr_sink_id)
            except ValueError:
                pass
        _stderr_sink_id = logger.add(
            sys.stderr, level=resolved, format=_stderr_format, backtrace=False, diagnose=False
        )
        return _stderr_sink_id


class DagsterStyleLog(Protocol):
    """What the bridge needs from ``context.log``."""

    def debug(self, msg: str) -> Any: ...
    def info(self, msg: str) -> Any: ...
    def warning(self, msg: str) -> Any: ...
    def error(self, msg: str) -> Any: ...


def _method_for(target: Any, level_no: int) -> Callable[[str], Any]:
    if level_no >= 50:
        return getattr(target, "critical", target.error)
    if level_no >= 40:
        return target.error
    if level_no >= 30:
        return target.warning
    if level_no >= 20:
        return target.info
    return target.debug


@contextmanager
def dagster_log_bridge(context_log: DagsterStyleLog, level: str | int = "DEBUG") -> Iterator[int]:
    """Forward loguru messages to a Dagster-style logger while the block runs.

    Levels map by severity: TRACE/DEBUG -> ``debug``, INFO/SUCCESS -> ``info``,
    WARNING -> ``warning``, ERROR -> ``error``, CRITICAL -> ``critical`` if the target
    has it, else ``error``. A bound ``component`` prefixes the message as ``[component]``;
    a logged exception's traceback is appended. The sink is removed on exit, also when the
    block raises.

    The sink is process-wide: messages from every thread reach ``context_log``. Dagster's
    default executor runs each step in its own process, so that is one step's messages.

    :param context_log: e.g. ``context.log``.
    :param level: minimum level forwarded.
    :return: (as the ``with`` target) the loguru handler id.
    """
    local = threading.local()

    def not_reentrant(record: dict[str, Any]) -> bool:
        # Drops messages the target itself logs back into loguru while we call it (the
        # filter runs before loguru takes the handler lock, so this avoids its deadlock
        # error report as well as a loop).
        return not getattr(local, "busy", False)

    def sink(message: Any) -> None:
        record = message.record
        # str(message) is the message plus, for logger.exception, the traceback.
        text = str(message).rstrip("\n")
        component = record["extra"].get("component")
        if component:
            text = f"[{component}] {text}"
        local.busy = True
        try:
            _method_for(context_log, record["level"].no)(text)
        finally:
            local.busy = False

    handler_id = logger.add(
        sink,
        level=level,
        format="{message}",
        filter=not_reentrant,
        backtrace=False,
        diagnose=False,
    )
    try:
        yield handler_id
    finally:
        logger.remove(handler_id)


# ------------------------------------------------------------------------- progress


def format_duration(seconds: float) -> str:
    """``42s``, ``1m10s``, ``2h03m``; ``?`` for a negative or non-finite value."""
    if not (seconds >= 0) or seconds == float("inf"):
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def format_progress(
    stage: str, done: int, total: int, elapsed_s: float, unit: str = "steps"
) -> str:
    """``stage: 12,345/100,000 steps (12.3%) 1,234 steps/s ETA 1m10s``.

    The rate is the average since the start; the ETA is what remains at that rate
    (``?`` before any progress).
    """
    pct = 100.0 * done / total if total > 0 else 0.0
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    eta = format_duration(max(total - done, 0) / rate) if rate > 0 else "?"
    return (
        f"{stage}: {done:,}/{total:,} {unit} ({pct:.1f}%) {rate:,.0f} {unit}/s ETA {eta}"
    )


class ProgressLogger:
    """Rate-limited progress lines for long loops.

    ::

        progress = ProgressLogger("expert ppo", total=1_000_000, interval_s=30)
        for step in ...:
            progress.update(step)
        progress.finish()

    :param stage: label at the start of each line.
    :param total: number of units expected (> 0).
    :param interval_s: at most one line per this many seconds.
    :param unit: what is counted, e.g. ``"steps"`` or ``"episodes"``.
    :param clock: monotonic seconds; injectable for tests.
    :param log: called with each line; default loguru INFO with ``component="progress"``.
    """

    def __init__(
        self,
        stage: str,
        total: int,
        interval_s: float = 30.0,
        *,
        unit: str = "steps",
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], Any] | None = None,
    ) -> None:
        if total <= 0:
            raise ValueError(f"ProgressLogger total must be > 0, got {total}")
        if interval_s < 0:
            raise ValueError(f"ProgressLogger interval_s must be >= 0, got {interval_s}")
        self.stage = stage
        self.total = total
        self.interval_s = interval_s
        self.unit = unit
        self._clock = clock
        self._log = log if log is not None else get_logger("progress").info
        self._start = clock()
        self._last_log = self._start
        self.done = 0

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self._start

    def update(self, done: int) -> str | None:
        """Record ``done`` units completed in total; log a line if ``interval_s`` has
        passed since the last one. Returns the line logged, or ``None``."""
        self.done = done
        now = self._clock()
        if now - self._last_log < self.interval_s:
            return None
        self._last_log = now
        line = format_progress(self.stage, done, self.total, now - self._start, self.unit)
        self._log(line)
        return line

    def advance(self, n: int = 1) -> str | None:
        """Add ``n`` units; see :meth:`update`."""
        return self.update(self.done + n)

    def finish(self) -> str:
        """Log and return a closing line: units done, time taken, average rate."""
        elapsed = self.elapsed_s
        rate = self.done / elapsed if elapsed > 0 else 0.0
        line = (
            f"{self.stage}: done {self.done:,}/{self.total:,} {self.unit} in "
            f"{format_duration(elapsed)} ({rate:,.0f} {self.unit}/s)"
        )
        self._log(line)
        return line
