"""Tests of theory.spectrum (docs/theory.md §2) against independent numerics.

Direct diagonalisation builds H = (1/N) sum_m D_m a_m a_m^T - mu I with a_m ~ N(0, I_N),
first coordinate of a_m = s_m, and D a bounded function of s. Population laws are
evaluated on a Gauss-Hermite quadrature of s ~ N(0, 1) (independent of the samples).
Where the population law is compared with one finite-N matrix, s is sampled at the
normal quantiles (randomly permuted): this removes the O(M^(-1/2)) sampling noise of the
law of (D, s), which moves the isolated eigenvalue by several percent at N = 2000, and
leaves the random-matrix fluctuations the formulas are about.
"""
import math

import mpmath
import numpy as np
import pytest
import scipy.linalg
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import ndtri, roots_jacobi

from theory.errors import InputError
from theory.measure import CurvatureLaw, Measure
from theory.spectrum import (
    bbp_residual,
    bulk_density,
    bulk_lower_edge,
    eigenvector_overlap2,
    inverse_stieltjes,
    isolated_eigenvalue,
    spectrum_summary,
    stieltjes,
)

ALPHA = 4.0
N = 2000


def spiked_D(s):
    """The check law of docs/theory.md §2.5: an isolated eigenvalue exists at alpha = 4."""
    return 1.0 - 1.5 * np.tanh(s**2 / 2)


def unspiked_D(s):
    """D increasing with s^2: the direction e is stiffer, no eigenvalue below the bulk."""
    return 1.0 + 0.5 * np.tanh(s**2 / 2)


def population_law(D_of_s, alpha=ALPHA, mu=0.0, nodes=200):
    x, w = hermegauss(nodes)
    return CurvatureLaw(D=D_of_s(x), s=x, weights=w / w.sum(), alpha=alpha, mu=mu)


def sample_matrix(D_of_s, n, alpha, seed, quantile_s):
    rng = np.random.default_rng(seed)
    m = int(alpha * n)
    A = rng.standard_normal((m, n))
    if quantile_s:
        A[:, 0] = rng.permutation(ndtri((np.arange(m) + 0.5) / m))
    s = A[:, 0].copy()
    D = D_of_s(s)
    H = (A.T * D) @ A / n
    return H, D, s


def lowest_eigenpair(H):
    vals, vecs = scipy.linalg.eigh(H, subset_by_index=[0, 0])
    return vals[0], vecs[0, 0] ** 2


@pytest.fixture(scope="module")
def spiked_full_spectrum():
    H, D, s = sample_matrix(spiked_D, N, ALPHA, seed=11, quantile_s=True)
    return np.linalg.eigvalsh(H), D, s


# ---------------------------------------------------------------- analytic limits
def test_marchenko_pastur_edges():
    s = np.array([-1.0, 1.0])
    for D0, edge in ((1.0, (1 - math.sqrt(ALPHA)) ** 2), (-1.0, -((1 + math.sqrt(ALPHA)) ** 2))):
        law = CurvatureLaw(D=np.full(2, D0), s=s, weights=[0.5, 0.5], alpha=ALPHA, mu=0.3)
        res = bulk_lower_edge(law)
        assert res.converged and not res.hard_edge
        assert res.bulk_edge == pytest.approx(edge - 0.3, rel=1e-12)
        assert isolated_eigenvalue(law).isolated_eigenvalue is None  # E[s^2 - 1] = 0: no spike


def test_edge_is_a_critical_point_of_inverse_map():
    law = population_law(spiked_D)
    edge = bulk_lower_edge(law)
    r, h = edge.rho_edge, 1e-5
    assert inverse_stieltjes(r, law) == pytest.approx(edge.bulk_edge, rel=1e-13)
    slope = (inverse_stieltjes(r + h, law) - inverse_stieltjes(r - h, law)) / (2 * h)
    assert abs(slope) < 1e-6
    # lambda is decreasing on (rho_e, 0): the edge is the largest value reached from the right
    rho = np.linspace(r, -0.01, 200)[1:]
    assert np.all(inverse_stieltjes(rho, law) < edge.bulk_edge)


