"""Tests of the SGD trainer and its plots on a few hundred real Mushrooms vectors."""

import json
import math

import numpy as np
import pytest
import torch

import convexar_opt.training as training
from convexar_opt.data import build_design
from convexar_opt.datasets import load_dataset
from convexar_opt.exceptions import InvalidDataError, InvalidParameterError, ModelFileError
from convexar_opt.patterns import sample_gates
from convexar_opt.plotting import plot_training_curves, plot_validation_accuracy
from convexar_opt.torch_model import GatedAR, HingeAR, TwoLayerReLUAR, design_nll, design_objective
from convexar_opt.training import SGDResult, SGDSettings, train_sgd

WINDOW = 4
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def designs():
    data = load_dataset("mushrooms")
    return build_design(data.train[:300], WINDOW), build_design(data.valid[:100], WINDOW)


@pytest.fixture(scope="module")
def gates(designs):
    return sample_gates(designs[0].n_weights, 8, random_state=0)


def _train(model, designs, gates, **settings):
    options = {"max_epochs": 2, "device": "cpu", "seed": 1}
    options.update(settings)
    return train_sgd(
        model,
        *designs,
        gates=gates,
        hidden_units=8,
        beta=1e-3,
        rho=1e-4,
        settings=SGDSettings(**options),
    )


def _without_seconds(history):
    return [
        {name: value for name, value in record.items() if name != "seconds"} for record in history
    ]


@pytest.mark.parametrize("model", ["nn", "ptr", "pth"])
def test_training_lowers_validation_nll(model, designs, gates):
    result = _train(model, designs, gates)

    assert result.history[-1]["valid_nll"] < result.history[0]["valid_nll"]
    assert result.history[-1]["train_objective"] < result.history[0]["train_objective"]


@pytest.mark.parametrize("model", ["nn", "ptr", "pth"])
@pytest.mark.parametrize("averaging", [True, False], ids=["averaged", "last_iterate"])
def test_same_seed_same_history(model, averaging, designs, gates):
    first = _train(model, designs, gates, average_iterates=averaging)
    second = _train(model, designs, gates, average_iterates=averaging)

    assert _without_seconds(first.history) == _without_seconds(second.history)
    for name, array in first.weights.items():
        np.testing.assert_array_equal(array, second.weights[name])


def test_other_seed_other_history(designs, gates):
    first = _train("nn", designs, gates, seed=1)
    second = _train("nn", designs, gates, seed=2)

    assert first.history[-1]["valid_nll"] != second.history[-1]["valid_nll"]


def test_epoch_covers_every_row_once(designs, gates):
    train, _ = designs
    result = _train("ptr", designs, gates, batch_size=128)

    batches_per_epoch = math.ceil(train.n_rows / 128)
    iterations = [record["iterations"] for record in result.history]
    assert iterations == [0, batches_per_epoch, 2 * batches_per_epoch]


@pytest.mark.parametrize("model", ["nn", "ptr", "pth"])
def test_batch_objective_averages_to_objective_over_T(model, designs, gates):
    # With batches that tile the epoch exactly, the mean batch objective at fixed
    # weights must equal the full objective divided by T.
    train, _ = designs
    batch_size = 100
    assert train.n_rows % batch_size == 0
    generator = torch.Generator().manual_seed(0)
    module = {
        "nn": TwoLayerReLUAR(train.n_weights, 8, generator=generator),
        "ptr": GatedAR.from_weights(gates, np.random.default_rng(0).standard_normal(gates.shape)),
        "pth": HingeAR.from_weights(
            gates, *np.random.default_rng(1).standard_normal((2,) + gates.shape)
        ),
    }[model]
    rho = 1e-4 if model == "pth" else 0.0
    sampler = training._RowSampler(train, None if model == "nn" else gates, torch.float64, "cpu")

    beta_per_row = 1e-3 / train.n_positions
    rho_per_vector = rho * train.n_vectors
    with torch.no_grad():
        values = [
            training._batch_objective(model, module, batch, beta_per_row, rho_per_vector)
            for batch in sampler.batches(batch_size, generator)
        ]
        expected = design_objective(module, train, 1e-3, rho).item() / train.n_positions

    np.testing.assert_allclose(torch.stack(values).mean().item(), expected, rtol=1e-10)


