"""Nielsen-style ``Network`` classes as kernels, unchanged: the adapter between their layout and Params.

A class qualifies when its instances hold ``weights`` (a list of (out, in) arrays)
and ``biases`` (a list of (out, 1) column vectors) and it has a method
``backprop(x, y)`` returning ``(nabla_b, nabla_w)``. Two forms of it are common,
and the adapter tells them apart by what ``backprop`` returns when given a batch of
two columns, never by names:

- per example, as in the book's ``network.py``: x (in, 1), y (out, 1). Given two
  columns it either raises or returns one bias column per example, (out, 2);
- per batch, as in the exercise's fully matrix-based version: x (in, m), y (out, m),
  returning sums over the batch, so a bias comes back as (out, 1).

The per-example form is called once per example and summed here, as the book's
``update_mini_batch`` does. Only ``backprop`` comes from the class: the SGD step is
the shared one (:func:`implementations.core.sgd_update`, the same as the book's) and
``predict`` the shared feedforward, so the class is measured on what it computes.
The class's own ``__init__`` runs once per network shape; the weights it draws are
replaced before every call.

It adds no speed: the per-example form pays a Python call per example, as the
``loop`` kernel does.
"""

from __future__ import annotations

import inspect
from types import ModuleType

import numpy as np

from implementations.core import Params, init_params, predict
from implementations.plugins.validate import (
    FINITE_CHECKED_CALLS,
    KernelOutputError,
    backprop_order,
    check_array,
    check_finite,
    location,
)

PER_EXAMPLE, PER_BATCH = "per-example", "per-batch"


def nielsen_classes(module: ModuleType) -> list[type]:
    """Return the classes defined in ``module`` that have a ``backprop`` method, in definition order."""
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and obj.__module__ == module.__name__ and callable(getattr(obj, "backprop", None))
    ]


def _read_only(array: np.ndarray) -> np.ndarray:
    """Return a read-only view: user code that writes into the parameters fails instead of corrupting them."""
    view = array.view()
    view.flags.writeable = False
    return view


