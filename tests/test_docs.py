"""The API reference (docs/, built by ``mkdocs build --strict``) covers the public API.

These checks read the Markdown sources and need no MkDocs: the build's hook
(docs/hooks/mkdocs_hooks.py) makes the same coverage check, so a public function
left off the pages fails both the suite and the docs build.
"""

import inspect
import re
from pathlib import Path

import pytest

import jaxinfo

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api"
BLOCK = re.compile(r"^:::[ \t]+jaxinfo\.(\S+)[ \t]*$", re.M)
# Checks of values, not measures: they have no equation.
WITHOUT_EQUATION = {"validation.md", "CompensatedSum"}


def api_blocks():
    """(page, name) for each ``::: jaxinfo.NAME`` block of the API pages."""
    return [
        (page.name, name)
        for page in sorted(API.glob("*.md"))
        for name in BLOCK.findall(page.read_text(encoding="utf-8"))
    ]


def test_every_public_name_is_documented_once():
    documented = [name for _, name in api_blocks()]
    missing = sorted(set(jaxinfo.__all__) - set(documented))
    assert not missing, f"add '::: jaxinfo.NAME' to a page under docs/api/ for: {missing}"
    unknown = sorted(set(documented) - set(jaxinfo.__all__))
    assert not unknown, f"documented but not in jaxinfo.__all__: {unknown}"
    twice = sorted({name for name in documented if documented.count(name) > 1})
    assert not twice, f"documented more than once: {twice}"


def test_every_api_page_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted(API.glob("*.md")):
        assert f"api/{page.name}" in config, f"docs/api/{page.name} is not in mkdocs.yml's nav"


@pytest.mark.parametrize(("page", "name"), api_blocks())
def test_docstring_has_the_sections_the_reference_shows(page, name):
    obj = getattr(jaxinfo, name)
    doc = inspect.getdoc(obj) or ""
    # A class (a streaming state) documents its fields; its methods, their own.
    sections = ("Attributes:",) if inspect.isclass(obj) else ("Args:", "Returns:")
    for section in (*sections, "Examples:"):
        assert re.search(f"^{section}$", doc, re.M), f"jaxinfo.{name}: no {section} section"
    assert ">>> " in doc, f"jaxinfo.{name}: its Examples: section has no doctest"
    if page not in WITHOUT_EQUATION and name not in WITHOUT_EQUATION:
        assert ".. math::" in doc, f"jaxinfo.{name}: no '.. math::' equation"


def test_the_included_readme_parts_exist():
    # Pages under docs/ include parts of the README (opening, sections) by these markers.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    markers = re.findall(
        r"^<!-- README\.md: (.+?) -->",
        "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").rglob("*.md"))),
        re.M,
    )
    assert {"## Semantics", "## Validating inputs"} <= set(markers)
    for part in markers:
        assert part == "opening" or f"\n{part}\n" in readme, f"README.md has no {part!r}"