def test_history_fields_and_ranges(designs, gates):
    result = _train("pth", designs, gates)

    expected = {
        "epoch", "iterations", "learning_rate", "train_objective", "train_nll", "valid_nll",
        "train_accuracy", "valid_accuracy", "seconds",
    }
    assert set(result.history[1]) == expected
    assert set(result.history[0]) == expected - {"learning_rate"}
    assert [record["epoch"] for record in result.history] == [0, 1, 2]
    for record in result.history:
        assert 0.0 <= record["train_accuracy"] <= 1.0
        assert 0.0 <= record["valid_accuracy"] <= 1.0
        assert record["train_objective"] >= record["train_nll"]


def test_result_weights_are_best_epoch(designs, gates):
    _, valid = designs
    result = _train("nn", designs, gates, max_epochs=4)

    best = result.history[result.best_epoch]
    assert best["valid_nll"] == min(record["valid_nll"] for record in result.history)
    valid_nll = design_nll(result.module, valid).item()
    np.testing.assert_allclose(valid_nll, best["valid_nll"], rtol=1e-12)
    assert result.module.U.dtype == torch.float64
    np.testing.assert_array_equal(result.weights["U"], result.module.U.detach().numpy())


def test_weights_layout_per_model(designs, gates):
    relaxed = _train("ptr", designs, gates, max_epochs=1)
    hinge = _train("pth", designs, gates, max_epochs=1)
    network = _train("nn", designs, gates, max_epochs=1)

    assert set(relaxed.weights) == {"v", "w"}
    assert not np.any(relaxed.weights["w"])
    assert set(hinge.weights) == {"v", "w"}
    assert hinge.weights["v"].shape == gates.shape
    assert set(network.weights) == {"U", "alpha"}
    assert network.weights["U"].shape == (8, designs[0].n_weights)


def test_patience_rule_fires(designs, gates):
    # Requiring a 100% relative improvement can never be met after epoch 0.
    result = _train("ptr", designs, gates, max_epochs=10, patience=2, min_delta=1.0)

    assert result.stopping_reason == "patience"
    assert result.converged
    assert result.epochs == 2


def test_max_epochs_rule_fires(designs, gates):
    result = _train("ptr", designs, gates, max_epochs=2, patience=50)

    assert result.stopping_reason == "max_epochs"
    assert not result.converged
    assert result.epochs == 2


def test_learning_rate_decay_before_stopping(designs, gates):
    result = _train(
        "ptr", designs, gates, max_epochs=10, patience=1, min_delta=1.0, lr_decays=2,
        lr_decay_factor=0.5,
    )

    assert result.stopping_reason == "patience"
    assert result.epochs == 3
    rates = [record["learning_rate"] for record in result.history[1:]]
    assert rates == [1e-3, 5e-4, 2.5e-4]


def test_paper_settings(designs, gates):
    settings = SGDSettings.paper(max_epochs=1)

    assert (settings.optimizer, settings.learning_rate, settings.batch_size) == ("sgd", 1e-3, 100)
    assert not settings.average_iterates
    assert settings.max_epochs == 1


def test_averaged_iterate_differs_from_last(designs, gates):
    averaged = _train("ptr", designs, gates, max_epochs=1, average_iterates=True)
    last = _train("ptr", designs, gates, max_epochs=1, average_iterates=False)

    assert averaged.history[1]["iterations"] == last.history[1]["iterations"]
    assert averaged.history[1]["valid_nll"] != last.history[1]["valid_nll"]


def test_divergence_stops_training(designs, gates):
    result = _train("nn", designs, gates, optimizer="sgd", learning_rate=1e12, max_epochs=5)

    assert result.stopping_reason == "diverged"
    assert not result.converged
    assert result.best_epoch == 0


