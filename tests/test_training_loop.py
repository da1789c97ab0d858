"""The epoch loop: checkpoints, early stopping, NaN losses, the time budget."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import siamese
from siamese.training import RunConfig, RunDir, TrainingError, fit_epochs


def _setup(tmp_path, epochs=3, patience=0):
    model = siamese.build_siamese(siamese.categorical_tower(6, 2, seed=0), "euclidean")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=siamese.losses.get("contrastive"))
    config = RunConfig(task="text-pairs", data="x", epochs=epochs, patience=patience, batch_size=4)
    run = RunDir(tmp_path / "run")
    run.prepare(config, resume=False)
    rng = np.random.default_rng(0)
    x = [rng.integers(0, 6, (16, 1)), rng.integers(0, 6, (16, 1))]
    y = rng.integers(0, 2, 16).astype("float32")
    return model, config, run, x, y


def _resume(run, config, x, y, dev_y):
    """Go on with the run in ``run`` from its checkpoint; its history."""
    restored, state = run.load_checkpoint()
    return fit_epochs(
        restored,
        lambda e: (x, y),
        (x, dev_y),
        run,
        config,
        monitor="val_loss",
        mode="min",
        state=state,
        verbose=0,
    )


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    model, config, run, x, y = _setup(tmp_path)
    bad = y.copy()
    bad[3] = np.nan

    def epoch_data(epoch):
        return x, (bad if epoch == 1 else y)

    with pytest.raises(TrainingError, match="loss became nan in epoch 2.*epoch 1 is kept"):
        fit_epochs(model, epoch_data, (x, y), run, config, monitor="val_loss", mode="min", verbose=0)
    state = run.read_state()
    assert state["epoch"] == 1
    restored, _ = run.load_checkpoint()
    assert np.all(np.isfinite(restored.get_weights()[0]))


def test_early_stopping_restores_the_best_epoch(tmp_path):
    model, config, run, x, y = _setup(tmp_path, epochs=6, patience=1)
    dev_y = 1.0 - y  # a dev set that gets worse as training fits the train labels

    history = fit_epochs(
        model, lambda e: (x, y), (x, dev_y), run, config, monitor="val_loss", mode="min", verbose=0
    )
    best = int(np.argmin(history["val_loss"]))
    assert len(history["val_loss"]) < 6  # stopped early
    assert run.read_state()["best_epoch"] == best + 1
    now = model.evaluate(x, dev_y, verbose=0)
    assert now == pytest.approx(history["val_loss"][best], rel=1e-4)


def test_learning_rate_is_lowered_on_a_plateau_and_kept_on_resume(tmp_path):
    model, config, run, x, y = _setup(tmp_path, epochs=4)
    config.lr_patience, config.lr_factor = 1, 0.25
    dev_y = 1.0 - y  # dev worsens as training fits: no epoch after the first improves it

    history = fit_epochs(
        model, lambda e: (x, y), (x, dev_y), run, config, monitor="val_loss", mode="min", verbose=0
    )
    assert len(history["val_loss"]) == 4
    assert all(b > a for a, b in zip(history["val_loss"], history["val_loss"][1:], strict=False))
    # The rate used in each epoch: 0.1, then quartered after each epoch that did not improve.
    assert history["learning_rate"] == pytest.approx([0.1, 0.1, 0.025, 0.00625], rel=1e-6)
    # The checkpoint's optimizer holds the rate reached (after the last epoch's lowering).
    assert float(run.load_checkpoint()[0].optimizer.learning_rate) == pytest.approx(0.0015625, rel=1e-6)

    # Resumed for two more epochs, the run goes on at the rate it had reached.
    config.epochs = 6
    history = _resume(run, config, x, y, dev_y)
    assert history["learning_rate"][4:] == pytest.approx([0.0015625, 0.000390625], rel=1e-6)


def test_without_lr_patience_the_rate_stays_and_is_not_logged(tmp_path):
    model, config, run, x, y = _setup(tmp_path, epochs=3)
    history = fit_epochs(
        model, lambda e: (x, y), (x, 1.0 - y), run, config, monitor="val_loss", mode="min", verbose=0
    )
    assert "learning_rate" not in history
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1)


@pytest.mark.parametrize(("field", "value"), [("lr_patience", -1), ("lr_factor", 0.0), ("lr_factor", 1.0)])
def test_bad_plateau_settings_are_refused(field, value):
    with pytest.raises(siamese.errors.ConfigError, match=field):
        RunConfig(task="text-pairs", data="x", **{field: value})


def test_cosine_schedule_sets_the_rate_step_by_step_and_resumes_where_it_was(tmp_path):
    from siamese.training import loop

    assert loop.cosine_rate(0.1, 0.0) == pytest.approx(0.1)
    assert loop.cosine_rate(0.1, 0.5) == pytest.approx(0.05)
    assert loop.cosine_rate(0.1, 1.0) == pytest.approx(0.0, abs=1e-12)

    model, config, run, x, y = _setup(tmp_path, epochs=4)
    config.lr_schedule, config.lr_patience = "cosine", 1  # the plateau rule is not used with it
    dev_y = 1.0 - y  # dev worsens: the plateau rule, were it on, would lower the rate
    whole = fit_epochs(
        model, lambda e: (x, y), (x, dev_y), run, config, monitor="val_loss", mode="min", verbose=0
    )
    # 16 pairs in batches of 4: 4 steps an epoch; the rate logged is that of an epoch's last step.
    expected = [loop.cosine_rate(0.1, (epoch + 3 / 4) / 4) for epoch in range(4)]
    assert whole["learning_rate"] == pytest.approx(expected, rel=1e-5)

    # The same run stopped by Ctrl-C in its third epoch, then resumed: the same rates and losses.
    model, config, run, x, y = _setup(tmp_path / "again", epochs=4)
    config.lr_schedule, config.lr_patience = "cosine", 1

    class Batches(keras.utils.PyDataset):  # Ctrl-C at the second step of the third epoch
        def __init__(self, epoch):
            super().__init__()
            self.epoch = epoch

        def __len__(self):
            return 4

        def __getitem__(self, i):
            if self.epoch == 2 and i == 1:
                raise KeyboardInterrupt
            return (x[0][4 * i : 4 * i + 4], x[1][4 * i : 4 * i + 4]), y[4 * i : 4 * i + 4]

    with pytest.raises(siamese.errors.Interrupted):
        fit_epochs(
            model,
            lambda e: (Batches(e), None),
            (x, dev_y),
            run,
            config,
            monitor="val_loss",
            mode="min",
            verbose=0,
        )
    assert run.load_checkpoint()[1]["epoch"] == 2
    resumed = _resume(run, config, x, y, dev_y)
    assert resumed["learning_rate"] == pytest.approx(whole["learning_rate"], rel=1e-5)
    assert resumed["val_loss"] == pytest.approx(whole["val_loss"], rel=1e-4)


def test_an_unknown_schedule_is_refused():
    with pytest.raises(siamese.errors.ConfigError, match="lr_schedule"):
        RunConfig(task="text-pairs", data="x", lr_schedule="linear")
