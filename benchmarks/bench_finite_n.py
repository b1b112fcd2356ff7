"""Finite-N success at large N: early decisions, batched starts, today's runner against the new one.

Subcommands (science in ``experiments.finite_n``, machinery in ``simulation.decide`` and
``simulation.batched``):

- ``runs``: full protocol runs of batched clusters to t = 100 with the trajectory log
  (``results/early_stop/validation.npz``), the data the early rules are validated on;
- ``validate``: choose the early-rule thresholds on one half of those starts, check them
  on the other half (``results/early_stop/rules.json``);
- ``compare``: batched P(success) (cluster-robust errors) against the stored fresh-data
  sweep points;
- ``bench``: one (N, alpha) point, today's runner (one start per data set, to the protocol's
  stop rules) against the new one (batched starts, ``--batching``, + early rules), in the
  same run, or against today's runner measured by ``today`` (``--today-from``);
- ``today``: today's runner alone on a few starts (its cost per start);
- ``alone``: each start of an independent batch against the same start run alone;
- ``point``: one point of the protocol as independent batches, resumable (N = 8192:
  ``results/finite_n_8192``).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_finite_n.py runs
    python benchmarks/bench_finite_n.py validate
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_finite_n.py bench --n 4096 --clusters 1 --per-cluster 32
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_finite_n.py point --n 8192 --alpha 6
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments import finite_n as study
from experiments.finite_n_theory import deviation, prediction_standard_error

#: The validation's points: (N, alpha, clusters of 16 starts); 416 starts.
VALIDATION_POINTS = ((256, 4.0, 4), (256, 5.0, 4), (256, 6.0, 4), (256, 7.0, 4),
                     (512, 4.0, 2), (512, 5.0, 2), (512, 6.0, 2), (512, 7.0, 2),
                     (1024, 5.0, 1), (1024, 6.0, 1))


def _today(n: int, alpha: float, starts: int) -> dict:
    """Today's runner on ``starts`` starts: per-start rows, wall and CPU seconds, load average."""
    import os
    import time

    import numpy as np

    load0 = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    today = study.todays_runner(n, alpha, starts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    k, m = int(np.sum(today["status"] == "success")), int(today["status"].size)
    return dict(starts=m, successes=k, p=k / m, wall=wall, wall_per_start=wall / m, cpu_per_start=cpu / m,
                evaluations_per_start=float(np.mean(today["evaluations"])), status=today["status"].tolist(),
                wall_each=today["wall"].tolist(), evaluations=today["evaluations"].tolist(),
                loadavg_before=list(load0), loadavg_after=list(os.getloadavg()))


def today(args) -> int:
    """Today's runner alone, into a JSON file that ``bench --today-from`` reads."""
    from theory.io import atomic_write_text, json_ready, provenance

    res = dict(n=args.n, alpha=args.alpha, today=_today(args.n, args.alpha, args.today_starts),
               provenance=provenance(n=args.n, alpha=args.alpha, today_starts=args.today_starts))
    atomic_write_text(Path(args.out) / f"today_n{args.n}_a{args.alpha:g}.json", json.dumps(json_ready(res), indent=1))
    t = res["today"]
    print(f"N={args.n} alpha={args.alpha:g}: today {t['wall_per_start']:.1f} s (CPU {t['cpu_per_start']:.1f} s) and "
          f"{t['evaluations_per_start']:.0f} evaluations per start, P = {t['successes']}/{t['starts']}", flush=True)
    return 0


def bench(args) -> int:
    """Today's runner on ``--today-starts`` starts, then the new runner on clusters x per-cluster
    starts, in this process; one JSON file of both."""
    import time

    import numpy as np

    from simulation.decide import EarlyRules
    from theory.io import atomic_write_text, json_ready, provenance

    early = None
    if args.rules != "none":
        chosen = json.loads(Path(args.rules).read_text())
        early = EarlyRules(success_overlap=chosen["success_overlap"], trap_grad=chosen["trap_grad"],
                           trap_curvature=chosen["trap_curvature"], lanczos_steps=chosen["lanczos_steps"])
    import os

    n, alpha = args.n, args.alpha
    if args.today_from:  # today's runner measured by `today` in another process
        prior = json.loads(Path(args.today_from).read_text())
        if (prior["n"], prior["alpha"]) != (n, alpha):
            raise SystemExit(f"{args.today_from} holds N={prior['n']}, alpha={prior['alpha']}")
        t_rec = prior["today"]
    else:
        t_rec = _today(n, alpha, args.today_starts)
    today = {"status": np.array(t_rec["status"]), "evaluations": np.array(t_rec["evaluations"])}
    t_today, cpu_today = t_rec["wall"], t_rec["cpu_per_start"] * t_rec["starts"]
    tag = (("bench" if early is not None else "bench_batched") + ("_indep" if args.batching == "independent" else "")
           + (f"_{args.clusters}x{args.per_cluster}w{args.width}" if args.width else ""))
    load0 = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    new = study.run_batched(args.out, n, alpha, args.clusters, args.per_cluster, early=early, tag=tag,
                            batching=args.batching, width=args.width)
    t_new, cpu_new = time.perf_counter() - t0, time.process_time() - c0
    k = int(np.sum(today["status"] == "success"))
    m = int(today["status"].size)
    stored = None
    path = study.sweep_path(args.stored, n)
    if path.exists():
        from simulation.sweep import read_sweep

        ds = read_sweep(path)
        if alpha in ds["alpha"].values:
            st = np.asarray(ds.sel(alpha=alpha)["status"].values[0]).astype(str)
            stored = dict(p=float(np.mean(st == "success")), starts=int(st.size),
                          same_status_as_today=int(np.sum(st[:m] == today["status"])))
    res = dict(n=n, alpha=alpha, today=dict(t_rec, measured_in=args.today_from or "this process"),
               new=dict(new, wall_measured=t_new, wall_per_start=t_new / new["starts"],
                        cpu_per_start=cpu_new / new["starts"], batching=args.batching, width=args.width,
                        cpu_per_evaluation=cpu_new / (new["starts"] * new["evaluations_per_start"]),
                        loadavg_before=list(load0), loadavg_after=list(os.getloadavg()),
                        rules=None if early is None else vars(early), per_cluster=args.per_cluster),
               stored=stored, speedup_per_start=(t_today / m) / (t_new / new["starts"]),
               cpu_speedup_per_start=(cpu_today / m) / (cpu_new / new["starts"]),
               # each start of an independent batch takes the evaluations it takes alone, so on
               # the same starts the ratio per decided start is the ratio per evaluation
               cpu_speedup_per_evaluation=(cpu_today / float(np.sum(today["evaluations"])))
               / (cpu_new / (new["starts"] * new["evaluations_per_start"])),
               wall_speedup_per_evaluation=(t_today / float(np.sum(today["evaluations"])))
               / (t_new / (new["starts"] * new["evaluations_per_start"])),
               evaluation_ratio=float(np.mean(today["evaluations"])) / new["evaluations_per_start"],
               provenance=provenance(n=n, alpha=alpha, today_starts=m, clusters=args.clusters,
                                     per_cluster=args.per_cluster, batching=args.batching, width=args.width,
                                     today_from=args.today_from))
    atomic_write_text(Path(args.out) / f"{tag}_n{n}_a{alpha:g}.json", json.dumps(json_ready(res), indent=1))
    print(f"N={n} alpha={alpha:g} ({args.batching}): today {t_today / m:.1f} s and {res['today']['evaluations_per_start']:.0f} "
          f"evaluations per start, P = {k}/{m}; new {t_new / new['starts']:.1f} s and "
          f"{new['evaluations_per_start']:.0f} per start, P = {new['p']:.3f} +- {new['se']:.3f}; "
          f"speed-up per start {res['speedup_per_start']:.1f}x (wall), {res['cpu_speedup_per_start']:.1f}x (CPU); "
          f"per evaluation {res['wall_speedup_per_evaluation']:.1f}x (wall), {res['cpu_speedup_per_evaluation']:.1f}x (CPU)",
          flush=True)
    return 0


def _predictions(n: int, alpha: float, ds, files, t_max: float) -> list[dict]:
    """The committed finite-N predictions of (n, alpha) (read, never written) beside the
    measured P at the prediction's own horizon (success with stop time <= its t_max; the
    predictions so far are for t = 2, the study's protocol decides by t = 100), with the
    binomial error over the decided starts and the distance in it. Predictions for a horizon
    beyond the runs' ``t_max`` are left out."""
    import numpy as np

    status = np.asarray(ds["status"].values).astype(str).ravel()
    stop = np.asarray(ds["stop_time"].values, dtype=float).ravel()
    decided = status != "pending"
    out = []
    for f in files:
        path = Path(f)
        if not path.exists():
            continue
        d = json.loads(path.read_text())
        for variant in ("with_source", "start_only"):
            for row in d.get(variant, {}).get("prediction", []):
                if int(row["n"]) == n and float(row["alpha"]) == alpha:
                    horizon = float(row.get("t_max", 100.0))
                    if horizon > t_max:
                        continue
                    k = int(np.sum((status == "success") & (stop <= horizon)))
                    m = int(decided.sum())
                    p = k / m if m else float("nan")
                    pred = row["success_probability"]
                    se = prediction_standard_error(m, pred) if m else float("nan")
                    out.append(dict(file=str(path), variant=variant, horizon=horizon, p=pred, low=row["low"],
                                    high=row["high"], measured=p, measured_successes=k, starts=m,
                                    se_of_prediction=se, z=deviation(k, m, pred) if m else None))
    return out


def point(args) -> int:
    """One (N, alpha) point of the study's protocol as batches (independent batching, no
    early rules), resumable (netCDF after every cluster), and its summary JSON."""
    import os
    import time

    import numpy as np

    from theory.io import atomic_write_text, json_ready, provenance

    from simulation.batched import point_success, read_point

    load0 = os.getloadavg()
    t0 = time.perf_counter()
    full = args.t_max == study.T_MAX
    tag = "batched" if full else f"batched_t{args.t_max:g}"  # a shorter horizon: its own file
    path = study.batched_path(args.out, args.n, args.alpha, tag)
    if not args.no_run:
        res = study.run_batched(args.out, args.n, args.alpha, args.clusters, args.per_cluster, tag=tag,
                                batching="independent", first=args.first_cluster, t_max=args.t_max)
    ds = read_point(path)
    if args.no_run:  # the clusters stored so far
        res = point_success(ds)
        done = ~np.any(np.asarray(ds["status"].values).astype(str) == "pending", axis=1)
        res.update(n=args.n, alpha=args.alpha, wall=float(np.nansum(ds["wall_seconds"].values)),
                   evaluations_per_start=float(np.nanmean(ds["replica_evaluations"].values[done])),
                   batch_evaluations=int(np.sum(ds["evaluations"].values)),
                   clusters_pending=int((~done).sum()))
    res["predictions"] = _predictions(args.n, args.alpha, ds, args.predictions, args.t_max)
    res.update(wall_this_call=time.perf_counter() - t0, loadavg_before=list(load0), loadavg_after=list(os.getloadavg()),
               wall_per_start=res["wall"] / max(res["starts"], 1),
               provenance=provenance(n=args.n, alpha=args.alpha, clusters=args.clusters, per_cluster=args.per_cluster,
                                     first_cluster=args.first_cluster, batching="independent", no_run=args.no_run,
                                     file=str(path),
                                     protocol=dict(t_max=args.t_max, success_overlap=study.SUCCESS_OVERLAP,
                                                   rtol=study.RTOL, atol=study.ATOL, dtype=study.DTYPE)))
    name = f"point_n{args.n}_a{args.alpha:g}" + ("" if full else f"_t{args.t_max:g}")
    atomic_write_text(Path(args.out) / f"{name}.json", json.dumps(json_ready(res), indent=1))
    print(f"N={args.n} alpha={args.alpha:g}: P = {res['p']:.3f} +- {res['se']:.3f} (cluster-robust; binomial "
          f"{res['se_binomial']:.3f}), {res['successes']}/{res['starts']}, {res['timeouts']} timeouts; "
          f"{res['wall_per_start']:.1f} s per start", flush=True)
    for pr in res["predictions"]:
        print(f"  by t = {pr['horizon']:g}: measured {pr['measured_successes']}/{pr['starts']}, predicted "
              f"{pr['p']:.3g} [{pr['low']:.3g}, {pr['high']:.3g}] ({pr['variant']}, {Path(pr['file']).name})", flush=True)
    return 0


def alone(args) -> int:
    """Each start of an independent batch against the same start run alone on the same data
    (today's single-start flow), under the study's protocol in float32: statuses, |q|,
    evaluations and stop times per start."""
    import time

    import numpy as np

    from simulation.batched import run_cluster
    from simulation.data import make_problem, random_starts
    from simulation.flow import run_dynamics
    from theory.io import atomic_write_text, json_ready, provenance

    stop, integ = study.protocol_rules()
    rows = []
    for seed in study.cluster_seeds(args.n, args.alpha, args.clusters, args.first_cluster):
        t0 = time.perf_counter()
        summary, _ = run_cluster(args.n, args.alpha, seed, args.per_cluster, stop, integ, study.DTYPE,
                                 times=np.array([0.0]), batching="independent")
        t_batch = time.perf_counter() - t0
        problem = make_problem(args.n, args.alpha, seed, study.DTYPE)
        W0 = random_starts(args.n, args.per_cluster, seed, study.DTYPE)
        t0 = time.perf_counter()
        single = [run_dynamics(problem, W0[:, b:b + 1], stop, integ, times=np.array([0.0]))
                  for b in range(args.per_cluster)]
        t_alone = time.perf_counter() - t0
        rows.append(dict(seed=seed, batch_status=summary.status.tolist(), alone_status=[str(r.status[0]) for r in single],
                         batch_q=np.abs(summary.q).tolist(), alone_q=[abs(float(r.q[0])) for r in single],
                         batch_evaluations=summary.replica_evaluations.tolist(),
                         alone_evaluations=[int(r.gradient_evaluations) for r in single],
                         batch_stop_time=summary.stop_time.tolist(), alone_stop_time=[float(r.stop_time[0]) for r in single],
                         batch_wall=t_batch, alone_wall=t_alone))
    bs = np.concatenate([r["batch_status"] for r in rows])
    al = np.concatenate([r["alone_status"] for r in rows])
    res = dict(n=args.n, alpha=args.alpha, starts=int(bs.size), same_status=int(np.sum(bs == al)),
               same_success=int(np.sum((bs == "success") == (al == "success"))),
               batch_successes=int(np.sum(bs == "success")), alone_successes=int(np.sum(al == "success")),
               clusters=rows, provenance=provenance(n=args.n, alpha=args.alpha, clusters=args.clusters,
                                                    per_cluster=args.per_cluster, first_cluster=args.first_cluster))
    atomic_write_text(Path(args.out) / f"alone_n{args.n}_a{args.alpha:g}.json", json.dumps(json_ready(res), indent=1))
    print(f"N={args.n} alpha={args.alpha:g}: {res['same_status']}/{res['starts']} same status, "
          f"{res['same_success']}/{res['starts']} same success; successes batch {res['batch_successes']}, "
          f"alone {res['alone_successes']}", flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("runs", help="full logged runs for the early-rule validation")
    r.add_argument("--out", default="results/early_stop/validation.npz")
    r.add_argument("--per-cluster", type=int, default=16)
    c = sub.add_parser("compare", help="batched P(success) against the stored fresh-data points")
    c.add_argument("--points", nargs="+", default=["1024:5", "1024:6"], metavar="N:ALPHA")
    c.add_argument("--clusters", type=int, default=4)
    c.add_argument("--per-cluster", type=int, default=16)
    c.add_argument("--out", default="results/bench_finite_n")
    c.add_argument("--stored", default="results/finite_n_t100")
    c.add_argument("--batching", choices=("independent", "shared"), default="independent")
    b = sub.add_parser("bench", help="one point: today's runner (a subset of starts) against the new one")
    b.add_argument("--n", type=int, default=4096)
    b.add_argument("--alpha", type=float, default=6.0)
    b.add_argument("--today-starts", type=int, default=8, help="starts of today's runner (its cost per start)")
    b.add_argument("--clusters", type=int, default=2)
    b.add_argument("--per-cluster", type=int, default=32)
    b.add_argument("--rules", default="results/early_stop/rules.json",
                   help="early rules (from `validate`); 'none' for batched starts alone")
    b.add_argument("--out", default="results/bench_finite_n")
    b.add_argument("--stored", default="results/finite_n_t100")
    b.add_argument("--batching", choices=("independent", "shared"), default="independent",
                   help="the new runner's batching (shared: the first round's, one stage count per step)")
    b.add_argument("--width", type=int, default=None,
                   help="independent batching: at most this many starts at once, the others refill")
    b.add_argument("--today-from", default=None,
                   help="JSON of `today` (today's runner measured in another process) instead of running it")
    t = sub.add_parser("today", help="today's runner alone (its per-start cost), for bench --today-from")
    t.add_argument("--n", type=int, default=4096)
    t.add_argument("--alpha", type=float, default=6.0)
    t.add_argument("--today-starts", type=int, default=8)
    t.add_argument("--out", default="results/bench_finite_n")
    p = sub.add_parser("point", help="one point of the protocol as independent batches (e.g. N = 8192)")
    p.add_argument("--n", type=int, default=8192)
    p.add_argument("--alpha", type=float, default=6.0)
    p.add_argument("--clusters", type=int, default=2)
    p.add_argument("--per-cluster", type=int, default=16)
    p.add_argument("--first-cluster", type=int, default=0, help="index of the first cluster seed")
    p.add_argument("--out", default="results/finite_n_8192")
    p.add_argument("--t-max", type=float, default=study.T_MAX,
                   help="stop the protocol's flow at this time (e.g. 2, a prediction's horizon; own files)")
    p.add_argument("--no-run", action="store_true", help="summarise the clusters stored so far, run nothing")
    p.add_argument("--predictions", nargs="*", default=["results/finite_n_theory/prediction_T2_seed0.json",
                                                        "results/finite_n_theory/prediction_T2_S8000.json",
                                                        "results/finite_n_theory/prediction_T2_S8000_a5-7.json"])
    a = sub.add_parser("alone", help="independent batch against each start alone on the same data (float32)")
    a.add_argument("--n", type=int, default=512)
    a.add_argument("--alpha", type=float, default=6.0)
    a.add_argument("--clusters", type=int, default=2)
    a.add_argument("--per-cluster", type=int, default=16)
    a.add_argument("--first-cluster", type=int, default=0)
    a.add_argument("--out", default="results/bench_finite_n")
    v = sub.add_parser("validate", help="choose the early rules on half the logged starts, check on the rest")
    v.add_argument("--runs", default="results/early_stop/validation.npz")
    v.add_argument("--out", default="results/early_stop/rules.json")
    args = ap.parse_args(argv)
    if args.command == "validate":
        import numpy as np

        from theory.io import atomic_write_text, json_ready, provenance

        with np.load(args.runs) as f:
            rec = {k: f[k] for k in f.files}
        choice = study.choose_early_rules(rec)
        adopted = study.adopted_early_rules(choice, rec)
        points = sorted({(int(n), float(a)) for n, a in zip(rec["n"], rec["alpha"])})
        res = dict(adopted, chosen_on_train=choice, starts=int(len(rec["n"])), points=points,
                   provenance=provenance(runs=str(args.runs)))
        atomic_write_text(args.out, json.dumps(json_ready(res), indent=1))
        print(json.dumps(json_ready({k: res[k] for k in ("success_overlap", "trap_grad", "trap_curvature",
                                                         "check_all", "starts")})))
        print(json.dumps(json_ready({k: choice[k] for k in ("train", "test", "success_only_test",
                                                            "trap_only_test")})))
        return 0
    if args.command == "bench":
        return bench(args)
    if args.command == "today":
        return today(args)
    if args.command == "point":
        return point(args)
    if args.command == "alone":
        return alone(args)
    if args.command == "compare":
        rows = []
        for token in args.points:
            n, alpha = int(token.split(":")[0]), float(token.split(":")[1])
            res = study.run_batched(args.out, n, alpha, args.clusters, args.per_cluster, batching=args.batching,
                                    tag="batched" if args.batching == "shared" else "batched_indep")
            res.update(study.compare_with_stored(res, study.sweep_path(args.stored, n)))
            rows.append(res)
            print(f"N={n} alpha={alpha:g}: batched P = {res['p']:.3f} +- {res['se']:.3f} (cluster; bootstrap "
                  f"{res['se_bootstrap']:.3f}, binomial {res['se_binomial']:.3f}) vs stored {res['stored_p']:.3f} +- "
                  f"{res['stored_se']:.3f}: z = {res['z']:.2f}; {res['wall'] / res['starts']:.2f} s per start vs "
                  f"{res['stored_wall_per_start']:.2f} stored", flush=True)
        from theory.io import atomic_write_text, json_ready

        name = "compare.json" if args.batching == "shared" else "compare_indep.json"
        atomic_write_text(Path(args.out) / name, json.dumps(json_ready(rows), indent=1))
        return 0
    if args.command == "runs":
        rec = study.validation_runs(VALIDATION_POINTS, args.per_cluster, Path(args.out))
        print(json.dumps({"starts": int(len(rec["n"]))}))
    return 0


if __name__ == "__main__":
    from theory.errors import InputError

    try:
        sys.exit(main())
    except InputError as exc:  # bad input: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
