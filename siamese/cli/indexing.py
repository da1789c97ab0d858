"""``siamese-index``: build, query and inspect FAISS indexes of a trained tower's embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import click

from siamese.cli.common import OneLineGroup, friendly_errors, setup_logging, verbose_option
from siamese.datasets.corpus import read_corpus
from siamese.errors import SiameseError
from siamese.index import Index, recall_at_k
from siamese.models import load_tower


@click.group(
    cls=OneLineGroup,
    epilog="""\b
Examples:
  siamese-index build --run runs/sick --input sick --out idx/sick
  siamese-index query --index idx/sick "A man is playing a guitar" -k 5
  siamese-index info --index idx/sick
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
@click.option("--check-recall", is_flag=True, help="Measure recall@10 against exact search on a sample.")
@verbose_option
@friendly_errors
def index_build(
    run_dir: str,
    input_spec: str,
    out_dir: str,
    factory: str,
    metric: str,
    batch_size: int,
    check_recall: bool,
    verbose: bool,
) -> None:
    """Embed a corpus with a run's tower and save it as an index folder."""
    setup_logging(verbose)

    tower_path = Path(run_dir) / "tower.keras"
    tower = load_tower(tower_path)
    items, payloads = read_corpus(input_spec, tower)
    built = Index.build(
        tower,
        items,
        payloads=payloads,
        factory=factory,
        metric=metric,
        batch_size=batch_size,
        tower_path=tower_path,
    )
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
    hits = loaded.search([text if text is not None else image_path], k=k, nprobe=nprobe, ef_search=ef_search)[
        0
    ]
    if as_json:
        click.echo(json.dumps([hit._asdict() for hit in hits], indent=2))
        return
    for rank, hit in enumerate(hits, start=1):
        click.echo(f"{rank:>3}  {hit.score:8.4f}  {hit.id:>8}  {hit.payload}")


@index.command("info", epilog="\b\nExample:\n  siamese-index info --index idx/sick\n")
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False), required=True)
@friendly_errors
def index_info(index_dir: str) -> None:
    """Print an index folder's manifest (dimension, metric, factory, count, tower)."""
    click.echo(json.dumps(Index.load(index_dir, check_tower=False).info(), indent=2))