@pytest.mark.parametrize("model", ["nn", "pth"])
def test_resume_matches_uninterrupted_run(model, designs, gates, tmp_path, monkeypatch):
    settings = SGDSettings(device="cpu", seed=1, max_epochs=4)
    uninterrupted = _train(model, designs, gates, max_epochs=4)

    path = tmp_path / "run.pt"
    original = training._evaluate
    calls = {"count": 0}

    def crash_at_third_epoch(*args):
        calls["count"] += 1
        if calls["count"] == 4:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(training, "_evaluate", crash_at_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_sgd(
            model, *designs, gates=gates, hidden_units=8, settings=settings, checkpoint_path=path
        )
    monkeypatch.setattr(training, "_evaluate", original)
    assert torch.load(path, weights_only=True)["run"]["epoch"] == 2

    resumed = train_sgd(
        model,
        *designs,
        gates=gates,
        hidden_units=8,
        settings=settings,
        checkpoint_path=path,
        resume=True,
    )

    assert _without_seconds(resumed.history) == _without_seconds(uninterrupted.history)
    assert resumed.iterations == uninterrupted.iterations
    assert resumed.stopping_reason == uninterrupted.stopping_reason
    for name, array in uninterrupted.weights.items():
        np.testing.assert_array_equal(resumed.weights[name], array)


def test_resume_extends_max_epochs(designs, gates, tmp_path):
    path = tmp_path / "run.pt"
    one_epoch = SGDSettings(device="cpu", max_epochs=1)
    three_epochs = SGDSettings(device="cpu", max_epochs=3)

    short = train_sgd("ptr", *designs, gates=gates, settings=one_epoch, checkpoint_path=path)
    longer = train_sgd(
        "ptr", *designs, gates=gates, settings=three_epochs, checkpoint_path=path, resume=True
    )
    direct = train_sgd("ptr", *designs, gates=gates, settings=three_epochs)

    assert short.epochs == 1
    assert longer.epochs == 3
    assert _without_seconds(longer.history) == _without_seconds(direct.history)


def test_resume_of_finished_run_trains_nothing(designs, gates, tmp_path):
    path = tmp_path / "run.pt"
    settings = SGDSettings(device="cpu", max_epochs=2)
    first = train_sgd("ptr", *designs, gates=gates, settings=settings, checkpoint_path=path)

    again = train_sgd(
        "ptr", *designs, gates=gates, settings=settings, checkpoint_path=path, resume=True
    )

    assert again.iterations == first.iterations
    np.testing.assert_array_equal(again.weights["v"], first.weights["v"])


def test_resume_with_other_beta_rejected(designs, gates, tmp_path):
    path = tmp_path / "run.pt"
    settings = SGDSettings(device="cpu", max_epochs=1)
    train_sgd("ptr", *designs, gates=gates, settings=settings, checkpoint_path=path)

    with pytest.raises(InvalidParameterError, match="written for another model, data, gates, beta"):
        train_sgd(
            "ptr",
            *designs,
            gates=gates,
            beta=0.5,
            settings=settings,
            checkpoint_path=path,
            resume=True,
        )


def test_damaged_checkpoint_rejected(designs, gates, tmp_path):
    path = tmp_path / "run.pt"
    path.write_bytes(b"not a checkpoint")

    with pytest.raises(ModelFileError, match="cannot read checkpoint .*UnpicklingError"):
        train_sgd(
            "ptr",
            *designs,
            gates=gates,
            settings=SGDSettings(device="cpu"),
            checkpoint_path=path,
            resume=True,
        )


def test_foreign_checkpoint_rejected(designs, gates, tmp_path):
    path = tmp_path / "run.pt"
    torch.save({"weights": torch.zeros(3)}, path)

    with pytest.raises(ModelFileError, match="is not a train_sgd checkpoint of format 1"):
        train_sgd(
            "ptr",
            *designs,
            gates=gates,
            settings=SGDSettings(device="cpu"),
            checkpoint_path=path,
            resume=True,
        )


def test_resume_without_path_rejected(designs, gates):
    with pytest.raises(InvalidParameterError, match="resume=True needs a checkpoint_path"):
        train_sgd("ptr", *designs, gates=gates, resume=True)


def test_unknown_model_rejected(designs, gates):
    message = r"model must be one of \['nn', 'ptr', 'pth'\]; got 'mlp'"
    with pytest.raises(InvalidParameterError, match=message):
        train_sgd("mlp", *designs, gates=gates)


def test_missing_gates_rejected(designs):
    message = r"model 'pth' needs gates of shape \(n_patterns, 5\), but got None"
    with pytest.raises(InvalidParameterError, match=message):
        train_sgd("pth", *designs)


def test_missing_hidden_units_rejected(designs):
    with pytest.raises(InvalidParameterError, match="model 'nn' needs hidden_units"):
        train_sgd("nn", *designs)


def test_gates_of_wrong_width_rejected(designs):
    message = r"gates must have shape \(n_patterns, 5\).*got \(8, 11\)"
    with pytest.raises(InvalidDataError, match=message):
        train_sgd("ptr", *designs, gates=np.ones((8, 11)))


def test_designs_of_other_window_rejected(designs, gates):
    other = build_design(load_dataset("mushrooms").valid[:100], WINDOW + 1)

    message = "valid_design has window 5 and intercept True, but train_design has window 4"
    with pytest.raises(InvalidDataError, match=message):
        train_sgd("ptr", designs[0], other, gates=gates)


def test_raw_array_instead_of_design_rejected(designs, gates):
    message = "train_design must be a WeightedDesign.*got ndarray"
    with pytest.raises(InvalidDataError, match=message):
        train_sgd("ptr", np.ones((3, 3)), designs[1], gates=gates)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"optimizer": "rmsprop"}, r"optimizer must be one of \['sgd', 'adam'\]; got 'rmsprop'"),
        ({"dtype": "float16"}, r"dtype must be one of \['float32', 'float64'\]; got 'float16'"),
        ({"batch_size": 0}, "batch_size must be an integer from 1; got 0"),
        ({"learning_rate": 0.0}, "learning_rate must be finite and > 0; got 0.0"),
        ({"lr_decay_factor": 2.0}, r"lr_decay_factor must be in \(0, 1\); got 2.0"),
    ],
)
def test_invalid_settings_rejected(options, message):
    with pytest.raises(InvalidParameterError, match=message):
        SGDSettings(**options)


