"""Server-rendered HTML for the search page: no JavaScript and no external assets (the app must work offline).

Every value from the index or the request goes through `esc` (html.escape, quotes included): episode titles and
descriptions come from arbitrary RSS feeds and must never become markup.
"""
from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from podsearch.search.engine import Hit

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:860px;margin:0 auto;padding:28px 20px 60px}
h1{font-size:1.6rem;margin:0 0 4px}h1 span{color:#1db954}
.sub{color:#5b6475;margin:0 0 18px}
form{display:flex;flex-wrap:wrap;gap:8px;align-items:center;background:#fff;padding:14px;border-radius:10px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
input[type=search]{flex:1 1 380px;font-size:1.05rem;padding:10px 12px;border:1px solid #c9ced8;border-radius:8px}
select,button{font-size:.95rem;padding:9px 10px;border-radius:8px;border:1px solid #c9ced8;background:#fff}
button{background:#1db954;border-color:#1db954;color:#fff;font-weight:600;cursor:pointer}
label{color:#3b4352;font-size:.95rem}
.meta{color:#5b6475;font-size:.9rem;margin:14px 2px}
.error{background:#fdecea;color:#8a1c12;border:1px solid #f5c2bc;padding:10px 14px;border-radius:8px;margin-top:14px}
ol{list-style:none;padding:0;margin:0}
li{background:#fff;border-radius:10px;padding:14px 16px;margin:10px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.top{display:flex;gap:10px;align-items:baseline}
.rank{color:#8a93a5;font-weight:600;min-width:2ch}
.title{font-weight:650;font-size:1.05rem;flex:1}
.score{color:#8a93a5;font-size:.8rem;font-variant-numeric:tabular-nums}
.show{color:#1a7f45;font-size:.9rem;margin:3px 0 6px 2.6ch}
.snippet{color:#3b4352;font-size:.93rem;margin:0 0 0 2.6ch;line-height:1.4}
.snippet a{margin-left:6px;color:#1a64b5}
.columns{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.columns h2{font-size:1rem;margin:14px 2px 0;color:#3b4352}
.columns .title{font-size:.98rem}
.other{font-size:.8rem;color:#5b6475;margin:0 0 0 2.6ch}
.other.only{color:#b35c00;font-weight:600}
main.wide{max-width:1280px}
"""


def esc(value) -> str:
    return escape(str(value), quote=True)


def safe_url(url: str) -> str | None:
    """Only http(s) links: a feed-supplied `javascript:` URL would run in the page even when escaped."""
    url = str(url or "").strip()
    return url if urlsplit(url).scheme in ("http", "https") else None


def _result(hit: Hit, other_rank: dict[str, int] | None = None, other: str = "") -> str:
    details = " · ".join(esc(v) for v in (hit.show_title, hit.language, hit.pub_date[:10]) if v)
    audio = safe_url(hit.audio)
    link = f'<a href="{esc(audio)}" rel="noopener noreferrer">audio</a>' if audio else ""
    where = ""
    if other_rank is not None:  # compare view: where the other system put this episode
        rank = other_rank.get(hit.episode_id)
        where = (f'<p class="other">{esc(other)}: #{rank}</p>' if rank else
                 f'<p class="other only">not in {esc(other)}\'s top {len(other_rank)}</p>')
    return (
        f'<li class="hit" data-episode-id="{esc(hit.episode_id)}"><div class="top">'
        f'<span class="rank">{hit.rank}</span><span class="title">{esc(hit.title)}</span>'
        f'<span class="score" title="score">{hit.score:.4f}</span></div>'
        f'<div class="show">{details}</div><p class="snippet">{esc(hit.snippet)}{link}</p>{where}</li>'
    )


def _options(systems: list[str], selected: str, none_label: str | None = None) -> str:
    options = [(none_label, "")] if none_label else []
    options += [(s, s) for s in systems]
    return "".join(f'<option value="{esc(value)}"{" selected" if value == selected else ""}>{esc(label)}</option>'
                   for label, value in options)


def render_page(
    *, query: str = "", k: int = 10, system: str = "", compare: str = "", systems: list[str] = (),
    max_k: int = 100, max_chars: int = 512, hits: list[Hit] | None = None, compare_hits: list[Hit] | None = None,
    error: str | None = None, elapsed_ms: float | None = None,
) -> str:
    body = ""
    if error:
        body = f'<div class="error" role="alert">{esc(error)}</div>'
    elif hits is not None and compare_hits is not None:
        ranks = {h.episode_id: h.rank for h in hits}
        compare_ranks = {h.episode_id: h.rank for h in compare_hits}
        shared = len(set(ranks) & set(compare_ranks))
        body = (f'<p class="meta">“{esc(query)}”: {esc(system)} vs {esc(compare)} · {shared} of {len(hits)} results '
                f'in both</p><div class="columns">'
                f'<section id="left"><h2>{esc(system)}</h2><ol>'
                f'{"".join(_result(h, compare_ranks, compare) for h in hits)}</ol></section>'
                f'<section id="right"><h2>{esc(compare)}</h2><ol>'
                f'{"".join(_result(h, ranks, system) for h in compare_hits)}</ol></section></div>')
    elif hits is not None:
        timing = f" in {elapsed_ms:.0f} ms" if elapsed_ms is not None else ""
        found = f'{len(hits)} result{"" if len(hits) == 1 else "s"}'
        body = (f'<p class="meta">{found} for “{esc(query)}” · {esc(system)}{timing}</p>'
                f'<ol id="results">{"".join(_result(h) for h in hits)}</ol>')
    wide = ' class="wide"' if compare_hits is not None and not error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{esc(query) + " · " if query else ""}Podcast search</title><style>{STYLE}</style></head>
<body><main{wide}>
<h1><span>●</span> Podcast episode search</h1>
<p class="sub">Describe the episode you want in your own words.</p>
<form method="get" action="/" role="search">
<input type="search" name="q" value="{esc(query)}" maxlength="{max_chars}" placeholder="e.g. eat better during xmas holidays" aria-label="query" autofocus required>
<label>results <input type="number" name="k" value="{k}" min="1" max="{max_k}" style="width:4.5em;padding:8px"></label>
<label>system <select name="system">{_options(systems, system)}</select></label>
<label>compare with <select name="compare">{_options(systems, compare, none_label="(none)")}</select></label>
<button type="submit">Search</button>
</form>
{body}
</main></body></html>"""
