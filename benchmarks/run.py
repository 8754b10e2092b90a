"""Runs the jaxinfo benchmark suite and prints its tables.

    python -m benchmarks.run                      # the full CPU suite (several minutes on 2 cores)
    python -m benchmarks.run --quick              # tiny shapes, a few seconds
    python -m benchmarks.run --json benchmarks/results/cpu.json
    python -m benchmarks.run --device gpu --shapes 65536x32768 --dtypes float32

See benchmarks/README.md for what is measured and how to read the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a shape is written like 4096x1024, got {text!r}"
        ) from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"a shape needs positive sizes, got {text!r}")
    return shape


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny shapes, few repeats (a smoke run)"
    )
    parser.add_argument(
        "--shapes",
        type=lambda s: [_shape(t) for t in s.split(",")],
        help="comma-separated shapes, classes last (default: 4096x1024,256x32768,16x262144)",
    )
    parser.add_argument("--dtypes", help="comma-separated dtypes (default: float32,bfloat16)")
    parser.add_argument("--cases", help="comma-separated measures to run (default: all)")
    parser.add_argument(
        "--modes",
        help="comma-separated modes among fwd, vg, grad (default: each case's own: "
        "fwd,vg, and grad too for the entropy)",
    )
    parser.add_argument("--repeats", type=int, help="interleaved rounds per configuration")
    parser.add_argument(
        "--min-time", type=float, help="seconds per timed sample (calls are repeated to reach it)"
    )
    parser.add_argument("--device", default="cpu", help="JAX platform to run on: cpu, gpu, tpu")
    parser.add_argument("--json", metavar="PATH", help="write the figures and environment here")
    parser.add_argument("--hlo-dir", metavar="DIR", help="dump each compiled HLO module here")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    # Imported here so that --help answers without loading jax.
    from benchmarks import cases as cases_mod
    from benchmarks import suite

    selected = None
    if args.cases:
        names = [n.strip() for n in args.cases.split(",")]
        unknown = [n for n in names if n not in cases_mod.CASES_BY_NAME]
        if unknown:
            raise SystemExit(f"unknown case(s) {unknown}; known: {list(cases_mod.CASES_BY_NAME)}")
        selected = [cases_mod.CASES_BY_NAME[n] for n in names]

    shapes = args.shapes or (suite.QUICK_SHAPES if args.quick else suite.DEFAULT_SHAPES)
    dtypes = args.dtypes.split(",") if args.dtypes else suite.DEFAULT_DTYPES
    modes = [m.strip() for m in args.modes.split(",")] if args.modes else None
    if modes is not None:
        unknown = [m for m in modes if m not in suite.MODES]
        if unknown:
            raise SystemExit(f"unknown mode(s) {unknown}; known: {list(suite.MODES)}")
    repeats = args.repeats or (3 if args.quick else 21)
    min_time = args.min_time or (0.001 if args.quick else 0.02)

    def progress(ms):
        m = ms[0]
        ratios = ", ".join(f"{x.contender} {x.ratio:.2f}" for x in ms[1:])
        shape = "x".join(map(str, m.shape))
        print(f"  {m.measure:26s} {m.mode:3s} {shape:>10s} {m.dtype:8s} {ratios}", file=sys.stderr)

    report = suite.run(
        cases=selected,
        shapes=shapes,
        dtypes=dtypes,
        modes=modes,
        repeats=repeats,
        min_time=min_time,
        device=args.device,
        hlo_dir=args.hlo_dir,
        progress=progress,
    )
    report["settings"]["command"] = "python -m benchmarks.run " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    env = report["environment"]
    print(
        f"\n{env['cpu']} ({env['cpu_count']} cores), {env['device']}, jax {env['jax']}, "
        f"load average {env['load_average_before']} -> {env['load_average_after']}, "
        f"XLA_FLAGS={env['xla_flags']!r}\n"
    )
    print(suite.format_tables(report))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    return report


if __name__ == "__main__":
    main()