def test_invalid_device_rejected():
    with pytest.raises(InvalidParameterError, match="device 'gpu0' is not a valid torch device"):
        SGDSettings(device="gpu0").torch_device()


def test_float32_training_reports_float64_figures(designs, gates):
    result = _train("pth", designs, gates, dtype="float32")

    assert result.module.v.dtype == torch.float64
    np.testing.assert_allclose(
        design_objective(result.module, designs[0], 1e-3, 1e-4).item(),
        result.history[result.best_epoch]["train_objective"],
        rtol=1e-12,
    )


def test_rho_ignored_outside_hinge_model(designs, gates):
    result = _train("ptr", designs, gates, max_epochs=1)

    assert result.rho == 0.0


def test_to_dict_is_json(designs, gates):
    result = _train("pth", designs, gates, max_epochs=1)

    restored = json.loads(json.dumps(result.to_dict()))

    assert restored["model"] == "pth"
    assert restored["settings"]["optimizer"] == result.settings.optimizer
    np.testing.assert_array_equal(np.array(restored["weights"]["v"]), result.weights["v"])
    assert restored["history"][-1]["valid_nll"] == result.history[-1]["valid_nll"]


def test_progress_bar_reaches_stderr(designs, gates, capsys):
    settings = SGDSettings(device="cpu", max_epochs=1)
    train_sgd("ptr", *designs, gates=gates, settings=settings, progress=True)

    assert "epoch" in capsys.readouterr().err


def test_validation_accuracy_plot_is_png(designs, gates, tmp_path):
    results = [_train(model, designs, gates) for model in ("nn", "ptr", "pth")]

    path = plot_validation_accuracy(results, tmp_path / "accuracy.png")
    labelled = plot_validation_accuracy({"first": results[0].to_dict()}, tmp_path / "labelled.png")
    curves = plot_training_curves(results[0], tmp_path / "curves.png")

    for output in (path, labelled, curves):
        content = output.read_bytes()
        assert content.startswith(PNG_SIGNATURE)
        assert len(content) > 5000


def test_plot_without_history_rejected(tmp_path):
    empty = SGDResult(
        model="ptr", module=None, weights={}, history=[], epochs=0, iterations=0, seconds=0.0,
        converged=False, stopping_reason="max_epochs", best_epoch=0, beta=1e-3, rho=0.0,
    )

    with pytest.raises(InvalidParameterError, match="cannot plot 'ptr': it has no history"):
        plot_validation_accuracy([empty], tmp_path / "empty.png")
