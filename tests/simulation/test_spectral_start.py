"""Tests of simulation.spectral_start: the matrix-free spectral start of a problem."""
import numpy as np
import pytest

from simulation.data import make_problem
from simulation.spectral_start import spectral_operator, spectral_start
from theory.errors import InputError
from theory.spectral_start import get_preprocessing, spectral_prediction


def test_operator_is_the_spectral_matrix():
    """(N/M) X^T diag(T) X applied matrix-free equals the dense matrix (small N)."""
    p = make_problem(40, 3.0, seed=3)
    op, calls = spectral_operator(p, "trimmed")
    T = get_preprocessing("trimmed")(p.y, p.alpha)
    S = (p.n / p.m) * (p.X.T * T) @ p.X
    v = np.random.default_rng(0).standard_normal(p.n)
    assert np.allclose(op.matvec(v), S @ v, rtol=1e-12, atol=1e-12)
    assert calls[0] == 1
    top = spectral_start(p, "trimmed", tol=1e-12)
    lam, vecs = np.linalg.eigh(S)
    assert top.top_eigenvalue == pytest.approx(lam[-1], rel=1e-9)
    assert abs(vecs[:, -1] @ top.W0[:, 0]) / np.sqrt(p.n) == pytest.approx(1.0, abs=1e-8)


def test_start_on_sphere_sign_fixed_replicas_identical():
    p = make_problem(300, 4.0, seed=5)
    r = spectral_start(p, "mondelli-montanari", replicas=3)
    assert r.converged and r.W0.shape == (300, 3)
    assert np.all(r.W0 == r.W0[:, :1])
    assert np.sum(r.W0[:, 0] ** 2) == pytest.approx(300.0)
    k = np.argmax(np.abs(r.W0[:, 0]))
    assert r.W0[k, 0] > 0
    other = spectral_start(p, "mondelli-montanari", seed=99)  # another Lanczos start vector
    assert np.allclose(other.W0[:, 0], r.W0[:, 0], atol=1e-5)
    assert r.q0 == pytest.approx(r.W0[:, 0] @ p.w_star / 300)
    assert r.residual < 1e-6


def test_simulated_overlap_against_prediction():
    """N = 2000, Mondelli-Montanari at alpha = 3: q0^2 of the start vs the core's overlap^2
    (docs/theory.md §6), absolute 0.03 on overlap^2, two data sets averaged."""
    pred = spectral_prediction("mondelli-montanari", 3.0)
    q2 = [spectral_start(make_problem(2000, 3.0, seed), "mondelli-montanari").q0 ** 2 for seed in (1, 2)]
    assert abs(np.mean(q2) - pred.overlap2) <= 0.03, (q2, pred.overlap2)


@pytest.mark.slow
@pytest.mark.parametrize("preprocess, alpha", [("trimmed", 6.0), ("luo-alghamdi-lu", 1.5),
                                               ("mondelli-montanari", 1.5)])
def test_simulated_overlap_against_prediction_more(preprocess, alpha):
    pred = spectral_prediction(preprocess, alpha)
    q2 = [spectral_start(make_problem(2000, alpha, seed), preprocess).q0 ** 2 for seed in range(4)]
    assert abs(np.mean(q2) - pred.overlap2) <= 0.03, (q2, pred.overlap2)


@pytest.mark.parametrize("spec", ["nonsense", "y**2 +", "q*y"])
def test_bad_preprocessing(spec):
    p = make_problem(20, 2.0, seed=0)
    with pytest.raises(InputError) as info:
        spectral_start(p, spec)
    assert "\n" not in str(info.value)


def test_bad_replicas():
    with pytest.raises(InputError):
        spectral_start(make_problem(20, 2.0, seed=0), "plain", replicas=0)


def test_run_command_spectral_start(capsys):
    """`run --init spectral` starts every replica at the spectral estimate and records its
    overlap; its theory (N = infinity, luo-alghamdi-lu, alpha = 3) is overlap^2 = 0.83."""
    import json

    from simulation.cli import entry

    assert entry(["run", "--n", "300", "--alpha", "3", "--replicas", "2", "--init", "spectral",
                  "--preprocess", "luo-alghamdi-lu", "--t-max", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["init"] == "spectral" and out["preprocess"] == "luo-alghamdi-lu"
    assert 0.8 < abs(out["start_overlap"]) < 1.0
    assert entry(["run", "--n", "50", "--preprocess", "plain"]) == 2
    assert entry(["run", "--n", "50", "--init", "spectral", "--q0", "0.5"]) == 2
    assert "needs --init spectral" in capsys.readouterr().err
