"""Command line of the simulator: ``python -m simulation {run,hessian} ...``.

Every subcommand has --help, defaults that give a real result in about a minute, and
--json for scripts (JSON on stdout, nothing else; progress bars only without --json).
Bad input gives one line on stderr and exit status 2 (theory.errors.run_cli).
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import time

import numpy as np

from theory.errors import (ConvergenceError, InputError, OneLineArgumentParser, Subcommand, dispatch, run_cli,
                           subcommand_parser)
from theory.io import integer_arg, load_npz, number_arg, output_path

from .data import Problem, check_memory, make_problem, problem_from_arrays, random_starts, resolve_dtype, warm_start
from .flow import (DIVERGENCE_FACTOR, PROTOCOLS, STATUS_NAMES, FlowResult, Integrator, RunInterrupted, StopRules,
                   describe_replicas, run_dynamics)
from .probes import FULL_SPECTRUM_MAX_N, export_measure, full_spectrum, lowest_eigenpairs, state_measure
from .state import load_state, save_state
from .plot import add_plot_parser, cmd_plot
from .sweep import terminate_as_interrupt, add_flow_options, add_sweep_parser, cmd_sweep

__all__ = ["SUBCOMMANDS", "build_parser", "main", "entry", "cmd_run", "cmd_hessian", "run_starts", "RUN_THREADS"]

#: default BLAS threads of ``run`` (--threads), chosen by measurement: see THREADS_MEASUREMENT.
#: Fixed, not adapted to the load: the thread count changes the last digits (BLAS splits its
#: reductions; 1e-11 relative in the final energies), and the same command must give the same numbers.
RUN_THREADS = 2
#: the measurement behind RUN_THREADS, quoted in --help
THREADS_MEASUREMENT = ("measured on a 2-core machine with the README command (N = 500, alpha = 6, 16 "
                       "replicas): idle, one run each, 86 s with 1 thread and 58 s with 2; shared with other "
                       "jobs (load 5-7, cut at --t-max 1, medians of 3) 59 s with 1 and 111 s with 2, so use "
                       "--threads 1 when other jobs share the cores")


def _add_run(sub) -> None:
    r = sub.add_parser("run", help="run B replicas of gradient flow (or GD) on one data set",
                       description="Run B replicas from random starts (or warm starts at overlap --q0) "
                                   "on one data set drawn from the seed (or --data), each to its stop rule: "
                                   "success (|q| >= 0.999 or e <= energy-tol), trapped, timeout, or diverged "
                                   "(exit 3). Without a teacher in --data, q is unavailable and success is by "
                                   "energy. Ctrl-C prints and saves the replicas done, the others marked "
                                   "interrupted (exit 130).")
    r.add_argument("--n", type=integer_arg("N"), default=500, help="dimension N (default 500)")
    r.add_argument("--alpha", type=number_arg, default=6.0, help="ratio M/N (default 6)")
    r.add_argument("--replicas", type=integer_arg("replicas"), default=16, help="number of starts B (default 16)")
    r.add_argument("--seed", type=integer_arg("seed"), default=0, help="seed of data and starts (default 0)")
    add_flow_options(r)
    r.add_argument("--protocol", choices=PROTOCOLS, default="free",
                   help="free flow (default) or the flow restricted to W orthogonal to W* (q = 0)")
    r.add_argument("--q0", type=number_arg, default=None,
                   help="warm starts with teacher overlap exactly q0; replica b uses the start seed "
                        "seed + b (default: random starts, replica b = column b of the seed's starts)")
    r.add_argument("--init", default="random", choices=("random", "spectral"),
                   help="start: random on the sphere (default) or spectral, the top eigenvector of "
                        "(1/M) sum T(y_m) a_m a_m^T (docs/theory.md §6; all replicas are then the same start)")
    r.add_argument("--preprocess", default=None, metavar="NAME",
                   help="T(y) of --init spectral: plain, trimmed, mondelli-montanari (default), luo-alghamdi-lu, "
                        "mondelli-montanari:D or a formula in y")
    r.add_argument("--data", default=None, help=".npz with your own X (M,N), y (M,) and optional w_star "
                                                "(without it: no overlap q, success by energy only)")
    r.add_argument("--save", default=None, help="write the final states to this .npz state file (checked "
                                                "before computing; .npz appended if missing)")
    r.add_argument("--threads", type=integer_arg("threads"), default=RUN_THREADS,
                   help=f"BLAS threads of this run (default {RUN_THREADS}; {THREADS_MEASUREMENT})")
    r.add_argument("--json", action="store_true", help="print JSON only")


def _add_hessian(sub) -> None:
    h = sub.add_parser("hessian", help="lowest eigenpairs of the tangent Hessian of a saved state",
                       description="Lowest eigenvalues of the tangent-space Hessian at one replica of a "
                                   "state file, their squared overlaps with the teacher direction e, and mu.")
    h.add_argument("--state", required=True, help="state file written by `run --save`")
    h.add_argument("--replica", type=integer_arg("replica"), default=0, help="replica index (default 0)")
    h.add_argument("--k", type=integer_arg("k"), default=6, help="number of lowest eigenvalues (default 6)")
    h.add_argument("--full", action="store_true", help=f"dense diagonalisation (N <= {FULL_SPECTRUM_MAX_N}) instead of Lanczos")
    h.add_argument("--export-measure", default=None, help="write the state's measure (yhat, y, s, mu, alpha) .npz for `python -m theory spectrum`")
    h.add_argument("--json", action="store_true", help="print JSON only")


def _load_data(path):
    a = load_npz(path, required=("X", "y"), kind="data file")
    return problem_from_arrays(a["X"], a["y"], a.get("w_star"))


def run_starts(problem: Problem, replicas: int, seed: int, q0: float | None = None) -> np.ndarray:
    """The (N, B) starts of ``run``, in the problem's dtype.

    Without q0: ``random_starts(N, B, seed)`` (replica b is column b of the seed's start
    stream). With q0: replica b is ``warm_start(problem, q0, seed + b)``, overlap exactly q0
    with W* (so replica 0 mixes in the same random vector as the random start of replica 0,
    and ``--seed 2000`` gives the warm starts of benchmarks/validate_dmft.py, start seeds
    2000 + b). Needs the teacher (InputError otherwise).
    """
    if q0 is None:
        return random_starts(problem.n, replicas, seed, problem.dtype)
    if problem.w_star is None:
        raise InputError("--q0 needs the teacher W*: the data file has no w_star")
    return np.concatenate([warm_start(problem, q0, seed + b) for b in range(replicas)], axis=1).astype(problem.dtype)


def _finite_or_none(values: np.ndarray) -> list:
    """Floats for strict JSON: non-finite values (unavailable, diverged) become null."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=float)]


