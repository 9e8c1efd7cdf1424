"""Benchmark the native interior-point solver against CVXPY with SCS and Clarabel.

Runs, in one process, the native solver ("IPM") and CVXPY with SCS and Clarabel on the
same compressed problems, and certifies every point with the duality-gap certificate.
It prints seconds, the certified relative gap, the status and the speed-up of the native
solver. The table goes to ``benchmarks/RESULTS.md`` together with the machine, the
thread count and the package versions.

Cases (all with 50 Gaussian gates, seed 0, beta = 1e-3, rho = 1e-4, window 10):

* ``cpe``: the CPE setting of Gabbur et al.'s experiments, the exact program on 1000
  rows subsampled from the class-balanced Adult training set, without intercept.
* ``cpr``: their CPR setting, the relaxed program on 100,000 such rows.
* ``full``: every bundled training set (rcv1 ships only a validation split, which is
  used as its training set), with intercept, for the exact, relaxed and hinge programs.

The CVXPY runs have a time limit (SCS ``time_limit_secs``, Clarabel ``time_limit``); a
run that reaches it is reported as a timeout, and the speed-up against it is a lower
bound. CVXPY points are certified as returned (``polish=False``). Example::

    python benchmarks/bench_solvers.py --datasets adult mushrooms --programs exact
"""

import argparse
import os
import sys

FULL_DATASETS = (
    "adult",
    "connect4",
    "dna",
    "mushrooms",
    "nips",
    "ocr_letters",
    "web_w8a",
    "binarized_mnist",
    "rcv1_valid_only",
)
PROGRAMS = ("exact", "relaxed", "hinge")
CASES = ("cpe", "cpr", "full")


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES), help="cases to run")
    parser.add_argument(
        "--datasets", nargs="+", default=list(FULL_DATASETS), help="data sets of the 'full' case"
    )
    parser.add_argument(
        "--programs", nargs="+", choices=PROGRAMS, default=list(PROGRAMS), help="programs of the 'full' case"
    )
    parser.add_argument("--skip-scs", action="store_true", help="do not run CVXPY with SCS")
    parser.add_argument("--skip-clarabel", action="store_true", help="do not run CVXPY with Clarabel")
    parser.add_argument(
        "--skip-cvxpy-exact",
        action="store_true",
        help="do not run CVXPY on the exact and hinge programs of the 'full' case",
    )
    parser.add_argument(
        "--cvxpy-time-limit", type=float, default=60.0, help="time limit of each CVXPY solve, in seconds"
    )
    parser.add_argument("--repeats", type=int, default=3, help="native solves per case; the fastest counts")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and OpenMP threads of the whole process")
    parser.add_argument("--tol", type=float, default=1e-6, help="relative certified gap of the native solver")
    parser.add_argument("--seed", type=int, default=0, help="seed of the gates and of the subsampling")
    parser.add_argument(
        "--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"),
        help="Markdown file for the results table, with the raw runs next to it as .json "
        "(use '-' for none)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    arguments = parse_arguments(argv)
    # The thread count must be set before NumPy loads its BLAS.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(arguments.threads)

    from _bench_cases import run_all
    from _bench_report import write_json, write_report

    load_before = os.getloadavg()
    rows = run_all(arguments)
    if arguments.output != "-":
        write_report(rows, arguments, arguments.output, load_before)
        json_path = os.path.splitext(arguments.output)[0] + ".json"
        write_json(rows, json_path)
        print(f"wrote {arguments.output} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
