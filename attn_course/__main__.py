"""``python -m attn_course`` is the ``attn-course`` command."""

from attn_course.cli import main

raise SystemExit(main())
