"""The README tells the paper's story in at most 3,000 words and links the manual in docs/;
every relative link of the documentation reaches an existing file and heading."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_the_readme_has_at_most_3000_words():
    words = len(re.findall(r"\w+", README.read_text(encoding="utf-8")))
    assert words <= 3000, f"README.md has {words} words; move the manual to docs/"


def test_the_readme_links_every_page_of_the_manual():
    text = README.read_text(encoding="utf-8")
    assert len(DOCS) >= 6
    missing = [p.name for p in DOCS if f"](docs/{p.name})" not in text]
    assert missing == []


def test_the_readme_holds_one_database_table_between_its_markers():
    text = README.read_text(encoding="utf-8")
    assert text.count("<!-- databases:start -->") == text.count("<!-- databases:end -->") == 1
    inside = text.split("<!-- databases:start -->")[1].split("<!-- databases:end -->")[0]
    assert inside.strip().startswith("| database |")
    assert text.count("\n| database |") == 1


@pytest.mark.parametrize("page", [README, REPO / "ARCHITECTURE.md",
                                  REPO / "configs/ablations/README.md",
                                  REPO / "benchmarks/README.md", *DOCS],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_reach_a_file_and_heading(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert broken == []