def _cell(value: float, spec: str, width: int) -> str:
    """A table cell: the number, or '-' right-aligned when it is not available (NaN)."""
    return f"{value:>{width}{spec}}" if np.isfinite(value) else f"{'-':>{width}}"


def _divergence_message(result: FlowResult, args: argparse.Namespace) -> str:
    """One line naming the diverged replicas and what to change."""
    which = describe_replicas(np.flatnonzero(result.status == "diverged"))
    if args.method == "gd":
        return (f"{which} diverged (energy above {DIVERGENCE_FACTOR:g}x its start, or not finite): projected GD "
                f"with --lr {args.lr:g} is unstable here; lower --lr")
    return (f"{which} diverged (energy, gradient or state not finite, or the flow too stiff to integrate): "
            "check the scale of the data (the predictions <x_m, W> should be O(1))")


def cmd_run(args: argparse.Namespace) -> int:
    """Run ``python -m simulation run``: print (or --json) a table, save with --save.

    Exit 0 when every replica stopped by a rule; 3 (ConvergenceError, one line naming the
    replicas) when some diverged, after printing and saving; 130 on Ctrl-C or SIGTERM, after
    printing and saving the replicas done (the others "interrupted"). The output path and
    the memory are checked before anything is computed.
    """
    dtype = resolve_dtype(args.dtype)
    stop = StopRules(t_max=args.t_max, success_overlap=args.success_overlap, energy_tol=args.energy_tol,
                     grad_tol=args.grad_tol)
    integ = Integrator(method=args.method, rtol=args.rtol, atol=args.atol, lr=args.lr, max_stages=args.max_stages)
    if args.threads < 1:
        raise InputError(f"threads must be >= 1, got {args.threads}")
    if args.q0 is not None and args.protocol == "orthogonal":
        raise InputError("--q0 and --protocol orthogonal exclude each other (the orthogonal flow has q = 0)")
    if args.init == "spectral" and args.q0 is not None:
        raise InputError("--init spectral and --q0 exclude each other (two different starts)")
    if args.preprocess is not None and args.init != "spectral":
        raise InputError("--preprocess needs --init spectral")
    save = None if args.save is None else str(output_path(args.save, "--save", ".npz"))
    if not args.data:
        check_memory(args.n, args.alpha, args.replicas, args.dtype)
    if args.data:
        problem = _load_data(args.data).astype(dtype)
    else:
        problem = make_problem(args.n, args.alpha, args.seed, dtype)
    teacher = problem.w_star is not None
    if not teacher and args.protocol == "orthogonal":
        raise InputError("--protocol orthogonal needs the teacher W*: the data file has no w_star")
    from threadpoolctl import threadpool_limits

    start, interrupted = None, False
    with threadpool_limits(limits=args.threads), terminate_as_interrupt():
        if args.init == "spectral":
            from theory.spectral_start import DEFAULT_PREPROCESSING

            from .spectral_start import spectral_start

            start = spectral_start(problem, args.preprocess or DEFAULT_PREPROCESSING, args.replicas, seed=args.seed)
            W0 = start.W0
        else:
            W0 = run_starts(problem, args.replicas, args.seed, args.q0)
        times = None if args.time_grid == "log" else np.array([0.0])
        try:
            result = run_dynamics(problem, W0, stop, integ, args.loss, times=times, progress=not args.json,
                                  protocol=args.protocol)
        except RunInterrupted as exc:  # Ctrl-C or SIGTERM: report and save what is done
            result, interrupted = exc.result, True
    if save:
        save_state(save, problem, result, loss=args.loss, W0=W0)
    _report_run(args, problem, result, start, save, teacher, interrupted, dtype, integ)
    if interrupted:
        raise KeyboardInterrupt  # theory.errors.run_cli: one line, exit 130
    if np.any(result.status == "diverged"):
        raise ConvergenceError(_divergence_message(result, args), result)
    return 0


