"""An index served over HTTP: ``siamese-index serve --index DIR`` (the extra ``serve``:
FastAPI and uvicorn).

The API (JSON in, JSON out; every error is ``{"error": "one line"}`` with a 4xx or 500 code):

``POST /search``
    ``{"queries": [...], "k": 10}`` (optional ``"nprobe"``, ``"ef_search"``): texts for a text
    index; for an image index, images as base64-encoded PNG or JPEG bytes (never paths: a
    client cannot make the server read its files); ids for a categorical index. Answers
    ``{"results": [[{"id": 3, "score": 0.91, "payload": "..."}, ...], ...]}``, one list per
    query, in the order of :meth:`Index.search`'s hits.
``GET /info``
    The index's manifest (dimension, metric, factory, count, tower, ...).
``GET /health``
    200 ``{"status": "ok", "count": N}`` while an index is loaded.
``POST /reload``
    Load the folder's current version now (a rebuilt index is also picked up by itself: each
    request looks at the folder's ``CURRENT`` file and loads a new version when it changed).

Limits: a body over ``max_body`` bytes answers 413; ``k`` from 1 to :data:`MAX_K`; at most
:data:`MAX_QUERIES` queries a request; the text and image limits of
:mod:`siamese.index.queries`. With an API key, every request must carry it
(``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; compared in constant time), else 401.
An unexpected error answers 500 with one line; its traceback goes to the error log file,
never to the console.

The index is loaded once and answers every request; a reload builds the new :class:`Index`
aside and swaps it in, so requests under way finish on the one they started with. Requests
that arrive while a search is under way wait for it and are then searched together, in one
call (:class:`Batcher`): the tower embeds their queries in one batch, which costs little more
than one query, so concurrent clients are answered at the rate of batches, not of queries.
A lone request is searched at once.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations (Request),
# imported inside create_app, at definition time.

import asyncio
import base64
import binascii
import hmac
import io
import json
import logging
import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from siamese.errors import ConfigError, DataError, SiameseError
from siamese.index.api import Index
from siamese.index.queries import IMAGE, TEXT, check_image_source
from siamese.io import current_version

logger = logging.getLogger(__name__)

#: Largest ``k`` a request may ask for.
MAX_K = 1000
#: Most queries in one request (and in one batched search).
MAX_QUERIES = 1024
#: Largest request body, by default (bytes).
MAX_BODY = 16 * 2**20
#: The environment variable that holds the API key when ``--api-key`` is not given.
API_KEY_ENV = "SIAMESE_API_KEY"
#: Hosts a server may bind to without an API key.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class RequestError(SiameseError):
    """A request the server refuses: its status code and one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ServedIndex:
    """The index a server answers from, reloaded when its folder's current version changes."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._failed: Path | None = None
        self.version = current_version(self.directory)
        self.index = Index.load(self.directory)

    def current(self) -> Index:
        """The index to answer this request from (the new version, once it is loaded)."""
        version = current_version(self.directory)
        if version is not None and version != self.version and version != self._failed:
            self.reload(version)
        return self.index

    def reload(self, version: Path | None = None) -> bool:
        """Load the folder's current version and swap it in; False when another thread is
        already loading it or the load failed (the old index then stays and the failure
        is logged)."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            version = version or current_version(self.directory)
            loaded = Index.load(self.directory)
        except SiameseError as exc:
            self._failed = version
            logger.error("reload of %s failed; still serving %s: %s", self.directory, self.version, exc)
            return False
        finally:
            self._lock.release()
        self.index, self.version, self._failed = loaded, version, None
        logger.info("serving %s (%d items) from now on", version or self.directory, loaded.ntotal)
        return True


def check_bind(host: str, api_key: str | None, insecure: bool) -> None:
    """Refuse to serve beyond this machine without an API key, unless ``insecure``.

    Raises:
        ConfigError: One line saying what to do.
    """
    if host not in LOOPBACK and not api_key and not insecure:
        raise ConfigError(
            f"--host {host} opens the index to other machines: give --api-key (or {API_KEY_ENV}), "
            "or say --insecure"
        )


