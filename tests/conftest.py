import os

# Jupyter's own deprecation warning about moving to platformdirs would be an error under our
# strict warning filter; opting in to the new paths is what Jupyter recommends.
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")


def pytest_terminal_summary(terminalreporter):
    """List the screenshots that the browser tests saved (tests/browser, in the pytest temp dir)."""
    reports = [report for group in terminalreporter.stats.values() for report in group]
    paths = [value for report in reports for name, value in getattr(report, "user_properties", ())
             if name == "screenshot"]  # fmt: skip
    if paths:
        terminalreporter.section("screenshots")
        for path in dict.fromkeys(paths):
            terminalreporter.write_line(path)
