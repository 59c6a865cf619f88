"""A deterministic reservoir sample: Algorithm R without random state.

The reservoir is Algorithm R driven by a counter-based hash (splitmix64) of the sample's seed
and each value's position in its stream, so it needs no random state and is the same for the
same input order, across processes and restarts. Seeds come from names
(:func:`stable_seed`), not from ``hash``, which differs between processes.

>>> at_once, one_by_one, seed = array("d"), array("d"), stable_seed("api", "latency_ms", 7)
>>> keep(at_once, seed, np.arange(100.0), 0, k=4)
>>> for i in range(100):
...     keep_one(one_by_one, seed, float(i), i, k=4)
>>> len(at_once), at_once == one_by_one
(4, True)
"""

from __future__ import annotations

import hashlib
from array import array

import numpy as np
import numpy.typing as npt

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_U30, _U27, _U31, _U11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_MASK = (1 << 64) - 1


def stable_seed(*parts: object, prefix: str = "") -> int:
    """A 63-bit seed from ``parts``, the same in every process (unlike ``hash``); with
    ``prefix``, from the parts of :func:`seed_prefix` followed by these.

    >>> stable_seed("api", "p95", 7) == stable_seed(7, prefix=seed_prefix("api", "p95"))
    True
    """
    text = (prefix + "\x1f".join(map(str, parts))).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def seed_prefix(*parts: object) -> str:
    """What :func:`stable_seed` hashes first for ``parts`` when more parts follow them."""
    return "".join(f"{part}\x1f" for part in parts)


def uniforms(seed: int, start: int, stop: int) -> npt.NDArray[np.float64]:
    """Uniform numbers in [0, 1) for positions ``start..stop-1`` of stream ``seed``.

    >>> u = uniforms(7, 0, 5)
    >>> bool(((0 <= u) & (u < 1)).all()), float(uniforms(7, 2, 3)[0]) == float(u[2])
    (True, True)
    """
    x = np.arange(start, stop, dtype=np.uint64) + np.uint64(seed)
    x = (x ^ (x >> _U30)) * _M1
    x = (x ^ (x >> _U27)) * _M2
    x = x ^ (x >> _U31)
    return (x >> _U11).astype(np.float64) * (2.0**-53)


def uniform(seed: int, position: int) -> float:
    """``uniforms(seed, position, position + 1)[0]`` in plain Python (for single points).

    >>> uniform(7, 3) == float(uniforms(7, 0, 5)[3])
    True
    """
    x = (position + seed) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    x ^= x >> 31
    return float(x >> 11) * (2.0**-53)


def keep_one(sample: array[float], seed: int, value: float, seen: int, k: int) -> None:
    """Algorithm R for the value at position ``seen`` of stream ``seed``, without numpy."""
    if len(sample) < k:
        sample.append(value)
        return
    slot = int(uniform(seed, seen) * (seen + 1))
    if slot < k:
        sample[slot] = value


def keep(
    sample: array[float], seed: int, values: npt.NDArray[np.float64], seen: int, k: int
) -> None:
    """Algorithm R for ``values`` (arrival order) at positions ``seen`` on of stream ``seed``:
    what :func:`keep_one` of each in turn leaves, in one numpy pass."""
    room = k - len(sample)
    if room > 0:
        sample.frombytes(values[:room].astype(np.float64, copy=False).tobytes())
        values, seen = values[room:], seen + room
    n = values.size
    if n == 0:
        return
    if n == 1:  # without numpy's per-call overhead
        keep_one(sample, seed, float(values[0]), seen, k)
        return
    pos = np.arange(seen, seen + n)
    slots = (uniforms(seed, seen, seen + n) * (pos + 1)).astype(np.int64)
    hit = np.flatnonzero(slots < k)
    for slot, value in zip(slots[hit].tolist(), values[hit].tolist(), strict=True):
        sample[slot] = value  # in arrival order: the last write to a slot wins
