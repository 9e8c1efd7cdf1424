"""Command line interface: ``convexar reproduce``, ``fit``, ``datasets`` and ``verify``.

This is the only module of the package that configures logging and prints.
"""

import argparse
import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict

from . import __version__
from .exceptions import ConvexARError, InvalidParameterError
from .experiment import (
    CONVEX_MODELS,
    MODELS,
    PROTOCOLS,
    SGD_MODELS,
    Settings,
    check_solver,
    package_versions,
    protocol_settings,
    run_model,
)

logger = logging.getLogger("convexar_opt.cli")

DEFAULT_DATASET = "adult"
DEFAULT_REPRODUCE_MODELS = "cpe,cpr,cph"


def load_data(args):
    """Return the Dataset named by ``--dataset``: a bundled name or the path of a file."""
    from .datasets import list_datasets, load_name_or_file

    if args.dataset in list_datasets():
        ignored = [
            flag
            for flag, value in (
                ("--valid-file", args.valid_file),
                ("--test-file", args.test_file),
                ("--n-features", args.n_features),
                ("--zero-based", args.zero_based),
            )
            if value
        ]
        if ignored:
            logger.warning(
                "%s ignored: they apply to a data file, and %r is a bundled data set",
                ", ".join(ignored),
                args.dataset,
            )
    return load_name_or_file(
        args.dataset,
        n_features=args.n_features,
        zero_based=args.zero_based,
        valid_path=args.valid_file,
        test_path=args.test_file,
    )


def settings_from_args(args):
    """Return the experiment Settings given on the command line."""
    options = {}
    for item in args.solver_option or []:
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator or not key:
            raise InvalidParameterError(
                f"--solver-option must be KEY=VALUE, for example max_iter=200; got {item!r}."
            )
        options[key] = _parse_value(value)
    return Settings(
        window=args.window,
        n_patterns=args.patterns,
        beta=args.beta,
        rho=args.rho,
        intercept=not args.no_intercept,
        balance=args.balance,
        train_rows=args.train_rows,
        seed=args.seed,
        solver=args.solver,
        tol=args.tol,
        rule=args.rule,
        protocol=args.protocol,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        max_epochs=args.max_epochs,
        patience=args.patience,
        min_delta=args.min_delta,
        average_iterates=not args.last_iterate,
        device=args.device,
        solver_options=options,
    ).validate()


def _parse_value(text):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _add_common_options(parser):
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=DEFAULT_DATASET, help="bundled data set name or path of a .npz, LIBSVM or .amat file (default: %(default)s)")
    data.add_argument("--n-features", type=int, default=None, help="width of LIBSVM files; give it so that every split gets the same columns")
    data.add_argument("--zero-based", action="store_true", help="LIBSVM indices start at 0 (default: 1-based)")
    data.add_argument("--valid-file", default=None, help="validation split for a LIBSVM or .amat --dataset")
    data.add_argument("--test-file", default=None, help="test split for a LIBSVM or .amat --dataset")

    model = parser.add_argument_group("model")
    model.add_argument("--protocol", choices=PROTOCOLS, default="default", help="'default': whole unbalanced training set with an intercept; 'paper': Gabbur et al.'s protocol (no intercept, balanced rows, CPE on 1000 and CPR on 100,000 rows)")
    model.add_argument("--window", type=int, default=10, help="context length r (default: %(default)s)")
    model.add_argument("--patterns", type=int, default=50, help="number P of sampled gates, also the hidden units of NN (default: %(default)s)")
    model.add_argument("--beta", type=float, default=1e-3, help="group-norm weight beta, per-vector units (default: %(default)s)")
    model.add_argument("--rho", type=float, default=1e-4, help="hinge weight rho (default: %(default)s)")
    model.add_argument("--no-intercept", action="store_true", help="drop the constant feature, as in the paper's model")
    model.add_argument("--balance", action="store_true", help="balance ones and zeros of the training targets, as in the paper")
    model.add_argument("--train-rows", type=int, default=None, help="train on this many randomly drawn training rows")
    model.add_argument("--seed", type=int, default=0, help="seed of gates, balancing, subsampling and SGD (default: %(default)s)")
    model.add_argument("--rule", choices=("gated", "relu"), default="gated", help="test-time rule of exact/hinge models (default: %(default)s)")

    solve = parser.add_argument_group("solvers")
    solve.add_argument("--solver", default=None, help="solver of the convex programs: a native one (default) or SCS, CLARABEL, ECOS, MOSEK")
    solve.add_argument("--tol", type=float, default=1e-6, help="relative certified duality gap at which native solvers stop (default: %(default)s)")
    solve.add_argument("--solver-option", action="append", metavar="KEY=VALUE", help="extra solver option, repeatable")

    sgd = parser.add_argument_group("SGD (nn, ptr, pth)")
    sgd.add_argument("--learning-rate", type=float, default=1e-3, help="(default: %(default)s)")
    sgd.add_argument("--batch-size", type=int, default=100, help="rows per mini-batch (default: %(default)s)")
    sgd.add_argument("--optimizer", choices=("sgd", "adam"), default="adam", help="'sgd' is the paper's plain SGD; with the paper's learning rate it needs hundreds of epochs (default: %(default)s)")
    sgd.add_argument("--max-epochs", type=int, default=200, help="(default: %(default)s)")
    sgd.add_argument("--patience", type=int, default=5, help="epochs without validation improvement before stopping (default: %(default)s)")
    sgd.add_argument("--min-delta", type=float, default=1e-3, help="relative fall of the validation NLL that counts as an improvement (default: %(default)s)")
    sgd.add_argument("--last-iterate", action="store_true", help="report the last iterate of each epoch instead of the epoch average, as plain SGD does")
    sgd.add_argument("--device", default="auto", help="'auto' (CUDA when present), 'cpu' or 'cuda' (default: %(default)s)")

    output = parser.add_argument_group("output")
    output.add_argument("--json", default=None, metavar="FILE", help="write every figure, the settings, the seed and the versions to FILE")
    output.add_argument("--plot", default=None, metavar="FILE", help="save the validation accuracy per epoch of SGD models as PNG")
    output.add_argument("--quiet", action="store_true", help="no progress bars")


