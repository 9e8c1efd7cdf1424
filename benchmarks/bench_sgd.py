"""Measure the SGD models (NN, PTR, PTH) against the count reference on real data.

For each data set, protocol and seed it trains the count reference and the three SGD
models with the package's default SGD settings, then prints the test NLL (nats per
vector), epochs and seconds, and writes a Markdown table. The README's SGD figures come
from this script. Example::

    python benchmarks/bench_sgd.py --datasets adult mushrooms --protocol default --seeds 0
    python benchmarks/bench_sgd.py --datasets adult mushrooms --protocol paper --seeds 0 1 2
"""

import argparse
import datetime
import platform
import statistics

from convexar_opt.datasets import load_dataset
from convexar_opt.experiment import Settings, run_model

MODELS = ("nn", "ptr", "pth")


def parse_args(argv=None):
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["adult", "mushrooms"])
    parser.add_argument("--protocol", choices=("default", "paper"), default="default")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--output", default=None, help="Markdown file for the table (default: print only)")
    return parser.parse_args(argv)


def measure(dataset_name, protocol, seed):
    """Return {model: FitResult} for the count reference and the SGD models."""
    dataset = load_dataset(dataset_name)
    settings = Settings(protocol=protocol, seed=seed)
    results = {"count": run_model("count", dataset, settings)}
    for model in MODELS:
        results[model] = run_model(model, dataset, settings)
        result = results[model]
        print(
            f"{dataset_name} {protocol} seed {seed} {model}: test NLL {result.nll['test']:.3f}, "
            f"{result.epochs} epochs, {result.seconds:.1f} s, {result.status}",
            flush=True,
        )
    return results


def summarise(values):
    """Return 'mean' or 'mean +- sd' of a list of floats."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main(argv=None):
    """Run the measurements and print (and optionally write) the table."""
    args = parse_args(argv)
    lines = [
        f"# SGD models against the count reference ({args.protocol} protocol)",
        "",
        f"Written by `python benchmarks/bench_sgd.py --datasets {' '.join(args.datasets)} "
        f"--protocol {args.protocol} --seeds {' '.join(map(str, args.seeds))}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.platform()}. Test NLL in nats per vector; seconds are wall time.",
        "",
        "| data set | COUNT | NN | PTR | PTH | epochs NN / PTR / PTH | seconds NN / PTR / PTH |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for dataset_name in args.datasets:
        runs = [measure(dataset_name, args.protocol, seed) for seed in args.seeds]
        nll = {model: [run[model].nll["test"] for run in runs] for model in ("count", *MODELS)}
        epochs = " / ".join(summarise([run[model].epochs for run in runs]) for model in MODELS)
        seconds = " / ".join(summarise([run[model].seconds for run in runs]) for model in MODELS)
        cells = " | ".join(summarise(nll[model]) for model in ("count", *MODELS))
        lines.append(f"| {dataset_name} | {cells} | {epochs} | {seconds} |")

    table = "\n".join(lines) + "\n"
    print(table)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(table)


if __name__ == "__main__":
    main()
