"""`search "query" -k 10`: natural-language podcast episode search from the terminal."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from podsearch.errors import exit_on_error
from podsearch.search.engine import Hit, SearchEngine, clean_query, load_settings, one_line, parse_k

SNIPPET_WIDTH = 110


def format_hits(hits: list[Hit]) -> str:
    lines = []
    for hit in hits:
        details = " | ".join(one_line(v) or "-" for v in (hit.show_title, hit.language, hit.pub_date[:10]))
        lines.append(f"{hit.rank:>3}. {hit.score:.4f}  {one_line(hit.title)}")
        lines.append(f"     {details}")
        lines.append(f"     {one_line(hit.snippet, SNIPPET_WIDTH)}")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="search",
        description='Search podcast episodes in natural language, e.g. search "eat better during xmas holidays".')
    parser.add_argument("query", help="what the episode should be about")
    parser.add_argument("-k", default=None, help="number of results (default from params.yaml search.default_k: 10)")
    parser.add_argument("--system", default=None,
                        help="shipped (default: the best system measured), finetuned, base, use, e5, bm25, or a "
                             "fused system of params.yaml `fusion` (hybrid, teacher, ...)")
    parser.add_argument("--index", default="data/index", help="index folder built by `dvc repro` (stage index)")
    parser.add_argument("--json", action="store_true", help="print results as JSON for scripts")
    parser.add_argument("--timing", action="store_true", help="print start-up and query times to stderr")
    return parser.parse_args(argv)


def main(argv=None, encoders: dict[str, Any] | None = None) -> int:
    args = parse_args(argv)
    with exit_on_error("search"):
        settings = load_settings()
        # Validate before loading anything, so a typo fails instantly.
        query, k = clean_query(args.query, settings), parse_k(args.k, settings)
        started = time.perf_counter()
        engine = SearchEngine(args.index, encoders=encoders, settings=settings)
        system = engine.check_system(args.system or engine.default_system)
        engine.warm_up(system)
        loaded = time.perf_counter()
        hits = engine.search(query, k=k, system=system)
        done = time.perf_counter()
    if args.timing:
        print(f"start-up {loaded - started:.2f} s (index + {system} encoders), query {1000 * (done - loaded):.1f} ms",
              file=sys.stderr)
    if args.json:
        payload = {"query": query, "k": k, "system": system, "results": [h.to_dict() for h in hits]}
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        print(f"{len(hits)} result{'' if len(hits) == 1 else 's'} for {one_line(query)!r} ({system})")
        print(format_hits(hits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
