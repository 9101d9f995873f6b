"""A report as data: sections of paragraphs, tables and plots, rendered once to HTML (a template) and once to Markdown.

    from tunewise.render.sections import Section, Table, render_markdown
    section = Section("Candidates").table(Table(["candidate", "accuracy"], [["few-shot", "0.810"]])).note("Bootstrap intervals.")
    html = render_page("report.html", title="tunewise report", sections=[section], ...)
    md = render_markdown([section])

Each section is built in one place (the report's `candidates_section`, `_errors`, ...) and both outputs come
from it, so the HTML and the Markdown cannot disagree. Text is data: the template escapes it, and the
Markdown renderer escapes the characters that would turn a model's reply into markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

__all__ = ["Table", "Section", "render_markdown"]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    numeric: frozenset[int] = frozenset()  # right-aligned columns
    pre: frozenset[int] = frozenset()  # columns of replies and inputs: shown preformatted, whitespace kept
    best: int | None = None  # the row shown in bold


@dataclass
class Section:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)  # (kind, payload); kinds as the methods below
    images: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG, written beside the Markdown
    markdown: str | None = None  # a section rendered elsewhere (the decision): its Markdown as is

    def text(self, line: str) -> Section:
        self.blocks.append(("text", line))
        return self

    def note(self, line: str) -> Section:
        self.blocks.append(("note", line))
        return self

    def strong(self, line: str) -> Section:
        self.blocks.append(("strong", line))
        return self

    def bullets(self, lines: list[str]) -> Section:
        if lines:
            self.blocks.append(("list", lines))
        return self

    def subtitle(self, line: str) -> Section:
        self.blocks.append(("h3", line))
        return self

    def table(self, table: Table) -> Section:
        self.blocks.append(("table", table))
        return self

    def image(self, name: str, png: bytes, alt: str) -> Section:
        self.images[name] = png
        self.blocks.append(("image", {"name": name, "alt": alt}))
        return self

    def html(self, page: Markup) -> Section:
        """HTML rendered by another template (trusted: it escaped its own data)."""
        self.blocks.append(("html", Markup(page)))
        return self


def _md_cell(text: Any) -> str:
    # Replies are data, not markup: a stray <b> in a model output must not restyle the summary.
    text = str(text).replace("|", "\\|").replace("\n", " ")
    return re.sub(r"<(?=[A-Za-z/!])", "&lt;", text)


def _md_table(table: Table) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in table.header) + " |", "|" + "---|" * len(table.header)]
    for i, row in enumerate(table.rows):
        cells = [_md_cell(c) for c in row]
        if i == table.best and cells:
            cells[0] = f"**{cells[0]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(sections: list[Section]) -> str:
    out = []
    for section in sections:
        if section.markdown is not None:
            out.append(section.markdown)
            continue
        parts = [f"## {section.title}\n"]
        for kind, item in section.blocks:
            if kind in ("text", "note"):
                parts.append(f"{item}\n")
            elif kind == "strong":
                parts.append(f"**{item}**\n")
            elif kind == "list":
                parts.append("\n".join(f"- {line}" for line in item) + "\n")
            elif kind == "h3":
                parts.append(f"### {item}\n")
            elif kind == "table":
                parts.append(_md_table(item))
            elif kind == "image":
                parts.append(f"![{item['alt']}]({item['name']})\n")
        out.append("\n".join(parts))
    return "\n".join(out)
