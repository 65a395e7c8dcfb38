"""plotly.js's own style rules as a style sheet, so plots render under ``style-src 'self'``.

At load, plotly.js inserts a ``<style>`` element holding its rules (the modebar, the layered
SVGs of a plot, ...), which the console's content security policy refuses. plotly.js skips
that when the page already has an element with id ``plotly.js-style-global`` and class
``no-inline-styles``; the console's plot pages link this style sheet under that id. The
rules are read out of the installed ``plotly.min.js`` (the same file the pages load), so
they always match the plotly.js version served.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import plotly

from qops.errors import QopsError

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

STYLESHEET_ID = "plotly.js-style-global"
"""The element id plotly.js looks for before inserting its own ``<style>``."""

# plotly.js bundles libraries (MapLibre) that add a <style> element with a fixed id at load
# unless an element of that id already exists.
_BUNDLED_STYLE = re.compile(
    r'getElementById\("([0-9a-f]{64})"\)\)\{var \w+=document\.createElement\("style"\)'
)

_FIRST_RULE = '"X,X div":'
_STRING = r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
_ENTRY = re.compile(rf"\s*({_STRING}|[A-Za-z_$][\w$]*)\s*:\s*({_STRING})\s*(,|}})")


class PlotlyStylesError(QopsError):
    """The style rules could not be found in the installed plotly.js.

    Args:
        path: The plotly.js file read.
        reason: What was not found.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"plotly.js style rules not found in {path}: {reason}")


def _unquote(literal: str) -> str:
    if literal[:1] in "\"'":
        return re.sub(r"\\(.)", r"\1", literal[1:-1])
    return literal


def rules_of(script: str) -> dict[str, str]:
    """The ``selector -> declarations`` rules plotly.js inserts at load, from its source.

    Selectors come with plotly.js's own substitutions: ``X`` is ``.js-plotly-plot .plotly``
    and ``Y`` is ``.plotly-notifier``.

    Raises:
        ValueError: The rules object is not in ``script``.
    """
    start = script.find(_FIRST_RULE)
    if start < 0:
        raise ValueError(f"no {_FIRST_RULE} in the script")
    rules: dict[str, str] = {}
    position = start
    while True:
        match = _ENTRY.match(script, position)
        if match is None:
            raise ValueError(f"unreadable rule at offset {position}")
        key = _unquote(match[1])
        selector = re.sub(r"^,", " ,", key).replace("X", ".js-plotly-plot .plotly")
        rules[selector.replace("Y", ".plotly-notifier")] = _unquote(match[2])
        position = match.end()
        if match[3] == "}":
            return rules


@functools.cache
def plotly_stylesheet() -> str:
    """The CSS text of plotly.js's load-time rules (read once per process).

    Raises:
        PlotlyStylesError: The installed plotly.js does not hold them as expected.
    """
    try:
        rules = rules_of(PLOTLY_JS.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PlotlyStylesError(PLOTLY_JS, str(e)) from e
    header = (
        f"/* plotly.js's own rules, read from {PLOTLY_JS.name} of plotly {plotly.__version__} */"
    )
    return "\n".join([header, *(f"{selector} {{{body}}}" for selector, body in rules.items())])


@functools.cache
def plotly_style_ids() -> tuple[str, ...]:
    """Return the ids of the ``<style>`` elements plotly.js's bundled libraries add.

    They add one at load unless an element of that id exists: the plot pages put an empty
    element of each id in their head, so no inline style is added, which the content
    security policy would refuse (a console error).
    """
    return tuple(dict.fromkeys(_BUNDLED_STYLE.findall(PLOTLY_JS.read_text("utf-8"))))