def test_isolated_root_solves_eq_2_6_and_overlap_formula():
    law = population_law(spiked_D)
    iso = isolated_eigenvalue(law)
    r = iso.rho_iso
    rhs = law.alpha * np.dot(law.weights, law.D * (law.s**2 - 1) / (1 - law.D * r))
    assert 1 / r == pytest.approx(rhs, rel=1e-10)
    assert iso.isolated_eigenvalue == pytest.approx(inverse_stieltjes(r, law), rel=1e-12)
    # eq. 2.8 from a finite-difference lambda'
    h = 1e-6
    slope = abs((inverse_stieltjes(r + h, law) - inverse_stieltjes(r - h, law)) / (2 * h))
    tail = law.alpha * np.dot(law.weights, law.D**2 * law.s**2 / (1 - law.D * r) ** 2)
    assert iso.overlap2 == pytest.approx(slope / (slope + tail), rel=1e-6)
    assert eigenvector_overlap2(r, law) == pytest.approx(iso.overlap2, rel=1e-12)
    assert iso.bbp_residual == pytest.approx(bbp_residual(law)) and iso.bbp_residual > 0


def test_theory_md_check_values():
    """docs/theory.md §2.5 quotes lambda_iso = -0.7351, overlap^2 = 0.7928 (mu = 0)."""
    summary = spectrum_summary(population_law(spiked_D))
    assert summary.isolated_eigenvalue == pytest.approx(-0.734, abs=2e-3)
    assert summary.overlap2 == pytest.approx(0.793, abs=1e-3)
    # mu only shifts the spectrum
    shifted = spectrum_summary(population_law(spiked_D, mu=0.7))
    assert shifted.isolated_eigenvalue == pytest.approx(summary.isolated_eigenvalue - 0.7, abs=1e-12)
    assert shifted.bulk_edge == pytest.approx(summary.bulk_edge - 0.7, abs=1e-12)
    assert shifted.overlap2 == pytest.approx(summary.overlap2, rel=1e-12)


# ---------------------------------------------------------------- against eigh
def test_isolated_eigenvalue_and_overlap_vs_eigh():
    theory = spectrum_summary(population_law(spiked_D))
    numerics = [lowest_eigenpair(sample_matrix(spiked_D, N, ALPHA, seed, quantile_s=True)[0]) for seed in (1, 2)]
    lam, ov = np.mean(numerics, axis=0)
    assert theory.isolated_eigenvalue == pytest.approx(lam, rel=0.03)
    assert theory.overlap2 == pytest.approx(ov, rel=0.03)


def test_bulk_density_kolmogorov_distance(spiked_full_spectrum):
    eigs = spiked_full_spectrum[0]
    law = population_law(spiked_D)
    x = np.linspace(eigs[0] - 0.2, eigs[-1] + 0.5, 1500)
    dens = bulk_density(x, law)
    assert dens.converged.all()
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens.density[1:] + dens.density[:-1]) * np.diff(x))])
    assert cdf[-1] == pytest.approx(1.0, abs=2e-3)  # alpha > 1: no atom, the bulk has mass 1
    empirical = np.searchsorted(eigs, x, side="right") / eigs.size
    assert np.max(np.abs(empirical - cdf)) <= 0.03
    # the predicted edge sits at the bottom of the bulk: one eigenvalue (the outlier) below
    edge = bulk_lower_edge(law).bulk_edge
    assert np.sum(eigs < edge - 0.05) == 1


