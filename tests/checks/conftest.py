"""Fixtures the learner checks' tests share."""

import pytest

from attn_course.checks import run_check


@pytest.fixture
def ipython(tmp_path, monkeypatch):
    """A plain IPython shell, as in a notebook's kernel, with its history in memory (and
    cleared afterwards)."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path))
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    yield shell
    InteractiveShell.clear_instance()


@pytest.fixture
def named():
    """``named(task, fn, words, seed)``: assert that the check of ``task`` fails ``fn`` with a
    message holding ``words``; return the verdict."""

    def assert_named(task, fn, words, seed):
        verdict = run_check(task, fn, seed=seed)
        assert verdict.status == "failed", verdict
        assert words in verdict.message, verdict.message
        return verdict

    return assert_named
