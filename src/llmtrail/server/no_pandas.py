"""Keep pandas out of llmtrail's server processes.

pyarrow imports pandas, when it is installed, on its first conversion of Python values (a
list, a scalar, a dict of columns), only to check that they are not pandas objects: ~60 MB
and over a second of CPU, in a process that never holds a pandas object. Nothing llmtrail
runs uses pandas, and the libraries that can use it (pyarrow, plotly, DuckDB, chdb) take its
absence as a normal case. `refuse_pandas` makes ``import pandas`` fail in this process, so
that they take that path.
"""

from __future__ import annotations

import sys
from typing import Any


class _NoPandas:
    """An import finder refusing pandas."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("llmtrail's server processes do not use pandas", name=name)


def refuse_pandas() -> None:
    """From now on ``import pandas`` fails in this process (idempotent)."""
    if _NoPandas not in sys.meta_path:
        sys.meta_path.insert(0, _NoPandas)
