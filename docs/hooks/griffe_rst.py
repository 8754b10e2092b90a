"""Griffe extension: the reST forms in jaxinfo's docstrings, read as Markdown.

jaxinfo's docstrings are Google style, as optax and JAX write them, with a few pieces
of reStructuredText that Markdown does not know:

* ``.. math::`` followed by an indented equation becomes a display equation,
  ``$$ ... $$``, and ``:math:`tex``` inline math, ``$tex$``, which the
  ``pymdownx.arithmatex`` extension hands to MathJax;
* ``:func:`name``` becomes a cross-reference to ``jaxinfo.name`` (an autorefs link,
  so a reference to a function that is not documented fails ``mkdocs build --strict``);
* ``text::`` before a literal block loses its second colon (the block, indented,
  is already code in Markdown).

``double backticks`` need nothing: Markdown reads them as code. The docstrings stay
as they are in the source (their doctests run in the test suite); only what the
reference renders is rewritten, at build time.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_MATH = re.compile(
    r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n"  # the directive, alone on its line
    r"(?P<body>(?:(?P=indent)[ \t]+\S.*\n?)+)",  # the equation: lines indented deeper
    re.M,
)
# "text::" before an indented block: reST's literal block, which Markdown reads as code
# (indented by 4), so only the second colon goes.
_LITERAL = re.compile(r"(?<=\S)::[ \t]*$(?=\n[ \t]*\n[ \t]+\S)", re.M)
_INLINE_MATH = re.compile(r":math:`(?P<tex>[^`]+)`")
_FUNC = re.compile(r":func:`~?(?:jaxinfo\.)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)`")


def rst_to_markdown(text: str) -> str:
    """The docstring ``text`` with its reST math, literal blocks and ``:func:`` as Markdown."""

    def math(match: re.Match[str]) -> str:
        # Markdown continues a list item at 4 spaces, where reST (and the docstrings) use 2.
        indent = "    " if match["indent"] else ""
        lines = [line.strip() for line in match["body"].splitlines() if line.strip()]
        return "\n".join([f"{indent}$$", *(indent + line for line in lines), f"{indent}$$", ""])

    text = _MATH.sub(math, text)
    text = _LITERAL.sub(":", text)
    text = _INLINE_MATH.sub(lambda m: f"${m['tex']}$", text)
    return _FUNC.sub(lambda m: f"[`{m['name']}`][jaxinfo.{m['name']}]", text)


class RstToMarkdown(griffe.Extension):
    """Rewrites the docstrings of the functions of ``jaxinfo`` as they are loaded."""

    def on_function(self, *, func: griffe.Function, **kwargs: Any) -> None:
        if func.docstring is not None and func.path.startswith("jaxinfo."):
            func.docstring.value = rst_to_markdown(func.docstring.value)