def _format(value, digits=4):
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value)
        return f"{value:.{digits}f}"
    return str(value)


def print_table(results, reference=None, file=None):
    """Print results in the shape of Gabbur et al.'s Table 1, with the COUNT reference row."""
    file = file or sys.stdout
    header = f"{'model':<6} {'train obj':>10} {'train NLL':>10} {'test NLL':>10} {'seconds':>9} {'rel. gap':>9}  status"
    print(header, file=file)
    print("-" * len(header), file=file)
    rows = list(results) + ([reference] if reference is not None else [])
    for result in rows:
        name = "COUNT" if result.model == "count" else result.model.upper()
        gap = result.certificate["relative_gap"] if result.certificate else None
        gap_text = "-" if gap is None else f"{gap:.1e}"
        status = result.status if result.solver is None else f"{result.status} ({result.solver})"
        print(
            f"{name:<6} {_format(result.objective):>10} {_format(result.nll['train']):>10} "
            f"{_format(result.nll['test']):>10} {_format(result.seconds, 2):>9} {gap_text:>9}  {status}",
            file=file,
        )
    if rows:
        first = rows[0]
        print(
            f"NLL: nats per vector, summed over the {first.n_positions} modelled positions "
            f"(window {first.settings['window']}); test NLL on the test split of {first.dataset}"
            f"{'' if first.nll['test'] is not None else ' (none given)'}.",
            file=file,
        )


def _write_json(path, payload):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, default=_json_default)
    logger.info("wrote %s", path)


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _plot(path, results):
    sgd_results = [result for result in results if result.history]
    if not sgd_results:
        logger.warning("--plot: no SGD model was trained, so there is no curve to plot")
        return
    from .plotting import plot_validation_accuracy

    plot_validation_accuracy(sgd_results, path)
    print(f"saved {path}")


def check_output_paths(args):
    """Raise InvalidParameterError for an output file that cannot be written.

    Checked before training so that a typo in a path does not cost the finished run.
    """
    for flag in ("json", "save_model", "plot", "checkpoint"):
        path = getattr(args, flag, None)
        if path is None:
            continue
        option = "--" + flag.replace("_", "-")
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise InvalidParameterError(
                f"{option} {path!r} is a directory; give a file name, for example "
                f"{os.path.join(path, 'out')!r}."
            )
        if not os.path.isdir(folder):
            raise InvalidParameterError(
                f"{option} {path!r}: directory {folder!r} does not exist. Create it first "
                "or choose another path."
            )
        if not os.access(folder, os.W_OK):
            raise InvalidParameterError(
                f"{option} {path!r}: directory {folder!r} is not writable. Choose another path."
            )


def check_fit_args(args):
    """Raise InvalidParameterError for options that do not apply to ``--model``."""
    if args.model not in CONVEX_MODELS:
        solver_flags = (("--solver", args.solver), ("--solver-option", args.solver_option))
        given = [flag for flag, value in solver_flags if value]
        if given:
            raise InvalidParameterError(
                f"{' and '.join(given)} choose the solver of the convex models "
                f"{list(CONVEX_MODELS)}, but --model {args.model} uses no convex solver. "
                "Drop them."
            )
    if args.model not in SGD_MODELS and (args.checkpoint or args.resume):
        raise InvalidParameterError(
            f"--checkpoint and --resume apply to the SGD models {list(SGD_MODELS)}; --model "
            f"{args.model} has no epochs to resume. Drop them."
        )
    if args.resume and args.checkpoint is None:
        raise InvalidParameterError(
            "--resume needs --checkpoint FILE, the checkpoint to continue from."
        )
    if args.resume and not os.path.exists(args.checkpoint):
        logger.warning(
            "--resume: checkpoint %r not found, so training starts from epoch 0 and "
            "writes it after every epoch",
            args.checkpoint,
        )
    check_output_paths(args)


