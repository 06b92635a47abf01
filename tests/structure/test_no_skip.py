"""The CI switch of tests/conftest.py: with FACESTATS_NO_SKIP set a skip report becomes a failure that
keeps its reason; without it (a developer's machine) skips stay skips; xfails are left alone."""

from __future__ import annotations

import pytest

from tests.conftest import NO_SKIP, _fail_skip


def _skipped(reason: str = "openvino not installed") -> pytest.TestReport:
    return pytest.TestReport("tests/x.py::test_x", ("tests/x.py", 1, "test_x"), {}, "skipped",
                             ("tests/x.py", 1, f"Skipped: {reason}"), "call")


def test_a_skip_fails_under_the_ci_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NO_SKIP, "1")
    report = _skipped()
    _fail_skip(report)
    assert report.failed and NO_SKIP in str(report.longrepr) and "openvino not installed" in str(report.longrepr)


@pytest.mark.parametrize("value", [None, "", "0"])
def test_skips_stay_skips_without_the_switch(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv(NO_SKIP, raising=False)
    else:
        monkeypatch.setenv(NO_SKIP, value)
    report = _skipped()
    _fail_skip(report)
    assert report.skipped


def test_an_expected_failure_is_not_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NO_SKIP, "1")
    report = _skipped()
    report.wasxfail = "known bug"  # type: ignore[attr-defined]
    _fail_skip(report)
    assert report.skipped


def test_ci_sets_the_switch() -> None:
    from pathlib import Path

    run = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert f"{NO_SKIP}=1 make test" in run
