"""Tests of theory.measure: constructors, stationarity mu (eq. 1.3), file format, validation."""
import numpy as np
import pytest

from theory.errors import InputError
from theory.io import atomic_savez
from theory.measure import CurvatureLaw, Measure, lagrange_multiplier, read_measure_file, write_measure_file


@pytest.fixture
def sample():
    rng = np.random.default_rng(7)
    return rng.standard_normal(50), rng.standard_normal(50), rng.standard_normal(50)


def test_empirical_defaults_and_quartic_curvature(sample):
    yhat, y, _ = sample
    m = Measure.empirical(yhat, y, alpha=3.0)
    np.testing.assert_array_equal(m.s, y)
    np.testing.assert_allclose(m.weights, 1 / 50)
    np.testing.assert_allclose(m.D, 6 * yhat**2 - 2 * y**2, rtol=1e-14)
    # eq. 1.3 written out by hand for l = (yhat^2 - y^2)^2: V' yhat = 2 yhat^2 (yhat^2 - y^2)
    assert m.mu == pytest.approx(3.0 * np.mean(2 * yhat**2 * (yhat**2 - y**2)), rel=1e-13)
    assert m.loss.name == "quartic"


def test_given_mu_and_s_are_kept(sample):
    yhat, y, s = sample
    m = Measure.empirical(yhat, y, s, alpha=2.0, mu=-0.25)
    assert m.mu == -0.25
    np.testing.assert_array_equal(m.s, s)
    law = m.curvature_law()
    assert isinstance(law, CurvatureLaw) and law.mu == -0.25 and law.alpha == 2.0


def test_measure_is_frozen_and_arrays_read_only(sample):
    yhat, y, _ = sample
    m = Measure.empirical(yhat, y, alpha=1.0)
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        m.alpha = 2.0
    with pytest.raises(ValueError):
        m.yhat[0] = 1.0
    yhat[0] = 99.0  # the measure holds a copy
    assert m.yhat[0] != 99.0


def test_gauss_hermite_t0_moments():
    m = Measure.gauss_hermite_t0(15, alpha=2.5)
    assert m.size == 225
    assert m.weights.sum() == pytest.approx(1.0, abs=1e-14)
    assert np.dot(m.weights, m.yhat**2) == pytest.approx(1.0, rel=1e-12)
    assert np.dot(m.weights, m.y**4) == pytest.approx(3.0, rel=1e-12)
    assert np.dot(m.weights, m.yhat**2 * m.y**2) == pytest.approx(1.0, rel=1e-12)
    # mu = alpha E[2 yhat^4 - 2 yhat^2 y^2] = alpha (6 - 2) for independent N(0, 1)
    assert m.mu == pytest.approx(4 * 2.5, rel=1e-12)
    np.testing.assert_array_equal(m.s, m.y)


def test_quadrature_normalize():
    nodes = np.array([-1.0, 0.0, 1.0])
    m = Measure.quadrature(nodes, nodes, [1.0, 4.0, 1.0], alpha=1.0, normalize=True)
    np.testing.assert_allclose(m.weights, [1 / 6, 4 / 6, 1 / 6])
    with pytest.raises(InputError, match="sum to 1"):
        Measure.quadrature(nodes, nodes, [1.0, 4.0, 1.0], alpha=1.0)


def test_lagrange_multiplier_other_loss(sample):
    yhat, y, _ = sample
    amp = lagrange_multiplier(yhat, y, 2.0, "amplitude")
    m = Measure.empirical(yhat, y, alpha=2.0, loss="amplitude")
    assert m.mu == pytest.approx(amp)
    assert m.loss.name == "amplitude"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(alpha=0.0), "alpha must be positive"),
        (dict(alpha=-1.0), "alpha must be positive"),
        (dict(alpha=np.nan), "alpha must be finite"),
        (dict(alpha=1.0, y=np.ones(4)), "y has 4 entries"),
        (dict(alpha=1.0, s=np.ones(3)), "s has 3 entries"),
        (dict(alpha=1.0, weights=np.array([0.5, 0.6, -0.1, 0.0, 0.0])), "negative"),
        (dict(alpha=1.0, weights=np.full(5, 0.3)), "sum to 1"),
        (dict(alpha=1.0, weights=np.ones(4) / 4), "weights has 4 entries"),
        (dict(alpha=1.0, yhat=np.array([0.0, 1.0, np.inf, 0.0, 1.0])), "non-finite"),
        (dict(alpha=1.0, yhat=np.ones((5, 1))), "one-dimensional"),
        (dict(alpha=1.0, yhat=np.array([])), "empty"),
        (dict(alpha=1.0, mu=np.nan), "mu must be finite"),
        (dict(alpha=1.0, loss="nope"), "unknown loss"),
    ],
)
def test_bad_input_one_line_errors(kwargs, message):
    args = dict(yhat=np.linspace(-1, 1, 5), y=np.linspace(0, 1, 5), alpha=1.0)
    args.update(kwargs)
    with pytest.raises(InputError, match=message) as info:
        Measure(**args)
    assert "\n" not in str(info.value)


def test_curvature_law_validation():
    with pytest.raises(InputError, match="alpha"):
        CurvatureLaw.from_samples([1.0, 2.0], [0.0, 1.0], alpha=0.0)
    with pytest.raises(InputError, match="s has 1"):
        CurvatureLaw.from_samples([1.0, 2.0], [0.0], alpha=1.0)