def test_stieltjes_vs_resolvent_trace(spiked_full_spectrum):
    eigs, D, s = spiked_full_spectrum
    law = CurvatureLaw.from_samples(D, s, alpha=ALPHA)  # the sample's own law: O(1/N) agreement
    z = np.array([0.5 + 0.3j, 3.0 + 0.5j, -0.5 - 0.2j, 8.0 + 1.0j, -2.0 + 0.1j])
    res = stieltjes(z, law)
    # the bulk has N - 1 eigenvalues plus the outlier, whose 1/N share is not in eq. 2.1
    direct = np.sum(1.0 / (z[:, None] - eigs[None, 1:]), axis=1) / eigs.size
    assert res.converged.all() and np.all(res.residual < 1e-9)
    np.testing.assert_allclose(res.g, direct, rtol=3e-3)
    assert np.all(np.sign(res.g.imag) == -np.sign(z.imag))


def test_no_isolated_eigenvalue_below_bbp():
    law = population_law(unspiked_D)
    summary = spectrum_summary(law)
    assert summary.isolated_eigenvalue is None and summary.rho_iso is None and summary.overlap2 == 0.0
    assert summary.residuals.bbp < 0
    H, _, _ = sample_matrix(unspiked_D, 1000, ALPHA, seed=5, quantile_s=True)
    lam, ov = lowest_eigenpair(H)
    assert lam == pytest.approx(summary.bulk_edge, abs=0.03)  # no outlier below the edge
    assert ov < 0.05  # an isolated eigenvector would carry O(1) overlap


def _empirical_law_comparison(n, seeds):
    lam_theory, ov_theory, lam_num, ov_num = [], [], [], []
    for seed in seeds:
        H, D, s = sample_matrix(spiked_D, n, ALPHA, seed, quantile_s=False)
        summary = spectrum_summary(CurvatureLaw.from_samples(D, s, alpha=ALPHA))
        assert summary.converged and not summary.set_by_lowest_atom
        lam, ov = lowest_eigenpair(H)
        lam_theory.append(summary.isolated_eigenvalue), ov_theory.append(summary.overlap2)
        lam_num.append(lam), ov_num.append(ov)
    return np.mean(lam_theory), np.mean(ov_theory), np.mean(lam_num), np.mean(ov_num)


def test_empirical_finite_M_law_vs_eigh():
    """Theory on the empirical law of each sample (iid s, M = 4000 atoms) vs that sample's
    matrix, averaged over 4 samples (single-sample scatter ~1.5% at N = 1000)."""
    lam_t, ov_t, lam_n, ov_n = _empirical_law_comparison(1000, (21, 22, 23, 24))
    assert lam_t == pytest.approx(lam_n, rel=0.03)
    assert ov_t == pytest.approx(ov_n, rel=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(40, 48))
def test_slow_single_samples_N2000(seed):
    """Each N = 2000 sample separately: population law (quantile s) and the sample's own
    empirical law (iid s) within 3%, overlap within 3%."""
    theory = spectrum_summary(population_law(spiked_D))
    lam, ov = lowest_eigenpair(sample_matrix(spiked_D, N, ALPHA, seed, quantile_s=True)[0])
    print(f"seed {seed} quantile-s: eigh {lam:.4f} {ov:.4f} theory {theory.isolated_eigenvalue:.4f} {theory.overlap2:.4f}")
    assert theory.isolated_eigenvalue == pytest.approx(lam, rel=0.03)
    assert theory.overlap2 == pytest.approx(ov, rel=0.03)
    lam_t, ov_t, lam_n, ov_n = _empirical_law_comparison(N, (seed + 100,))
    print(f"seed {seed} iid-s: eigh {lam_n:.4f} {ov_n:.4f} theory {lam_t:.4f} {ov_t:.4f}")
    assert lam_t == pytest.approx(lam_n, rel=0.03)
    assert ov_t == pytest.approx(ov_n, rel=0.03)


