"""The web app: JSON API and page via TestClient, then the real thing in headless Chromium (Debian's package)."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from podsearch.search.engine import SearchEngine
from podsearch.search.web import create_app
from tests.test_search import build_test_index, fake_encoders

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def app(tmp_path):
    return create_app(SearchEngine(build_test_index(tmp_path / "index"), encoders=fake_encoders()))


@pytest.fixture
def client(app):
    # raise_server_exceptions=False: a bug must show up as the 500 a browser would get, which the tests forbid.
    return TestClient(app, raise_server_exceptions=False)


def test_api_search_returns_ranked_json(client):
    response = client.get("/api/search", params={"q": "eat better during xmas holidays", "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["system"] == "shipped" and body["k"] == 3
    assert [r["rank"] for r in body["results"]] == [1, 2, 3]
    assert body["results"][0]["title"] == "Eating well over the Christmas holidays"


def test_api_other_system(client):
    body = client.get("/api/search", params={"q": "bitcoin crypto bubble", "system": "base"}).json()
    assert body["system"] == "base"
    assert body["results"][0]["title"] == "Bitcoin and the crypto bubble"


@pytest.mark.parametrize("params,message", [
    ({}, "empty"),
    ({"q": "   "}, "empty"),
    ({"q": "x" * 513}, "too long"),
    ({"q": "ok", "k": "abc"}, "whole number"),
    ({"q": "ok", "k": "0"}, "between 1 and 100"),
    ({"q": "ok", "k": "5000"}, "between 1 and 100"),
    ({"q": "ok", "system": "gpt"}, "unknown system 'gpt'"),
])
def test_api_bad_requests_are_400_with_a_message(client, params, message):
    response = client.get("/api/search", params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_page_bad_request_is_400_html(client):
    response = client.get("/", params={"q": "ok", "k": "-1"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "k must be between 1 and 100" in response.text and 'role="alert"' in response.text


def test_unknown_path_is_404_json(client):
    response = client.get("/admin")
    assert response.status_code == 404 and "error" in response.json()


def test_first_visit_shows_an_empty_form(client):
    response = client.get("/")
    assert response.status_code == 200
    assert '<input type="search" name="q"' in response.text and 'id="results"' not in response.text


def test_page_escapes_feed_text_and_the_query(client):
    query = '"><script>alert(1)</script> holiday special'
    response = client.get("/", params={"q": query, "k": 8})
    assert response.status_code == 200
    html = response.text
    assert "<script>" not in html and "<b>Tell</b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Holiday special" in html
    assert "Hack &amp; &lt;b&gt;Tell&lt;/b&gt;" in html
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt; holiday special" in html
    assert "javascript:" not in html  # the feed's javascript: audio URL is not linked
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none' forbids scripts
    assert response.headers["x-content-type-options"] == "nosniff"


def test_page_renders_results(client):
    html = client.get("/", params={"q": "sleep better", "k": 2, "system": "hybrid"}).text
    assert html.count('<li class="hit"') == 2
    assert "The science of sleep" in html and "· hybrid" in html


def test_compare_view_puts_two_systems_side_by_side(client, app):
    html = client.get("/", params={"q": "recetas navidad", "k": 3, "system": "shipped", "compare": "bm25"}).text
    left, right = html.split('<section id="right">')
    assert left.count('<li class="hit"') == 3 and right.count('<li class="hit"') <= 3
    assert "shipped vs bm25" in html
    # each hit says where the other system ranked it, or that it is not in the other's list
    assert left.count('class="other') == 3
    assert "Recetas saludables para Navidad" in left
    response = client.get("/", params={"q": "ok", "compare": "nope"})
    assert response.status_code == 400 and "unknown system &#x27;nope&#x27;" in response.text


# --- the real server in a real browser -----------------------------------------------------------------------------

@pytest.fixture
def live_server(app):
    import uvicorn

    # Bind first, then hand the socket to uvicorn: no race for a "free" port number.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium absent: apt-get install -y chromium")
def test_search_page_in_headless_chromium(live_server):
    from playwright.sync_api import sync_playwright

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(15_000)
            dialogs = []  # an injected alert() would open one
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(live_server + "/")
            assert page.title() == "Podcast search"
            page.fill('input[name="q"]', "eat better during xmas holidays")
            page.fill('input[name="k"]', "8")
            page.click('button[type="submit"]')
            page.wait_for_selector("#results li.hit")
            titles = page.locator("#results li.hit .title").all_inner_texts()
            assert len(titles) == 8
            assert titles[0] == "Eating well over the Christmas holidays"
            # The hostile title shows as text, and nothing in the page ran it.
            assert "<script>alert('x')</script> Holiday special" in titles
            assert dialogs == []
            assert "q=eat+better+during+xmas+holidays" in page.url
            page.screenshot(path=str(artifacts / "search-page.png"), full_page=True)
            assert page.locator("#results li.hit").first.locator(".show").inner_text().startswith("Nutrition Matters")
            # The compare view: pick a second system, get two columns.
            page.select_option('select[name="compare"]', "base")
            page.click('button[type="submit"]')
            page.wait_for_selector("#right li.hit")
            assert page.locator("#left li.hit").count() == 8 and page.locator("#right li.hit").count() == 8
            page.screenshot(path=str(artifacts / "compare-page.png"), full_page=True)
        finally:
            browser.close()
    assert (artifacts / "search-page.png").stat().st_size > 10_000
