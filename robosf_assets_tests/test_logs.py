"""Tests for robosf_assets.logs: stderr set-up, the Dagster bridge, progress lines."""

from __future__ import annotations

import pytest
from loguru import logger

from robosf_assets import logs as rlog


class FakeDagsterLog:
    """Stands in for ``context.log``: records (method, message)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def debug(self, msg: str) -> None:
        self.calls.append(("debug", msg))

    def info(self, msg: str) -> None:
        self.calls.append(("info", msg))

    def warning(self, msg: str) -> None:
        self.calls.append(("warning", msg))

    def error(self, msg: str) -> None:
        self.calls.append(("error", msg))


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def stderr_sink_cleanup():
    """configure_logging binds pytest's captured stderr; drop that sink afterwards."""
    yield
    if rlog._stderr_sink_id is not None:
        logger.remove(rlog._stderr_sink_id)
        rlog._stderr_sink_id = None


# ------------------------------------------------------------- configure_logging


def test_configure_logging_idempotent_single_sink(capsys, monkeypatch, stderr_sink_cleanup):
    monkeypatch.delenv(rlog.LEVEL_ENV, raising=False)
    rlog.configure_logging()
    rlog.configure_logging()
    rlog.get_logger("unit").info("hello once")
    rlog.get_logger("unit").debug("hidden at INFO")
    err = capsys.readouterr().err
    assert err.count("hello once") == 1
    assert "unit" in err and "INFO" in err
    assert "hidden at INFO" not in err


def test_configure_logging_level_from_env(capsys, monkeypatch, stderr_sink_cleanup):
    monkeypatch.setenv(rlog.LEVEL_ENV, "warning")
    rlog.configure_logging()
    logger.info("quiet info")
    logger.warning("loud warning")
    err = capsys.readouterr().err
    assert "loud warning" in err and "quiet info" not in err
    # an explicit argument wins over the environment
    rlog.configure_logging("DEBUG")
    logger.debug("now visible")
    assert capsys.readouterr().err.count("now visible") == 1


def test_configure_logging_rejects_bad_env_level(monkeypatch, stderr_sink_cleanup):
    monkeypatch.setenv(rlog.LEVEL_ENV, "LOUD")
    with pytest.raises(ValueError, match="ROBOSF_LOG_LEVEL='LOUD'"):
        rlog.configure_logging()


# ------------------------------------------------------------------- bridge


def test_bridge_forwards_with_mapped_levels():
    fake = FakeDagsterLog()
    log = rlog.get_logger("training.ppo")
    with rlog.dagster_log_bridge(fake, level="TRACE"):
        logger.trace("t")
        logger.debug("d")
        log.info("i {}", 1)
        logger.success("s")
        logger.warning("w")
        logger.error("e")
        logger.critical("c")
    assert fake.calls == [
        ("debug", "t"),
        ("debug", "d"),
        ("info", "[training.ppo] i 1"),
        ("info", "s"),
        ("warning", "w"),
        ("error", "e"),
        ("error", "c"),  # fake has no .critical
    ]


def test_bridge_uses_critical_when_available_and_respects_level():
    class WithCritical(FakeDagsterLog):
        def critical(self, msg: str) -> None:
            self.calls.append(("critical", msg))

    fake = WithCritical()
    with rlog.dagster_log_bridge(fake, level="WARNING"):
        logger.info("below threshold")
        logger.critical("c")
    assert fake.calls == [("critical", "c")]
    with rlog.dagster_log_bridge(fake):  # default level DEBUG drops TRACE
        logger.trace("too fine")
    assert fake.calls == [("critical", "c")]


def test_bridge_includes_traceback():
    fake = FakeDagsterLog()
    with rlog.dagster_log_bridge(fake):
        try:
            raise ZeroDivisionError("boom")
        except ZeroDivisionError:
            logger.exception("failed step")
    (level, msg), = fake.calls
    assert level == "error"
    assert msg.startswith("failed step") and "ZeroDivisionError: boom" in msg


def test_bridge_removes_sink_on_exit_and_on_exception():
    fake = FakeDagsterLog()
    with rlog.dagster_log_bridge(fake) as handler_id:
        logger.info("inside")
    logger.info("after exit")
    with pytest.raises(ValueError):
        logger.remove(handler_id)  # already removed
    with pytest.raises(RuntimeError):
        with rlog.dagster_log_bridge(fake):
            logger.info("inside again")
            raise RuntimeError("asset failed")
    logger.info("after exception")
    assert fake.calls == [("info", "inside"), ("info", "inside again")]


def test_bridge_survives_target_logging_back_into_loguru(capsys):
    class Echo(FakeDagsterLog):
        def info(self, msg: str) -> None:
            super().info(msg)
            logger.info("echo of " + msg)  # would recurse forever without the guard

    fake = Echo()
    with rlog.dagster_log_bridge(fake):
        logger.info("x")
    assert fake.calls == [("info", "x")]
    # loguru reports a sink that re-enters it as a "Logging error" on stderr
    assert "Logging error" not in capsys.readouterr().err


# ------------------------------------------------------------------ progress


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (42.4, "42s"), (70, "1m10s"), (3599, "59m59s"), (7380, "2h03m"),
     (float("nan"), "?"), (-1, "?"), (float("inf"), "?")],
)
def test_format_duration(seconds, text):
    assert rlog.format_duration(seconds) == text


def test_format_progress_line():
    line = rlog.format_progress("expert ppo", 25_000, 100_000, 10.0)
    assert line == "expert ppo: 25,000/100,000 steps (25.0%) 2,500 steps/s ETA 30s"
    assert rlog.format_progress("s", 0, 10, 0.0).endswith("0 steps/s ETA ?")


def test_progress_logger_rate_limited_with_eta():
    clock = FakeClock(100.0)
    lines: list[str] = []
    p = rlog.ProgressLogger("record", total=100_000, interval_s=10, clock=clock,
                            log=lines.append)
    clock.t = 105.0
    assert p.update(5_000) is None  # within interval
    clock.t = 110.0
    assert p.update(12_000) == "record: 12,000/100,000 steps (12.0%) 1,200 steps/s ETA 1m13s"
    clock.t = 115.0
    assert p.advance(8_000) is None
    clock.t = 120.0
    # 20,000 in 20 s -> 1,000/s, 80,000 left -> 80 s
    assert p.update(20_000) == "record: 20,000/100,000 steps (20.0%) 1,000 steps/s ETA 1m20s"
    clock.t = 200.0
    p.update(100_000)
    assert lines[-1].endswith("(100.0%) 1,000 steps/s ETA 0s")
    assert p.finish() == "record: done 100,000/100,000 steps in 1m40s (1,000 steps/s)"
    assert len(lines) == 4


def test_progress_logger_default_log_goes_to_loguru():
    fake = FakeDagsterLog()
    clock = FakeClock(0.0)
    p = rlog.ProgressLogger("bc", total=10, interval_s=0, unit="epochs", clock=clock)
    with rlog.dagster_log_bridge(fake):
        clock.t = 2.0
        p.update(5)
    assert fake.calls == [("info", "[progress] bc: 5/10 epochs (50.0%) 2 epochs/s ETA 2s")]


def test_progress_logger_validates():
    with pytest.raises(ValueError, match="total"):
        rlog.ProgressLogger("x", total=0)
