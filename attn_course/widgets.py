"""Interactive explorers for the lessons (the only module that imports ipywidgets).

Each function returns a widget whose figures come from ``attn_course.plots``. A lesson cell that
shows a widget is marked ``# NBVAL_IGNORE_OUTPUT``; the next cell draws the same picture
statically (compared by nbval, and readable where widgets do not render).
"""
