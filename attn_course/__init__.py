"""attn-course: an installable PyTorch course on attention mechanisms.

Subpackages and modules:
- ``attn_course.reference``: reference implementations of everything taught (pure torch).
- ``attn_course.lab``: starting JupyterLab on the course (``attn-course lab``).
"""

__version__ = "0.1.0"
