"""Local web app: a search page (GET /) and a JSON API (GET /api/search).

Run: python -m podsearch.search.web --index data/index --port 8000   (binds 127.0.0.1 unless --host says otherwise)
/?q=...&system=shipped&compare=base shows two systems side by side for one query.
"""
from __future__ import annotations

import argparse
import logging
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from podsearch.errors import PodsearchError, exit_on_error
from podsearch.search.engine import QueryError, SearchEngine, load_settings, parse_k
from podsearch.search.page import render_page

# No scripts at all, styles only inline, forms only to this server: a stray injection could not run or exfiltrate.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
log = logging.getLogger(__name__)


def status_for(exc: PodsearchError) -> int:
    # The user's request is wrong -> 400; the server lacks a model or a file it should have (not built, damaged: the
    # message says how to restore it) -> 503, and the systems that do not need it keep answering. Never a 500.
    return 400 if isinstance(exc, QueryError) else 503


def create_app(engine: SearchEngine) -> FastAPI:
    app = FastAPI(title="Podcast episode search", docs_url=None, redoc_url=None, openapi_url=None)
    settings = engine.settings

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": "malformed request: " + "; ".join(e.get("msg", "") for e in exc.errors())},
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    def run(q, k, system):
        started = time.perf_counter()
        hits = engine.search(q, k=parse_k(k, settings), system=system or engine.default_system)
        return hits, 1000 * (time.perf_counter() - started)

    @app.get("/api/search")
    def api_search(q: str | None = None, k: str | None = None, system: str | None = None):
        try:
            hits, elapsed_ms = run(q if q is not None else "", k, system)
        except PodsearchError as exc:
            return JSONResponse({"error": str(exc)}, status_code=status_for(exc))
        return {"query": " ".join(q.split()), "k": parse_k(k, settings), "system": system or engine.default_system,
                "elapsed_ms": round(elapsed_ms, 2), "results": [h.to_dict() for h in hits]}

    @app.get("/", response_class=HTMLResponse)
    def search_page(q: str | None = None, k: str | None = None, system: str | None = None,
                    compare: str | None = None):
        form = {"query": (q or "")[: settings.max_query_chars], "system": system or engine.default_system,
                "compare": compare or "", "systems": engine.systems, "max_k": settings.max_k,
                "max_chars": settings.max_query_chars, "k": settings.default_k}
        if q is None:  # first visit: an empty form, not an error
            return HTMLResponse(render_page(**form))
        try:
            form["k"] = parse_k(k, settings)
            hits, elapsed_ms = run(q, k, system)
            # Compare view: the same query under a second system, side by side.
            compare_hits = run(q, k, engine.check_system(compare))[0] if compare else None
        except PodsearchError as exc:
            return HTMLResponse(render_page(**form, error=str(exc)), status_code=status_for(exc))
        return HTMLResponse(render_page(**form, hits=hits, compare_hits=compare_hits, elapsed_ms=elapsed_ms))

    return app


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Serve the podcast search page and JSON API.")
    parser.add_argument("--index", default="data/index")
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1 keeps it local; 0.0.0.0 exposes it")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    import uvicorn

    with exit_on_error("search web"):
        engine = SearchEngine(args.index, settings=load_settings())
    try:
        engine.warm_up()  # load the default system's encoders now so the first visitor does not wait for them
    except PodsearchError as exc:  # e.g. a damaged file: its systems answer 503 with this message, the others work
        log.warning("search web: %s; serving the systems that load", exc)
    uvicorn.run(create_app(engine), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
