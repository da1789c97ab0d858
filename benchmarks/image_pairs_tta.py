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

import logging
import sys
import time
from pathlib import Path

import common

import siamese  # noqa: F401  (quiet TensorFlow start-up)
from siamese.io import read_json
from siamese.tasks import image_pairs

NAME = "image_pairs_tta"
SPLITS = {"dev": "dev (held-out alphabet)", "test": "test (the 20 official runs)"}


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__, NAME)
    parser.add_argument("--run", type=Path, required=True, help="A finished Omniglot image-pairs run.")
    parser.add_argument("--tta", type=int, default=8, help="Distortions per image.")
    args = parser.parse_args(argv)
    run = common.invocation(NAME, argv)
    logging.basicConfig(level=logging.WARNING)
    # Read as saved: a run older than pair_pools drew independent pairs (the option's default
    # is now pooled pairs).
    config = read_json(args.run / "config.json")
    budget = config.get("time_budget")
    headers = [
        "split",
        "trials",
        "one-shot by embedding, image alone",
        f"with {args.tta} distortions",
        "one-shot by pair score (no augmentation)",
        "seconds (alone / with)",
    ]
    rows = []
    for split, name in SPLITS.items():
        began = time.perf_counter()
        alone = image_pairs.TASK.evaluate(args.run, split=split, test_time_augment=0)[split]
        middle = time.perf_counter()
        with_tta = image_pairs.TASK.evaluate(args.run, split=split, test_time_augment=args.tta)[split]
        ended = time.perf_counter()
        rows.append(
            [
                name,
                alone["one_shot_trials"],
                f"{100 * alone['one_shot_embedding']:.2f}%",
                f"**{100 * with_tta['one_shot_embedding']:.2f}%**",
                f"{100 * alone['one_shot_pair']:.2f}%",
                f"{middle - began:.0f} / {ended - middle:.0f}",
            ]
        )
        sys.stderr.write(common.markdown_table(headers, rows[-1:]) + "\n")
    training = f"{budget / 60:.0f} minutes of training" if budget else "no time limit"
    pooled = "on" if config.get("image", {}).get("pair_pools", False) else "off"
    notes = (
        "`--run` is a kept Omniglot run (`benchmarks/image_pairs.py --keep DIR` writes `DIR/omniglot`; "
        f"this one: seed {config['seed']}, {training}, pooled pairs {pooled}, learning-rate patience "
        f"{config.get('lr_patience', 0)}). Nothing is trained here; each image is embedded alone, then as "
        f"the mean over it and {args.tta} fixed small affine distortions (the training distortions)."
    )
    text = common.header("Omniglot: test-time augmentation", run, notes) + common.markdown_table(
        headers, rows
    )
    common.write_result(NAME, text, args.out)


if __name__ == "__main__":
    main()
