import json

import numpy as np
import pytest

from convexar_opt import ModelFileError, RelaxedProblem
from convexar_opt.data import build_design
from convexar_opt.model import FittedModel


@pytest.fixture
def fitted(small_design):
    problem = RelaxedProblem(small_design, n_patterns=4, beta=0.01, random_state=0)
    problem.solve(solver="CLARABEL")
    return FittedModel(
        kind="relaxed",
        window=3,
        intercept=True,
        weights={"v": problem.solution.v, "w": problem.solution.w},
        gates=problem.gates,
        metadata={"seed": 0},
    )


def test_save_load_round_trip(fitted, small_design, tmp_path):
    path = tmp_path / "model.npz"
    fitted.save(path)
    loaded = FittedModel.load(path)

    np.testing.assert_array_equal(loaded.gates, fitted.gates)
    np.testing.assert_array_equal(loaded.weights["v"], fitted.weights["v"])
    assert loaded.metadata == {"seed": 0}
    np.testing.assert_array_equal(loaded.logits(small_design), fitted.logits(small_design))


def test_repr_lists_shapes_not_values(fitted):
    text = repr(fitted)
    assert text == (
        "FittedModel(kind='relaxed', window=3, intercept=True, rule='gated', "
        "weights={v: (4, 4), w: (4, 4)}, gates=(4, 4))"
    )


def test_model_file_has_no_pickle(fitted, tmp_path):
    path = tmp_path / "model.npz"
    fitted.save(path)
    with np.load(path, allow_pickle=False) as archive:
        for name in archive.files:
            assert archive[name].dtype != object


def test_truncated_model_file(fitted, tmp_path):
    path = tmp_path / "model.npz"
    fitted.save(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelFileError, match=r"not a readable model file"):
        FittedModel.load(path)


def _rewrite(path, replace):
    with np.load(path, allow_pickle=False) as archive:
        contents = {name: archive[name] for name in archive.files}
    replace(contents)
    with open(path, "wb") as handle:
        np.savez(handle, **contents)


def test_altered_weights_detected(fitted, tmp_path):
    path = tmp_path / "model.npz"
    fitted.save(path)

    def perturb(contents):
        contents["weights.v"] = contents["weights.v"] + 1e-9

    _rewrite(path, perturb)
    with pytest.raises(ModelFileError, match=r"'weights.v' does not match its recorded checksum"):
        FittedModel.load(path)


def test_incompatible_version_detected(fitted, tmp_path):
    path = tmp_path / "model.npz"
    fitted.save(path)

    def bump(contents):
        header = json.loads(str(contents["header"]))
        header["format_version"] = 99
        contents["header"] = np.array(json.dumps(header))

    _rewrite(path, bump)
    with pytest.raises(ModelFileError, match=r"format version 99.*reads format 1 only"):
        FittedModel.load(path)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, train=np.eye(2))
    with pytest.raises(ModelFileError, match=r"has no header"):
        FittedModel.load(path)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"not found"):
        FittedModel.load(tmp_path / "absent.npz")


def test_design_with_other_window_rejected(fitted, markov_vectors):
    design = build_design(markov_vectors, window=4)
    with pytest.raises(ValueError, match=r"window 4 .* fitted with window 3"):
        fitted.logits(design)


def test_score_samples_sums_to_design_nll(fitted, markov_vectors):
    design = build_design(markov_vectors, window=3)
    per_vector = fitted.score_samples(markov_vectors)
    assert per_vector.shape == (len(markov_vectors),)
    np.testing.assert_allclose(-per_vector.mean(), fitted.evaluate(design)["nll"], rtol=1e-12)
