"""report.html: one self-contained page that opens offline. plotly.js is inlined once (not once per
figure: it is 4.8 MB) and nothing is fetched from a network."""

from __future__ import annotations

from html import escape
from typing import Sequence

import markdown
from plotly.offline import get_plotlyjs

from analysis.figures import Figure

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1500px; padding: 0 1em; color: #222; }
figure { margin: 2.5em 0; }
figcaption { color: #555; max-width: 70em; }
section.findings { max-width: 90em; }
section.findings table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
section.findings th, section.findings td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
section.findings th { background: #f0f0f0; }
section.findings code { background: #f6f6f6; padding: 0 0.2em; }
"""


def figure_id(figure: Figure) -> str:
    return f"figure-{figure.name}"


def findings_html(text: str) -> str:
    """summary.md (or study.md) as HTML: headings, lists and real tables. The text is escaped first: it quotes
    failure reasons and paths, which must show as text, never as markup."""
    # Headings one level down: the page's own title is the only h1.
    shifted = "\n".join(f"#{line}" if line.startswith("#") else line for line in text.splitlines())
    return markdown.markdown(escape(shifted, quote=False), extensions=["tables"], output_format="html")


def render(title: str, figures: Sequence[Figure], summary: str, tables: dict[str, str]) -> str:
    """`tables` maps a Findings table name to its CSV path relative to the page."""
    sections = []
    for figure in figures:
        div = figure.figure.to_html(full_html=False, include_plotlyjs=False, div_id=figure_id(figure),
                                    config={"displaylogo": False, "responsive": True})
        links = ", ".join(f'<a href="{escape(tables[t])}">{escape(t)}.csv</a>' for t in figure.tables if t in tables)
        # The figure draws its own title (so that its PNG stands alone); no heading repeats it.
        sections.append(f"<figure>{div}\n"
                        f"<figcaption>{escape(figure.caption)} Data: {links}.</figcaption></figure>")
    contents = "".join(f'<li><a href="#{figure_id(f)}">{escape(f.title)}</a></li>' for f in figures)
    summary_block = (f'<details open><summary>Findings</summary><section class="findings">'
                     f"{findings_html(summary)}</section></details>") if summary else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style>\n<script>{get_plotlyjs()}</script></head>\n<body><h1>{escape(title)}</h1>\n"
            f"<ul>{contents}</ul>\n{summary_block}\n{''.join(sections)}\n</body></html>\n")
