"""The reference against an independent oracle: PyTorch autograd, as micrograd and tinygrad test.

The same random parameters and batch go through the float64 reference and through
a forward pass written here in PyTorch, differentiated by autograd. Forward
(output activations and cost) and backward (gradients) are compared separately.
The network is written again here rather than taken from the ``torch`` kernel, so
the oracle shares no code with anything under test.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import implementations  # noqa: E402
from implementations import Params, init_params, max_rel_error  # noqa: E402
from implementations.core import cost, feedforward  # noqa: E402

# Both sides compute the same float64 sums in (at most) different orders: errors sit
# near 1e-15, and anything above 1e-10 is a mistake, not rounding.
RTOL = 1e-10
SIZES = [[784, 30, 10], [12, 7, 5, 4], [6, 3], [20, 16, 16, 16, 16, 5], [784, 64, 32, 10]]


def _oracle(params: Params, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, float, Params]:
    """Return (output activations (n, out), cost, gradients) computed by PyTorch autograd."""
    weights = [torch.tensor(w, requires_grad=True) for w in params.weights]
    biases = [torch.tensor(b, requires_grad=True) for b in params.biases]
    a = torch.tensor(X)
    for w, b in zip(weights, biases):
        a = torch.sigmoid(a @ w.T + b)
    c = 0.5 * ((a - torch.tensor(Y)) ** 2).sum()
    c.backward()
    nabla = Params([w.grad.numpy() for w in weights], [b.grad.numpy() for b in biases])
    return a.detach().numpy(), c.item(), nabla


def _batch(sizes: list[int], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return a random batch: X (n, in) in [0, 1) and one-hot Y (n, out)."""
    rng = np.random.default_rng(seed)
    return rng.random((n, sizes[0])), np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("init", ["recipe", "scaled"])
def test_reference_matches_autograd(sizes, seed, init):
    params = init_params(sizes, seed)
    if init == "scaled":
        # N(0, 1/in) weights keep the sigmoids out of saturation, where many gradients are ~0.
        params = Params([w / np.sqrt(w.shape[1]) for w in params.weights], params.biases)
    X, Y = _batch(sizes, 17, seed)
    a_oracle, c_oracle, nabla_oracle = _oracle(params, X, Y)

    a = feedforward(params, X)
    assert np.max(np.abs(a - a_oracle)) <= RTOL * np.max(np.abs(a_oracle))
    assert cost(params, X, Y) == pytest.approx(c_oracle, rel=RTOL)

    nabla = implementations.get(implementations.REFERENCE).gradients(params, X, Y)
    assert nabla.dtype == np.float64
    assert max_rel_error(nabla, nabla_oracle) <= RTOL
    assert max(np.max(np.abs(g)) for g in nabla_oracle.arrays()) > 1e-3  # not trivially all zero


def test_oracle_catches_a_wrong_gradient():
    """The comparison is sharp: dropping sigma'(z) from the output error fails it by far."""
    sizes = [12, 7, 5, 4]
    params = init_params(sizes, 3)
    X, Y = _batch(sizes, 9, 3)
    _, _, nabla_oracle = _oracle(params, X, Y)
    nabla = implementations.get(implementations.REFERENCE).gradients(params, X, Y)
    a = feedforward(params, X)
    wrong = nabla.copy()
    wrong.biases[-1][:] = (a - Y).sum(axis=0)  # the cross-entropy delta, not the quadratic cost's
    assert max_rel_error(wrong, nabla_oracle) > 1e3 * RTOL
