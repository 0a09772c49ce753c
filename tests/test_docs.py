"""The README stays a guide a newcomer reads in ten minutes, and the docs it sends them to exist.

README.md is at most 200 lines and 2,000 words, its prose sentences average under 25 words, it links every page of
docs/, and no relative link in README.md or docs/ points at a file the checkout lacks. params.yaml comments say what a
knob does and link results; they hold no p-values.

    python tests/test_docs.py      # prints the README's measures
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
LIST_ITEM = re.compile(r"^(?:[-*]|\d+\.) ")


def prose_paragraphs(text: str) -> list[str]:
    """Paragraphs of prose: code blocks, tables, headings, images and HTML comments left out; a list item is one."""
    paragraphs, current, in_code = [], [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_code = not in_code
        if in_code or stripped.startswith("```") or not stripped or stripped.startswith(("|", "#", "![", "<!--")) \
                or LIST_ITEM.match(stripped):
            if current:
                paragraphs.append(" ".join(current))
            current = [LIST_ITEM.sub("", stripped)] if not in_code and LIST_ITEM.match(stripped) else []
            continue
        current.append(stripped)
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def sentences(paragraph: str) -> list[str]:
    """A paragraph split after . ! or ? where the next word starts a sentence; a link counts as its text."""
    text = re.sub(r"\]\([^)]*\)", "]", paragraph)
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z`*\[(\"])", text) if s.split()]


def measures(path: Path = README) -> dict:
    text = path.read_text()
    lines = text.splitlines()
    lengths = [len(s.split()) for p in prose_paragraphs(text) for s in sentences(p)]

    def first_line(pattern: str) -> int | None:
        return next((i for i, line in enumerate(lines, 1) if re.search(pattern, line)), None)

    return {"lines": len(lines), "words": len(text.split()), "sentences": len(lengths),
            "mean_sentence_words": round(sum(lengths) / len(lengths), 1), "longest_sentence_words": max(lengths),
            "sentences_over_40_words": sum(n > 40 for n in lengths),
            "line_of_setup_and_repro": first_line(r"^\./setup\.sh .*dvc repro"),
            "line_of_search_example": first_line(r"^search \"")}


def tracked_files() -> set[str]:
    """Files git tracks: a pipeline output a running `dvc repro` has just removed still counts as there."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    return set(out.splitlines())


def test_readme_is_short_and_its_sentences_are_short():
    m = measures()
    assert m["lines"] <= 200, m
    assert m["words"] <= 2000, m
    assert m["mean_sentence_words"] < 25, m
    assert m["line_of_setup_and_repro"] is not None and m["line_of_setup_and_repro"] <= 30, m
    assert m["line_of_search_example"] is not None and m["line_of_search_example"] <= 100, m


def test_readme_links_every_docs_page():
    linked = {(README.parent / target.split("#")[0]).resolve() for target in LINK.findall(README.read_text())}
    pages = sorted(DOCS.glob("*.md"))
    assert pages, "docs/ has no pages"
    assert not [p.name for p in pages if p.resolve() not in linked], "docs pages the README does not link"


def test_every_relative_link_points_at_a_file_of_the_checkout():
    tracked = tracked_files()
    broken = []
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        for target in LINK.findall(page.read_text()):
            path = target.split("#")[0]
            if not path or re.match(r"^[a-z]+:", path):
                continue
            resolved = (page.parent / path).resolve()
            inside = resolved.is_relative_to(ROOT)
            if not inside or not (resolved.exists() or str(resolved.relative_to(ROOT)) in tracked):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_params_comments_hold_no_p_values():
    comments = [(i, line.split("#", 1)[1]) for i, line in enumerate((ROOT / "params.yaml").read_text().splitlines(), 1)
                if "#" in line]
    with_p = [f"params.yaml:{i}:{c}" for i, c in comments if re.search(r"\bp\s*[<=>]?\s*0?\.\d|p-value", c)]
    assert not with_p, with_p


if __name__ == "__main__":
    for key, value in measures().items():
        print(f"{key}: {value}")
