"""The ``convexar verify`` command: check the convex/non-convex equivalence on data.

It enumerates every activation pattern of a short window, solves the exact program
to a certified gap, rebuilds the ReLU network and trains networks from random
starts, then prints the figures and optionally writes them as JSON.
"""

import json

from .exceptions import InvalidParameterError
from .verify import DEFAULT_MAX_PATTERNS, MAX_WINDOW, verify_equivalence


def add_parser(subparsers):
    """Add the ``verify`` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "verify",
        help="check on data that the exact convex program with every activation pattern "
        "equals the best ReLU network",
        description="Enumerate every activation pattern of the training contexts, solve "
        "the exact program to a certified duality gap, rebuild the ReLU network from "
        "its solution and train networks from random starts. Exits with 1 if a trained "
        "network ends below the certified lower bound on the optimum, which would "
        "contradict the theory.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="mushrooms", help="bundled data set name or path of a .npz, LIBSVM or .amat file (default: %(default)s)")
    data.add_argument("--vectors", type=int, default=None, metavar="N", help="use the first N training vectors (default: all)")
    data.add_argument("--n-features", type=int, default=None, help="width of a LIBSVM file")
    data.add_argument("--zero-based", action="store_true", help="LIBSVM indices start at 0 (default: 1-based)")

    model = parser.add_argument_group("model")
    model.add_argument("--window", type=int, default=3, help=f"context length r, at most {MAX_WINDOW} (default: %(default)s)")
    model.add_argument("--beta", type=float, default=0.1, help="penalty weight beta, > 0, in nats per vector (default: %(default)s)")
    model.add_argument("--no-intercept", action="store_true", help="drop the constant feature, as in the model of Gabbur et al.")

    check = parser.add_argument_group("check")
    check.add_argument("--restarts", type=int, default=10, help="random starts of the non-convex training (default: %(default)s)")
    check.add_argument("--hidden-units", type=int, default=None, help="width of the trained networks (default: max(K + 1, 2 x non-zero blocks of the convex solution))")
    check.add_argument("--tol", type=float, default=1e-7, help="relative duality gap requested from the exact solve (default: %(default)s)")
    check.add_argument("--max-patterns", type=int, default=DEFAULT_MAX_PATTERNS, help="stop when the contexts have more activation patterns (default: %(default)s)")
    check.add_argument("--seed", type=int, default=0, help="seed of the enumeration and of the training starts (default: %(default)s)")

    output = parser.add_argument_group("output")
    output.add_argument("--json", default=None, metavar="FILE", help="write every figure and the settings to FILE")
    output.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)
    return parser


def _load_training_vectors(args):
    from .datasets import load_name_or_file

    dataset = load_name_or_file(args.dataset, n_features=args.n_features, zero_based=args.zero_based)
    train = dataset.split("train")
    if args.vectors is None:
        return dataset.name, train
    if args.vectors < 1 or args.vectors > train.shape[0]:
        raise InvalidParameterError(
            f"--vectors must be from 1 to {train.shape[0]}, the number of training "
            f"vectors of {dataset.name!r}; got {args.vectors}."
        )
    return dataset.name, train[: args.vectors]


def run(args):
    """Run ``convexar verify`` and return the exit status, 0 when no run is below the certified bound."""
    name, X_train = _load_training_vectors(args)
    result = verify_equivalence(
        X_train,
        args.window,
        beta=args.beta,
        intercept=not args.no_intercept,
        n_restarts=args.restarts,
        hidden_units=args.hidden_units,
        tol=args.tol,
        max_patterns=args.max_patterns,
        random_state=args.seed,
        progress=not args.quiet,
    )
    result = {"dataset": name, **result}

    print_report(result)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
        print(f"figures written to {args.json}")
    return 0 if result["nonconvex"]["below_optimum"] == 0 else 1


def print_report(result):
    """Print the figures of :func:`convexar_opt.verify.verify_equivalence` as a short report."""
    settings = result["settings"]
    certificate = result["certificate"]
    runs = result["nonconvex"]
    n_runs = len(runs["runs"])
    intercept = "with" if settings["intercept"] else "without"

    print(
        f"data set {result.get('dataset', '?')}: {settings['n_vectors']} vectors, window "
        f"{settings['window']}, {intercept} intercept, beta {settings['beta']:g} "
        f"(the zero network is optimal from beta_max = {result['beta_max']:.4g})"
    )
    print(f"distinct contexts K: {result['n_contexts']}")
    print(f"activation patterns P: {result['n_patterns']} (all, enumerated)")
    print(f"objectives in nats per vector, summed over the {result['n_positions']} modelled positions:")
    rows = [
        ("convex optimum (exact, all patterns)", f"{result['convex_optimum']:.10f}"),
        (
            "certified gap",
            f"{certificate['gap']:.3e} (relative {certificate['relative_gap']:.2e}, "
            f"{certificate['solver']}, {certificate['status']})",
        ),
        (
            "reconstructed ReLU network",
            f"{result['reconstructed_objective']:.10f} ({result['reconstruction']['hidden_units']} units)",
        ),
        (
            f"non-convex, best of {n_runs} restarts",
            f"{runs['best']:.10f} (relative difference {runs['best_relative_difference']:+.2e}, "
            f"{runs['hidden_units']} units)",
        ),
        ("non-convex, median", f"{runs['median']:.10f}"),
    ]
    if runs["optimality_bound"] is not None:
        rows.append(
            (
                "best run above the global optimum by at most (bound from its own certificate)",
                f"{runs['optimality_bound']:.3e}",
            )
        )
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label + ':':<{width + 1}} {value}")

    verdict = "" if runs["below_optimum"] == 0 else "  <-- contradicts Theorem 1"
    print(
        f"runs below the optimum minus the certified tolerance {runs['tolerance']:.2e}: "
        f"{runs['below_optimum']} of {n_runs}{verdict}"
    )
    print(f"time: {result['seconds']['total']:.2f} s")
