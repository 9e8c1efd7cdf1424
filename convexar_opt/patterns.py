r"""Activation patterns: gate vectors and the masks they induce.

A gate vector :math:`g_i \in \mathbb R^{p}` (p = window, plus 1 with an intercept)
switches pattern :math:`i` on for the contexts with :math:`\bar x_k^\top g_i \ge 0`,
which gives the mask :math:`d_i = 1[\bar X g_i \ge 0]` and :math:`D_i = \mathrm{diag}(d_i)`.
Models store gates, not masks, so the same rule applies to validation and test data.
"""

import numpy as np

from ._validation import check_int
from .exceptions import InvalidDataError, InvalidParameterError, SolverError


def sample_gates(n_weights, n_patterns, random_state=None):
    """Draw ``n_patterns`` standard Gaussian gate vectors.

    Parameters
    ----------
    n_weights : int
        Length p of each gate: the window, plus 1 when the design has an intercept.
    n_patterns : int
        Number P of gates.
    random_state : int, numpy.random.Generator or None, default=None
        Seed or generator; the same seed always gives the same gates.

    Returns
    -------
    ndarray of shape (n_patterns, n_weights)
    """
    n_weights = check_int(n_weights, "n_weights", 1)
    n_patterns = check_int(n_patterns, "n_patterns", 1, hint=" Use at least one pattern.")
    rng = np.random.default_rng(random_state)
    return rng.standard_normal((n_patterns, n_weights))


def gate_masks(features, gates):
    """Return the boolean masks ``features @ gates.T >= 0`` of shape (n_rows, n_patterns)."""
    features = np.asarray(features, dtype=np.float64)
    gates = np.asarray(gates, dtype=np.float64)
    if gates.ndim != 2 or gates.shape[1] != features.shape[1]:
        raise InvalidDataError(
            f"gates must have shape (n_patterns, {features.shape[1]}) to match the "
            f"features; got {gates.shape}. Gates sampled with a different window or "
            "intercept setting cannot be reused."
        )
    return features @ gates.T >= 0.0


def unique_pattern_indices(masks):
    """Return the indices of the first gate of every distinct mask, in gate order.

    Dropping a gate whose mask repeats another changes none of the optimal values.
    """
    masks = np.asarray(masks, dtype=bool)
    _, first = np.unique(masks.T, axis=0, return_index=True)
    return np.sort(first)


# Exact enumeration ----------------------------------------------------------------

# A witness counts as lying on one side of a hyperplane only if its margin exceeds this
# fraction of |x| |u|; smaller margins are treated as ties and resolved by an LP.
_SIDE_TOLERANCE = 1e-9


def _hyperplane_normals(features):
    """Return unit normals of the distinct hyperplanes x^T u = 0 of the non-zero rows."""
    norms = np.linalg.norm(features, axis=1)
    rows = features[norms > 0.0] / norms[norms > 0.0, None]

    # x and -x (or any multiple) define the same hyperplane: fix the sign of the first
    # non-zero entry before removing duplicates.
    first = np.argmax(np.abs(rows) > 1e-12, axis=1)
    signs = np.sign(rows[np.arange(rows.shape[0]), first])
    rows = np.round(rows * signs[:, None], 12)
    return np.unique(rows, axis=0)


def _strict_side_point(normals, signs):
    """Return u with ``signs * (normals @ u) >= 1``, or None when no such u exists."""
    from scipy.optimize import linprog

    n_weights = normals.shape[1]
    result = linprog(
        np.zeros(n_weights),
        A_ub=-(signs[:, None] * normals),
        b_ub=-np.ones(normals.shape[0]),
        bounds=[(None, None)] * n_weights,
        method="highs",
    )
    if result.status == 0:
        return result.x
    if result.status == 2:
        return None
    raise SolverError(f"HiGHS failed on a pattern-enumeration LP: {result.message}")


def _centred_witness(normals, signs, rng):
    """Return a gate deep inside the chamber with the given signs, off every other hyperplane.

    Maximises the smallest margin ``signs * (normals @ u)`` over the box |u_j| <= 1,
    then moves the solution by a random step of half that margin. The LP optimum is a
    vertex, so it can lie on the hyperplane of a context absent from the training
    rows. The random step leaves every such hyperplane with probability one, and it
    keeps the sign of each training row.
    """
    from scipy.optimize import linprog

    n_weights = normals.shape[1]
    cost = np.zeros(n_weights + 1)
    cost[-1] = -1.0
    A_ub = np.hstack([-(signs[:, None] * normals), np.ones((normals.shape[0], 1))])
    result = linprog(
        cost,
        A_ub=A_ub,
        b_ub=np.zeros(normals.shape[0]),
        bounds=[(-1.0, 1.0)] * n_weights + [(None, 1.0)],
        method="highs",
    )
    if result.status != 0 or result.x[-1] <= 0.0:
        raise SolverError(
            f"HiGHS found no interior point of an enumerated chamber ({result.message})."
        )

    centre, margin = result.x[:-1], result.x[-1]
    step = rng.standard_normal(n_weights)
    return centre + 0.5 * margin * step / np.linalg.norm(step)


