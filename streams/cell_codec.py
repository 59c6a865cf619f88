"""The compact binary form of many window cells: columns of numbers instead of JSON.

A checkpoint holds every open (series, window) cell of a partition, and is written every
second or so, so its form matters: the cells become a handful of flat numpy columns (the
fixed fields, the concatenated samples, the concatenated sketch buckets) and the variable
parts are recovered from per-cell lengths. A cell whose sample holds every value has no
sketch (see :mod:`perfloop.streams.window_cell`) and is written with no buckets.
:func:`encode_cells` and :func:`decode_cells` are exact inverses; a restored cell continues exactly
like the original.

>>> import numpy as np
>>> cell = WindowCell.empty(seed=3, alpha=0.01)
>>> cell.add(np.array([2.0, -1.0, 0.0, 7.5]), np.array([1.0, 2.0, 3.0, 4.0]), k=3)
>>> blob = encode_cells([(5, 0, cell)])
>>> [(wi, sid, back.to_json() == cell.to_json()) for wi, sid, back in decode_cells(blob, 0.01)]
[(5, 0, True)]
"""

from __future__ import annotations

import json
import struct
from array import array
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from perfloop.streams.sketch import DEFAULT_MAX_BUCKETS, QuantileSketch
from perfloop.streams.window_cell import WindowCell

CODEC_VERSION = 2
_NO_BUCKETS = np.zeros(0, np.int64)
_HEAD = struct.Struct("<I")

# name, dtype: the per-cell columns, in this order
_FIXED = (
    ("window", "<i8"),
    ("series", "<i8"),
    ("count", "<i8"),
    ("min", "<f8"),
    ("max", "<f8"),
    ("last", "<f8"),
    ("last_ts", "<f8"),
    ("seed", "<i8"),
    ("sum_shift", "<i4"),  # the exact sum is (mantissa << shift): trailing zeros dropped
    ("sum_len", "<i4"),  # bytes of the mantissa, negative for a negative sum
    ("sample_len", "<i4"),
    ("zero", "<i8"),
    ("pos_lo", "<i8"),
    ("pos_len", "<i4"),
    ("neg_lo", "<i8"),
    ("neg_len", "<i4"),
)


def _split_sum(cell: WindowCell) -> tuple[int, int, bytes]:
    m, shift = cell.sum_parts()
    mantissa = -m if m < 0 else m
    size = (mantissa.bit_length() + 7) // 8
    return shift, -size if m < 0 else size, mantissa.to_bytes(size, "little")


def encode_cells(cells: Iterable[tuple[int, int, WindowCell]]) -> bytes:
    """``(window index, series id, cell)`` triples as one blob (see the module docstring)."""
    fixed: list[tuple[Any, ...]] = []
    sums: list[bytes] = []
    samples = array("d")
    buckets: list[npt.NDArray[np.int64]] = []
    max_buckets = DEFAULT_MAX_BUCKETS
    for wi, sid, cell in cells:
        shift, size, mantissa = _split_sum(cell)
        if cell.sketch is None:  # the sample holds every value: no buckets
            zero, pos_lo, pos, neg_lo, neg = 0, 0, _NO_BUCKETS, 0, _NO_BUCKETS
        else:
            zero, pos_lo, pos, neg_lo, neg = cell.sketch.state()
            max_buckets = cell.sketch.max_buckets
        fixed.append(
            (wi, sid, cell.count, cell.min, cell.max, cell.last, cell.last_ts, cell.seed,
             shift, size, len(cell.sample), zero, pos_lo, pos.size, neg_lo, neg.size)
        )  # fmt: skip
        sums.append(mantissa)
        samples.extend(cell.sample)
        if pos.size:
            buckets.append(pos)
        if neg.size:
            buckets.append(neg)
    table = np.array(fixed, dtype=list(_FIXED)) if fixed else np.zeros(0, dtype=list(_FIXED))
    counts = np.concatenate(buckets).astype("<i8") if buckets else np.zeros(0, "<i8")
    parts = [table.tobytes(), b"".join(sums), samples.tobytes(), counts.tobytes()]
    head = json.dumps(
        {
            "version": CODEC_VERSION,
            "cells": int(table.size),
            "max_buckets": max_buckets,
            "sizes": [len(p) for p in parts],
        }
    ).encode()
    return _HEAD.pack(len(head)) + head + b"".join(parts)


def decode_cells(blob: bytes, alpha: float) -> list[tuple[int, int, WindowCell]]:
    """The triples that :func:`encode_cells` wrote (sketches of accuracy ``alpha``)."""
    (head_size,) = _HEAD.unpack_from(blob)
    head = json.loads(blob[_HEAD.size : _HEAD.size + head_size])
    version = head.get("version")
    if version != CODEC_VERSION:
        raise ValueError(f"version: cell codec version {version!r} is not {CODEC_VERSION}")
    pos = _HEAD.size + head_size
    parts = []
    for size in head["sizes"]:
        parts.append(memoryview(blob)[pos : pos + size])
        pos += size
    table = np.frombuffer(parts[0], dtype=list(_FIXED), count=int(head["cells"]))
    sums = bytes(parts[1])
    samples = np.frombuffer(parts[2], dtype="<f8")
    counts = np.frombuffer(parts[3], dtype="<i8")
    max_buckets = int(head["max_buckets"])
    out = []
    at_sum = at_sample = at_bucket = 0
    for row in table.tolist():
        (wi, sid, count, low, high, last, last_ts, seed, shift, size,
         n_sample, zero, pos_lo, n_pos, neg_lo, n_neg) = row  # fmt: skip
        width = abs(size)
        total = int.from_bytes(sums[at_sum : at_sum + width], "little") << shift
        at_sum += width
        sample = array("d", samples[at_sample : at_sample + n_sample].tobytes())
        at_sample += n_sample
        pos_counts = counts[at_bucket : at_bucket + n_pos]
        neg_counts = counts[at_bucket + n_pos : at_bucket + n_pos + n_neg]
        at_bucket += n_pos + n_neg
        sketch = (
            None
            if zero == n_pos == n_neg == 0
            else QuantileSketch.from_state(
                alpha, max_buckets, zero, pos_lo, pos_counts, neg_lo, neg_counts
            )
        )
        cell = WindowCell.restore(
            count,
            -total if size < 0 else total,
            low,
            high,
            last,
            last_ts,
            seed,
            sample,
            sketch,
            alpha,
        )
        out.append((wi, sid, cell))
    return out
