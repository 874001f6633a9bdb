"""The batch grader behind ``attn-course grade`` and ``attn-course check`` (docs/contract.md §4).

A pipeline of small stages, each returning dataclasses:

1. ``notebook``: read and validate a submission, restore its locked cells from the
   assignment's source, turn its cells into plain Python;
2. ``static``: the allow-list over every code cell, and the forbidden built-ins in the code
   each exercise reaches (in the grader's process, where the student cannot interfere);
3. ``kernel`` and ``sandbox``: run the cells, then the exercises on hidden cases, in an
   isolated process forked from a zygote that imported torch once (``isolate``: namespaces,
   an unprivileged user, seccomp, cgroups; ``confine``: limits and Landlock; ``codec``: the
   pickle-free wire format), within a per-cell timeout and a per-submission time budget;
4. ``pipeline``: judge every outcome in the grader's process against ``attn_course.reference``
   and turn it into points;
5. ``report``: ``grades.csv``, ``grades.json``, one HTML page per submission, the learner's table.

``catalog`` says what the grader knows of each assignment. This package's ``__init__`` imports
nothing: the zygote imports ``attn_course.grader.sandbox`` and must not load the reference.
"""

DEFAULT_BUDGET = 300.0  # seconds a submission may take in all (``Limits.budget``, the CLI's)
