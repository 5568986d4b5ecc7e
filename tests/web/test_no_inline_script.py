"""Pages carry no inline script and no inline event handler, so a Content-Security-Policy
with ``script-src 'self'`` holds: every behaviour lives in a file under static/js/."""

from __future__ import annotations

import re

from tests.conftest import ROOT

TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))
# <script> without src, except JSON data blocks (never executed).
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
_HANDLER = re.compile(r"\s(on[a-z]+|hx-on[:\-\w]*)\s*=", re.I)


def test_templates_have_no_inline_script_or_handlers() -> None:
    assert TEMPLATES
    found = []
    for path in TEMPLATES:
        text = path.read_text()
        found += [f"{path.name}: {m.group(0)}" for m in _INLINE_SCRIPT.finditer(text)]
        found += [f"{path.name}: {m.group(0).strip()}" for m in _HANDLER.finditer(text)]
    assert found == []


def test_the_check_would_see_them() -> None:
    assert _INLINE_SCRIPT.search("<script>alert(1)</script>")
    assert not _INLINE_SCRIPT.search('<script src="/static/js/app.js" defer></script>')
    assert not _INLINE_SCRIPT.search('<script type="application/json" data-peaks>')
    assert _HANDLER.search('<button onclick="x()">')
    assert _HANDLER.search('<form hx-on::after-request="x()">')