# ---------------------------------------------------------------- hard edges and D unbounded below
def test_continuum_hard_edge_limit():
    """D = -1 + 3 v, v ~ Beta(3, 1): density ~ (D - D_min)^2 at D_min = -1. Analytically
    alpha E[D^2/(D - D_min)^2] = alpha/3, so for alpha < 3 eq. 2.4 has no root and the edge
    is lambda(1/D_min) = -1 - mu + alpha/2; for alpha > 3 the edge is soft."""
    x, w = roots_jacobi(60, 0.0, 2.0)
    v = (x + 1) / 2
    D, s = -1 + 3 * v, np.ones_like(v)
    hard = bulk_lower_edge(CurvatureLaw(D=D, s=s, weights=w / w.sum(), alpha=2.0, mu=0.1))
    assert hard.set_by_lowest_atom and not hard.hard_edge
    assert hard.bulk_edge == pytest.approx(-1 - 0.1 + 2.0 / 2, abs=5e-3)
    soft = bulk_lower_edge(CurvatureLaw(D=D, s=s, weights=w / w.sum(), alpha=4.0, mu=0.1))
    assert not soft.set_by_lowest_atom and soft.rho_edge > 1 / D.min() + 0.01


def test_hard_edge_without_root():
    """Lowest atom of negligible weight: eq. 2.4 has no root before the pole."""
    D = np.array([-1.0, 0.5, 1.0])
    w = np.array([1e-320, 0.5, 0.5])
    law = CurvatureLaw(D=D, s=np.zeros(3), weights=w, alpha=0.5, mu=0.2)
    edge = bulk_lower_edge(law)
    assert edge.hard_edge and edge.rho_edge == -1.0 and edge.residual <= 0
    expected = -1.0 - 0.2 + 0.5 * (0.5 * 0.5 / 1.5 + 0.5 * 1.0 / 2.0)  # lambda(1/D_min) without the atom
    assert edge.bulk_edge == pytest.approx(expected, rel=1e-12)


def test_zero_mode_atom_when_alpha_below_one():
    law = population_law(unspiked_D, alpha=0.5, mu=0.3)
    summary = spectrum_summary(law)
    assert summary.hard_edge and summary.rho_edge == -math.inf and summary.bulk_edge == -0.3
    assert summary.to_dict()["rho_edge"] is None
    H, _, _ = sample_matrix(unspiked_D, 200, 0.5, seed=3, quantile_s=False)
    assert np.linalg.eigvalsh(H - 0.3 * np.eye(200))[0] == pytest.approx(-0.3, abs=1e-9)


def test_t0_quartic_gauss_hermite_law_follows_lowest_atom():
    """D = 6 yhat^2 - 2 y^2 is unbounded below: no N -> infinity edge (docs §2.7). On a
    Gauss-Hermite law the edge is carried by the lowest atom and drifts down with the nodes."""
    edges = []
    for nodes in (21, 41, 81):
        m = Measure.gauss_hermite_t0(nodes, alpha=ALPHA)
        summary = spectrum_summary(m)
        assert summary.converged and summary.set_by_lowest_atom
        assert math.isfinite(summary.bulk_edge)
        assert summary.bulk_edge < m.D.min() - m.mu + abs(m.D.min())  # within the lowest atom's reach
        edges.append(summary.bulk_edge)
    assert edges[0] > edges[1] > edges[2]


def test_t0_edge_precision_against_mpmath():
    """n = 81: the root of eq. 2.4 is at 1 - D_min rho ~ 1e-31, far below double resolution
    of rho. Re-solve eq. 2.4 in 60-digit arithmetic (forming 1 - D rho directly)."""
    m = Measure.gauss_hermite_t0(81, alpha=ALPHA)
    edge = bulk_lower_edge(m)
    assert 0 < edge.pole_gap < 1e-20
    D, w = m.D, m.weights
    D_min = D.min()
    near = D < D_min + 1.0
    far_D, far_w = D[~near], w[~near]
    far_x = far_D / D_min / (1 - far_D / D_min)  # the far atoms at rho = 1/D_min: no precision issue
    far_h = ALPHA * np.dot(far_w, far_x**2)
    far_lam = ALPHA * np.dot(far_w, far_D / (1 - far_D / D_min))
    with mpmath.workdps(60):
        Dn = [mpmath.mpf(float(d)) for d in D[near]]
        wn = [mpmath.mpf(float(x)) for x in w[near]]
        dmin = mpmath.mpf(float(D_min))

        def h(log_gap):
            rho = (1 - mpmath.exp(log_gap)) / dmin
            return ALPHA * mpmath.fsum(wi * (d * rho / (1 - d * rho)) ** 2 for d, wi in zip(Dn, wn)) + far_h - 1

        log_gap = mpmath.findroot(h, math.log(edge.pole_gap) + 0.5)
        gap = mpmath.exp(log_gap)
        rho = (1 - gap) / dmin
        lam = 1 / rho - m.mu + ALPHA * mpmath.fsum(wi * d / (1 - d * rho) for d, wi in zip(Dn, wn)) + far_lam
    assert edge.pole_gap == pytest.approx(float(gap), rel=1e-6)
    assert edge.bulk_edge == pytest.approx(float(lam), rel=1e-9)


