"""Help formatting shared by every command: wrapped paragraphs, verbatim indented blocks, a docs link.

argparse either re-flows a description into one paragraph (``HelpFormatter``) or prints it exactly as
written (``RawDescriptionHelpFormatter``, which leaves long lines unwrapped). :class:`WrappedHelpFormatter`
does what a reader expects from both: paragraphs (separated by blank lines) are wrapped to the terminal
width, capped at :data:`MAX_WIDTH`; a paragraph whose lines are indented (an output list, examples) is kept
line for line.
"""

from __future__ import annotations

import argparse
import shutil
import textwrap

#: widest help text, whatever the terminal (long lines are hard to read)
MAX_WIDTH = 100
#: where the full documentation of each command lives (the docs site, built from docs/)
DOCS_URL = "docs/"


def docs_line(page: str) -> str:
    """The sentence that ends a command's description: where its inputs, outputs, figures and limits live."""
    return f"Documentation: {DOCS_URL}{page}"


class WrappedHelpFormatter(argparse.HelpFormatter):
    """Wraps description/epilog paragraphs; keeps indented paragraphs verbatim."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 30, width: int | None = None):
        if width is None:
            width = min(shutil.get_terminal_size().columns, MAX_WIDTH) - 2
        super().__init__(prog, indent_increment, max_help_position, width)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        for para in text.strip("\n").split("\n\n"):
            lines = para.split("\n")
            if any(line.startswith(" ") for line in lines[1:]) or lines[0].startswith(" "):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(
                    textwrap.fill(
                        " ".join(para.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                        break_on_hyphens=False,
                    )
                )
        return "\n\n".join(out)


class CommandParser(argparse.ArgumentParser):
    """ArgumentParser whose commands and sub-commands all use :class:`WrappedHelpFormatter`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", WrappedHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
