"""attn-course: an installable PyTorch course on attention mechanisms.

Subpackages and modules:
- ``attn_course.reference``: reference implementations of everything taught (pure torch).
- ``attn_course.lab``: starting JupyterLab on the course (``attn-course lab``).
- ``attn_course.checks``: learner checks (``check(fn)``) and the exercise registry.
- ``attn_course.assignments``: nbgrader cells of the solution notebooks, making the exercises
  (``attn-course release``).
"""

__version__ = "0.1.0"
