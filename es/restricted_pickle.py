"""Pickles of pycma's object graph, loaded by an unpickler limited to an explicit allow-list.

pycma's ``CMAEvolutionStrategy`` is a graph of some twenty classes; rebuilding it by hand would tie
this project to pycma's internals, so it is pickled, the way torch's ``weights_only`` loading keeps
a pickle format: the unpickler resolves only the names in :data:`CMA_ALLOWED` (pycma's own classes,
two harmless functions it stores, and NumPy scalars and dtypes), and refuses every other name, such
as ``os.system`` or ``builtins.eval``, before anything is called. Arrays do not go through pickle at
all: :func:`dumps` takes every numeric array out of the stream (the covariance matrix and its
eigenvectors are nearly all of the state) and returns it beside the stream, to be stored as a raw
array; references to the same array stay shared.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

# (module, name) pairs that a CMA-ES state may name. NumPy moved its core from numpy.core to
# numpy._core in 2.0: both spellings of the same functions are allowed.
_NUMPY_SCALARS = {(f"numpy.{core}.multiarray", "scalar") for core in ("core", "_core")} | {("numpy", "dtype")}
CMA_ALLOWED: frozenset[tuple[str, str]] = frozenset({
    ("cma.boundary_handler", "BoundNone"),
    ("cma.boundary_handler", "BoundTransform"),
    ("cma.evolution_strategy", "CMAEvolutionStrategy"),
    ("cma.evolution_strategy", "_CMASolutionDict_empty"),
    ("cma.evolution_strategy", "_CMASolutionDict_functional"),
    ("cma.evolution_strategy", "_CMAStopDict"),
    ("cma.evolution_strategy", "_StopTolXStagnation"),
    ("cma.evolution_strategy", "_pass"),  # a no-op function pycma keeps as an attribute
    ("cma.logger", "CMADataLogger"),
    ("cma.optimization_tools", "BestSolution"),
    ("cma.options_parameters", "CMAOptions"),
    ("cma.options_parameters", "CMAParameters"),
    ("cma.options_parameters", "is_feasible"),  # a predicate pycma keeps as an option
    ("cma.recombination_weights", "RecombinationWeights"),
    ("cma.sampler", "GaussFullSampler"),
    ("cma.sampler", "GaussStandardConstant"),
    ("cma.sigma_adaptation", "CMAAdaptSigmaCSA"),
    ("cma.sigma_adaptation", "CMAAdaptSigmaTPA"),
    ("cma.sigma_adaptation", "_TPAParameters"),
    ("cma.transformations", "DiagonalDecoding"),
    ("cma.transformations", "GenoPheno"),
    ("cma.transformations", "RoundIntegerVariables"),
    ("cma.utilities.utils", "BlancClass"),
    ("cma.utilities.utils", "DictFromTagsInString"),
    ("cma.utilities.utils", "ElapsedWCTime"),
    ("cma.utilities.utils", "MoreToWrite"),
    ("cma.utilities.utils", "SolutionDict"),
    ("numpy.linalg", "eigh"),  # the sampler's eigendecomposition function
    # Constructors of plain values (pycma keeps e.g. a range for small populations).
    *{("builtins", name) for name in ("range", "slice", "complex", "set", "frozenset")},
    *_NUMPY_SCALARS,
})


class RefusedPickle(pickle.UnpicklingError):
    """A pickle names something outside the allow-list; nothing from it was called."""


class _Pickler(pickle.Pickler):
    """Pickles with numeric arrays (and any objects ``external`` names) kept out of the stream."""

    def __init__(self, file: io.BytesIO, external: Callable[[Any], Any]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.arrays: list[np.ndarray] = []
        self._index: dict[int, int] = {}
        self._external = external

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
            if id(obj) not in self._index:
                self._index[id(obj)] = len(self.arrays)
                self.arrays.append(obj)
            return ("array", self._index[id(obj)])
        tag = self._external(obj)
        return None if tag is None else ("external", tag)


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, allowed: frozenset[tuple[str, str]], arrays: list[np.ndarray],
                 external: Callable[[Any], Any]):
        super().__init__(io.BytesIO(data))
        self._allowed, self._arrays, self._external = allowed, arrays, external

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise RefusedPickle(f"refused to load {module}.{name}: not one of the names a CMA-ES "
                                "state holds (a checkpoint from another program, or a tampered one)")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        kind, key = pid if isinstance(pid, tuple) and len(pid) == 2 else (None, None)
        if kind == "array" and isinstance(key, int) and 0 <= key < len(self._arrays):
            return self._arrays[key]
        if kind == "external":
            return self._external(key)
        raise RefusedPickle(f"refused a reference the state does not hold: {pid!r}")


def dumps(obj: Any, external: Callable[[Any], Any] = lambda obj: None,
          allowed: frozenset[tuple[str, str]] = CMA_ALLOWED) -> tuple[bytes, list[np.ndarray]]:
    """``obj`` as (pickle stream, arrays). ``external(o)`` may return a tag for an object to leave
    out (e.g. a random generator the caller restores itself); ``loads`` gets the tag back. A
    :class:`RefusedPickle` if the stream names anything outside ``allowed``."""
    stream = io.BytesIO()
    pickler = _Pickler(stream, external)
    pickler.dump(obj)
    # Refuse now, not at the resume days later, a state that names something the loader refuses
    # (a pycma release that keeps a new class): the stream is small, the arrays are not copied.
    try:
        _Unpickler(stream.getvalue(), allowed, pickler.arrays, lambda tag: None).load()
    except RefusedPickle as err:
        raise RefusedPickle(f"this state could not be loaded again: {err}; add the name to "
                            "the allow-list in es/restricted_pickle.py if it is a plain value") from None
    return stream.getvalue(), pickler.arrays


def loads(data: bytes, arrays: list[np.ndarray], allowed: frozenset[tuple[str, str]] = CMA_ALLOWED,
          external: Callable[[Any], Any] = lambda tag: None) -> Any:
    """The object :func:`dumps` stored, resolving only ``allowed`` names; ``external(tag)`` gives
    back what was left out. Raises :class:`RefusedPickle` (or another UnpicklingError) otherwise."""
    return _Unpickler(data, allowed, arrays, external).load()
