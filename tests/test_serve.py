"""siamese-index serve: the index over HTTP (FastAPI's test client, and one real server)."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import WORDS, closed_port
from PIL import Image

import siamese
from siamese import cli
from siamese.errors import ConfigError
from siamese.index import Index

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from siamese.index.server import MAX_K, check_bind, create_app  # noqa: E402

SENTENCES = [" ".join(np.random.default_rng(i).choice(WORDS, 5)) + f" {i}" for i in range(60)]
QUERIES = ["man plays guitar", "a dog eats food in the park", "red ball"]


@pytest.fixture(scope="module")
def text_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    tower = siamese.text_tower(
        SENTENCES, vocab_size=200, sequence_length=10, embedding_dim=16, units=16, seed=1
    )
    tower.save(root / "tower.keras")
    Index.build(tower, SENTENCES, tower_path=root / "tower.keras").save(root / "idx")
    return root / "idx"


def _expected(folder: Path | Index, queries, k: int) -> list[list[dict]]:
    index = folder if isinstance(folder, Index) else Index.load(folder)
    hits = index.search(queries, k)
    return [[{"id": h.id, "score": h.score, "payload": h.payload} for h in row] for row in hits]


def _same(got: list, want: list) -> None:
    assert [[h["id"] for h in row] for row in got] == [[h["id"] for h in row] for row in want]
    assert [[h["payload"] for h in row] for row in got] == [[h["payload"] for h in row] for row in want]
    np.testing.assert_allclose(
        [h["score"] for row in got for h in row],
        [h["score"] for row in want for h in row],
        rtol=1e-5,
        atol=1e-6,
    )


def test_search_answers_what_the_python_api_returns(text_index):
    client = TestClient(create_app(text_index))
    response = client.post("/search", json={"queries": QUERIES, "k": 4})
    assert response.status_code == 200, response.text
    _same(response.json()["results"], _expected(text_index, QUERIES, 4))
    assert client.get("/health").json() == {"status": "ok", "count": len(SENTENCES)}
    info = client.get("/info").json()
    assert info["count"] == len(SENTENCES) and info["dimension"] == 16
    assert len(client.post("/search", json={"queries": ["guitar"], "k": 999}).json()["results"][0]) == 60


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "must be an object"),
        (json.dumps({"queries": []}).encode(), 400, "non-empty list"),
        (json.dumps({"queries": "a man"}).encode(), 400, "non-empty list"),
        (json.dumps({"queries": ["a"], "k": 0}).encode(), 400, f"from 1 to {MAX_K}"),
        (json.dumps({"queries": ["a"], "k": MAX_K + 1}).encode(), 400, f"from 1 to {MAX_K}"),
        (json.dumps({"queries": ["a"], "k": "3"}).encode(), 400, f"from 1 to {MAX_K}"),
        (json.dumps({"queries": [3]}).encode(), 400, "takes strings"),
        (json.dumps({"queries": ["   "]}).encode(), 400, "empty"),
        (json.dumps({"queries": ["x" * 10_001]}).encode(), 400, "limit"),
        (json.dumps({"queries": ["a"], "top": 3}).encode(), 400, "unknown fields: top"),
        (json.dumps({"queries": ["a"], "nprobe": 4}).encode(), 400, "nprobe"),
        (json.dumps({"queries": ["a"] * 2000}).encode(), 413, "at most"),
    ],
)
def test_bad_requests_are_4xx_with_one_line(text_index, body, status, words):
    client = TestClient(create_app(text_index))
    response = client.post("/search", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert words in message and "\n" not in message


def test_a_body_over_the_limit_is_413(text_index):
    client = TestClient(create_app(text_index, max_body=200))
    response = client.post("/search", json={"queries": ["a man plays"] * 30, "k": 2})
    assert response.status_code == 413 and "over 200 bytes" in response.json()["error"]

    def chunks():  # no content-length: the stream is counted as it comes
        for _ in range(30):
            yield b'"a man plays a guitar", '

    response = client.post("/search", content=chunks())
    assert response.status_code == 413, response.text


def test_every_request_needs_the_api_key_when_one_is_set(text_index):
    client = TestClient(create_app(text_index, api_key="s3cret"))
    body = {"queries": ["guitar"], "k": 2}
    for headers in ({}, {"authorization": "Bearer wrong"}, {"x-api-key": "s3cre"}):
        for method, path in (("post", "/search"), ("get", "/health"), ("get", "/info"), ("post", "/reload")):
            response = client.request(
                method.upper(), path, json=body if path == "/search" else None, headers=headers
            )
            assert response.status_code == 401, (headers, path)
    assert client.post("/search", json=body, headers={"authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/health", headers={"x-api-key": "s3cret"}).status_code == 200


def test_an_unexpected_error_is_500_one_line_and_its_traceback_goes_to_the_log(text_index, tmp_path, capfd):
    log = tmp_path / "errors.log"
    app = create_app(text_index, error_log=log)
    index = app.state.served.index

    def broken(*args, **kwargs):
        raise RuntimeError("the disk fell off")

    index.search = broken
    response = TestClient(app).post("/search", json={"queries": ["guitar"]})
    assert response.status_code == 500
    message = response.json()["error"]
    assert "\n" not in message and str(log) in message and "fell off" not in message
    text = log.read_text()
    assert "Traceback" in text and "RuntimeError: the disk fell off" in text
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "fell off" not in out + err


def test_a_rebuilt_index_is_picked_up_without_a_restart(text_index, tmp_path):
    import shutil

    folder = tmp_path / "idx"
    shutil.copytree(text_index, folder)
    shutil.copy(text_index.parent / "tower.keras", tmp_path / "tower.keras")  # the manifest's ../tower.keras
    client = TestClient(create_app(folder))
    assert client.get("/health").json()["count"] == len(SENTENCES)
    tower = siamese.load_tower(tmp_path / "tower.keras")
    Index.build(tower, SENTENCES[:25], tower_path=tmp_path / "tower.keras").save(folder)
    assert client.get("/health").json()["count"] == 25  # the swap was seen on this request
    _same(
        client.post("/search", json={"queries": QUERIES, "k": 3}).json()["results"],
        _expected(folder, QUERIES, 3),
    )
    reloaded = client.post("/reload").json()
    assert reloaded["reloaded"] is True and reloaded["version"]


def _png(array: np.ndarray) -> str:
    data = io.BytesIO()
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(data, format="PNG")
    return base64.b64encode(data.getvalue()).decode("ascii")


def test_an_image_index_takes_base64_images_and_never_paths(tmp_path, rng):
    tower = siamese.image_tower((12, 12, 1), filters=(4,), embedding_dim=8)
    tower.save(tmp_path / "tower.keras")
    images = rng.integers(0, 255, size=(20, 12, 12, 1), dtype=np.uint8)
    Index.build(tower, images, tower_path=tmp_path / "tower.keras").save(tmp_path / "idx")
    client = TestClient(create_app(tmp_path / "idx"))
    response = client.post("/search", json={"queries": [_png(images[3]), _png(images[7])], "k": 3})
    assert response.status_code == 200, response.text
    _same(response.json()["results"], _expected(tmp_path / "idx", images[[3, 7]], 3))
    path = tmp_path / "q.png"
    Image.fromarray(images[0].squeeze(-1)).save(path)
    for query, words in ((str(path), "base64"), ("aGVsbG8=", "not a readable"), (3, "base64")):
        response = client.post("/search", json={"queries": [query]})
        assert response.status_code == 400 and words in response.json()["error"], response.text


def test_binding_beyond_this_machine_needs_a_key_or_insecure(text_index):
    with pytest.raises(ConfigError, match="--api-key"):
        check_bind("0.0.0.0", None, False)
    check_bind("0.0.0.0", "key", False)
    check_bind("0.0.0.0", None, True)
    check_bind("127.0.0.1", None, False)
    result = CliRunner().invoke(
        cli.index, ["serve", "--index", str(text_index), "--host", "0.0.0.0"], env={"SIAMESE_API_KEY": ""}
    )
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.slow
def test_a_real_server_answers_concurrent_clients_as_the_python_api(text_index, tmp_path):
    port = closed_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from siamese.cli import index; index()",
            "serve",
            "--index",
            str(text_index),
            "--port",
            str(port),
            "--error-log",
            str(tmp_path / "errors.log"),
        ],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                    assert json.load(answer)["status"] == "ok"
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "the server did not start in 120 s"
                time.sleep(0.3)
        asked = [[SENTENCES[i % 60], QUERIES[i % 3]] for i in range(64)]
        loaded = Index.load(text_index)
        want = [_expected(loaded, queries, 5) for queries in asked]

        start_together = threading.Barrier(8, timeout=60)

        def ask(i: int) -> list:
            if i < 8:  # the first 8 requests are sent at once, from the 8 threads, so they overlap
                start_together.wait()
            request = urllib.request.Request(
                f"{base}/search",
                data=json.dumps({"queries": asked[i], "k": 5}).encode(),
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as answer:
                return json.load(answer)["results"]

        began = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(len(asked))))
        assert time.monotonic() - began < 120
        for i, got in enumerate(answers):
            _same(
                got,
                want[i % 6]
                if i % 6 in want and asked[i] == asked[i % 6]
                else _expected(text_index, asked[i], 5),
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


class _SlowIndex:
    """Stands in for an index: records each search call, takes 50 ms, fails on "bad"."""

    def __init__(self) -> None:
        self.calls: list[tuple[list, int]] = []

    def search(self, queries, k, **options):
        self.calls.append((list(queries), k))
        time.sleep(0.05)
        if "bad" in queries:
            raise ConfigError("a bad query")
        return [[f"{query}@{k}"] for query in queries]


def test_requests_that_wait_are_searched_together_and_each_gets_its_own_answer():
    import asyncio

    from siamese.index.server import Batcher

    async def scenario():
        index, batcher = _SlowIndex(), Batcher(asyncio.to_thread)
        first = asyncio.create_task(batcher.search(index, ["q0"], 3, {}))
        await asyncio.sleep(0.02)  # the first search is under way in its thread
        assert index.calls == [(["q0"], 3)]
        waiting = [batcher.search(index, [f"q{i}", f"r{i}"], 3, {}) for i in range(1, 5)]
        other_k = batcher.search(index, ["s"], 7, {})
        answers = await asyncio.gather(first, *waiting, other_k)
        return index, batcher, answers

    index, batcher, answers = asyncio.run(scenario())
    assert answers[0] == [["q0@3"]]
    assert answers[1:5] == [[[f"q{i}@3"], [f"r{i}@3"]] for i in range(1, 5)]
    assert answers[5] == [["s@7"]]
    assert index.calls == [
        (["q0"], 3),
        (["q1", "r1", "q2", "r2", "q3", "r3", "q4", "r4"], 3),  # the four that waited: one call
        (["s"], 7),  # another k: a call of its own
    ]
    assert (batcher.calls, batcher.requests) == (3, 6)


def test_a_bad_request_in_a_batch_fails_alone():
    import asyncio

    from siamese.index.server import Batcher

    async def scenario():
        index, batcher = _SlowIndex(), Batcher(asyncio.to_thread)
        first = asyncio.create_task(batcher.search(index, ["q0"], 3, {}))
        await asyncio.sleep(0.02)
        rest = [batcher.search(index, [query], 3, {}) for query in ("q1", "bad", "q2")]
        return index, await asyncio.gather(first, *rest, return_exceptions=True)

    index, answers = asyncio.run(scenario())
    assert answers[0] == [["q0@3"]] and answers[1] == [["q1@3"]] and answers[3] == [["q2@3"]]
    assert isinstance(answers[2], ConfigError)
    assert [queries for queries, _ in index.calls] == [["q0"], ["q1", "bad", "q2"], ["q1"], ["bad"], ["q2"]]
