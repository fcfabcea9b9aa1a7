"""Suite-wide rule: in CI a skipped test is a failed test.

`make setup` installs everything the tests need (system packages, the venv, the data folder is
laid beside the clone), so on CI a skip can only mean something is broken -- an import that
fails, a library that does not load, a service that did not start -- and must not pass as green.
Outside CI (``CI`` unset) skips stay skips, so a developer without, say, Chromium can still run
the rest.
"""

from __future__ import annotations

import os

import pytest


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where everything the tests need is installed: {reason}"
