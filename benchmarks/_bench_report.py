"""Markdown report of ``bench_solvers.py``: results table, machine and versions."""

import dataclasses
import datetime
import json
import os
import platform

import numpy as np


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions():
    import clarabel
    import cvxpy
    import scipy
    import scs

    import convexar_opt

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cvxpy": cvxpy.__version__,
        "scs": scs.__version__,
        "clarabel": clarabel.__version__,
        "convexar_opt": convexar_opt.__version__,
    }


def _cell(run):
    if run is None:
        return "not run", ""
    gap = "" if np.isnan(run.relative_gap) else f"{run.relative_gap:.1e}"
    return f"{run.seconds:.3f} ({run.status})", gap


def _ratio(run, native):
    if run is None:
        return ""
    if run.status == "solver_error":
        return "failed"
    return f"{'>' if run.timed_out else ''}{run.seconds / native.seconds:.0f}x"


def _agreement(native, reference):
    if reference is None or np.isnan(reference.objective) or reference.status != "optimal":
        return ""
    return f"{abs(native.objective - reference.objective) / abs(reference.objective):.1e}"


def _equal_accuracy(row, solver):
    """Return 'IPM seconds to the CVXPY gap (speed-up)' or '' when not measured."""
    cvxpy_run = row.runs.get(solver)
    native = row.runs.get(f"IPM@{solver}") or row.runs["IPM"]
    if cvxpy_run is None or np.isnan(cvxpy_run.relative_gap):
        return ""
    return f"{native.seconds:.3f} ({_ratio(cvxpy_run, native)})"


def format_equal_accuracy_table(rows):
    """Return the table of IPM times to the certified gap each CVXPY run reached."""
    header = (
        "| case | data set | program | Clarabel gap | IPM s to it (speed-up) | SCS gap "
        "| IPM s to it (speed-up) |\n|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for row in rows:
        _, clarabel_gap = _cell(row.runs.get("CLARABEL"))
        _, scs_gap = _cell(row.runs.get("SCS"))
        lines.append(
            f"| {row.case} | {row.dataset} | {row.program} | {clarabel_gap} "
            f"| {_equal_accuracy(row, 'CLARABEL')} | {scs_gap} | {_equal_accuracy(row, 'SCS')} |"
        )
    return header + "\n".join(lines) + "\n"


def format_table(rows):
    """Return the Markdown results table."""
    header = (
        "| case | data set | program | K | IPM s | IPM gap | IPM it | Clarabel s | Clarabel gap "
        "| SCS s | SCS gap | vs Clarabel | vs SCS | objective vs Clarabel |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for row in rows:
        native = row.runs["IPM"]
        clarabel = row.runs.get("CLARABEL")
        scs = row.runs.get("SCS")
        clarabel_time, clarabel_gap = _cell(clarabel)
        scs_time, scs_gap = _cell(scs)
        lines.append(
            f"| {row.case} | {row.dataset} | {row.program} | {row.n_contexts} "
            f"| {native.seconds:.3f} | {native.relative_gap:.1e} | {native.iterations} "
            f"| {clarabel_time} | {clarabel_gap} | {scs_time} | {scs_gap} "
            f"| {_ratio(clarabel, native)} | {_ratio(scs, native)} | {_agreement(native, clarabel)} |"
        )
    return header + "\n".join(lines) + "\n"


def write_json(rows, path):
    """Write every run of every row to ``path`` as JSON (NaN for missing gaps)."""
    records = [
        {**{key: value for key, value in dataclasses.asdict(row).items() if key != "runs"},
         "runs": {name: dataclasses.asdict(run) for name, run in row.runs.items()}}
        for row in rows
    ]
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(records, handle, indent=1)


def write_report(rows, arguments, path, load_before):
    """Write the results table, the settings and the machine description to ``path``."""
    versions = ", ".join(f"{name} {version}" for name, version in _versions().items())
    load_after = os.getloadavg()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        "# Solver benchmark\n\n"
        "Written by `python benchmarks/bench_solvers.py` "
        f"(arguments: `{' '.join(_argument_list(arguments))}`) on {date}.\n\n"
        f"- Machine: {_cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}.\n"
        f"- Threads: OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = MKL_NUM_THREADS = "
        f"{arguments.threads} for the whole process (native solver and CVXPY). The CPUs "
        f"were shared with other processes: 1-minute load average {load_before[0]:.2f} "
        f"before and {load_after[0]:.2f} after the run.\n"
        f"- Versions: {versions}.\n"
        f"- Settings: window 10, 50 Gaussian gates (seed {arguments.seed}), beta 1e-3, "
        f"rho 1e-4; native tolerance: relative certified gap <= {arguments.tol:g}; native "
        f"time: fastest of {arguments.repeats} cold solves; CVXPY time: one solve including "
        f"compilation, limit {arguments.cvxpy_time_limit:g} s, point certified as returned.\n"
        "- Seconds are wall time; 'gap' is the relative duality gap of the certificate of "
        "the returned point; speed-ups are CVXPY seconds / IPM seconds ('>' where CVXPY "
        "reached its time limit, 'failed' where it ended with solver_error); the last "
        "column is |IPM objective - Clarabel objective| / |Clarabel objective| where "
        "Clarabel ended optimal.\n"
        "- rcv1_valid_only ships only a validation split, which is used as its training set.\n\n"
        "## Time to a certified relative gap <= tol\n\n"
        + format_table(rows)
        + "\n## Equal accuracy\n\n"
        "IPM seconds to reach the certified relative gap of each CVXPY point (IPM run with "
        "tol set to that gap; the tol run above where the CVXPY gap is already below tol), "
        "and the speed-up at that equal accuracy.\n\n"
        + format_equal_accuracy_table(rows)
    )
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _argument_list(arguments):
    parts = [f"--cases {' '.join(arguments.cases)}"]
    if "full" in arguments.cases:
        parts.append(f"--datasets {' '.join(arguments.datasets)}")
        parts.append(f"--programs {' '.join(arguments.programs)}")
    for flag in ("skip_scs", "skip_clarabel", "skip_cvxpy_exact"):
        if getattr(arguments, flag):
            parts.append("--" + flag.replace("_", "-"))
    parts.append(f"--cvxpy-time-limit {arguments.cvxpy_time_limit:g}")
    parts.append(f"--repeats {arguments.repeats}")
    parts.append(f"--threads {arguments.threads}")
    return parts
