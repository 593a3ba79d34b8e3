"""The scale benchmark's workspace (``benchmarks.bench_feature_load``) is a valid
declaration: 40 custom features of the stated types, each mapped from a column its Parquet
export has, bools through the ``Y``/``N`` value map."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.bench_feature_load import declaration, export
from features.declared import load_declaration


def test_the_benchmark_declaration_and_export_agree(tmp_path: Path) -> None:
    (tmp_path / "features.yaml").write_text(declaration())
    decl = load_declaration(tmp_path / "features.yaml", tmp_path)
    custom = decl.custom()
    assert len(custom) == 40 and {f.view for f in custom} == {"customer_bench"}
    counts = pd.Series([f.type.__name__ for f in custom]).value_counts().to_dict()
    assert counts == {"float": 25, "int": 10, "bool": 3, "str": 2}
    export(tmp_path / "exports" / "bench.parquet", 100)
    frame = pd.read_parquet(tmp_path / "exports" / "bench.parquet")
    (src,) = decl.sources
    assert src.defines_customers and len(frame) == 100 and frame["cust"].is_unique
    assert {m.column for m in src.columns} | {"cust", "as_of"} == set(frame.columns)
    bools = [m for m in src.columns if m.feature.startswith("b")]
    assert all(dict(m.values or {}) == {"Y": True, "N": False} for m in bools)
    assert set(frame["y00"]) == {"Y", "N"}
