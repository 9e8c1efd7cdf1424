import json

import numpy as np

from convexar_opt.cli import main


def test_fit_writes_json_with_required_keys(tmp_path, capsys):
    out = tmp_path / "out.json"
    status = main(["fit", "--dataset", "mushrooms", "--model", "cpr", "--window", "4", "--patterns", "5", "--json", str(out), "--quiet"])
    assert status == 0

    data = json.loads(out.read_text())
    for key in ("dataset", "model", "settings", "versions", "status", "objective", "seconds", "nll", "certificate"):
        assert key in data
    assert set(data["nll"]) == {"train", "valid", "test"}
    assert all(np.isfinite(value) for value in data["nll"].values())
    for key in ("primal", "dual", "gap", "relative_gap"):
        assert key in data["certificate"]
    assert data["settings"]["seed"] == 0
    assert "numpy" in data["versions"]

    printed = capsys.readouterr().out
    assert "nats per vector, summed over the 108 modelled positions" in printed


def test_fit_on_user_npz(tmp_path, markov_vectors):
    data = tmp_path / "mine.npz"
    np.savez(data, train=markov_vectors[:40], valid=markov_vectors[40:50], test=markov_vectors[50:])
    out = tmp_path / "out.json"
    status = main(["fit", "--dataset", str(data), "--model", "count", "--window", "3", "--json", str(out), "--quiet"])
    assert status == 0
    assert json.loads(out.read_text())["n_positions"] == 13


def test_fit_on_user_libsvm(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(30):
        indices = np.flatnonzero(rng.random(12) < 0.4) + 1
        lines.append("0 " + " ".join(f"{index}:1" for index in indices))
    path = tmp_path / "train.svm"
    path.write_text("\n".join(lines) + "\n")
    status = main(["fit", "--dataset", str(path), "--n-features", "12", "--model", "count", "--window", "3", "--quiet"])
    assert status == 0


def test_bad_window_exits_with_message(capsys):
    status = main(["fit", "--dataset", "mushrooms", "--model", "cpr", "--window", "112"])
    assert status == 2
    assert "window must be an integer from 1 to 111; got 112" in capsys.readouterr().err


def test_unknown_dataset_exits_with_message(capsys):
    status = main(["fit", "--dataset", "no_such_set", "--model", "cpr"])
    assert status == 2
    assert "neither a bundled data set" in capsys.readouterr().err


def test_negative_beta_exits_before_work(capsys):
    status = main(["fit", "--dataset", "mushrooms", "--model", "cpe", "--beta", "-1"])
    assert status == 2
    assert "beta must be finite and >= 0; got -1.0" in capsys.readouterr().err


def test_zero_patterns_exits_before_work(capsys):
    status = main(["fit", "--dataset", "mushrooms", "--model", "cpe", "--patterns", "0"])
    assert status == 2
    assert "n_patterns must be an integer from 1; got 0" in capsys.readouterr().err


def test_save_model_then_load(tmp_path):
    from convexar_opt.model import FittedModel

    path = tmp_path / "model.npz"
    status = main(["fit", "--dataset", "mushrooms", "--model", "cpe", "--window", "3", "--patterns", "4", "--save-model", str(path), "--quiet"])
    assert status == 0
    assert FittedModel.load(path).kind == "exact"


def test_datasets_lists_adult(capsys):
    assert main(["datasets"]) == 0
    assert "adult" in capsys.readouterr().out
