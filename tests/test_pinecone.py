"""PineconeIndex against a local stand-in of Pinecone's REST API (127.0.0.1, in-process thread), plus a real-service
round trip that runs only when PINECONE_API_KEY is set (and no fake host is involved)."""
import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from podsearch.retrieval.index import VectorIndexError, make_index
from podsearch.retrieval.pinecone_index import API_KEY_ENV

REAL_KEY = os.environ.get(API_KEY_ENV)  # read at import, before any test replaces it with a fake key


class FakePinecone:
    """Control and data plane on one port, speaking only the endpoints PineconeIndex uses, with the payloads the
    pinecone 10.x client sends and parses (read from the installed package); records every request."""

    def __init__(self):
        self.indexes: dict[str, dict] = {}
        self.vectors: dict[str, dict[str, dict[str, list[float]]]] = {}  # index -> namespace -> id -> values
        self.requests: list[tuple[str, str, dict, dict]] = []  # method, path, headers, body
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FakePinecone":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def _model(self, name: str) -> dict:
        return self.indexes[name]

    def handle(self, method: str, path: str, body: dict) -> tuple[int, dict]:
        if method == "GET" and path == "/indexes":
            return 200, {"indexes": list(self.indexes.values())}
        if method == "GET" and path.startswith("/indexes/"):
            name = path.split("/")[2]
            if name not in self.indexes:
                return 404, {"error": {"code": "NOT_FOUND", "message": f"Resource {name} not found"}, "status": 404}
            return 200, self._model(name)
        if method == "POST" and path == "/indexes":
            model = dict(body)
            model.update(
                host=f"{self.url}/data/{body['name']}", status={"ready": True, "state": "Ready"},
                deletion_protection=body.get("deletion_protection", "disabled"),
            )
            self.indexes[body["name"]] = model
            self.vectors[body["name"]] = {}
            return 201, model
        # data plane: each index is served under its own host prefix, as each real index has its own host
        parts = path.split("/", 3)
        if len(parts) < 4 or parts[1] != "data" or parts[2] not in self.vectors:
            return 404, {"error": {"code": "NOT_FOUND", "message": f"no route {method} {path}"}, "status": 404}
        store, path = self.vectors[parts[2]], "/" + parts[3]
        namespace = body.get("namespace", "")
        if path == "/vectors/upsert":
            space = store.setdefault(namespace, {})
            for vector in body["vectors"]:
                space[vector["id"]] = vector["values"]
            return 200, {"upsertedCount": len(body["vectors"])}
        if path == "/describe_index_stats":
            spaces = {ns: {"vectorCount": len(v)} for ns, v in store.items() if v}
            return 200, {"namespaces": spaces, "totalVectorCount": sum(len(v) for v in store.values()),
                         "dimension": 0, "indexFullness": 0.0}
        if path == "/vectors/delete":
            if body.get("deleteAll"):
                store.pop(namespace, None)
            return 200, {}
        if path == "/query":
            space = store.get(namespace, {})
            ids = list(space)
            if not ids:
                return 200, {"matches": [], "namespace": namespace}
            matrix = np.asarray([space[i] for i in ids], dtype=np.float64)
            query = np.asarray(body["vector"], dtype=np.float64)
            scores = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query) + 1e-12)
            top = np.argsort(-scores, kind="stable")[: body["topK"]]
            return 200, {"matches": [{"id": ids[t], "score": float(scores[t])} for t in top], "namespace": namespace}
        return 404, {"error": {"code": "NOT_FOUND", "message": f"no route {method} {path}"}, "status": 404}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                path = self.path.split("?")[0]
                fake.requests.append((method, path, dict(self.headers), body))
                if self.headers.get("Api-Key") != "fake-test-key":
                    status, payload = 401, {"error": {"code": "UNAUTHENTICATED", "message": "Invalid API Key"},
                                            "status": 401}
                else:
                    status, payload = fake.handle(method, path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def log_message(self, *args):  # keep pytest output clean
                pass

        return Handler


def unit_vectors(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(n, dim)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, "fake-test-key")
    with FakePinecone() as server:
        yield server


def test_maps_create_upsert_query_to_rest_calls(fake):
    docs, ids = unit_vectors(10, 8), [f"{i:032x}" for i in range(10)]
    index = make_index("pinecone", 8, name="eval-test", cloud="gcp", region="europe-west4", namespace="synthetic",
                       batch_size=4, control_host=fake.url, ready_timeout_s=5)
    index.add(ids, docs)
    scores, ranked = index.search(docs[:3], 5)

    exact = make_index("exact", 8)
    exact.add(ids, docs)
    exact_scores, exact_ranked = exact.search(docs[:3], 5)
    assert ranked == exact_ranked
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)

    calls = [(method, path) for method, path, _, _ in fake.requests]
    create = next(body for method, path, _, body in fake.requests if (method, path) == ("POST", "/indexes"))
    assert create["name"] == "eval-test"
    assert create["deployment"] == {"deployment_type": "managed", "cloud": "gcp", "region": "europe-west4"}
    (field,) = create["schema"]["fields"].values()
    assert field == {"type": "dense_vector", "dimension": 8, "metric": "cosine"}
    upserts = [body for method, path, _, body in fake.requests if path == "/data/eval-test/vectors/upsert"]
    assert [len(b["vectors"]) for b in upserts] == [4, 4, 2]  # batched
    assert all(b["namespace"] == "synthetic" for b in upserts)
    assert upserts[0]["vectors"][0]["id"] == ids[0]
    queries = [body for _, path, _, body in fake.requests if path == "/data/eval-test/query"]
    assert len(queries) == 3 and queries[0]["topK"] == 5 and queries[0]["namespace"] == "synthetic"
    assert calls.index(("POST", "/indexes")) < calls.index(("POST", "/data/eval-test/vectors/upsert"))
    # the key travels only in the Api-Key header
    assert all(h.get("Api-Key") == "fake-test-key" for _, _, h, _ in fake.requests)
    assert all("fake-test-key" not in json.dumps(body) for _, _, _, body in fake.requests)


