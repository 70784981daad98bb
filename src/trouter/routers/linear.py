"""`LinearRouter`: per-model L2-regularised logistic regression on the query embedding.

Quality of model m on query x is sigmoid(w_m . x + b_m), fitted by minimising the mean binary
cross-entropy against the scores (soft targets, so graded scores in [0, 1] are used as they are)
plus (alpha / 2) * |w_m|^2; the intercepts are not penalised. All models are fitted together with
L-BFGS (they are independent problems sharing one matrix product). alpha is chosen on the
validation fold from `ALPHA_GRID` unless given, each fit warm-started from the previous, stronger
penalty. Cost is the shared `CostModel` (ridge on the log scale), so this is the "logistic
quality + ridge cost" baseline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from trouter.encode import Embeddings, Encoder
from trouter.errors import ConfigError
from trouter.routers.layout import Layout
from trouter.routers.learned import FloatMatrix, LearnedRouter, sigmoid, targets
from trouter.routers.selection import Fold, brier, select

#: Candidate penalties, strongest first (unit-length inputs need large weights, hence small values).
ALPHA_GRID = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5)
DEFAULT_ALPHA = 1e-3
MAX_ITER = 300


class Design:
    """Centred inputs and their covariance spectrum, computed once for every penalty tried."""

    def __init__(self, x: npt.NDArray[Any]) -> None:
        x64 = np.asarray(x, dtype=np.float64)
        self.mean = x64.mean(axis=0)
        self.centred = x64 - self.mean
        eigvals, self.eigvecs = np.linalg.eigh(self.centred.T @ self.centred / len(x64))
        self.eigvals = np.maximum(eigvals, 0.0)


def fit_logistic(
    design: Design,
    y: FloatMatrix,
    alpha: float,
    start: tuple[FloatMatrix, FloatMatrix] | None = None,
    offset: FloatMatrix | None = None,
) -> tuple[FloatMatrix, FloatMatrix]:
    """(weights [d, m], intercepts [m]) of m independent L2 logistic regressions on soft targets:
    mean BCE(sigmoid(offset + x w + b), y) + (alpha / 2) |w|^2, intercepts not penalised. The
    optional `offset` [n, m] is a fixed logit each model's regression corrects (TRouter's
    residual fits on top of its task-type mixture this way).

    Solved with L-BFGS in preconditioned coordinates w = P u, P = V diag(1 / sqrt(s / 4 + alpha))
    from the eigen-decomposition V diag(s) V^T of the centred inputs' covariance: the same
    optimum, reached in tens instead of hundreds of iterations, because unit-length sentence
    embeddings are very anisotropic and the plain problem is badly conditioned.
    """
    from scipy.optimize import minimize

    n, d = design.centred.shape
    m = y.shape[1]
    scale = 1.0 / np.sqrt(design.eigvals / 4.0 + alpha)
    precond = design.eigvecs * scale  # P: columns are scaled eigenvectors
    z_in = design.centred @ precond
    penalty = scale**2  # diagonal of P^T P
    if start is None and offset is None:
        mean = np.clip(y.mean(axis=0), 1e-3, 1 - 1e-3)
        u0, b0 = np.zeros((d, m)), np.log(mean / (1 - mean))
    elif start is None:
        u0, b0 = np.zeros((d, m)), np.zeros(m)
    else:
        u0 = design.eigvecs.T @ start[0] / scale[:, None]
        b0 = start[1] + design.mean @ start[0]

    def loss_and_grad(theta: FloatMatrix) -> tuple[float, FloatMatrix]:
        u, b = theta[: d * m].reshape(d, m), theta[d * m :]
        z = z_in @ u + b if offset is None else offset + z_in @ u + b
        residual = (sigmoid(z) - y) / n
        weighted = penalty[:, None] * u
        value = float((np.logaddexp(0.0, z) - y * z).sum() / n + 0.5 * alpha * np.sum(u * weighted))
        grad_u = z_in.T @ residual + alpha * weighted
        return value, np.concatenate([grad_u.ravel(), residual.sum(axis=0)])

    result = minimize(
        loss_and_grad,
        np.concatenate([u0.ravel(), b0]),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": MAX_ITER, "gtol": 1e-6},
    )
    theta = np.asarray(result.x, dtype=np.float64)
    w = precond @ theta[: d * m].reshape(d, m)
    return w, theta[d * m :] - design.mean @ w


class LinearRouter(LearnedRouter):
    """Logistic-regression quality per model, ridge cost; `alpha=None` chooses the L2 penalty.

    >>> from trouter.routers.linear import LinearRouter
    >>> LinearRouter(alpha=1e-3, encoder="hashing:256")
    LinearRouter(alpha=0.001, encoder='hashing:256', seed=0)
    """

    name = "linear"

    def __init__(
        self, alpha: float | None = None, *, encoder: str | Encoder = "minilm", seed: int = 0
    ) -> None:
        super().__init__(encoder=encoder, seed=seed)
        self.alpha = alpha

    def _fit_quality(self, fold: Fold) -> dict[str, Any]:
        if self.alpha is not None and not self.alpha > 0:
            raise ConfigError(f"linear: alpha must be positive, got {self.alpha}")
        alpha = self.alpha
        chosen: dict[str, Any] = {}
        if alpha is None and fold.val is not None and fold.x_val is not None:
            y_train, y_val = targets(fold.train), targets(fold.val)
            x_val = np.asarray(fold.x_val, dtype=np.float64)
            design = Design(fold.x_train)
            fits: dict[float, tuple[FloatMatrix, FloatMatrix]] = {}
            previous: tuple[FloatMatrix, FloatMatrix] | None = None

            def error(a: float) -> float:
                nonlocal previous
                previous = fits[a] = fit_logistic(design, y_train, a, start=previous)
                return brier(sigmoid(x_val @ previous[0] + previous[1]), y_val)

            selection = select(ALPHA_GRID, error, fold.source)
            alpha = float(selection.best)
            chosen = {"alpha_errors": selection.errors}
            if not fold.carved:  # trained on exactly the data we keep: reuse that fit
                self.alpha_ = alpha
                self.coef_, self.intercept_ = fits[alpha]
                return {"alpha": alpha, **chosen}
            start = fits[alpha]
        else:
            start = None
        self.alpha_ = alpha if alpha is not None else DEFAULT_ALPHA
        self.coef_, self.intercept_ = fit_logistic(
            Design(fold.x_full), targets(fold.full), self.alpha_, start=start
        )
        return {"alpha": self.alpha_, **chosen}

    def _predict_quality(self, x: Embeddings) -> FloatMatrix:
        return sigmoid(np.asarray(x, dtype=np.float64) @ self.coef_ + self.intercept_)

    def _quality_layout(self, meta: dict[str, Any], dim: int) -> Layout:
        m = len(self.models_)
        return Layout({"coef_": (dim, m), "intercept_": (m,)})