def test_t0_empirical_state_lowest_eigenvalue():
    """At finite N the lowest eigenvalues come from the extreme samples (docs §2.7): the
    theory on the state's own law locates the lowest eigenvalue of that state."""
    n, alpha = 1000, ALPHA
    for seed in (31, 32):
        rng = np.random.default_rng(seed)
        A = rng.standard_normal((int(alpha * n), n))
        y, yhat = A[:, 0], rng.standard_normal(int(alpha * n))
        m = Measure.empirical(yhat, y, alpha=alpha)
        H = (A.T * m.D) @ A / n - m.mu * np.eye(n)
        lam, _ = lowest_eigenpair(H)
        summary = spectrum_summary(m)
        assert summary.converged
        predicted = summary.isolated_eigenvalue if summary.isolated_eigenvalue is not None else summary.bulk_edge
        # single-sample outliers fluctuate by ~|D_min| N^(-1/2) ~ 3%
        assert predicted == pytest.approx(lam, rel=0.08)
        assert lam < m.D.min() - m.mu + 10  # far below the O(1) bulk: made by the extreme samples


# ---------------------------------------------------------------- inputs
def test_bad_inputs():
    law = population_law(spiked_D)
    with pytest.raises(InputError, match="Im z"):
        stieltjes([1.0 + 0j], law)
    with pytest.raises(InputError, match="rho != 0"):
        inverse_stieltjes([0.0, -1.0], law)
    with pytest.raises(InputError, match="rho"):
        eigenvector_overlap2(float("nan"), law)
    with pytest.raises(InputError, match="Measure or CurvatureLaw"):
        bulk_lower_edge(np.ones(3))
    with pytest.raises(InputError, match="finite x"):
        bulk_density([0.0, np.inf], law)


# ---------------------------------------------------------------- alpha of the BBP transition from a grid
def test_bbp_threshold_interpolates_the_first_upward_crossing():
    from theory.spectrum import bbp_threshold

    assert bbp_threshold([2, 3, 4, 5], [-0.4, -0.1, 0.2, 0.5]) == pytest.approx(3 + 0.1 / 0.3, rel=1e-12)
    assert bbp_threshold([5, 2, 4, 3], [0.5, -0.4, 0.2, -0.1]) == pytest.approx(3 + 0.1 / 0.3, rel=1e-12)  # any order
    assert bbp_threshold([2, 3, 4], [0.1, 0.2, 0.3]) is None          # spike everywhere: below the grid
    assert bbp_threshold([2, 3, 4], [-0.3, -0.2, -0.1]) is None       # none on the grid
    assert bbp_threshold([2, 3, 4, 5], [-0.2, np.nan, -0.1, 0.1]) == pytest.approx(4.5)  # nan skipped
    assert bbp_threshold([2, 3], [0.0, 0.3]) == pytest.approx(2.0)     # residual 0 at a grid point


