"""Theory-versus-simulation experiments: scenarios that run both halves side by side.

theory/ never imports simulation/ and simulation/ holds no theory; what compares them
lives here, as package code with tests (tests/experiments/), so that the scripts in
benchmarks/ stay thin (arguments -> an experiment's function -> a result file).
"""
__all__: list[str] = []
