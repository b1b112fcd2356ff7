import numpy as np
import pytest

from simulation.data import make_problem, problem_from_arrays, random_starts
from simulation.flow import StopRules, run_dynamics
from simulation.state import load_state, save_state
from theory.errors import InputError


def test_round_trip_from_seed_and_from_user_data(tmp_path):
    p = make_problem(40, 3.0, seed=9)
    r = run_dynamics(p, random_starts(40, 3, seed=9), StopRules(t_max=5.0))
    save_state(tmp_path / "a.npz", p, r)
    st = load_state(tmp_path / "a.npz")
    np.testing.assert_array_equal(st.problem.X, p.X)
    np.testing.assert_array_equal(st.W, r.W)
    assert list(st.status) == list(r.status) and "X" not in st.arrays  # rebuilt from the seed
    assert st.protocol == "free"

    user = problem_from_arrays(p.X, p.y, p.w_star)
    save_state(tmp_path / "b.npz", user, r)
    st = load_state(tmp_path / "b.npz")
    np.testing.assert_array_equal(st.problem.X, p.X)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_state(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable"):
        load_state(tmp_path / "bad.npz")
    np.savez(tmp_path / "partial.npz", W=np.zeros((3, 2)))
    with pytest.raises(InputError, match="lacks"):
        load_state(tmp_path / "partial.npz")


def test_protocol_is_stored(tmp_path):
    p = make_problem(40, 3.0, seed=9)
    r = run_dynamics(p, random_starts(40, 2, seed=9), StopRules(t_max=2.0), protocol="orthogonal")
    save_state(tmp_path / "o.npz", p, r)
    st = load_state(tmp_path / "o.npz")
    assert st.protocol == "orthogonal"
    np.testing.assert_array_equal(st.W, r.W)
