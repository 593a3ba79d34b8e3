"""The compiled training loops equal their pure-Python twins on the same inputs:
``training._columns.token_stream`` vs ``training.columns.token_stream_py`` (same entries,
same values bit for bit) and ``training._join.join_rows`` vs
``training.logs.reader.join_rows_py`` (same rows, contexts, pmfs and counts, bad rows
included)."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import fields
from types import MappingProxyType

import numpy as np
import pandas as pd
from logs_factory import T0
from varied_log import ACTIONS, varied_log

from policies.catalog import load_catalog
from policies.types import Context
from training import columns, data
from training.logs import reader
from training.logs.reader import ROW_COLUMNS, JoinCounts, LoggedFeatures, RowParser

CATALOG = load_catalog()


def test_the_compiled_extensions_are_installed_and_used() -> None:
    """An install that lost the extensions must fail here, not just run slower."""
    from training import _columns, _join

    assert columns._compiled is _columns
    assert data.join_rows is _join.join_rows


def _entries(stream: columns.TokenStream) -> list[tuple[str, object]]:
    return [stream.tokens[i] for i in stream.tok]


def _rows() -> tuple[list[object], np.ndarray]:
    decisions, _ = varied_log(300, seed=4)
    rows: list[object] = [json.loads(d["customer_features"]) for d in decisions]
    rows += [
        {"n": 0, "f": -0.0, "big": 2**53 + 1, "neg": -(2**40), "tiny": -3e-320, "x_ts": 5},
        {"s": "1", "b": True, "i": 1, "z": None, "f": 1.0, "seen_ts": T0 - 3.5 * 86_400},
        MappingProxyType({"s": "1", "b": False, "seen_ts": 0.0, "v": 1e300}),
        OrderedDict([("b", True), ("s", "true"), ("i", 2)]),
        {},
    ]
    now = np.array([T0 + i for i in range(len(rows))], dtype=np.float64)
    now[-3] = 0.0  # unknown time: every age is -1
    return rows, now


def test_token_stream_compiled_equals_python() -> None:
    rows, now = _rows()
    py = columns.token_stream_py(rows, now)
    got = columns.token_stream(rows, now)
    assert np.array_equal(got.ptr, py.ptr)
    assert got.val.tobytes() == py.val.tobytes()
    assert _entries(got) == _entries(py)
    assert len(set(got.tokens)) == len(got.tokens)  # one id per distinct token


def test_token_stream_twin_uses_the_c_librarys_log1p(monkeypatch) -> None:
    """The twin computes ``sign·log1p`` with ``math.log1p`` (the C library's, as the
    compiled stream does), never NumPy's ``log1p``, whose SIMD loops may round the last
    bit differently on some hosts."""
    rows, now = _rows()
    expected = columns.token_stream_py(rows, now)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("numpy.log1p called by the twin")

    monkeypatch.setattr(np, "log1p", refuse)
    got = columns.token_stream_py(rows, now)
    assert got.val.tobytes() == expected.val.tobytes()


def test_token_stream_keeps_equal_values_of_different_classes_apart() -> None:
    rows = [{"a": True}, {"a": "True"}, {"a": None}, {"a": "None"}, {"a": True}]
    got = columns.token_stream(rows, np.full(len(rows), T0))
    assert got.tok.tolist() == [0, 1, 2, 3, 0]
    assert [v for _, v in got.tokens] == [True, "True", None, "None"]


def _bad_rows() -> list[dict]:
    decisions, _ = varied_log(60, seed=5)
    bad = []
    for i, (key, value) in enumerate(
        [
            ("action_id", None),
            ("probability", "x"),
            ("probability", 0.0),
            ("probability", float("nan")),
            ("customer_features", "{oops"),
            ("customer_features", '{"a": [1]}'),
            ("customer_features", '{"a": {"b": 1}}'),
            ("customer_features", "[1]"),
            ("customer_features", None),
            ("context", "{oops"),
            ("context", None),
            ("probabilities", "[[0.5, 0.5]]"),
            ("probabilities", "[0.5, 0.5, 0.5]"),
            ("actions", "[{}]"),
            ("actions", None),
            ("action_id", "not_logged"),
        ]
    ):
        bad.append({**decisions[i], key: value, "event_id": f"bad{i}"})
    return [*decisions, *bad]


def _run_join(fn: object, frame: pd.DataFrame, now: float) -> tuple[tuple[list, ...], JoinCounts]:
    counts = JoinCounts()
    frame = frame.assign(t_epoch=data._ts(frame["timestamp"]))
    rewards = {eid: 1.5 for eid in frame["event_id"][::3]}
    out = fn(  # type: ignore[operator]
        RowParser(),
        [frame[c].to_numpy().tolist() for c in ROW_COLUMNS],
        rewards,
        data._ts(frame["reward_deadline"]).tolist(),
        now,
        lambda dp: {"cart_abandoned": -0.25}.get(dp, 0.0),
        counts,
    )
    return out, counts


def test_join_rows_compiled_equals_python() -> None:
    from training import _join

    frame = pd.DataFrame(_bad_rows())
    seen = JoinCounts()
    for now in (T0 + 1e7, T0 + 30.0):  # everything closed / some windows still open
        (py, py_counts), (got, got_counts) = (
            _run_join(reader.join_rows_py, frame, now),
            _run_join(_join.join_rows, frame, now),
        )
        assert got_counts == py_counts and got_counts.skipped
        seen.rewarded += got_counts.rewarded
        seen.defaulted += got_counts.defaulted
        seen.pending += got_counts.pending
        contexts, actions, chosen, probs, rewards, pmfs, keep = got
        assert (chosen, probs, rewards, keep) == (*py[2:5], py[6])
        assert [[a.id for a in acts] for acts in actions] == [
            [a.id for a in acts] for acts in py[1]
        ]
        assert all(a.tobytes() == b.tobytes() for a, b in zip(pmfs, py[5], strict=True))
        for c, d in zip(contexts, py[0], strict=True):
            assert type(c) is Context
            # checked, not decoded: a lazy mapping equal to the twin's dict
            assert type(c.customer) is LoggedFeatures and c.customer._data is None
            for f in fields(Context):
                assert getattr(c, f.name) == getattr(d, f.name), f.name
                if f.name != "customer":
                    assert type(getattr(c, f.name)) is type(getattr(d, f.name))
            assert dict(c.customer.items()) == d.customer and c.customer == d.customer
    assert seen.pending and seen.rewarded and seen.defaulted


def test_both_joins_count_every_bad_row_under_its_reason() -> None:
    from training import _join

    frame = pd.DataFrame(_bad_rows())
    for fn in (reader.join_rows_py, _join.join_rows):
        out, counts = _run_join(fn, frame, T0 + 1e7)
        assert dict(counts.skipped) == {
            "no_action": 1,
            "bad_probability": 3,
            "corrupt_json": 9,
            "ranking_mismatch": 3,
        }
        assert len(out[0]) == 60 and len(ACTIONS) == 5


def _texts() -> list[str]:
    """JSON texts the fast reader takes and texts it must leave to orjson (corrupt,
    nested, escaped, non-ASCII, huge or tiny numbers, duplicate keys)."""
    rng = np.random.default_rng(7)
    floats = [
        *rng.normal(0, 1e3, 200).tolist(),
        *(T0 + rng.uniform(-1e7, 1e7, 200)).tolist(),
        *(10.0 ** rng.uniform(-30, 30, 200)).tolist(),
        0.1,
        0.5,
        -0.0,
        1e22,
        1e23,
        9007199254740993.0,
        5e-324,
        1.7976931348623157e308,
    ]
    texts = [json.dumps({"x": x, "y_ts": -x, "i": int(x) if abs(x) < 1e18 else 3}) for x in floats]
    texts += [
        "{}",
        " { } ",
        '{"a":1}',
        '{"a" : 1 , "b":\t"x" }\n',
        '{"a":true,"b":false,"c":null}',
        '{"a":"true","b":"","c":"1"}',
        '{"a":-0,"b":0,"c":-0.0,"d":12345678901234567}',
        '{"a":1.5e3,"b":2E-2,"c":1e+2,"d":123456789012.34567}',
        '{"big":123456789012345678901}',
        '{"a":1e400}',
        '{"a":1e-400}',
        '{"a":01}',
        '{"a":1.}',
        '{"a":.5}',
        '{"a":+1}',
        '{"a":-}',
        '{"a":1e}',
        '{"a":NaN}',
        '{"a":Infinity}',
        '{"a":[1]}',
        '{"a":{"b":1}}',
        "[1]",
        '"x"',
        "1",
        "",
        "{",
        '{"a":1,}',
        '{"a":1 "b":2}',
        '{"a"}',
        "{a:1}",
        '{"a":"x\\"y"}',
        '{"a":"\\u00e9"}',
        '{"a":"\u00e9"}',
        '{"\u00e9":1}',
        '{"a":"tab\there"}',
        '{"a":1,"a":2}',
        '{"a":1,"b":2,"a":"x"}',
        '{"a":1}x',
        '{"a":1}\u0000',
        '{"a":tru}',
        '{"a":nul}',
        '{"a":falsey}',
    ]
    return texts


def test_flat_object_never_takes_what_orjson_would_not_give_as_flat() -> None:
    import orjson
    from training._columns import flat_object

    from training.logs.reader import _scalars_only

    taken = 0
    for text in _texts():
        try:
            decoded = orjson.loads(text)
            flat = _scalars_only(decoded)
        except orjson.JSONDecodeError:
            flat = False
        if flat_object(text):
            taken += 1
            assert flat, text
    assert taken > 600


def test_token_stream_from_json_text_equals_the_decoded_mappings() -> None:
    import orjson
    from training._columns import flat_object

    texts = [t for t in _texts() if flat_object(t)]
    texts += texts[::-1]  # a second pass with warm layouts and string memos
    now = np.array([T0 + 17.5 * i for i in range(len(texts))], dtype=np.float64)
    lazy = [LoggedFeatures(t) for t in texts]
    got = columns.token_stream(lazy, now)
    py = columns.token_stream_py([orjson.loads(t) for t in texts], now)
    assert np.array_equal(got.ptr, py.ptr)
    assert got.val.tobytes() == py.val.tobytes()
    assert _entries(got) == _entries(py)
    # read from the text, except the duplicate keys (decoded: orjson keeps the last)
    assert [t for t, x in zip(texts, lazy, strict=True) if x._data is not None] == [
        t for t in texts if t.count('"a"') > 1
    ]
    assert dict(lazy[0]) == orjson.loads(texts[0]) and len(lazy[0]) == 3
