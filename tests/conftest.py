import os
import socket
from collections.abc import Callable

import pytest

# Jupyter's own deprecation warning about moving to platformdirs would be an error under our
# strict warning filter; opting in to the new paths is what Jupyter recommends.
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """Call it for a port on 127.0.0.1 that is free now (for a JupyterLab under test)."""

    def pick() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    return pick


def pytest_terminal_summary(terminalreporter):
    """List the screenshots that the browser tests saved (tests/browser, in the pytest temp dir)."""
    reports = [report for group in terminalreporter.stats.values() for report in group]
    paths = [value for report in reports for name, value in getattr(report, "user_properties", ())
             if name == "screenshot"]  # fmt: skip
    if paths:
        terminalreporter.section("screenshots")
        for path in dict.fromkeys(paths):
            terminalreporter.write_line(path)