def _report_run(args, problem, result, start, save, teacher, interrupted, dtype, integ) -> None:
    """The JSON or the table of ``run``."""
    names = [n for n in STATUS_NAMES.values() if n != "running"]
    counts = {k: int(np.sum(result.status == k)) for k in names}
    no_teacher = (f"no teacher W* in {args.data}: the overlap q and success by overlap are unavailable; "
                  f"success means e/N <= energy-tol = {args.energy_tol:g}")
    out = dict(
        n=problem.n, alpha=problem.alpha, m=problem.m, replicas=args.replicas, seed=args.seed,
        method=args.method, protocol=args.protocol, q0=args.q0, dtype=dtype.name, loss=args.loss,
        t_max=args.t_max, threads=args.threads, teacher=teacher, interrupted=interrupted,
        unavailable={} if teacher else {"final_overlap": no_teacher, "success_by_overlap": no_teacher},
        success_fraction=result.success_fraction, counts=counts,
        status=result.status.tolist(), final_overlap=_finite_or_none(result.q),
        final_energy=_finite_or_none(result.energy), final_grad_norm=_finite_or_none(result.grad_norm),
        stop_time=_finite_or_none(result.stop_time),
        gradient_evaluations=result.gradient_evaluations, steps=result.steps,
        wall_seconds=round(result.wall_seconds, 3), saved=save, init=args.init,
        preprocess=None if start is None else start.preprocess,
        start_overlap=None if start is None or not np.isfinite(start.q0) else start.q0,
        start_eigenvalue=None if start is None else start.top_eigenvalue,
        lanczos_products=None if start is None else start.iterations,
    )
    if args.json:
        print(json.dumps(out, allow_nan=False))
        return
    rtol = integ.tolerances(dtype)[0]
    how = f"adaptive RKC, rtol={rtol:g}" if args.method == "flow" else f"projected GD, lr={args.lr:g}"
    print(f"gradient {'flow' if args.method == 'flow' else 'descent'} on the sphere: N={problem.n} "
          f"alpha={problem.alpha:g} (M={problem.m}) replicas={args.replicas} seed={args.seed} "
          f"[{how}, {dtype.name}, {args.threads} BLAS thread{'s' if args.threads != 1 else ''}]"
          + (" orthogonal to W*" if args.protocol == "orthogonal" else "")
          + (f", warm starts q0={args.q0:g}" if args.q0 is not None else ""))
    if not teacher:
        print(no_teacher)
    print(f"{'replica':>7}  {'status':<11} {'stop time':>10} {'energy/N':>11} {'overlap q':>10} {'|grad|':>9}")
    for b in range(args.replicas):
        print(f"{b:>7}  {result.status[b]:<11} {_cell(result.stop_time[b], '.3g', 10)} "
              f"{_cell(result.energy[b], '.4g', 11)} {_cell(result.q[b], '.4f', 10)} "
              f"{_cell(result.grad_norm[b], '.2e', 9)}")
    print(f"success fraction {result.success_fraction:.3f}  ("
          + ", ".join(f"{counts[k]} {k}" for k in names if counts[k] or k in ("success", "trapped", "timeout"))
          + ")")
    print(f"wall {result.wall_seconds:.1f} s, {result.gradient_evaluations} batched gradient evaluations, "
          f"{result.steps} steps" + (f"; states saved to {save}" if save else ""))
    if start is not None:
        q0 = f"{start.q0:.4f}" if np.isfinite(start.q0) else "- (no teacher)"
        print(f"spectral start ({start.preprocess}): q0 = {q0}, top eigenvalue {start.top_eigenvalue:.6g}, "
              f"{start.iterations} Lanczos products; the {args.replicas} replica(s) share this start")
    if interrupted:
        print(f"interrupted: {counts['interrupted']} replica(s) still running were stopped (status interrupted)"
              + (f"; saved to {save}" if save else ""))


