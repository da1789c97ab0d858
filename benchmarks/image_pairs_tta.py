"""Test-time augmentation on a finished Omniglot run: one-shot figures with and without it.

Run:  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/image_pairs_tta.py --run RUN [--tta 8]

``RUN`` is the Omniglot run folder kept by ``benchmarks/image_pairs.py --keep DIR`` (i.e.
``DIR/omniglot``). No training happens here: the same tower scores the dev one-shot trials
(a held-out alphabet) and the 20 official runs, first with each image embedded alone, then
as the mean of its embedding and those of ``--tta`` fixed small distortions
(``siamese-eval --tta``). The setting was chosen on dev. Writes
``benchmarks/results/image_pairs_tta.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import siamese  # noqa: F401  (quiet TensorFlow start-up)
from siamese.io import atomic_write_text
from siamese.tasks import image_pairs

RESULTS = Path(__file__).resolve().parent / "results" / "image_pairs_tta.md"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, required=True, help="A finished Omniglot image-pairs run.")
    parser.add_argument("--tta", type=int, default=8, help="Distortions per image.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    config = json.loads((args.run / "config.json").read_text())  # runs older than pair_pools: independent
    rows = [
        "| split | trials | one-shot by embedding, image alone | with "
        f"{args.tta} distortions | one-shot by pair score (no augmentation) | seconds (alone / with) |",
        "|---|---|---|---|---|---|",
    ]
    for split in ("dev", "test"):
        began = time.perf_counter()
        alone = image_pairs.evaluate(args.run, split=split, test_time_augment=0)[split]
        middle = time.perf_counter()
        with_tta = image_pairs.evaluate(args.run, split=split, test_time_augment=args.tta)[split]
        ended = time.perf_counter()
        name = "dev (held-out alphabet)" if split == "dev" else "test (the 20 official runs)"
        rows.append(
            f"| {name} | {alone['one_shot_trials']} | {100 * alone['one_shot_embedding']:.2f}% | "
            f"**{100 * with_tta['one_shot_embedding']:.2f}%** | {100 * alone['one_shot_pair']:.2f}% | "
            f"{middle - began:.0f} / {ended - middle:.0f} |"
        )
        sys.stderr.write(rows[-1] + "\n")
    command = (
        f"SIAMESE_DATA_DIR=../shared/datasets python benchmarks/image_pairs_tta.py --run RUN --tta {args.tta}"
    )
    text = (
        "# Omniglot: test-time augmentation\n\n"
        f"Command: `{command}`, where RUN is a kept Omniglot run (`benchmarks/image_pairs.py --keep DIR` "
        f"writes `DIR/omniglot`; this one: seed {config['seed']}, "
        f"{config['time_budget'] / 60:.0f} minutes of training, pooled pairs "
        f"{'on' if config['image'].get('pair_pools', False) else 'off'}). Nothing is trained here; "
        "each image is embedded alone, then as the mean over it and "
        f"{args.tta} fixed small affine distortions (the training distortions).\n\n" + "\n".join(rows) + "\n"
    )
    atomic_write_text(args.out, text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
