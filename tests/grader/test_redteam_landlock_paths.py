"""Red team: Landlock follows symbolic links, so a readable root or sibling that is a link
to a folder above the course package would make the package readable (a venv's
``lib64 -> lib``, ``/lib -> usr/lib``)."""

from __future__ import annotations

import sys

from attn_course.grader import confine


def test_a_sibling_link_to_the_package_folder_is_not_allowed(tmp_path, monkeypatch):
    site = tmp_path / "venv" / "lib" / "python3" / "site-packages"
    hidden = site / "attn_course"
    (hidden / "reference").mkdir(parents=True)
    (site / "torch").mkdir()
    (tmp_path / "venv" / "lib64").symlink_to("lib")  # as venv makes it
    (tmp_path / "venv" / "bin").mkdir()
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    allowed = confine.readable_paths(hidden)
    assert all(path.resolve() == path for path in allowed)
    assert not any(path == hidden or path in hidden.parents for path in allowed)
    assert site / "torch" in allowed and tmp_path / "venv" / "bin" in allowed


def test_a_root_link_to_a_folder_above_the_package_is_not_allowed(tmp_path, monkeypatch):
    hidden = tmp_path / "usr" / "lib" / "attn_course"
    hidden.mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "libc.so").write_text("")
    (tmp_path / "lib").symlink_to("usr/lib")  # merged /usr
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "lib"))
    allowed = confine.readable_paths(hidden)
    assert not any(path == hidden or path in hidden.parents for path in allowed)
    assert tmp_path / "usr" / "lib" / "libc.so" in allowed
