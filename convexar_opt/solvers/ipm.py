r"""Primal-dual interior-point method for the exact (5), relaxed (6) and hinge (7) programs.

The programs are written in the conic form of :mod:`._kkt`. Each group norm becomes
the epigraph :math:`t_j \ge \lVert u_j\rVert`, a second-order cone. The cone
constraints of (5) and the hinge slacks of (7) are non-negative orthants. The logistic
loss stays a smooth objective with its exact Hessian. Each iteration takes a
Mehrotra predictor-corrector step with Nesterov-Todd scaling from an infeasible start.
The Newton system is reduced to p x p blocks plus the rank-K loss term and solved with
one K x K (Woodbury) or one P p x P p Cholesky factor, whichever is smaller.

The run stops on the duality-gap certificate of :mod:`convexar_opt.certificates`,
evaluated with the method's own cone multipliers (so no non-negative least squares).
For (5) the certified point is made exactly feasible first. When the interior-point
iterates stall above the tolerance, :mod:`._polish` continues from the best one.
"""

import logging

import numpy as np
from scipy.linalg import LinAlgError

from ..exceptions import InvalidParameterError, SolverError
from ._ipm_iterate import (
    Scalings,
    affine_targets,
    corrector_targets,
    direction,
    initial_iterate,
    max_step,
    newton_system,
    residuals,
)
from ._kkt import ConicForm
from ._points import block_multipliers, certify_blocks, split_weights
from ._polish import polish_blocks
from ._native import CONVERGED, ITERATION_LIMIT, STALLED, UNCERTIFIABLE, NativeSolver, RunOutcome

logger = logging.getLogger(__name__)

_STEP_FRACTION = 0.99
_WEIGHT_LIMIT = 1e12
# The certificate is evaluated once s^T z <= _CHECK_FACTOR * tol * |objective|.
_CHECK_FACTOR = 10.0
# Below s^T z = _COMPLEMENTARITY_FLOOR * |objective| the iterates carry no more information.
_COMPLEMENTARITY_FLOOR = 1e-13


def run_ipm(form, start, tol, max_iter, log, log_every):
    """Run the interior-point method and return (best u, its certificate, iterations, reason).

    Parameters
    ----------
    form : ConicForm
    start : ndarray of shape (n_blocks, p) or None
        Weights to start from; None for the default start.
    tol : float
        Relative certified gap at which to stop.
    max_iter : int
        Iteration limit.
    log : callable
        ``log(message, *args)`` for progress lines.
    log_every : int
        Log every this many iterations.
    """
    operator = form.operator
    point = initial_iterate(form, start)
    tracker = _BestPoint(form)
    certifiable = form.beta > 0.0
    woodbury = None

    for iteration in range(max_iter + 1):
        logits = form.logits(point.u)
        gradient = operator.loss_gradient(logits)
        res = residuals(form, point, gradient)
        complementarity = point.complementarity()
        mu = complementarity / point.degree()
        if not np.isfinite(mu):
            return tracker.finish(point, iteration, STALLED)

        objective = operator.loss(logits) + form.beta * float(point.t.sum())
        if complementarity <= _CHECK_FACTOR * tol * abs(objective) or iteration == max_iter:
            relative_gap = tracker.offer(point)
            if certifiable and relative_gap <= tol:
                return tracker.finish(point, iteration, CONVERGED)
        if iteration % log_every == 0:
            log(
                "IPM iteration %d: mu %.2e, primal residual %.2e, dual residual %.2e, "
                "best relative gap %.3e",
                iteration,
                mu,
                res.primal_norm(),
                res.dual_norm(),
                tracker.relative_gap,
            )
        if iteration == max_iter:
            break
        if complementarity < _COMPLEMENTARITY_FLOOR * max(abs(objective), 1.0):
            tracker.offer(point)
            return tracker.finish(point, iteration, STALLED if certifiable else UNCERTIFIABLE)

        try:
            corrector, alpha, system = _mehrotra_step(
                form, point, res, operator.loss_curvature(logits), mu, woodbury
            )
        except (LinAlgError, FloatingPointError) as error:
            log("IPM iteration %d: Newton system failed (%s)", iteration, error)
            tracker.offer(point)
            return tracker.finish(point, iteration, STALLED)
        if system.switched_to_dense:
            woodbury = False
            log("IPM iteration %d: switched to the dense Schur complement", iteration)

        moved = point.step(corrector, alpha) if np.isfinite(alpha) and alpha > 0.0 else None
        if moved is None or not moved.is_finite():
            tracker.offer(point)
            return tracker.finish(point, iteration, STALLED)
        point = moved

        largest = float(np.abs(point.u).max())
        if largest > _WEIGHT_LIMIT:
            raise SolverError(
                f"the interior-point iterates diverged: the largest weight reached "
                f"{largest:.3g} at beta = {form.beta:g}. With a very small beta the optimal "
                "weights can be huge. Use a larger beta, or compare with solver='CLARABEL'."
            )
    return tracker.finish(point, max_iter, ITERATION_LIMIT)