def cmd_hessian(args: argparse.Namespace) -> int:
    if args.export_measure:  # checked before computing; reported as the path written
        args.export_measure = str(output_path(args.export_measure, "--export-measure", ".npz"))
    st = load_state(args.state)
    B = st.W.shape[1]
    if not (0 <= args.replica < B):
        raise InputError(f"replica must be in 0..{B - 1}, got {args.replica}")
    if args.k < 1:
        raise InputError(f"k must be >= 1, got {args.k}")
    w = st.W[:, args.replica]
    t0 = time.perf_counter()
    spectrum = None
    if args.full:
        spectrum, probe = full_spectrum(st.problem, w, st.loss, k=args.k)
    else:
        probe = lowest_eigenpairs(st.problem, w, args.k, st.loss)
    wall = time.perf_counter() - t0
    if args.export_measure:
        meas = state_measure(st.problem, w, st.loss)
        if spectrum is None and st.problem.n <= FULL_SPECTRUM_MAX_N:
            spectrum, _ = full_spectrum(st.problem, w, st.loss, k=1)
        eig = spectrum if spectrum is not None else probe.eigenvalues
        export_measure(args.export_measure, meas, eig, eigenvalues_complete=spectrum is not None)
    out = dict(state=args.state, replica=args.replica, status=str(st.status[args.replica]), n=st.problem.n,
               alpha=st.problem.alpha, method=probe.method, mu=probe.mu, energy=probe.energy, q=probe.q,
               eigenvalues=probe.eigenvalues.tolist(), overlap2=probe.overlap2.tolist(),
               residuals=probe.residuals.tolist(), converged=probe.converged,
               wall_seconds=round(wall, 3), measure=args.export_measure)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"tangent Hessian of replica {args.replica} ({out['status']}) in {args.state}: N={st.problem.n} "
          f"alpha={st.problem.alpha:g}  mu={probe.mu:.6g}  energy/N={probe.energy:.6g}  q={probe.q:.4f}")
    print(f"{'i':>3} {'eigenvalue':>13} {'overlap2 with e':>16} {'residual':>10}")
    for i, (lam, o, r) in enumerate(zip(probe.eigenvalues, probe.overlap2, probe.residuals)):
        print(f"{i:>3} {lam:>13.6g} {o:>16.4g} {r:>10.2e}")
    print(f"{probe.method}, {wall:.2f} s" + (f"; measure written to {args.export_measure}" if args.export_measure else ""))
    return 0


#: Subcommands as (name, add_parser(subparsers), command(args) -> exit status). A new
#: subcommand lives in its own module and adds one entry here.
SUBCOMMANDS: list[Subcommand] = [
    ("run", _add_run, cmd_run),
    ("hessian", _add_hessian, cmd_hessian),
    ("sweep", add_sweep_parser, cmd_sweep),
    ("plot", add_plot_parser, cmd_plot),
]


def build_parser() -> OneLineArgumentParser:
    return subcommand_parser("python -m simulation", "Finite-N gradient flow for phase retrieval.", SUBCOMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; returns the exit status."""
    return dispatch(build_parser(), SUBCOMMANDS, argv)


def entry(argv: Sequence[str] | None = None) -> int:
    """``main`` behind :func:`theory.errors.run_cli` (one-line errors, exit statuses)."""
    return run_cli(main, argv)
