"""The binary form of window cells and checkpoints: exact round trips, other forms refused."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest

from perfloop.schemas.config import WindowsConfig
from perfloop.streams.cell_codec import decode_cells, encode_cells
from perfloop.streams.decode import RawRecord
from perfloop.streams.window_cell import WindowCell
from perfloop.streams.window_stage import WindowStage

T0 = 1_700_000_000.0


def random_cell(rng: np.random.Generator, k: int) -> WindowCell:
    cell = WindowCell.empty(seed=int(rng.integers(0, 2**62)), alpha=0.01)
    for _ in range(int(rng.integers(1, 4))):
        n = int(rng.integers(1, 300))
        values = rng.normal(0, 1, n) * 10.0 ** rng.integers(-300, 300, n)
        values[rng.random(n) < 0.1] = 0.0
        cell.add(values, T0 + rng.uniform(0, 10, n), k)
    return cell


@pytest.mark.parametrize("k", [0, 1, 64])
def test_cells_round_trip_exactly(k: int) -> None:
    rng = np.random.default_rng(k)
    cells = [(int(rng.integers(0, 10**9)), i, random_cell(rng, k)) for i in range(40)]
    back = decode_cells(encode_cells(cells), 0.01)
    assert [(wi, sid) for wi, sid, _ in back] == [(wi, sid) for wi, sid, _ in cells]
    for (_, _, a), (_, _, b) in zip(cells, back, strict=True):
        assert b.to_json() == a.to_json()
        assert b.exact_sum == a.exact_sum


def test_negative_and_zero_sums_and_an_empty_list() -> None:
    neg, zero = WindowCell.empty(1, 0.01), WindowCell.empty(2, 0.01)
    neg.add(np.array([-1e-300, -3.5]), np.array([1.0, 2.0]), k=4)
    zero.add(np.array([2.5, -2.5]), np.array([1.0, 2.0]), k=4)
    back = decode_cells(encode_cells([(0, 0, neg), (0, 1, zero)]), 0.01)
    assert [c.exact_sum for _, _, c in back] == [neg.exact_sum, 0]
    assert decode_cells(encode_cells([]), 0.01) == []


def test_a_restored_cell_continues_like_the_original() -> None:
    rng = np.random.default_rng(5)
    cell = random_cell(rng, 8)
    ((_, _, copy),) = decode_cells(encode_cells([(0, 0, cell)]), 0.01)
    more = rng.lognormal(0, 1, 50)
    for c in (cell, copy):
        c.add(more, np.full(50, T0 + 20.0), 8)
    assert copy.to_json() == cell.to_json()


def test_a_checkpoint_continues_where_it_was_written() -> None:
    body = {"service": "api", "metric": "latency_ms", "value": 5.0, "ts": T0 + 1}
    stage = WindowStage(WindowsConfig())
    stage.process(0, [RawRecord(json.dumps(body).encode(), b"api", 0, 7)], T0 + 2)
    state = stage._partitions[0]
    again = WindowStage(WindowsConfig())
    again.restore(0, stage.checkpoint(0))
    assert again.last_offset(0) == 7
    assert again.counters(0) == stage.counters(0)
    assert again._partitions[0].windows.to_bytes() == state.windows.to_bytes()


def test_a_checkpoint_of_another_form_is_a_clear_error() -> None:
    stage = WindowStage(WindowsConfig())
    stage.process(0, [], T0)
    all_json = zlib.compress(json.dumps({"version": 1, "last_offset": 3}).encode())
    with pytest.raises(ValueError, match="checkpoint starting b'{\"versio' is not of version 2"):
        stage.restore(0, all_json)
    body = zlib.decompress(stage.checkpoint(0))
    (size,) = struct.unpack_from("<I", body)
    head = json.dumps({**json.loads(body[4 : 4 + size]), "version": 3}).encode()
    later = zlib.compress(struct.pack("<I", len(head)) + head + body[4 + size :])
    with pytest.raises(ValueError, match="checkpoint of version 3 is not of version 2"):
        stage.restore(0, later)


def test_a_cell_whose_sample_holds_every_value_is_written_without_buckets() -> None:
    held, full = WindowCell.empty(1, 0.01), WindowCell.empty(2, 0.01)
    values = np.array([3.0, -1.5, 0.0, 250.0])
    held.add(values, T0 + np.arange(4.0), k=64)
    full.add(values, T0 + np.arange(4.0), k=2)  # past its sample: it keeps a sketch
    assert held.sketch is None and full.sketch is not None
    back = decode_cells(encode_cells([(0, 0, held), (0, 1, full)]), 0.01)
    assert [c.sketch is None for _, _, c in back] == [True, False]
    assert [c.to_json() for _, _, c in back] == [held.to_json(), full.to_json()]
    (_, _, copy), _ = back
    for c in (held, copy):  # both cross their sample size and build the same sketch
        c.add(np.linspace(1.0, 9.0, 80), np.full(80, T0 + 5.0), 64)
    assert copy.sketch is not None and copy.to_json() == held.to_json()


def test_cells_of_another_codec_version_are_a_clear_error() -> None:
    rng = np.random.default_rng(3)
    blob = encode_cells([(0, i, random_cell(rng, 0)) for i in range(5)])
    (size,) = struct.unpack_from("<I", blob)
    head = json.loads(blob[4 : 4 + size])
    assert head["version"] == 2
    old_head = json.dumps({**head, "version": 1}).encode()
    old = struct.pack("<I", len(old_head)) + old_head + blob[4 + size :]
    with pytest.raises(ValueError, match="cell codec version 1 is not 2"):
        decode_cells(old, 0.01)
