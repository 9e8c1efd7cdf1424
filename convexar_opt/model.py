"""Fitted autoregressive models: evaluation on new data and safe files.

A :class:`FittedModel` contains what is needed to compute the logit of any context: the
kind of model, the window, the intercept setting, the gate vectors and the weights. It
is saved as a NumPy ``.npz`` archive of plain arrays plus a JSON header, loaded with
``allow_pickle=False``, so loading a file never executes code.
"""

import hashlib
import json
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_int
from .data import build_design, window_data
from .evaluation import accuracy, count_logits, nll_per_vector
from .exceptions import InvalidDataError, InvalidParameterError, ModelFileError
from .objectives import gated_logits, relu_logits
from .patterns import gate_masks

FILE_FORMAT = "convexar_opt.model"
FORMAT_VERSION = 1
KINDS = ("exact", "relaxed", "hinge", "nn", "count")
RULES = ("gated", "relu")
_HEADER_DIGEST = "header_sha256"

_REQUIRED_WEIGHTS = {
    "exact": ("v", "w"),
    "relaxed": ("v", "w"),
    "hinge": ("v", "w"),
    "nn": ("U", "alpha"),
    "count": ("contexts", "ones", "zeros"),
}


@dataclass
class FittedModel:
    """A trained model of one of the kinds ``exact``, ``relaxed``, ``hinge``, ``nn``, ``count``.

    Attributes
    ----------
    kind : str
        Which model produced the weights.
    window : int
        Context length r.
    intercept : bool
        Whether contexts carry a constant feature.
    weights : dict of str to ndarray
        ``v`` and ``w`` of shape (P, p) for the convex programs, ``U`` (m, p) and
        ``alpha`` (m,) for the network, ``contexts``/``ones``/``zeros`` for the count model.
    gates : ndarray of shape (P, p) or None
        Gate vectors of the convex programs.
    rule : {'gated', 'relu'}, default='gated'
        Test-time rule of the exact and hinge programs: the gated form
        :math:`\\sum_i 1[x^\\top g_i \\ge 0] x^\\top (v_i - w_i)` (Gabbur et al.'s rule), or
        the reconstructed ReLU network :math:`\\sum_i (x^\\top v_i)_+ - (x^\\top w_i)_+`. The two
        agree on every context seen in training when the solution is feasible.
    metadata : dict
        Settings, seed, versions and figures worth keeping with the weights.
    """

    kind: str
    window: int
    intercept: bool
    weights: dict
    gates: np.ndarray | None = None
    rule: str = "gated"
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise InvalidParameterError(f"kind must be one of {list(KINDS)}; got {self.kind!r}.")
        if self.rule not in RULES:
            raise InvalidParameterError(f"rule must be one of {list(RULES)}; got {self.rule!r}.")
        missing = [name for name in _REQUIRED_WEIGHTS[self.kind] if name not in self.weights]
        if missing:
            raise InvalidParameterError(f"a {self.kind!r} model needs weights {missing}.")
        if self.kind in ("exact", "relaxed", "hinge") and self.gates is None:
            raise InvalidParameterError(f"a {self.kind!r} model needs its gate vectors.")
        self._check_shapes()

    def __repr__(self):
        shapes = ", ".join(f"{name}: {np.shape(value)}" for name, value in self.weights.items())
        gates = "None" if self.gates is None else str(np.shape(self.gates))
        return (
            f"FittedModel(kind={self.kind!r}, window={self.window}, intercept={self.intercept}, "
            f"rule={self.rule!r}, weights={{{shapes}}}, gates={gates})"
        )

    def _check_shapes(self):
        """Raise InvalidParameterError when an array does not fit the window and intercept."""
        window = check_int(self.window, "window", 1)
        n_weights = window + int(bool(self.intercept))
        shapes = {name: np.shape(value) for name, value in self.weights.items()}

        if self.kind == "count":
            n_contexts = shapes["contexts"][0] if len(shapes["contexts"]) == 2 else -1
            expected = {
                "contexts": (n_contexts, window),
                "ones": (n_contexts,),
                "zeros": (n_contexts,),
            }
        elif self.kind == "nn":
            n_units = shapes["U"][0] if len(shapes["U"]) == 2 else -1
            expected = {"U": (n_units, n_weights), "alpha": (n_units,)}
        else:
            shapes["gates"] = np.shape(self.gates)
            n_patterns = shapes["gates"][0] if len(shapes["gates"]) == 2 else -1
            expected = dict.fromkeys(("gates", "v", "w"), (n_patterns, n_weights))
        for name, shape in expected.items():
            if shapes[name] != shape:
                raise InvalidParameterError(
                    f"{name} of a {self.kind!r} model with window {self.window} and "
                    f"intercept {self.intercept} must have shape {shape}, not "
                    f"{shapes[name]}. Pass the arrays of one fit together."
                )

    def _count_design(self):
        from .data import WeightedDesign

        return WeightedDesign(
            contexts=self.weights["contexts"].astype(np.uint8),
            ones=self.weights["ones"],
            zeros=self.weights["zeros"],
            n_vectors=1.0,
            n_positions=1,
            intercept=self.intercept,
        )

    def logits(self, design):
        """Return the logits of the distinct contexts of ``design``."""
        if design.window != self.window or design.intercept != self.intercept:
            raise InvalidDataError(
                f"the design has window {design.window} and intercept {design.intercept}, "
                f"but the model was fitted with window {self.window} and intercept "
                f"{self.intercept}. Build the design with the model's settings."
            )
        features = design.features
        if self.kind == "count":
            return count_logits(self._count_design(), design)
        if self.kind == "nn":
            return np.maximum(features @ self.weights["U"].T, 0.0) @ self.weights["alpha"]

        v, w = self.weights["v"], self.weights["w"]
        if self.kind != "relaxed" and self.rule == "relu":
            return relu_logits(features, v, w)
        return gated_logits(features, gate_masks(features, self.gates), v, w)

    def design_for(self, X):
        """Return the compressed design of binary vectors ``X`` with the model's settings."""
        return build_design(X, self.window, intercept=self.intercept)

    def evaluate(self, design):
        """Return NLL per vector (nats, over the T modelled positions) and accuracy."""
        logits = self.logits(design)
        return {
            "nll": nll_per_vector(design, logits),
            "accuracy": accuracy(design, logits),
            "n_vectors": design.n_vectors,
            "n_positions": design.n_positions,
        }

    def score_samples(self, X):
        """Return the log-likelihood in nats of each vector over its modelled positions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Binary vectors of the dimension the model was fitted on.

        Returns
        -------
        ndarray of shape (n_samples,)
            Conditional log-likelihood; the first ``window`` entries are not modelled.
        """
        X_lagged, y = window_data(X, self.window)
        n_samples = np.asarray(X).shape[0]
        design = self.design_for(X)
        logits = self.logits(design)

        powers = 1 << np.arange(self.window - 1, -1, -1, dtype=np.int64)
        context_index = {code: k for k, code in enumerate((design.contexts.astype(np.int64) @ powers).tolist())}
        rows = np.array([context_index[code] for code in (X_lagged.astype(np.int64) @ powers).tolist()])
        row_logits = logits[rows]
        log_likelihood = -(np.logaddexp(0.0, row_logits) - y * row_logits)
        return log_likelihood.reshape(n_samples, -1).sum(axis=1)

    # Files -------------------------------------------------------------------------

    def save(self, path):
        """Write the model to ``path`` as an ``.npz`` archive of plain arrays and a JSON header."""
        arrays = {f"weights.{name}": np.asarray(value) for name, value in self.weights.items()}
        if self.gates is not None:
            arrays["gates"] = np.asarray(self.gates, dtype=np.float64)

        header = {
            "format": FILE_FORMAT,
            "format_version": FORMAT_VERSION,
            "package_version": _package_version(),
            "kind": self.kind,
            "window": int(self.window),
            "intercept": bool(self.intercept),
            "rule": self.rule,
            "metadata": self.metadata,
            "arrays": {name: _array_digest(array) for name, array in arrays.items()},
        }
        header = json.loads(json.dumps(header, default=_json_default))
        header[_HEADER_DIGEST] = _header_digest(header)
        arrays["header"] = np.array(json.dumps(header, sort_keys=True))
        with open(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`.

        Raises
        ------
        ModelFileError
            If the file is missing, truncated, altered, not a model file, or written by an
            incompatible format version.
        """
        try:
            with np.load(path, allow_pickle=False) as archive:
                contents = {name: archive[name] for name in archive.files}
        except FileNotFoundError:
            raise ModelFileError(f"model file {path!r} not found.") from None
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
            raise ModelFileError(
                f"{path!r} is not a readable model file (truncated or not written by "
                f"FittedModel.save): {error}"
            ) from None

        header = _read_header(path, contents)
        arrays = {name: value for name, value in contents.items() if name != "header"}
        if sorted(arrays) != sorted(header["arrays"]):
            raise ModelFileError(
                f"{path!r}: the file contains arrays {sorted(arrays)} but its header lists "
                f"{sorted(header['arrays'])}; the file was altered."
            )
        for name, array in arrays.items():
            if _array_digest(array) != header["arrays"][name]:
                raise ModelFileError(
                    f"{path!r}: array {name!r} does not match its recorded checksum; the "
                    "file was altered or damaged."
                )

        weights = {
            name.split(".", 1)[1]: value for name, value in arrays.items() if name.startswith("weights.")
        }
        try:
            return cls(
                kind=header["kind"],
                window=header["window"],
                intercept=header["intercept"],
                weights=weights,
                gates=arrays.get("gates"),
                rule=header["rule"],
                metadata=header["metadata"],
            )
        except (InvalidParameterError, KeyError) as error:
            raise ModelFileError(f"{path!r} does not describe a valid model: {error}") from None


def _read_header(path, contents):
    if "header" not in contents:
        raise ModelFileError(f"{path!r} has no header; it was not written by FittedModel.save.")
    try:
        header = json.loads(str(contents["header"]))
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path!r}: the header is not valid JSON ({error}).") from None
    if not isinstance(header, dict) or header.get("format") != FILE_FORMAT:
        raise ModelFileError(f"{path!r} is not a convexar_opt model file.")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path!r} has format version {header.get('format_version')!r}, written by "
            f"convexar_opt {header.get('package_version')!r}; this version reads format "
            f"{FORMAT_VERSION} only. Re-fit the model or load it with the version that wrote it."
        )
    recorded = header.get(_HEADER_DIGEST)
    if recorded is None:
        raise ModelFileError(
            f"{path!r}: the header has no checksum, so the file was altered or written by an "
            "early build of convexar_opt. Re-fit and save the model again."
        )
    if recorded != _header_digest(header):
        raise ModelFileError(
            f"{path!r}: the header does not match its recorded checksum; the file was "
            "altered or damaged."
        )
    return header


def _header_digest(header):
    """Return the sha256 of the header's canonical JSON, without the checksum entry."""
    content = {name: value for name, value in header.items() if name != _HEADER_DIGEST}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()


def _array_digest(array):
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(array.tobytes()).hexdigest()
    return f"{array.dtype.str}:{list(array.shape)}:{digest}"


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a model header")


def _package_version():
    from . import __version__

    return __version__


__all__ = ["FittedModel", "KINDS", "RULES"]
