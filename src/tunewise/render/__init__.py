"""Every page tunewise writes: Jinja2 templates with autoescaping, one stylesheet, the plot helpers.

The audit page, the evaluation report, the review page and the decision all render here, and the
web app will render the same templates. Pages are self-contained (CSS inline, plots as embedded
PNG) so that a report opens offline and can be mailed as one file.

    from tunewise.render import render_page
    html = render_page("audit.html", title="Audit of train.jsonl", audit=record)

Templates receive typed records (`tunewise.records`) and format them with the filters below; no
logic that decides anything lives in a template.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

__all__ = ["environment", "render_page", "stylesheet", "figure", "png_bytes", "img_tag", "fmt_number", "fmt_percent", "fmt_usd"]


def stylesheet() -> str:
    """The one stylesheet every page inlines."""
    return resources.files(__package__).joinpath("style.css").read_text(encoding="utf-8")


def fmt_number(value: Any, digits: int = 3) -> str:
    """A number for a table cell: integers with thousands separators, floats to `digits` places, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def fmt_usd(value: float | None, digits: int = 0) -> str:
    """Dollars with thousands separators and the sign before the symbol; 'unknown' for missing."""
    if value is None:
        return "unknown"
    return f"-${-value:,.{digits}f}" if value < 0 else f"${value:,.{digits}f}"


def fmt_percent(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}%}"


def figure(width: float = 8.0, height: float = 3.0):
    """A matplotlib Figure on the Agg canvas: no display, no global pyplot state shared between threads."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def img_tag(png: bytes | None, alt: str) -> Markup:
    """An <img> with the PNG embedded, safe to place in a template as is."""
    if not png:
        return Markup("")
    data = base64.b64encode(png).decode("ascii")
    return Markup('<img alt="{}" src="data:image/png;base64,{}">').format(alt, Markup(data))


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tunewise.render", "templates"),
        autoescape=select_autoescape(["html", "htm", "xml"], default_for_string=True),
        undefined=StrictUndefined,  # a misspelt field fails the test that renders it, instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_number
    env.filters["pct"] = fmt_percent
    env.globals["stylesheet"] = stylesheet
    env.globals["img"] = img_tag
    return env


def render_page(template: str, **context: Any) -> str:
    """Render one template of `tunewise/render/templates` with `context`."""
    return environment().get_template(template).render(**context)