def run_fit(args):
    """Train one model and print its figures."""
    settings = settings_from_args(args)
    check_fit_args(args)
    check_solver(args.model, protocol_settings(args.model, settings))
    dataset = load_data(args)
    result = run_model(
        args.model,
        dataset,
        settings,
        progress=not args.quiet,
        checkpoint_path=args.checkpoint,
        resume=args.resume,
    )
    print_table([result])
    if result.certificate:
        cert = result.certificate
        violation = f"constraint violation {cert['constraint_violation']:.3e}"
        if cert["program"] == "relaxed":
            # The relaxed program has no constraints, so this is for the exact program's cones.
            violation = (
                f"violation of the exact program's cone constraints "
                f"{cert['constraint_violation']:.3e}"
            )
        print(
            f"certificate ({cert['program']} program): primal {cert['primal']:.10g}, dual "
            f"{cert['dual']:.10g}, gap {cert['gap']:.3e} (relative {cert['relative_gap']:.3e}), "
            f"{violation}"
        )
    if args.json:
        _write_json(args.json, result.to_dict())
    if args.save_model:
        result.fitted.save(args.save_model)
        print(f"saved model to {args.save_model}")
    if args.plot:
        _plot(args.plot, [result])
    return 0


def run_reproduce(args):
    """Train several models with the same gates and print a table like Gabbur et al.'s Table 1."""
    settings = settings_from_args(args)
    models = [name.strip().lower() for name in args.models.split(",") if name.strip()]
    choices = [name for name in MODELS if name != "count"]
    unknown = [name for name in models if name not in choices]
    if unknown:
        raise InvalidParameterError(
            f"unknown model(s) {unknown} in --models; choose from {choices}. The COUNT "
            "reference row is always printed."
        )
    if not models:
        raise InvalidParameterError(
            f"--models {args.models!r} names no model; give a comma-separated list from {choices}."
        )
    check_output_paths(args)
    for name in models:
        check_solver(name, protocol_settings(name, settings))
    dataset = load_data(args)
    print(f"convexar_opt {__version__}: data set {dataset.name}, protocol {settings.protocol}, models {models}")

    start = time.perf_counter()
    reference = run_model("count", dataset, settings)
    results = []
    for name in models:
        print(f"training {name} ...", flush=True)
        results.append(run_model(name, dataset, settings, progress=not args.quiet))
    print()
    print_table(results, reference)
    print(f"total {time.perf_counter() - start:.1f} s")

    if args.json:
        payload = {
            "dataset": dataset.name,
            "settings": asdict(settings),
            "versions": package_versions(),
            "reference": reference.to_dict(),
            "results": [result.to_dict() for result in results],
        }
        _write_json(args.json, payload)
    if args.plot:
        _plot(args.plot, results)
    return 0


def run_datasets(args):
    """List the bundled data sets with their split sizes."""
    from .datasets import list_datasets, load_dataset

    for name in list_datasets():
        dataset = load_dataset(name, verify=False)
        sizes = " / ".join(
            "-" if getattr(dataset, split) is None else str(getattr(dataset, split).shape[0])
            for split in ("train", "valid", "test")
        )
        print(f"{name:<18} {dataset.n_features:>4} features, train / valid / test = {sizes}")
    return 0


def build_parser():
    """Return the argument parser of the ``convexar`` command."""
    parser = argparse.ArgumentParser(
        prog="convexar",
        description="Convex training of two-layer ReLU autoregressive models of binary data.",
    )
    parser.add_argument("--version", action="version", version=f"convexar_opt {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log solver progress (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    reproduce = subparsers.add_parser("reproduce", help="train several models on one data set and print a table like the paper's Table 1")
    _add_common_options(reproduce)
    reproduce.add_argument("--models", default=DEFAULT_REPRODUCE_MODELS, help="comma-separated models among cpe, cpr, cph, nn, ptr, pth (default: %(default)s)")
    reproduce.set_defaults(handler=run_reproduce)

    fit = subparsers.add_parser("fit", help="train one model")
    _add_common_options(fit)
    fit.add_argument("--model", required=True, type=str.lower, choices=MODELS, help="model to train")
    fit.add_argument("--save-model", default=None, metavar="FILE", help="save the fitted model (.npz, no pickle)")
    fit.add_argument("--checkpoint", default=None, metavar="FILE", help="SGD models: save a checkpoint after every epoch")
    fit.add_argument("--resume", action="store_true", help="SGD models: continue from --checkpoint")
    fit.set_defaults(handler=run_fit)

    datasets = subparsers.add_parser("datasets", help="list the bundled data sets")
    datasets.set_defaults(handler=run_datasets)

    for module_name in _OPTIONAL_COMMANDS:
        try:
            module = __import__(module_name, fromlist=["add_parser"])
        except ImportError as error:
            logger.debug("command module %s not available: %s", module_name, error)
            continue
        module.add_parser(subparsers)
    return parser


_OPTIONAL_COMMANDS = ("convexar_opt._cli_verify",)


def main(argv=None):
    """Run the ``convexar`` command and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")

    if args.command is None:
        args = parser.parse_args(["reproduce", *([] if argv is None else argv)])
    try:
        return args.handler(args)
    except ConvexARError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # A file that became unreadable or unwritable after the checks, or a full disk.
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