def test_reuses_existing_index_and_resets_namespace(fake):
    docs = unit_vectors(6, 8)
    first = make_index("pinecone", 8, name="reuse", namespace="ns", control_host=fake.url, ready_timeout_s=5)
    first.add([f"old{i}" for i in range(6)], docs)
    second = make_index("pinecone", 8, name="reuse", namespace="ns", control_host=fake.url, ready_timeout_s=5)
    second.add(["new0", "new1"], docs[:2])
    assert sum(1 for m, p, _, _ in fake.requests if (m, p) == ("POST", "/indexes")) == 1
    _, ranked = second.search(docs[:1], 10)
    assert sorted(ranked[0]) == ["new0", "new1"]  # stale vectors from the first run are gone


def test_dimension_mismatch_is_a_clear_error(fake):
    make_index("pinecone", 8, name="dims", control_host=fake.url, ready_timeout_s=5)
    with pytest.raises(VectorIndexError, match="has dimension 8, vectors have 16"):
        make_index("pinecone", 16, name="dims", control_host=fake.url, ready_timeout_s=5)


def test_missing_api_key_is_one_line_naming_the_fix(monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    with pytest.raises(VectorIndexError) as error:
        make_index("pinecone", 8, name="x")
    message = str(error.value)
    assert "\n" not in message and f"export {API_KEY_ENV}=" in message and "evaluate.index" in message


def test_service_errors_become_one_line_index_errors(fake, monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, "wrong-key")
    with pytest.raises(VectorIndexError) as error:
        make_index("pinecone", 8, name="auth", control_host=fake.url, ready_timeout_s=5)
    message = str(error.value)
    assert message.startswith("pinecone connecting to index 'auth' failed") and "\n" not in message
    assert "wrong-key" not in message


@pytest.mark.skipif(not REAL_KEY, reason=f"{API_KEY_ENV} not set: real Pinecone round trip skipped")
def test_real_pinecone_round_trip(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, REAL_KEY)
    name = f"podsearch-test-{uuid.uuid4().hex[:8]}"
    docs, ids = unit_vectors(20, 8), [f"{i:032x}" for i in range(20)]
    index = make_index("pinecone", 8, name=name, namespace="test", ready_timeout_s=120)
    try:
        index.add(ids, docs)
        _, ranked = index.search(docs[:2], 3)
        assert [r[0] for r in ranked] == ids[:2]
    finally:
        index.client.delete_index(name)
