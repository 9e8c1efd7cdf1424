r"""FISTA with gradient restart for the relaxed program (6).

.. math::

    \min_{z}\ L\Big(\sum_{i=1}^P D_i \bar X z_i\Big) + \beta \sum_{i=1}^P \lVert z_i\rVert_2

Each iteration takes a gradient step of length :math:`1/L_6` on the loss,
:math:`L_6 = \lambda_{\max}(M^\top W M)/(4N)`, then the group soft-threshold
:math:`z_i \mapsto \max(0, 1 - \beta/(L_6 \lVert z_i\rVert))\, z_i`, with Nesterov momentum.
The momentum is reset when :math:`\langle y^k - z^{k+1}, z^{k+1} - z^k\rangle > 0`
(O'Donoghue and Candes' gradient restart). A restart test on objective values stalls
near the optimum, where the differences drop below floating-point resolution. The run
stops on the duality-gap certificate of :mod:`convexar_opt.certificates`.
"""

import logging

import numpy as np

from .._validation import check_int
from ..certificates import certify, dual_value
from ._masked_design import MaskedDesign
from ._native import CONVERGED, ITERATION_LIMIT, UNCERTIFIABLE, NativeSolver, RunOutcome
from ._torch_arrays import TorchArrays, fista_device

logger = logging.getLogger(__name__)


def group_soft_threshold(z, threshold):
    """Return the prox of ``threshold * sum_i ||z_i||``: shrink every row of ``z`` towards 0."""
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    factors = np.maximum(0.0, 1.0 - threshold / np.maximum(norms, np.finfo(float).tiny))
    return factors * z


def relaxed_gap(operator, beta, z):
    """Return (primal, dual) of the relaxed program's certificate at ``z``.

    The same bound as :func:`convexar_opt.certificates.certify` for the relaxed program,
    computed with two products with the masked design.
    """
    logits = operator.logits(z)
    gradient = operator.loss_gradient(logits)
    largest = float(np.linalg.norm(operator.correlations(gradient), axis=1).max())
    scale = 1.0 if largest <= beta else beta / largest
    primal = operator.loss(logits) + beta * float(np.linalg.norm(z, axis=1).sum())
    return primal, dual_value(operator.design, logits, scale)


def run_fista(
    operator,
    beta,
    start,
    *,
    tol,
    max_iter,
    check_every,
    log,
    log_every,
    lipschitz=None,
    arrays=None,
):
    """Run FISTA with gradient restart from ``start`` until the relative gap is <= tol.

    Parameters
    ----------
    operator : MaskedDesign
        The masked design of the problem.
    beta : float
        Group-norm weight.
    start : ndarray of shape (n_patterns, n_weights)
        Starting point z.
    tol : float
        Relative certified gap at which to stop.
    max_iter : int
        Iteration limit.
    check_every : int
        Evaluate the certificate every this many iterations.
    log : callable
        ``log(message, *args)`` for progress lines.
    log_every : int
        Log every this many iterations.
    lipschitz : float or None, default=None
        The Lipschitz constant L_6 when already known.
    arrays : NumpyArrays, TorchArrays or None, default=None
        Where the iterations run. None means NumPy on ``operator``.

    Returns
    -------
    z : ndarray of shape (n_patterns, n_weights)
        The point with the smallest certified gap seen.
    iterations : int
        Iterations run.
    reached : bool
        Whether the relative gap of ``z`` is <= tol.
    """
    arrays = NumpyArrays(operator) if arrays is None else arrays
    z = arrays.start(start)
    best_z, best_gap = arrays.copy(z), arrays.relative_gap(beta, z)
    if best_gap <= tol:
        return arrays.result(best_z), 0, True

    if lipschitz is None:
        lipschitz = operator.lipschitz_constant()
    if lipschitz <= 0.0:
        # Every mask is empty: the loss does not depend on z, and z = 0 is optimal.
        return np.zeros_like(arrays.result(z)), 0, True
    step = 1.0 / lipschitz

    momentum_point = arrays.copy(z)
    momentum = 1.0
    for iteration in range(1, max_iter + 1):
        gradient = arrays.gradient(momentum_point)
        z_next = arrays.shrink(momentum_point - step * gradient, step * beta)
        difference = z_next - z

        if arrays.inner(momentum_point - z_next, difference) > 0.0:
            momentum = 1.0
        momentum_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * momentum * momentum))
        momentum_point = z_next + ((momentum - 1.0) / momentum_next) * difference
        z, momentum = z_next, momentum_next

        if iteration % check_every == 0 or iteration == max_iter:
            gap = arrays.relative_gap(beta, z)
            if gap < best_gap:
                best_z, best_gap = arrays.copy(z), gap
            if iteration % log_every < check_every:
                log("FISTA iteration %d: relative gap %.3e", iteration, gap)
            if gap <= tol:
                return arrays.result(best_z), iteration, True
    return arrays.result(best_z), max_iter, False


