"""Turning RSS descriptions (HTML fragments, entities, stray whitespace) into plain text."""
from __future__ import annotations

import re
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

# Elements whose content is never prose a listener would search for.
_DROP_TAGS = ("script", "style", "img", "iframe", "object", "embed", "svg", "noscript", "head", "title")
_WHITESPACE = re.compile(r"\s+")
# A description is parsed only when it can hold markup: most rows are plain text and parsing them is wasted time.
_MAYBE_MARKUP = re.compile(r"[<&]")

warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)


def html_to_text(value: str | None) -> str:
    """Plain text of an HTML fragment: tags and image markup removed, entities decoded, block boundaries
    (`<br>`, `<p>`, list items) kept as spaces, whitespace collapsed.

    Some feeds escape their HTML twice (`&lt;p&gt;`); decoding once leaves real tags behind, so a second pass runs
    when the first one produced markup.
    """
    if value is None:
        return ""
    text = str(value)
    for _ in range(2):
        if not _MAYBE_MARKUP.search(text):
            break
        soup = BeautifulSoup(text, "lxml")
        for tag in soup(_DROP_TAGS):
            tag.decompose()
        decoded = soup.get_text(separator=" ")
        if decoded == text:
            break
        text = decoded
        if "<" not in text or not re.search(r"</?[a-zA-Z][^>]*>", text):
            break
    return _WHITESPACE.sub(" ", text).strip()


def join_sentences(parts: list[str]) -> str:
    """`a. b. c` from parts, skipping empty ones and not doubling a full stop a part already ends with."""
    out: list[str] = []
    for part in parts:
        part = part.strip()
        if not part:
            continue
        out.append(part if part[-1] in ".!?…" else part + ".")
    return " ".join(out)