def _decode_image(text: Any, shape: tuple[int, int, int], position: int) -> np.ndarray:
    """A base64-encoded PNG/JPEG as the tower's ``(H, W, C)`` ``uint8`` array, within the
    limits of :func:`siamese.index.queries.check_image_source`."""
    from siamese.datasets.files import open_image, to_array

    if not isinstance(text, str) or not text:
        raise RequestError(400, f"query {position}: an image index takes base64-encoded PNG or JPEG bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"query {position}: not valid base64") from None
    try:
        found = check_image_source(io.BytesIO(data), f"query {position}", len(data))
    except ConfigError as exc:
        raise RequestError(400, str(exc)) from None
    if found not in ("PNG", "JPEG"):
        raise RequestError(400, f"query {position}: a {found} image; send PNG or JPEG")
    try:
        return to_array(
            open_image(data, path=f"query {position}", what=f"query {position}"), shape[2], shape[:2]
        )
    except DataError as exc:
        raise RequestError(400, f"query {position}: not a readable PNG or JPEG image ({exc})") from None


def parse_search(body: bytes, index: Index) -> tuple[Any, int, dict[str, int]]:
    """The queries, ``k`` and search options of a ``/search`` body, checked.

    Raises:
        RequestError: 400 (malformed, wrong modality, out of bounds) or 413 (too large).
    """
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the body is not JSON ({exc})") from None
    if not isinstance(request, dict):
        raise RequestError(400, 'the body must be an object: {"queries": [...], "k": 10}')
    unknown = set(request) - {"queries", "k", "nprobe", "ef_search"}
    if unknown:
        raise RequestError(400, f"unknown fields: {', '.join(sorted(unknown))}")
    queries = request.get("queries")
    if not isinstance(queries, list) or not queries:
        raise RequestError(400, '"queries" must be a non-empty list')
    if len(queries) > MAX_QUERIES:
        raise RequestError(413, f"{len(queries):,} queries; at most {MAX_QUERIES:,} a request")
    k = request.get("k", 10)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise RequestError(400, f'"k" must be an integer from 1 to {MAX_K}, not {k!r}')
    options = {}
    for name in ("nprobe", "ef_search"):
        value = request.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RequestError(400, f'"{name}" must be a positive integer, not {value!r}')
            options[name] = value
    kind = index.input_type
    if kind is None:
        raise RequestError(400, "this index has no tower to embed queries with")
    if kind == TEXT:
        for position, query in enumerate(queries):
            if not isinstance(query, str):
                raise RequestError(
                    400, f"query {position}: a text index takes strings, not {type(query).__name__}"
                )
    elif kind == IMAGE:
        shape = tuple(int(v) for v in index.tower.inputs[0].shape[1:])
        queries = np.stack([_decode_image(query, shape, position) for position, query in enumerate(queries)])
    else:
        for position, query in enumerate(queries):
            if isinstance(query, bool) or not isinstance(query, int):
                raise RequestError(400, f"query {position}: a categorical index takes integer ids")
    return queries, k, options


class Batcher:
    """Searches the requests that came in while the previous search ran, together.

    Requests are grouped by index, ``k`` and search options; one group at a time is searched
    (at most :data:`MAX_QUERIES` queries a call) in a worker thread, and the hits are handed
    back to each request in its own order. If a batched search fails, each of its requests
    is searched alone, so a bad request fails by itself.
    """

    def __init__(self, run: Any, max_queries: int = MAX_QUERIES) -> None:
        self._run = run  # awaitable runner of a blocking call in a worker thread
        self._max = max_queries
        self._pending: dict[tuple, list[tuple[Any, asyncio.Future]]] = {}
        self._indexes: dict[tuple, Index] = {}
        self._draining = False
        #: Searches made and requests answered (for tests and logs).
        self.calls = self.requests = 0

    async def search(self, index: Index, queries: Any, k: int, options: dict[str, int]) -> list:
        """The hits of ``queries``, searched with whatever requests are waiting alongside."""
        key = (id(index), k, tuple(sorted(options.items())))
        future = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append((queries, future))
        self._indexes[key] = index
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                key = next(iter(self._pending))
                waiting = self._pending.pop(key)
                index = self._indexes.pop(key)
                group, size = [], 0
                while waiting and (not group or size + len(waiting[0][0]) <= self._max):
                    size += len(waiting[0][0])
                    group.append(waiting.pop(0))
                if waiting:  # the rest goes in the next call
                    self._pending[key], self._indexes[key] = waiting, index
                await self._answer(index, key, group)
        finally:
            self._draining = False

    async def _answer(self, index: Index, key: tuple, group: list[tuple[Any, asyncio.Future]]) -> None:
        _, k, options = key
        options = dict(options)
        parts = [queries for queries, _ in group]
        joined = (
            np.concatenate(parts) if isinstance(parts[0], np.ndarray) else [q for part in parts for q in part]
        )
        self.calls += 1
        self.requests += len(group)
        try:
            hits = await self._run(index.search, joined, k, **options)
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0][1], error=exc)
                return
            for queries, future in group:  # alone, so that each request gets its own answer
                try:
                    _settle(future, value=await self._run(index.search, queries, k, **options))
                except Exception as exc:
                    _settle(future, error=exc)
            return
        start = 0
        for queries, future in group:
            _settle(future, value=hits[start : start + len(queries)])
            start += len(queries)


