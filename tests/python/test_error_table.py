"""Walks the Python rows of docs/errors.md: every call is evaluated as written and must raise
exactly the documented exception and message (or return, for rows marked works)."""
import pathlib
import re

import numpy as np
import pytest

import cpattn

TABLE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "errors.md"
ROW = re.compile(r"^\| `(py\.[^`]+)` \| `([^`]+)` \| (.*) \| (.*) \|$")
ROWS = [m.groups() for m in map(ROW.match, TABLE.read_text(encoding="utf-8").splitlines()) if m]


def test_the_table_has_python_rows():
    assert len(ROWS) >= 10


@pytest.mark.parametrize("row_id, call, bad, outcome", ROWS, ids=[r[0] for r in ROWS])
def test_row_raises_as_documented(row_id, call, bad, outcome):
    namespace = {"np": np, "cpattn": cpattn, "z": np.zeros, "f32": np.float32}
    if outcome.startswith("works"):
        eval(call, namespace)
        return
    kind, message = re.fullmatch(r"`(\w+): (.*)`", outcome).groups()
    with pytest.raises(Exception) as info:
        eval(call, namespace)
    assert type(info.value).__name__ == kind
    assert str(info.value) == message
