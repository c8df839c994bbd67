"""Arrow tables of int64 columns, to and from numpy without a copy where the layout allows: an int64
numpy array is an Arrow buffer as it is, and an Arrow int64 column of one chunk without nulls is a
numpy array as it is. pyarrow is imported here, on first use (the pipelines extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

PYARROW_MISSING = "Arrow conversions need pyarrow: pip install 'igcore[pipelines]'"


def pyarrow() -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise ImportError(PYARROW_MISSING) from None
    return pa


def table(columns: dict[str, NDArray[np.int64] | None]) -> Any:
    """A ``pyarrow.Table`` of the int64 arrays in `columns` (None: left out), sharing their memory."""
    pa = pyarrow()
    return pa.table({name: pa.array(values) for name, values in columns.items() if values is not None})


def int64_column(data: Any, name: str, where: str = "the table") -> NDArray[np.int64]:
    """Column `name` of an Arrow table as an int64 numpy array: the column's own memory when it is int64
    in one chunk; other integer widths are widened, chunks joined (copies). ValueError for a missing
    column, nulls, or a column that is not of integers."""
    pa = pyarrow()
    if name not in data.column_names:
        raise ValueError(f"{where}: no column {name!r} (it has {sorted(data.column_names)})")
    column = data.column(name)
    if column.null_count:
        raise ValueError(f"{where}: column {name!r} has {column.null_count} nulls")
    if not pa.types.is_integer(column.type):
        raise ValueError(f"{where}: column {name!r} is {column.type}, not a column of integers")
    if column.type != pa.int64():
        column = column.cast(pa.int64())  # uint64 beyond int64 raises here
    chunk = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    array: NDArray[np.int64] = chunk.to_numpy(zero_copy_only=False)
    return array