def _settle(future: asyncio.Future, *, value: Any = None, error: BaseException | None = None) -> None:
    """Give ``future`` its result or its error (a request already gone is skipped)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _score(value: float) -> float | None:
    return None if math.isnan(value) else value


def create_app(
    directory: str | os.PathLike[str],
    *,
    api_key: str | None = None,
    max_body: int = MAX_BODY,
    error_log: str | os.PathLike[str] | None = None,
) -> Any:
    """The ASGI app (FastAPI) that serves the index folder ``directory``.

    Args:
        directory: A saved index folder (with its tower).
        api_key: Required on every request when given.
        max_body: Largest request body in bytes (413 beyond).
        error_log: File the tracebacks of unexpected errors go to (default: a file in the
            system's temporary folder, named in the log).

    Raises:
        ImportError: FastAPI is not installed (the ``serve`` extra).
        IndexFileError: The folder is not a whole index.
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    served = ServedIndex(directory)
    batcher = Batcher(run_in_threadpool)
    errors = _error_logger(error_log)
    key = api_key.encode("utf-8") if api_key else None
    app = FastAPI(title="siamese index", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.served = served
    app.state.batcher = batcher

    def refuse(status: int, message: str, **headers: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers or None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if key is not None:
            given = request.headers.get("x-api-key", "")
            bearer = request.headers.get("authorization", "")
            if bearer.lower().startswith("bearer "):
                given = given or bearer[7:].strip()
            if not hmac.compare_digest(given.encode("utf-8"), key):
                return refuse(
                    401,
                    "a valid API key is required (Authorization: Bearer KEY)",
                    **{"WWW-Authenticate": "Bearer"},
                )
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            return refuse(413, f"the body is over {max_body:,} bytes")
        try:
            return await call_next(request)
        except Exception:  # the traceback to the file, one line to the client
            errors.exception("unexpected error answering %s %s", request.method, request.url.path)
            return refuse(500, f"internal error (logged to {_log_path(errors)})")

    async def read_body(request: Request) -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise RequestError(413, f"the body is over {max_body:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @app.post("/search")
    async def search(request: Request) -> Any:
        try:
            body = await read_body(request)
            index = served.current()
            queries, k, options = parse_search(body, index)
            hits = await batcher.search(index, queries, k, options)
        except RequestError as exc:
            return refuse(exc.status, str(exc))
        except (ConfigError, DataError) as exc:
            return refuse(400, str(exc).splitlines()[0])
        return {
            "results": [
                [
                    {"id": int(hit.id), "score": _score(float(hit.score)), "payload": hit.payload}
                    for hit in row
                ]
                for row in hits
            ]
        }

    @app.get("/info")
    async def info() -> Any:
        return served.current().info()

    @app.get("/health")
    async def health() -> Any:
        return {"status": "ok", "count": served.current().ntotal}

    @app.post("/reload")
    async def reload() -> Any:
        swapped = await run_in_threadpool(served.reload)
        return {"reloaded": swapped, "version": served.version.name if served.version else None}

    return app


def _error_logger(path: str | os.PathLike[str] | None) -> logging.Logger:
    import tempfile

    path = (
        Path(path) if path is not None else Path(tempfile.gettempdir()) / f"siamese-serve-{os.getpid()}.log"
    )
    errors = logging.getLogger(f"{__name__}.errors.{path}")
    errors.propagate = False  # never the console
    if not errors.handlers:
        handler = logging.FileHandler(path, delay=True, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        errors.addHandler(handler)
    return errors


def _log_path(errors: logging.Logger) -> str:
    return errors.handlers[0].baseFilename if errors.handlers else "the error log"