def _mehrotra_step(form, point, res, curvature, mu, woodbury):
    """Return the predictor-corrector direction, its step length and the Newton system."""
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        scalings = Scalings(point)
        system = newton_system(form, point, scalings, curvature, woodbury=woodbury)
        predictor = direction(form, point, scalings, system, res, affine_targets(point, scalings))

        alpha_affine = min(1.0, max_step(point, predictor))
        sigma = (1.0 - alpha_affine) ** 3
        targets = corrector_targets(point, scalings, predictor, sigma * mu)
        corrector = direction(form, point, scalings, system, res, targets)
        alpha = min(1.0, _STEP_FRACTION * max_step(point, corrector))
    return corrector, alpha, system


class _BestPoint:
    """The certified point with the smallest duality gap seen so far."""

    def __init__(self, form):
        self.form = form
        self.u = None
        self.certificate = None

    @property
    def relative_gap(self):
        return np.inf if self.certificate is None else self.certificate.relative_gap

    def offer(self, point):
        certificate, feasible = certify_blocks(self.form, point.u, block_multipliers(self.form, point))
        if self.certificate is None or certificate.gap < self.certificate.gap:
            self.u, self.certificate = feasible, certificate
        return certificate.relative_gap

    def finish(self, point, iterations, reason):
        if self.certificate is None:
            self.offer(point)
        return self.u, self.certificate, iterations, reason


class IpmSolver(NativeSolver):
    """Primal-dual interior-point solver for all three programs (the default).

    Options: ``tol`` (relative certified gap, default 1e-6), ``max_iter`` (default 100),
    ``log_every`` (default 1) and ``polish`` (default True). With ``polish``, a run that
    stalls or reaches ``max_iter`` above ``tol`` continues from its best point with
    Newton steps on the optimal face guessed from it (FISTA for the relaxed program).

    ``warm_start=True``: interior-point methods gain little from a primal starting
    point, because the slacks and duals must be re-centred. For the relaxed program
    the previous solution is returned unchanged when its certificate already meets
    ``tol``, and otherwise the iterations start from its weights (on full Adult, 50
    gates, a path over beta = 0.1 to 0.001 took 7-8 instead of 9-11 iterations). For
    the exact and hinge programs the same start did not save iterations, so they
    start from the default point, and the previous solution is returned instead of
    the new one only when the new one ends with a larger certified gap.
    """

    name = "IPM"
    programs = ("exact", "relaxed", "hinge")
    default_max_iter = 100
    default_log_every = 1
    warm_start_effect = (
        "relaxed program: returns the previous solution when its certificate meets tol, "
        "else starts from its weights; exact and hinge programs: keeps the previous "
        "solution only when the new solve ends with a larger certified gap"
    )
    options = {
        **NativeSolver.options,
        "polish": "continue from the best point with Newton (or FISTA) steps when the "
        "iterations end above tol (default True)",
    }

    def _read_extra_options(self, options):
        polish = options.get("polish", True)
        if not isinstance(polish, (bool, np.bool_)):
            raise InvalidParameterError(f"polish must be True or False; got {polish!r}.")
        return {"polish": bool(polish)}

    def _run(self, problem, start_point, settings):
        form = ConicForm(problem)
        tol = settings.tol
        warm = None
        if start_point is not None:
            v, w = start_point
            warm = np.vstack([v, w]) if form.paired else v - w

        start = None
        if warm is not None and not form.paired:
            certificate, feasible = certify_blocks(form, warm)
            if certificate.relative_gap <= tol:
                return self._outcome(form, feasible, certificate, 0, CONVERGED, "returned")
            start = warm

        u, certificate, iterations, reason = self._iterate(form, start, settings)
        polished = False
        if reason in (STALLED, ITERATION_LIMIT) and settings.extra["polish"] and form.beta > 0.0:
            u, polished_certificate = polish_blocks(form, u, certificate, tol)
            polished = polished_certificate is not certificate
            certificate = polished_certificate
            if certificate.relative_gap <= tol:
                reason = CONVERGED
            settings.log("IPM polish: relative gap %.3e", certificate.relative_gap)

        warm_use = "start" if start is not None else "ignored"
        if warm is not None and form.paired and reason != CONVERGED:
            warm_certificate, warm_feasible = certify_blocks(form, warm)
            warm_use = "compared"
            if warm_certificate.gap < certificate.gap:
                u, certificate, warm_use = warm_feasible, warm_certificate, "returned"
                if certificate.relative_gap <= tol:
                    reason = CONVERGED
        outcome = self._outcome(form, u, certificate, iterations, reason, warm_use)
        outcome.extra["polished"] = polished
        return outcome

    @staticmethod
    def _iterate(form, start, settings):
        """Run the iterations from ``start``, falling back to the default start if that fails."""
        arguments = (settings.tol, settings.max_iter, settings.log, settings.log_every)
        if start is not None:
            try:
                result = run_ipm(form, start, *arguments)
            except SolverError as error:
                settings.log("IPM from the warm start failed (%s); restarting cold", error)
                result = None
            if result is not None and result[3] == CONVERGED:
                return result
            cold = run_ipm(form, None, *arguments)
            if result is None or cold[1].gap <= result[1].gap:
                return cold[0], cold[1], cold[2] + (0 if result is None else result[2]), cold[3]
            return result
        return run_ipm(form, None, *arguments)

    @staticmethod
    def _outcome(form, u, certificate, iterations, reason, warm_use):
        v, w = split_weights(form, u)
        return RunOutcome(
            v=v,
            w=w,
            certificate=certificate,
            iterations=iterations,
            reason=reason,
            extra={"warm_start_use": warm_use, "polished": False},
        )
