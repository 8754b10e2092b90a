"""MkDocs hooks of the API reference (named under ``hooks:`` in ``mkdocs.yml``).

* Every public name is documented: each name in ``jaxinfo.__all__`` has exactly one
  ``::: jaxinfo.NAME`` block on a page under ``docs/api/``, and every such block names
  a public function; otherwise the build stops with the names to add or remove.
* ``docs/semantics.md`` shows the README's "Semantics" section, and ``docs/index.md``
  its opening, read from README.md at build time, so the text has one home: the
  README, where a user meets it first, whose examples run as doctests.
* The notebooks (``notebooks/*.ipynb``, stored executed) become pages, with their
  figures, converted here with the standard library: no plugin, no network.
"""

from __future__ import annotations

import ast
import base64
import json
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

API_DIR = "api"
BLOCK = re.compile(r"^:::[ \t]+jaxinfo\.(?P<name>\S+)[ \t]*$", re.M)
# A page includes a part of the README with a line "<!-- README.md: ## Heading -->"
# (that section's body) or "<!-- README.md: opening -->" (the text above its first section).
README_PART = re.compile(r"^<!-- README\.md: (?P<part>.+?) -->[ \t]*$", re.M)
NOTEBOOKS = "notebooks"


def public_names(package_init: Path) -> list[str]:
    """``__all__`` of ``jaxinfo/__init__.py``, read without importing jax."""
    for node in ast.parse(package_init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise PluginError(f"{package_init} has no __all__")


def documented_names(api_dir: Path) -> dict[str, list[str]]:
    """Each name of a ``::: jaxinfo.NAME`` block under ``api_dir``, with its pages."""
    names: dict[str, list[str]] = {}
    for page in sorted(api_dir.glob("*.md")):
        for match in BLOCK.finditer(page.read_text(encoding="utf-8")):
            names.setdefault(match["name"], []).append(page.name)
    return names


def check_api_pages(root: Path, docs_dir: Path) -> None:
    """Raises a ``PluginError`` unless the API pages document each public name once."""
    public = public_names(root / "jaxinfo" / "__init__.py")
    documented = documented_names(docs_dir / API_DIR)
    problems = []
    missing = [name for name in public if name not in documented]
    if missing:
        problems.append(
            "in jaxinfo.__all__ but on no API page (add a line '::: jaxinfo.NAME' to the "
            f"page of its family under docs/{API_DIR}/): {', '.join(missing)}"
        )
    unknown = sorted(set(documented) - set(public))
    if unknown:
        problems.append(f"documented but not in jaxinfo.__all__: {', '.join(unknown)}")
    twice = sorted(name for name, pages in documented.items() if len(pages) > 1)
    if twice:
        problems.append(
            "documented more than once: "
            + ", ".join(f"{name} ({', '.join(documented[name])})" for name in twice)
        )
    if problems:
        raise PluginError("API reference: " + "; ".join(problems))


def readme_part(readme: Path, part: str) -> str:
    """The opening of the README, or a section's body, with its links read from docs/."""
    text = readme.read_text(encoding="utf-8")
    if part == "opening":
        body = text.split("\n", 1)[1] if text.startswith("# ") else text
    else:
        start = text.find("\n" + part + "\n")
        if start < 0:
            raise PluginError(f"README.md has no section {part!r}")
        body = text[start + len(part) + 2 :]
    end = re.search(r"^## ", body, re.M)
    body = body[: end.start()] if end else body
    # README links from the repository root; these pages live in docs/.
    return re.sub(r"\]\(docs/", "](", body).strip()


def notebook_markdown(path: Path) -> str:
    """A stored, executed notebook as a Markdown page: text, code, printed output, figures."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    parts = [
        f"<!-- rendered from {NOTEBOOKS}/{path.name} by docs/hooks/mkdocs_hooks.py -->",
    ]
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            parts.append(re.sub(r"\]\(([^)#:]+)\.ipynb\)", r"](\1.md)", source))
        elif cell["cell_type"] == "code":
            parts.append(f"```python\n{source}\n```")
            parts.extend(_output_markdown(output) for output in cell.get("outputs", []))
    if len(parts) > 1 and not parts[1].lstrip().startswith("# "):
        parts.insert(1, f"# {path.stem}")
    parts.append(
        f"*This page is `{NOTEBOOKS}/{path.name}` as stored, executed; "
        f"`python {NOTEBOOKS}/build.py` rebuilds and re-runs it.*"
    )
    return "\n\n".join(part for part in parts if part) + "\n"


def _output_markdown(output: dict[str, Any]) -> str:
    if output["output_type"] == "stream":
        return "```text\n" + "".join(output["text"]).rstrip("\n") + "\n```"
    if output["output_type"] == "error":
        return "```text\n" + f"{output['ename']}: {output['evalue']}" + "\n```"
    data = output.get("data", {})
    if "image/png" in data:
        png = "".join(data["image/png"]).replace("\n", "")
        base64.b64decode(png, validate=True)  # a corrupt figure fails the build
        return f'<img alt="figure" src="data:image/png;base64,{png}">'
    if "text/plain" in data:
        return "```text\n" + "".join(data["text/plain"]).rstrip("\n") + "\n```"
    return ""


def on_files(files: Files, config: Any) -> Files:
    root = Path(config["config_file_path"]).parent
    check_api_pages(root, Path(config["docs_dir"]))
    for notebook in sorted((root / NOTEBOOKS).glob("*.ipynb")):
        files.append(
            File.generated(
                config, f"{NOTEBOOKS}/{notebook.stem}.md", content=notebook_markdown(notebook)
            )
        )
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    readme = Path(config["config_file_path"]).parent / "README.md"
    return README_PART.sub(lambda match: readme_part(readme, match["part"]), markdown)
