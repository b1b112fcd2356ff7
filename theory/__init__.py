"""Theory side: the loss, the random-matrix core of the Hessian, threshold states and
the critical alpha. Equations: docs/theory.md."""
from .errors import ConvergenceError, InputError
from .loss import LOSSES, QUARTIC, Loss, get_loss, make_loss

__all__ = ["ConvergenceError", "InputError", "LOSSES", "QUARTIC", "Loss", "get_loss", "make_loss"]
