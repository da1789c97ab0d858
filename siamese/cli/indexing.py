"""``siamese-index``: build, query and inspect FAISS indexes of a trained tower's embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from siamese.cli.common import OneLineGroup, echo_metrics, friendly_errors, setup_logging, verbose_option
from siamese.datasets.corpus import pair_splits, read_corpus
from siamese.datasets.records import GRADED
from siamese.errors import SiameseError
from siamese.index import Index, build_on_ray, recall_at_k, write_projector
from siamese.index.projector import DEFAULT_LIMIT
from siamese.metrics.retrieval import evaluate_retrieval, pair_queries_of_index
from siamese.models import load_tower


@click.group(
    cls=OneLineGroup,
    epilog="""\b
Examples:
  siamese-index build --run runs/sick --input sick --out idx/sick
  siamese-index query --index idx/sick "A man is playing a guitar" -k 5
  siamese-index info --index idx/sick
  siamese-index evaluate --index idx/sick --pairs sick
  siamese-index projector --index idx/sick --out proj/sick && tensorboard --logdir proj/sick
""",
)
def index() -> None:
    """Build, query and inspect FAISS indexes of a trained tower's embeddings."""


@index.command(
    "build",
    epilog="""\b
Examples:
  siamese-index build --run runs/sick --input sick --out idx/sick
  siamese-index build --run runs/sick --input sentences.txt --out idx/mine --factory HNSW32
  siamese-index build --run runs/fmnist --input fashion-mnist --out idx/fmnist --check-recall
  siamese-index build --run runs/sick --input big.txt --out idx/big --factory IVF1024,Flat --engine ray
  siamese-index build --run runs/sick --input big.txt --out idx/big --engine ray --address HEAD:6379
  siamese-index build --run runs/sick --input big.txt --out idx/big --factory IVF4096,Flat --on-disk
""",
)
@click.option(
    "--run",
    "run_dir",
    type=click.Path(exists=True, file_okay=False),
    required=True,
    help="A run folder (its tower.keras embeds the corpus).",
)
@click.option(
    "--input",
    "input_spec",
    required=True,
    help="Dataset name, .txt file (one item per line), CSV/TSV of pairs, or image folder.",
)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Index folder to write."
)
@click.option(
    "--factory",
    default="Flat",
    show_default=True,
    help="FAISS index type: Flat, HNSW32, IVF256,Flat, IVF256,PQ16, ...",
)
@click.option("--metric", type=click.Choice(["cosine", "ip", "l2"]), default="cosine", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option(
    "--split",
    default=None,
    help="Which split of a dataset to index: test (the default for a text dataset), train, dev, or all; "
    "an image dataset's default is its held-out split.",
)
@click.option("--check-recall", is_flag=True, help="Measure recall@10 against exact search on a sample.")
@click.option(
    "--on-disk",
    is_flag=True,
    help="IVF indexes: keep the inverted lists in a file of the index folder, memory-mapped "
    "when loaded (indexes larger than memory; a loaded one is read-only).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: embed and index in this process. ray: embed in a pool of Ray actors and fill "
    'index shards in parallel (pip install "siamese[ray]").',
)
@click.option(
    "--address",
    default=None,
    help="With --engine ray: the Ray cluster to use (HOST:PORT of its head, or auto); "
    "default a local Ray on this machine's cores.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="With --engine ray: embedding actors (default: one per CPU of the cluster).",
)
@verbose_option
@friendly_errors
def index_build(
    run_dir: str,
    input_spec: str,
    out_dir: str,
    factory: str,
    metric: str,
    batch_size: int,
    split: str | None,
    check_recall: bool,
    on_disk: bool,
    engine: str,
    address: str | None,
    workers: int | None,
    verbose: bool,
) -> None:
    """Embed a corpus with a run's tower and save it as an index folder."""
    setup_logging(verbose)
    if engine != "ray" and (address is not None or workers is not None):
        raise click.UsageError("--address and --workers apply only with --engine ray")

    tower_path = Path(run_dir) / "tower.keras"
    tower = load_tower(tower_path)
    items, payloads = read_corpus(input_spec, tower, split=split)
    options = {"payloads": payloads, "factory": factory, "metric": metric, "batch_size": batch_size}
    options["on_disk"] = on_disk
    if engine == "ray":
        built = build_on_ray(tower_path, items, address=address, workers=workers, **options)
    else:
        built = Index.build(tower, items, tower_path=tower_path, **options)
    built.save(out_dir)
    click.echo(f"index {out_dir}: {built.ntotal} items, dimension {built.dim}, {factory}, {metric}")
    if check_recall:
        recall = recall_at_k(built, built.vectors, k=10)
        click.echo(f"recall@10 against exact search: {recall:.4f}")


@index.command(
    "query",
    epilog="""\b
Examples:
  siamese-index query --index idx/sick "A man is playing a guitar" -k 5
  siamese-index query --index idx/fmnist --image shoe.png --json
""",
)
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.argument("text", required=False)
@click.option(
    "--image",
    "image_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Query with an image file (image indexes).",
)
@click.option("-k", type=click.IntRange(min=1), default=10, show_default=True, help="Neighbours to return.")
@click.option("--nprobe", type=click.IntRange(min=1), default=None, help="IVF lists searched per query.")
@click.option("--ef-search", type=click.IntRange(min=1), default=None, help="HNSW search breadth.")
@click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON.")
@verbose_option
@friendly_errors
def index_query(
    index_dir: str,
    text: str | None,
    image_path: str | None,
    k: int,
    nprobe: int | None,
    ef_search: int | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Print the nearest neighbours of a query, best first."""
    setup_logging(verbose)
    if (text is None) == (image_path is None):
        raise SiameseError("give either a TEXT query or --image PATH")
    loaded = Index.load(index_dir)
    if text is not None and loaded.input_type == "image":
        raise SiameseError("this index takes images: query it with --image FILE, not with TEXT")
    query = text if text is not None else Path(image_path)
    hits = loaded.search([query], k=k, nprobe=nprobe, ef_search=ef_search)[0]
    if as_json:
        click.echo(json.dumps([hit._asdict() for hit in hits], indent=2))
        return
    for rank, hit in enumerate(hits, start=1):
        click.echo(f"{rank:>3}  {hit.score:8.4f}  {hit.id:>8}  {hit.payload}")


@index.command(
    "info",
    epilog="""\b
Examples:
  siamese-index info --index idx/sick
  siamese-index info --index idx/big --verify
""",
)
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.option(
    "--verify",
    is_flag=True,
    help="Check the sha256 of every file, also of files over 1 GiB (checked by size at each load).",
)
@friendly_errors
def index_info(index_dir: str, verify: bool) -> None:
    """Print an index folder's manifest (dimension, metric, factory, count, tower)."""
    loaded = Index.load(index_dir, check_tower=False, verify=verify)
    click.echo(json.dumps(loaded.info(), indent=2))
    if verify:
        click.echo(f"verified: every file of {index_dir} matches its sha256 in the manifest", err=True)


@index.command(
    "projector",
    epilog="""\b
Examples:
  siamese-index projector --index idx/sick --out proj/sick
  tensorboard --logdir proj/sick          (then the Projector tab)
  siamese-index projector --index idx/fmnist --out proj/fmnist --limit 5000
""",
)
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Folder to write.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Write the index's first N rows.",
)
@verbose_option
@friendly_errors
def index_projector(index_dir: str, out_dir: str, limit: int, verbose: bool) -> None:
    """Write an index's vectors, metadata (and, for images, a sprite) for TensorBoard's
    Embedding Projector."""
    setup_logging(verbose)
    loaded = Index.load(index_dir, check_tower=False)
    written = write_projector(loaded, out_dir, limit=limit)
    sprite = f", a sprite of {written['sprite']}-pixel thumbnails" if written["sprite"] else ""
    click.echo(
        f"wrote {written['rows']:,} vectors of dimension {written['dim']}{sprite} to {out_dir}; "
        f"view them with: tensorboard --logdir {out_dir}"
    )


@index.command(
    "serve",
    epilog="""\b
Examples:
  siamese-index serve --index idx/sick
  curl -s localhost:8000/search -d '{"queries": ["A man is playing a guitar"], "k": 3}'
  SIAMESE_API_KEY=secret siamese-index serve --index idx/sick --host 0.0.0.0 --port 8080
\b
API: POST /search {"queries": [...], "k": 10} -> {"results": [[{"id", "score", "payload"}, ...]]}
     (texts for a text index; base64 PNG/JPEG bytes for an image index);
     GET /info; GET /health; POST /reload (a rebuilt index is also picked up by itself).
""",
)
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8000, show_default=True)
@click.option(
    "--api-key",
    envvar="SIAMESE_API_KEY",
    default=None,
    help="Require this key on every request (Authorization: Bearer KEY); or set SIAMESE_API_KEY.",
)
@click.option("--insecure", is_flag=True, help="Allow a non-loopback --host without an API key.")
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=16 * 2**20,
    show_default=True,
    help="Largest request body (413 beyond).",
)
@click.option(
    "--error-log",
    type=click.Path(dir_okay=False),
    default=None,
    help="File for the tracebacks of unexpected errors (default: one in the temporary folder).",
)
@verbose_option
@friendly_errors
def index_serve(
    index_dir: str,
    host: str,
    port: int,
    api_key: str | None,
    insecure: bool,
    max_body_bytes: int,
    error_log: str | None,
    verbose: bool,
) -> None:
    """Serve an index over HTTP (JSON): search, info, health, reload."""
    setup_logging(verbose)
    try:
        import uvicorn

        from siamese.index.server import check_bind, create_app
    except ImportError as exc:
        raise SiameseError(
            f'serving needs the serve extra ({exc.name} is missing): pip install "siamese[serve]"'
        ) from None
    check_bind(host, api_key, insecure)
    app = create_app(index_dir, api_key=api_key, max_body=max_body_bytes, error_log=error_log)
    served = app.state.served.index
    click.echo(
        f"serving {index_dir} ({served.ntotal:,} items, {served.input_type or 'vectors'}) on http://{host}:{port}"
        f"{' with an API key' if api_key else ''}; Ctrl-C stops",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@index.command(
    "evaluate",
    epilog="""\b
Examples:
  siamese-index evaluate --index idx/q --pairs qqp               # its test split
  siamese-index evaluate --index idx/mine --pairs pairs.tsv --label-col dup
""",
)
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.option(
    "--pairs",
    "pairs_spec",
    required=True,
    help="A text dataset name or a CSV/TSV of pairs whose items are in the index (its payloads).",
)
@click.option("--split", default=None, help="Split of a dataset (default: test; a file: all of it).")
@click.option(
    "--positive-threshold",
    type=float,
    default=4.0,
    show_default=True,
    help="Graded pairs: the score from which a pair counts as similar.",
)
@click.option("--text-a-col", default="sentence1", show_default=True, help="CSV/TSV: first text column.")
@click.option("--text-b-col", default="sentence2", show_default=True, help="CSV/TSV: second text column.")
@click.option("--label-col", default="label", show_default=True, help="CSV/TSV: label column.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@verbose_option
@friendly_errors
def index_evaluate(
    index_dir: str,
    pairs_spec: str,
    split: str | None,
    positive_threshold: float,
    text_a_col: str,
    text_b_col: str,
    label_col: str,
    as_json: bool,
    verbose: bool,
) -> None:
    """Query an index with the first item of each similar pair: recall@k, MRR@10, nDCG@10 of
    finding its partner (the query's own copy left out)."""
    setup_logging(verbose)
    loaded = Index.load(index_dir)
    if loaded.tower is None or str(loaded.tower.inputs[0].dtype) != "string":
        raise SiameseError(f"--index {index_dir}: its tower does not take texts; --pairs holds text pairs")
    chosen = pair_splits(pairs_spec, split, text_a_col=text_a_col, text_b_col=text_b_col, label_col=label_col)
    a = [x for pairs in chosen for x in pairs.a]
    b = [y for pairs in chosen for y in pairs.b]
    labels = np.concatenate([pairs.labels for pairs in chosen])
    similar = labels >= positive_threshold if chosen[0].kind == GRADED else labels == 1.0
    queries = pair_queries_of_index(loaded, a, b, similar, source=f"--pairs {pairs_spec}")
    figures = evaluate_retrieval(loaded, queries)
    if as_json:
        click.echo(json.dumps(figures, indent=2))
    else:
        echo_metrics({"retrieval": figures})