# ---------------------------------------------------------------- resampling to M atoms (eq. 5.30)
def test_resampling_an_equal_weight_law_to_its_own_size_returns_it(sample):
    yhat, y, s = sample
    m = Measure.empirical(yhat, y, s, alpha=3.0, mu=0.7)
    r = m.resampled(50)
    np.testing.assert_array_equal(np.sort(r.y), np.sort(y))
    order_m, order_r = np.argsort(m.y), np.argsort(r.y)
    np.testing.assert_array_equal(r.yhat[order_r], m.yhat[order_m])
    np.testing.assert_array_equal(r.s[order_r], m.s[order_m])
    assert (r.alpha, r.mu, r.loss.name) == (3.0, 0.7, "quartic")


def test_resampling_a_weighted_law_gives_the_law_of_m_measurements():
    # an importance sample y ~ N(0, 4) with weights phi / phi_2 is the law N(0, 1); resampled
    # to M equal atoms it must look like M draws from N(0, 1), its tail cut where a system of
    # M measurements has its largest label, not at the importance sample's |y| ~ 7
    from scipy import stats

    rng = np.random.default_rng(3)
    y = 2.0 * rng.standard_normal(20000)
    w = stats.norm.pdf(y) / stats.norm.pdf(y, scale=2.0)
    law = Measure.quadrature(rng.standard_normal(y.size), y, w, alpha=4.0, mu=1.0, normalize=True)
    assert np.abs(law.y).max() > 6.5
    M = 3000
    typical = law.resampled(M)
    assert typical.size == M and np.all(typical.weights == 1 / M)
    np.testing.assert_array_equal(law.resampled(M).y, typical.y)
    # systematic resampling puts the largest label at the (1 - 1/2M) quantile (eq. 5.30)
    assert typical.y.max() == pytest.approx(stats.norm.ppf(1 - 0.5 / M), abs=0.1)
    assert typical.y.min() == pytest.approx(stats.norm.ppf(0.5 / M), abs=0.1)
    assert stats.kstest(typical.y, "norm").statistic < 0.02
    # independent draws: N(0, 1) by a KS test, reproducible by seed, different across seeds
    a, b = law.resampled(M, seed=1), law.resampled(M, seed=2)
    assert stats.kstest(a.y, "norm").pvalue > 1e-3 and stats.kstest(b.y, "norm").pvalue > 1e-3
    np.testing.assert_array_equal(a.y, law.resampled(M, seed=1).y)
    assert not np.array_equal(a.y, b.y)


@pytest.mark.parametrize("atoms", [0, -3, 2.5, "10"])
def test_resampling_bad_atoms_one_line_error(sample, atoms):
    yhat, y, _ = sample
    with pytest.raises(InputError, match="atoms must be a positive integer"):
        Measure.empirical(yhat, y, alpha=1.0).resampled(atoms)


def test_file_round_trip(tmp_path, sample):
    yhat, y, s = sample
    m = Measure.empirical(yhat, y, s, alpha=3.0, mu=0.5, loss="amplitude")
    ev = np.array([3.0, 1.0, 2.0])
    path = write_measure_file(tmp_path / "state.npz", m, n=17, eigenvalues=ev, eigenvalues_complete=False)
    f = read_measure_file(path)
    assert f.n == 17 and f.eigenvalues_complete is False
    np.testing.assert_array_equal(f.eigenvalues, [1.0, 2.0, 3.0])
    g = f.measure
    assert (g.alpha, g.mu, g.loss.name) == (3.0, 0.5, "amplitude")
    np.testing.assert_array_equal(g.s, s)
    # arguments override the file
    h = Measure.from_npz(path, alpha=2.0, mu=1.0, loss="quartic")
    assert (h.alpha, h.mu, h.loss.name) == (2.0, 1.0, "quartic")


def test_minimal_file_uses_defaults(tmp_path, sample):
    yhat, y, _ = sample
    path = atomic_savez(tmp_path / "min.npz", yhat=yhat, y=y, alpha=np.float64(2.0))
    m = Measure.from_npz(path)
    np.testing.assert_array_equal(m.s, y)
    assert m.mu == pytest.approx(lagrange_multiplier(yhat, y, 2.0))
    f = read_measure_file(path)
    assert f.n is None and f.eigenvalues is None and not f.eigenvalues_complete


def test_file_errors(tmp_path, sample):
    yhat, y, _ = sample
    with pytest.raises(InputError, match="does not exist"):
        Measure.from_npz(tmp_path / "missing.npz")
    no_alpha = atomic_savez(tmp_path / "a.npz", yhat=yhat, y=y)
    with pytest.raises(InputError, match="no 'alpha'"):
        Measure.from_npz(no_alpha)
    assert Measure.from_npz(no_alpha, alpha=1.5).alpha == 1.5
    no_y = atomic_savez(tmp_path / "b.npz", yhat=yhat, alpha=np.float64(1.0))
    with pytest.raises(InputError, match="lacks"):
        Measure.from_npz(no_y)
    bad_loss = atomic_savez(tmp_path / "c.npz", yhat=yhat, y=y, alpha=np.float64(1.0), loss=np.str_("cubic"))
    with pytest.raises(InputError, match="unknown loss"):
        Measure.from_npz(bad_loss)
    vector_alpha = atomic_savez(tmp_path / "d.npz", yhat=yhat, y=y, alpha=np.ones(2))
    with pytest.raises(InputError, match="scalar"):
        Measure.from_npz(vector_alpha)
    garbage = tmp_path / "e.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable"):
        Measure.from_npz(garbage)


def test_atomic_write_text_replaces_and_leaves_no_temporary(tmp_path):
    from theory.io import atomic_write_text

    path = tmp_path / "sub" / "report.json"
    atomic_write_text(path, '{"a": 1}')
    atomic_write_text(path, '{"a": 2}')
    assert path.read_text() == '{"a": 2}'
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]
