"""State files that cannot run code when loaded: a JSON tree and its arrays in one ``.npz``.

A strategy's or trainer's state is a tree of dicts, lists, tuples, strings, numbers, booleans, None,
bytes and NumPy arrays. :func:`dumps` stores the tree as JSON text in the member ``tree`` of an
uncompressed ``.npz``, each array replaced by a reference (dtype, shape, memory order, place) into
the member ``data``, which holds every array's bytes, bit for bit, one after another. (One member
rather than one per array: pycma's state holds hundreds of small arrays, and a zip member each
tripled the write time.) :func:`loads` reads the file with ``np.load(allow_pickle=False)``: a file
made by anyone holds only JSON and bytes, so loading it can build data, never call code.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from typing import Any, BinaryIO

import numpy as np

TREE, DATA = "tree", "data"  # the members: JSON text (UTF-8) and the arrays' bytes, both uint8 arrays
_ALIGN = 64  # each array starts at a multiple of this in DATA
# Tags of the JSON objects that stand for what JSON has no type for; a dict of the tree may not use
# them as keys (it would read back as the tagged value).
_ARRAY, _BYTES, _TUPLE = "__array__", "__bytes__", "__tuple__"
_TAGS = (_ARRAY, _BYTES, _TUPLE)


class StateFileError(ValueError):
    """A state file that cannot be read, or a tree that cannot be stored; the message is one line."""


def dumps(tree: Any) -> bytes:
    """The tree as the bytes of a state file."""
    buffer = io.BytesIO()
    write(buffer, tree)
    return buffer.getvalue()


def write(file: BinaryIO, tree: Any) -> None:
    """Write the tree as a state file to ``file``, the arrays' bytes streamed without copies."""
    chunks: list[memoryview] = []
    size = 0

    def place(raw: memoryview) -> int:
        nonlocal size
        offset = size
        chunks.append(raw)
        padding = -raw.nbytes % _ALIGN
        if padding:
            chunks.append(memoryview(b"\0" * padding))
        size += raw.nbytes + padding
        return offset

    def encode(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise StateFileError(f"cannot store an array of Python objects (dtype {value.dtype})")
            # Fortran order is kept: BLAS rounds differently for another layout of the same numbers.
            order = "F" if value.flags.f_contiguous and not value.flags.c_contiguous else "C"
            flat = value.T if order == "F" else value  # C-contiguous in the saved order: no copy
            raw = memoryview(np.ascontiguousarray(flat)).cast("B")
            return {_ARRAY: {"dtype": value.dtype.str, "shape": list(value.shape), "order": order,
                             "offset": place(raw)}}
        if isinstance(value, (bytes, bytearray)):
            return {_BYTES: {"offset": place(memoryview(bytes(value))), "size": len(value)}}
        if isinstance(value, np.generic):
            return value.item()  # a NumPy scalar: the same value as a Python number
        if isinstance(value, tuple):
            return {_TUPLE: [encode(v) for v in value]}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if isinstance(value, dict):
            bad = [k for k in value if not isinstance(k, str) or k in _TAGS]
            if bad:
                raise StateFileError(f"cannot store a dict key {bad[0]!r} (keys are strings, not {_TAGS})")
            return {k: encode(v) for k, v in value.items()}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise StateFileError(f"cannot store a value of type {type(value).__name__}")

    text = json.dumps(encode(tree), allow_nan=True).encode()  # NaN and inf round-trip in Python's json
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, length, pieces in ((TREE, len(text), [memoryview(text)]), (DATA, size, chunks)):
            # An .npy member: the header of a 1-D uint8 array, then its bytes (np.load reads it).
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array_header_1_0(
                    member, {"descr": "|u1", "fortran_order": False, "shape": (length,)})
                for piece in pieces:
                    member.write(piece)


def loads(data: bytes, what: str = "state file") -> Any:
    """The tree stored by :func:`dumps`; a :class:`StateFileError` naming ``what`` if it is not one."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as members:
            skeleton, blob = members[TREE], members[DATA]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise StateFileError(f"{what} is not a readable state file ({_one_line(err)})") from None
    if skeleton.dtype != np.uint8 or blob.dtype != np.uint8 or skeleton.ndim != 1 or blob.ndim != 1:
        raise StateFileError(f"{what} is not a state file (its members are not bytes)")
    try:
        tree = json.loads(skeleton.tobytes().decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise StateFileError(f"{what}: its member {TREE!r} is not JSON ({_one_line(err)})") from None

    def span(offset: Any, size: int) -> np.ndarray:
        if not isinstance(offset, int) or offset < 0 or size < 0 or offset + size > len(blob):
            raise StateFileError(f"{what} refers to bytes it does not hold (offset {offset!r}, {size} bytes)")
        return blob[offset:offset + size]

    def array(ref: Any) -> np.ndarray:
        try:
            dtype, shape, order = np.dtype(ref["dtype"]), tuple(int(n) for n in ref["shape"]), ref["order"]
        except (TypeError, ValueError, KeyError) as err:
            raise StateFileError(f"{what} holds a bad array reference ({_one_line(err)})") from None
        if dtype.hasobject or order not in ("C", "F") or any(n < 0 for n in shape):
            raise StateFileError(f"{what} holds an array that is not plain numbers ({dtype}, {order})")
        raw = span(ref.get("offset"), math.prod(shape) * dtype.itemsize)
        # A copy: aligned, writable memory of its own, in the order it was saved in.
        return np.array(raw.view(dtype).reshape(shape, order=order), order=order, copy=True)

    def decode(value: Any) -> Any:
        if isinstance(value, list):
            return [decode(v) for v in value]
        if isinstance(value, dict):
            if len(value) == 1 and isinstance(value.get(_ARRAY), dict):
                return array(value[_ARRAY])
            if len(value) == 1 and isinstance(value.get(_BYTES), dict):
                size = value[_BYTES].get("size")
                return span(value[_BYTES].get("offset"), size if isinstance(size, int) else -1).tobytes()
            if len(value) == 1 and isinstance(value.get(_TUPLE), list):
                return tuple(decode(v) for v in value[_TUPLE])
            return {k: decode(v) for k, v in value.items()}
        return value

    try:
        return decode(tree)
    except RecursionError:
        raise StateFileError(f"{what} nests deeper than any state this program writes") from None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