class NielsenKernel:
    """The kernel interface (name, gradients, predict, warm_up) around one Nielsen-style class."""

    # How the class's own code names dC/dw and dC/db, for messages.
    array_names = ("nabla_w", "nabla_b")

    def __init__(self, cls: type, name: str, description: str):
        self.cls, self.name, self.description = cls, name, description
        self.predict = predict
        self.where = location(cls.backprop)
        self.what = f"{cls.__qualname__}.backprop"
        # A class may declare what a kernel module would (float32_slack, dtypes, rtol).
        for attribute in ("rtol", "float32_slack", "dtypes"):
            if hasattr(cls, attribute):
                setattr(self, attribute, getattr(cls, attribute))
        self._networks: dict[tuple[int, ...], object] = {}
        self._forms: dict[tuple, tuple[str, str]] = {}
        # Every batch of an epoch passes the same Params, updated in place: the instance
        # bound to it last is reused, and after FINITE_CHECKED_CALLS fully checked calls
        # on a shape, results are compared with the shapes seen then (a few microseconds).
        self._bound: tuple[Params, object, str] | None = None
        self._key: tuple | None = None
        self._calls = 0
        self._seen: tuple[list, list] | None = None

    def _network(self, sizes: list[int]) -> object:
        """Return the class's instance for these sizes, made once with ``cls(sizes)`` as in the book."""
        key = tuple(sizes)
        if key not in self._networks:
            try:
                inspect.signature(self.cls).bind(list(sizes))
                takes_sizes = True
            except (TypeError, ValueError):
                takes_sizes = False
            if takes_sizes:
                net = self.cls(list(sizes))
            else:
                # Another constructor: make the object without it; the book's backprop reads
                # only weights, biases (set before every call), num_layers and sizes.
                net = self.cls.__new__(self.cls)
                net.sizes, net.num_layers = list(sizes), len(sizes)
            self._networks[key] = net
        return self._networks[key]

    def _loaded(self, params: Params) -> object:
        """Return the instance for ``params``' sizes holding ``params`` in the class's layout (views, no copies)."""
        net = self._network(params.sizes)
        net.weights = [_read_only(w) for w in params.weights]
        net.biases = [_read_only(b[:, None]) for b in params.biases]
        return net

    def form(self, params: Params) -> tuple[str, str]:
        """Return (form, why) for params' sizes and dtype, found on first use from what backprop returns."""
        key = (tuple(params.sizes), params.dtype.str)
        if key not in self._forms:
            self._forms[key] = self._detect(params)
        return self._forms[key]

    def _detect(self, params: Params) -> tuple[str, str]:
        """Return (form, why): per-batch when backprop on two columns returns one summed column per bias."""
        sizes = params.sizes
        x = np.random.default_rng(0).random((sizes[0], 2)).astype(params.dtype)
        y = np.zeros((sizes[-1], 2), params.dtype)
        y[0, 0] = y[-1, 1] = 1
        try:
            nabla_b, nabla_w = self._loaded(params).backprop(x, y)
            bias_shapes = [np.shape(b) for b in nabla_b]
            weight_shapes = [np.shape(w) for w in nabla_w]
        except Exception as exc:  # the per-example form may well fail on two columns
            return PER_EXAMPLE, f"on 2 columns it raised {type(exc).__name__}"
        outs = [w.shape[0] for w in params.weights]
        if len(bias_shapes) == len(outs) and weight_shapes == [w.shape for w in params.weights]:
            for l, (shape, out) in enumerate(zip(bias_shapes, outs)):
                if shape not in ((out, 1), (out,)):
                    return PER_EXAMPLE, f"on 2 columns it returned nabla_b[{l}] of shape {shape}, not a sum ({out}, 1)"
            return PER_BATCH, "on 2 columns it returned their sums"
        return PER_EXAMPLE, "on 2 columns it did not return one (nabla_b, nabla_w) for the batch"

    def details(self) -> str:
        """Return which form the class was found to have, and why, for ``backprop-bench check``."""
        name = self.cls.__qualname__
        if not self._forms:
            return f"Nielsen-style class {name}"
        form, why = next(iter(self._forms.values()))
        if form == PER_EXAMPLE:
            return f"Nielsen-style class {name}, per example: backprop(x (in, 1), y (out, 1)), summed here ({why})"
        return f"Nielsen-style class {name}, per batch: backprop(x (in, m), y (out, m)) ({why})"

    def warm_up(self, sizes: list[int], dtype: str) -> None:
        """Return once the class is constructed and its form known for this shape (never inside a timing)."""
        self.form(init_params(sizes, 0, dtype))

    def _bind(self, params: Params) -> tuple[object, str]:
        """Return (instance holding ``params``, form), reusing the last one when ``params`` is the same object."""
        if self._bound is None or self._bound[0] is not params:
            key = (tuple(params.sizes), params.dtype.str)
            if key != self._key:
                self._key, self._calls, self._seen = key, 0, None
            self._bound = (params, self._loaded(params), self.form(params)[0])
        return self._bound[1], self._bound[2]

    def _checked(self, result: object, params: Params) -> tuple[list, list]:
        """Return (nabla_b, nabla_w) from backprop's result: fully checked on the first calls, then by shape."""
        if self._seen is not None and self._calls > FINITE_CHECKED_CALLS:
            try:
                nabla_b, nabla_w = result
                if ([b.shape for b in nabla_b], [w.shape for w in nabla_w]) == self._seen:
                    return nabla_b, nabla_w
            except (TypeError, ValueError, AttributeError):
                pass  # the full check below says what is wrong
        nabla_b, nabla_w = self._check(result, params)
        self._seen = ([b.shape for b in nabla_b], [w.shape for w in nabla_w])
        return nabla_b, nabla_w

    def gradients(self, params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
        """Return dC/dparams summed over the n examples; X has shape (n, in), Y (n, out)."""
        net, form = self._bind(params)
        self._calls += 1
        if form == PER_BATCH:
            # Columns are examples in the class's layout: X.T is a view, not a copy.
            nabla_b, nabla_w = self._checked(net.backprop(X.T, Y.T), params)
            nabla = Params(list(nabla_w), [b.reshape(-1) for b in nabla_b])
        else:
            nabla = Params([np.zeros_like(w) for w in params.weights], [np.zeros_like(b) for b in params.biases])
            backprop = net.backprop
            for i, (x, y) in enumerate(zip(X, Y)):
                result = backprop(x[:, None], y[:, None])
                # Shapes and dtypes do not change between examples: checking the first is enough.
                delta_nabla_b, delta_nabla_w = self._checked(result, params) if i == 0 else result
                for nb, dnb in zip(nabla.biases, delta_nabla_b):
                    nb += dnb.reshape(-1)
                for nw, dnw in zip(nabla.weights, delta_nabla_w):
                    nw += dnw
        if self._calls <= FINITE_CHECKED_CALLS:
            arrays = {(kind, l): getattr(nabla, kind)[l] for kind, l in backprop_order(len(params.weights))}
            labels = {key: f"nabla_{key[0][0]}[{key[1]}]" for key in arrays}
            check_finite(arrays, labels, self.what, self.where, [*params.arrays(), X, Y])
        return nabla

    def _check(self, result: object, params: Params) -> tuple[list, list]:
        """Return (nabla_b, nabla_w) when backprop's result has the class layout's shapes and params' dtype."""
        what, where, n_layers = self.what, self.where, len(params.weights)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            got = type(result).__name__
            raise KernelOutputError(f"{what} returned {got}; expected (nabla_b, nabla_w)", where=where)
        nabla_b, nabla_w = result
        for label, got in (("nabla_b", nabla_b), ("nabla_w", nabla_w)):
            if not isinstance(got, (list, tuple)) or len(got) != n_layers:
                count = len(got) if isinstance(got, (list, tuple)) else type(got).__name__
                raise KernelOutputError(
                    f"{what} returned {count} {label} arrays; expected a list of {n_layers}, one per layer", where=where
                )
        first_bias = ((params.weights[0].shape[0], 1), (params.weights[0].shape[0],))
        if np.shape(nabla_b[0]) == params.weights[0].shape and np.shape(nabla_w[0]) in first_bias:
            raise KernelOutputError(
                f"{what} returned (nabla_w, nabla_b); it must return (nabla_b, nabla_w), biases first, as in the book",
                where=where,
            )
        for kind, l in backprop_order(n_layers):
            out = params.weights[l].shape[0]
            if kind == "biases":
                check_array(
                    nabla_b[l], (out, 1), params.dtype, what, f"nabla_b[{l}]", (kind, l), where, also_accept=[(out,)]
                )
            else:
                check_array(nabla_w[l], params.weights[l].shape, params.dtype, what, f"nabla_w[{l}]", (kind, l), where)
        return nabla_b, nabla_w


__all__ = ["PER_BATCH", "PER_EXAMPLE", "NielsenKernel", "nielsen_classes"]
