"""Rendering the console's pages: Jinja2 templates with autoescaping on.

Dataset names, tags and attributes are lab-controlled text: every value reaches the page
through the template's autoescaping (never ``|safe``), so markup in them shows as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """Return the page ``template`` rendered with ``context`` and the HTTP ``status``."""
    return _TEMPLATES.TemplateResponse(request, template, context or {}, status_code=status)


def wants_html(request: Request) -> bool:
    """Whether an error on this request should be answered with a page, not JSON.

    Console pages (``/`` and ``/console/...``) get pages; the JSON APIs get JSON, and so
    does a console request that accepts JSON and not HTML (the console's scripts fetching
    their data, e.g. a dataset's plot).
    """
    path = request.url.path
    if not (path == "/" or path.startswith("/console")):
        return False
    accept = request.headers.get("accept", "")
    return not ("application/json" in accept and "text/html" not in accept)
