"""``siamese-export``: a run's tower as a SavedModel, an ONNX model or a LiteRT model."""

from __future__ import annotations

import click

from siamese.cli.common import OneLineUsage, friendly_errors, setup_logging, verbose_option


class _Command(OneLineUsage, click.Command):
    pass


@click.command(
    cls=_Command,
    epilog="""\b
Examples:
  siamese-export --run runs/sick --format saved-model --out export/sick-sm
  siamese-export --run runs/sick --format onnx --out export/sick-onnx
  siamese-export --run runs/f --format litert --out export/fmnist-litert
\b
A text tower's ONNX and LiteRT models take token ids; tokenizer.json beside them holds the
vocabulary and the rule that makes the ids (see siamese.export.tokenize).
ONNX needs the export extra: pip install "siamese[export]".
""",
)
@click.option(
    "--run",
    "source",
    type=click.Path(exists=True),
    required=True,
    help="A run folder (its tower.keras) or a tower.keras file.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["saved-model", "onnx", "litert"]),
    required=True,
    help="What to write.",
)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="A new folder to write."
)
@verbose_option
@friendly_errors
def export(source: str, fmt: str, out_dir: str, verbose: bool) -> None:
    """Export a trained tower for serving outside Python's training stack."""
    setup_logging(verbose)
    from siamese.export import export_tower

    record = export_tower(source, fmt, out_dir)
    click.echo(
        f"exported the tower as {fmt} to {out_dir} (input {record['input']['name']}: "
        f"{record['input']['dtype']} {record['input']['shape']}, output width {record['output_width']})"
    )