def enumerate_patterns(features, *, max_patterns=100_000, random_state=0, progress=False):
    r"""Enumerate every activation pattern of the rows exactly, one interior gate per pattern.

    The non-zero rows :math:`x_k` define hyperplanes :math:`x_k^\top u = 0` through the
    origin. Each chamber of this arrangement (a connected component of the
    complement) is one activation pattern. Every weight vector lies in the closure of
    some chamber, so the masks of the returned gates are all the patterns that a ReLU
    unit can have on these rows. The chambers are built one hyperplane at a time:
    a chamber splits in two when an LP (scipy ``linprog`` with HiGHS) finds points
    strictly on both sides of the new hyperplane. At most two LPs per chamber and row
    are solved, so the cost is about ``n_rows * n_patterns`` small LPs.

    Parameters
    ----------
    features : array-like of shape (n_rows, n_weights)
        Rows of the design, for example ``WeightedDesign.features`` (contexts plus a
        constant column when the design has an intercept). Zero rows and repeated
        hyperplanes are allowed. A zero row is on in every pattern.
    max_patterns : int, default=100_000
        Stop with an error once the number of chambers found exceeds this.
    random_state : int, numpy.random.Generator or None, default=0
        Seed of the starting point and of the steps that move witnesses off hyperplanes
        of rows not in ``features``.
    progress : bool, default=False
        Show a tqdm progress bar over the hyperplanes.

    Returns
    -------
    gates : ndarray of shape (n_patterns, n_weights)
        One interior gate per chamber: :math:`x_k^\top g \ne 0` with the chamber's sign
        on every non-zero row, so ``gate_masks(features, gates)`` gives each pattern
        exactly once.

    Raises
    ------
    InvalidDataError
        If ``features`` is not a non-empty finite 2-D array.
    InvalidParameterError
        If the number of chambers exceeds ``max_patterns``.
    SolverError
        If HiGHS fails on an LP, or the witnesses do not give distinct masks.

    Warnings
    --------
    Limitations: the count grows fast with the window. With every non-zero context of
    window r present and no intercept there are 2, 6, 32, 370 and 11292 patterns for
    r = 1..5, and r = 5 took 92 s (tens of thousands of LPs) on one core of the
    development machine.

    Examples
    --------
    >>> import itertools
    >>> contexts = np.array(list(itertools.product([0, 1], repeat=3)))
    >>> enumerate_patterns(contexts).shape
    (32, 3)
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
        raise InvalidDataError(
            f"features must be a non-empty 2-D array of shape (n_rows, n_weights); got "
            f"shape {features.shape}."
        )
    if not np.all(np.isfinite(features)):
        raise InvalidDataError("features must be finite; remove NaN and infinite entries.")
    max_patterns = check_int(max_patterns, "max_patterns", 1)
    rng = np.random.default_rng(random_state)

    normals = _hyperplane_normals(features)
    n_weights = features.shape[1]
    start = rng.standard_normal(n_weights)
    cells = [(np.zeros(0), start)]

    steps = range(normals.shape[0])
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="enumerating patterns", unit="hyperplane")
    for k in steps:
        cells = _split_cells(cells, normals[: k + 1])
        if len(cells) > max_patterns:
            raise InvalidParameterError(
                f"the rows have more than max_patterns = {max_patterns} activation "
                f"patterns ({len(cells)} after {k + 1} of {normals.shape[0]} "
                "hyperplanes). Use a shorter window or fewer distinct contexts, raise "
                "max_patterns, or sample gates with sample_gates instead."
            )

    if normals.shape[0] == 0:
        return start[None, :]
    gates = np.array([_centred_witness(normals, signs, rng) for signs, _ in cells])
    n_distinct = np.unique(gate_masks(features, gates).T, axis=0).shape[0]
    if n_distinct != gates.shape[0]:
        raise SolverError(
            f"pattern enumeration produced {gates.shape[0]} gates but only {n_distinct} "
            "distinct masks; the LP witnesses are not interior. Rescale the features "
            "or report the data that triggers this."
        )
    return gates


def _split_cells(cells, normals):
    """Refine the chambers of the first hyperplanes by the last row of ``normals``."""
    new_normal = normals[-1]
    refined = []
    for signs, witness in cells:
        side = float(new_normal @ witness)
        threshold = _SIDE_TOLERANCE * np.linalg.norm(witness)
        for sign in (1.0, -1.0):
            new_signs = np.append(signs, sign)
            if sign * side > threshold:
                refined.append((new_signs, witness))
                continue
            point = _strict_side_point(normals, new_signs)
            if point is not None:
                refined.append((new_signs, point))
    return refined
