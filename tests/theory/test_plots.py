"""Figures of the theory package (theory/plots.py): legends and labels (issue 19 item 13)."""
import numpy as np
import pytest

import theory.plots as plots


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions save, kept open for inspection."""
    saved = []
    monkeypatch.setattr(plots, "_save_png", lambda fig, path: saved.append(fig))
    yield saved
    for fig in saved:
        plots.plt.close(fig)


def _legend_texts(fig) -> list[list[str]]:
    return [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes if ax.get_legend() is not None]


def test_format_level_rounds_root_finder_noise_to_zero():
    assert plots.format_level(4.974e-14, 130.0) == "0"
    assert plots.format_level(-0.34337, 130.0) == "-0.3434"
    assert plots.format_level(2.5e-6, 1.0) == "2.5e-06"


def test_density_legend_and_zoom_panel(figures):
    """A root-finder's 5e-14 edge is labelled 0; an isolated eigenvalue 0.34 below it on a
    range of 130 gets an enlarged panel where the two lines are apart."""
    x = np.linspace(-6.0, 127.0, 600)
    density = np.where(x > 0, np.sqrt(np.clip(x, 0, None)) * np.exp(-x / 20), 0.0)
    plots.plot_spectral_density("unused.png", x, density, bulk_edge=4.974e-14, isolated_eigenvalue=-0.3434)
    fig, = figures
    texts = _legend_texts(fig)
    assert len(texts) == 1 and "predicted edge 0" in texts[0]
    assert not any("e-14" in t for t in texts[0])
    assert len(fig.axes) == 2
    low, high = fig.axes[1].get_xlim()
    assert low < -0.3434 and high > 0 and (high - low) < 0.05 * 133
    plots.plot_spectral_density("unused.png", x, density, bulk_edge=0.0, isolated_eigenvalue=-20.0)
    assert len(figures[1].axes) == 1   # far apart: no zoom panel


def test_threshold_curve_panel_has_one_legend(figures):
    """The spike panel (two y axes) has one legend holding both axes' lines and alpha_c."""
    xr = pytest.importorskip("xarray")
    alpha = np.array([10.0, 12.0, 14.0, 16.0])
    data = {name: ("alpha", np.linspace(1, 2, 4)) for name in
            ("energy", "mu_linear", "mu_stationary", "bulk_edge", "overlap2")}
    data["isolated_eigenvalue"] = ("alpha", np.array([np.nan, np.nan, -0.1, -0.5]))
    data["converged"] = ("alpha", np.ones(4, bool))
    curve = xr.Dataset(data, coords={"alpha": alpha}, attrs={"alpha_c": 13.8, "closure": "marginal"})
    plots.plot_threshold_curve("unused.png", curve)
    fig, = figures
    texts = _legend_texts(fig)
    assert len(texts) == 3                      # one per panel; none on the twin axis
    spike = texts[2]
    assert any("lambda_{iso}" in t for t in spike) and any("overlap" in t for t in spike)
    assert any("alpha_c" in t for t in spike)
