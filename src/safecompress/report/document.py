"""A small document model for summaries: headings, paragraphs and tables, rendered to Markdown or HTML.

Bench summaries are built once as a :class:`Document` and written in both formats from it, so the HTML is
never parsed back out of the Markdown.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Sequence


@dataclass
class Document:
    blocks: list[tuple] = field(default_factory=list)  # ("h1" | "h2" | "p", text) or ("table", header, rows)

    def h1(self, text: str) -> "Document":
        self.blocks.append(("h1", text))
        return self

    def h2(self, text: str) -> "Document":
        self.blocks.append(("h2", text))
        return self

    def p(self, text: str) -> "Document":
        self.blocks.append(("p", text))
        return self

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> "Document":
        self.blocks.append(("table", [str(h) for h in header], [[str(c) for c in r] for r in rows]))
        return self

    def extend(self, other: "Document") -> "Document":
        self.blocks += other.blocks
        return self

    def to_markdown(self) -> str:
        """Each block followed by a blank line."""
        lines: list[str] = []
        for kind, *rest in self.blocks:
            if kind == "table":
                header, rows = rest
                lines.append("| " + " | ".join(header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(r) + " |" for r in rows]
            else:
                lines.append({"h1": "# ", "h2": "## ", "p": ""}[kind] + rest[0])
            lines.append("")
        return "\n".join(lines)

    def to_html(self, skip_h1: bool = True) -> str:
        """Body HTML: h1 (unless the page writes its own title), h2, paragraphs as notes, and tables."""
        out = []
        for kind, *rest in self.blocks:
            if kind == "table":
                header, rows = rest
                out.append(
                    "<table><thead><tr>"
                    + "".join(f"<th>{html.escape(c)}</th>" for c in header)
                    + "</tr></thead><tbody>"
                    + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
                    + "</tbody></table>"
                )
            elif kind == "h1":
                if not skip_h1:
                    out.append(f"<h1>{html.escape(rest[0])}</h1>")
            elif kind == "h2":
                out.append(f"<h2>{html.escape(rest[0])}</h2>")
            else:
                out.append(f"<p class=note>{html.escape(rest[0])}</p>")
        return "\n".join(out)
