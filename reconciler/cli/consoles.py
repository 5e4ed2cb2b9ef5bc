"""Where the command's text goes, shaped for it: rich's layout on a terminal, whole lines anywhere else.

On a terminal, rich wraps to the window and draws tables with borders. Off a
terminal (a file, a pipe, a CI log, the journal) there is no window: rich
would cut every line at 80 columns, splitting ids and attribute paths in the
middle and padding lines with spaces. So there a console never wraps
(``soft_wrap``), a rule is a plain title line, and a table is printed as
aligned plain rows, one record a line, with no trailing space.
"""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

COLUMN_GAP = "  "


def console_for(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr) that never wraps a line when it is not a terminal."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console.soft_wrap = True
    return console


def print_rule(console: Console, title: str) -> None:
    """A rule with ``title`` (markup) on a terminal; the title alone, as ``== title ==``, elsewhere."""
    if console.is_terminal:
        console.rule(title)
    else:
        console.print(f"== {title} ==")


def print_table(console: Console, table: Table) -> None:
    """``table`` as rich draws it on a terminal; elsewhere its title, a header and one aligned line per row."""
    if console.is_terminal:
        console.print(table)
        return
    for line in plain_table_lines(table):
        console.out(line, highlight=False)


def plain_table_lines(table: Table) -> list[str]:
    """The table as plain text: the title, a header line, one line per row, the caption; no trailing space."""
    headers = [_plain(column.header) for column in table.columns]
    columns = [[_plain(cell) for cell in column.cells] for column in table.columns]
    rows = [list(row) for row in zip(*columns, strict=True)] if columns else []
    widths = [max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers)]
    right = [column.justify == "right" for column in table.columns]
    lines = [_plain(table.title)] if table.title else []
    for cells in (headers, *rows):
        padded = [cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(cells, widths, right, strict=True)]
        lines.append(COLUMN_GAP.join(padded).rstrip())
    if table.caption:
        lines.append(_plain(table.caption))
    return lines


def _plain(renderable: RenderableType | None) -> str:
    if renderable is None:
        return ""
    if isinstance(renderable, Text):
        return renderable.plain
    if isinstance(renderable, str):
        return Text.from_markup(renderable).plain
    return str(renderable)
