"""The user guide builds as a static site with MkDocs in strict mode (a broken link or a page missing
from the navigation fails), and README stays a front page."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_mkdocs_build_strict(tmp_path):
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                            "-d", str(tmp_path / "site")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "evaluation" / "index.html").is_file()


def test_readme_is_a_front_page_whose_links_exist():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert readme.splitlines()[0] == "# ImprovedNNUNet" and "make demo" in readme[:1200] and "make test" in readme[:1200]
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith("http"):
            assert (REPO / target).exists(), f"README links to a missing {target}"


def table_cells(row: str) -> list[str]:
    """The cells of a Markdown table row (``\\|`` is a literal bar, as in Python-Markdown's tables)."""
    inner = row.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return re.split(r"(?<!\\)\|", inner)


def markdown_tables(text: str):
    """(first line number, rows) of each table: a header, a ``|---|`` line, the body; fenced code is skipped."""
    lines, fenced, index = text.splitlines(), False, 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            fenced = not fenced
        elif (not fenced and line.startswith("|") and index + 1 < len(lines)
              and re.match(r"^\|(\s*:?-+:?\s*\|)+\s*$", lines[index + 1])):
            start, rows = index, [line]
            index += 2
            while index < len(lines) and lines[index].startswith("|"):
                rows.append(lines[index])
                index += 1
            yield start + 1, rows
            continue
        index += 1


def test_every_table_row_has_the_headers_cells():
    """A cell moved into the next row, or a bar left unescaped in a code span, breaks a table silently
    (mkdocs --strict does not see it)."""
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for line_number, rows in markdown_tables(page.read_text()):
            width = len(table_cells(rows[0]))
            for offset, row in enumerate(rows[1:], start=1):
                assert len(table_cells(row)) == width, \
                    f"{page.name}:{line_number + offset + (1 if offset else 0)}: {len(table_cells(row))} cells, header {width}"


def test_what_a_page_says_is_not_taken_over_is_not_in_its_tables():
    """A flag named in a "Not taken over" sentence must not be listed as working in a table of the same page."""
    for page in sorted((REPO / "docs").glob("*.md")):
        text = page.read_text()
        listed = {flag for _, rows in markdown_tables(text) for row in rows[2:]
                  for flag in re.findall(r"`(-{1,2}[\w-]+)", table_cells(row)[0])}
        for sentence in re.findall(r"Not taken over:([^\n]*(?:\n(?!\n)[^\n]*)*)", text):
            refused = set(re.findall(r"`(-{1,2}[\w-]+)", sentence))
            assert not refused & listed, f"{page.name}: {sorted(refused & listed)} both taken over and not"
