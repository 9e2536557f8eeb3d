"""What one Jinja2 template may cost when it renders one message (docs/events.md#what-a-template-may-cost).

Templates are edited by finance staff and may come from a shared folder: the sandbox (`compose.sandbox`) keeps
them from running code, these limits keep them from exhausting memory or CPU. A real template uses a tiny
fraction of each. They are read when a message renders, so a test can lower one for its run. No Jinja2 here:
`compose.render` looks at `TemplateLimitExceeded` without loading it.
"""

from __future__ import annotations

MAX_SIZE = 1_000_000
"""Characters of a string, or items (counting the characters of every string inside) of a list, tuple or dict,
that any one value a template makes may hold."""

MAX_INT_BITS = 4096
"""Bits of an integer a template makes (about 1,230 decimal digits)."""

MAX_WIDTH = 1000
"""Widths and precisions: `center`, `indent`, `batch`, `wordwrap`'s wrap string, `'%10s'`/`'%*s'`, `format` filter,
`'{:>10}'.format`, `str.center`/`ljust`/`rjust`/`zfill`/`expandtabs`."""

MAX_TEMPLATE_BYTES = 1_000_000
"""Bytes of one template file, refused by its size before it is read."""

MAX_OUTPUT = 10_000_000
"""Characters of one rendered template (subject, text or HTML body)."""

MAX_STEPS = 1_000_000
"""Loop iterations, calls (macros, methods, filters) and operators of one template's render."""

RENDER_SECONDS = 10.0
"""Wall time one template's render may take; checked at every step, and every step is small."""


class TemplateLimitExceeded(Exception):
    """A template went over one of the limits above; `place` is `file` when no line can be told."""

    def __init__(self, message: str, place: str | None = None) -> None:
        self.message = message
        self.place = place
        super().__init__(message)