# ---------------------------------------------------------------- status as values
def test_status_is_brentq_s(monkeypatch):
    """iterations are brentq's own count (a wrapper counts them independently); messages
    say how each search ended; the summary sums iterations and takes the largest solved residual."""
    import scipy.optimize

    import theory.spectrum as spectrum_module

    counts = []

    def counting_brentq(*args, **kwargs):
        x, info = scipy.optimize.brentq(*args, **kwargs)
        counts.append(info.iterations)
        return x, info

    monkeypatch.setattr(spectrum_module, "brentq", counting_brentq)
    law = population_law(spiked_D)
    summary = spectrum_summary(law)
    edge, iso = bulk_lower_edge(law), isolated_eigenvalue(law)
    assert len(counts) == 5 and counts[0] > 0 and counts[1] > 0  # summary: edge + spike; then edge; edge + spike
    assert summary.iterations == counts[0] + counts[1] == edge.iterations + iso.iterations
    assert summary.converged and edge.converged and iso.converged
    assert summary.residual == max(abs(edge.residual), abs(iso.residual)) < 1e-12
    assert "lower edge: brentq converged" in summary.message and "isolated eigenvalue: brentq converged" in summary.message
    none = isolated_eigenvalue(population_law(unspiked_D))
    assert none.converged and none.iterations == 0 and "none" in none.message
    hard = bulk_lower_edge(CurvatureLaw(D=np.array([-1.0, 1.0]), s=np.array([-1.0, 1.0]), weights=[1e-9, 1 - 1e-9],
                                        alpha=4.0, mu=0.0))
    assert hard.hard_edge == (hard.iterations == 0)


def test_failed_search_is_a_value(monkeypatch):
    """A brentq capped at one iteration does not converge: strict=False returns the failed
    results, strict=True raises with them attached (ConvergenceError.result)."""
    import scipy.optimize

    import theory.spectrum as spectrum_module
    from theory.errors import ConvergenceError

    monkeypatch.setattr(spectrum_module, "brentq",
                        lambda f, a, b, **kw: scipy.optimize.brentq(f, a, b, **{**kw, "maxiter": 1}))
    law = population_law(spiked_D)
    edge = bulk_lower_edge(law, strict=False)
    assert not edge.converged and edge.iterations == 1 and "did not converge" in edge.message
    summary = spectrum_summary(law, strict=False)
    assert not summary.converged and math.isnan(summary.residual) and "did not converge" in summary.message
    with pytest.raises(ConvergenceError, match="lower edge: brentq did not converge") as exc:
        spectrum_summary(law)
    assert exc.value.result is not None and not exc.value.result.converged
    with pytest.raises(ConvergenceError) as exc:
        isolated_eigenvalue(law)
    assert not exc.value.result.converged


def test_stieltjes_failure_is_a_value():
    law = population_law(spiked_D)
    z = np.array([0.5 + 1e-3j, 2.0 + 1e-3j])
    res = stieltjes(z, law, tol=1e-300, max_iter=1, strict=False)
    assert not res.converged.any() and "did not converge" in res.message and res.iterations > 0
    from theory.errors import ConvergenceError

    with pytest.raises(ConvergenceError) as exc:
        bulk_density(z.real, law, tol=1e-300)
    assert exc.value.result is not None and exc.value.result.density.shape == (2,)
    ok = stieltjes(z, law)
    assert ok.converged.all() and "2 points converged" in ok.message


def test_brentq_error_gives_nan_edge_and_no_spike_search(monkeypatch):
    import theory.spectrum as spectrum_module

    def broken(*args, **kwargs):
        raise ValueError("f(a) and f(b) must have different signs")

    monkeypatch.setattr(spectrum_module, "brentq", broken)
    summary = spectrum_summary(population_law(spiked_D), strict=False)
    assert not summary.converged and math.isnan(summary.bulk_edge) and math.isnan(summary.overlap2)
    assert summary.isolated_eigenvalue is not None and math.isnan(summary.isolated_eigenvalue)  # unknown, not "none"
    assert "brentq failed" in summary.message and "not attempted" in summary.message