class NumpyArrays:
    """FISTA's array operations on NumPy float64 arrays.

    Parameters
    ----------
    operator : MaskedDesign
    """

    def __init__(self, operator):
        self.operator = operator

    @staticmethod
    def start(z):
        """Return a float64 copy of the starting point."""
        return np.array(z, dtype=np.float64, copy=True)

    @staticmethod
    def result(z):
        """Return ``z`` as a NumPy array."""
        return z

    @staticmethod
    def copy(z):
        """Return a copy of ``z``."""
        return z.copy()

    def gradient(self, z):
        """Return the loss gradient in z, shape (n_patterns, n_weights)."""
        operator = self.operator
        return operator.correlations(operator.loss_gradient(operator.logits(z)))

    @staticmethod
    def shrink(z, threshold):
        """Return the group soft-threshold of ``z``."""
        return group_soft_threshold(z, threshold)

    @staticmethod
    def inner(a, b):
        """Return the inner product of two arrays of the same shape."""
        return float(np.vdot(a, b))

    def relative_gap(self, beta, z):
        """Return the certified relative gap of ``z``."""
        return _relative_gap(self.operator, beta, z)


def _relative_gap(operator, beta, z):
    primal, dual = relaxed_gap(operator, beta, z)
    return (primal - dual) / max(abs(primal), np.finfo(float).tiny)


class FistaSolver(NativeSolver):
    """FISTA for the relaxed program, stopped on the certified duality gap.

    ``warm_start=True`` starts from the previous ``z = v - w`` when the shapes match.
    A start that already meets ``tol`` is returned after 0 iterations. With the
    ``device`` option the iterations and certificate checks run on PyTorch float64
    tensors (for example on a GPU), and the returned point is certified again on NumPy.

    Warnings
    --------
    The ``device`` option has been run on the CPU only, where it takes about twice as
    long as NumPy (same iterations). A GPU can only pay off when the masked design is
    large (many patterns); the CUDA path has not been run.
    """

    name = "FISTA"
    programs = ("relaxed",)
    default_max_iter = 100_000
    default_log_every = 1000
    warm_start_effect = "starts from the previous z = v - w when the shapes match"
    options = {
        **NativeSolver.options,
        "check_every": "evaluate the certificate every this many iterations (default 10)",
        "device": "run the iterations on this PyTorch device ('cpu', 'cuda', 'auto') in "
        "float64; default None runs them on NumPy",
    }

    def _read_extra_options(self, options):
        device = options.get("device")
        if device is not None:
            fista_device(device)
        return {
            "check_every": check_int(options.get("check_every", 10), "check_every", 1),
            "device": device,
        }

    @staticmethod
    def _arrays(operator, settings):
        device = settings.extra["device"]
        return None if device is None else TorchArrays(operator, device)

    def _run(self, problem, start_point, settings):
        operator = MaskedDesign(problem.design, problem.masks)
        shape = (problem.n_patterns, problem.design.n_weights)
        start = np.zeros(shape) if start_point is None else start_point[0] - start_point[1]
        if problem.beta == 0.0:
            return self._run_unregularised(problem, operator, start, settings)

        z, iterations, _ = run_fista(
            operator,
            problem.beta,
            start,
            tol=settings.tol,
            max_iter=settings.max_iter,
            check_every=settings.extra["check_every"],
            log=settings.log,
            log_every=settings.log_every,
            arrays=self._arrays(operator, settings),
        )
        certificate = certify("relaxed", problem.design, problem.masks, z, None, problem.beta)
        reached = certificate.relative_gap <= settings.tol
        return RunOutcome(
            v=z,
            w=np.zeros_like(z),
            certificate=certificate,
            iterations=iterations,
            reason=CONVERGED if reached else ITERATION_LIMIT,
        )

    def _run_unregularised(self, problem, operator, start, settings):
        """Run plain accelerated gradient descent (beta = 0) until the gradient is small.

        The certificate cannot close at beta = 0, so the run stops once the largest
        gradient entry is below tol times the loss, with reason 'uncertifiable'.
        """
        lipschitz = operator.lipschitz_constant()
        arrays = self._arrays(operator, settings)
        chunk = 100 * settings.extra["check_every"]
        z, done, reason = start, 0, ITERATION_LIMIT
        while done < settings.max_iter:
            steps = min(chunk, settings.max_iter - done)
            z, _, _ = run_fista(
                operator,
                0.0,
                z,
                tol=0.0,
                max_iter=steps,
                check_every=settings.extra["check_every"],
                log=settings.log,
                log_every=settings.log_every,
                lipschitz=lipschitz,
                arrays=arrays,
            )
            done += steps
            logits = operator.logits(z)
            gradient = operator.correlations(operator.loss_gradient(logits))
            if np.abs(gradient).max() <= settings.tol * max(abs(operator.loss(logits)), 1.0):
                reason = UNCERTIFIABLE
                break
        certificate = certify("relaxed", problem.design, problem.masks, z, None, 0.0)
        return RunOutcome(
            v=z, w=np.zeros_like(z), certificate=certificate, iterations=done, reason=reason
        )
