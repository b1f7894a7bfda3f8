"""From engine types to the rule language's value kinds (number, string, date, boolean)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.types as pat

from tagsys.lake.schema import ValueKind

if TYPE_CHECKING:
    from pyspark.sql.types import DataType

_ARROW_INT_NAMES = {8: "tinyint", 16: "smallint", 32: "int", 64: "bigint"}
# Spark reads unsigned Parquet ints into the next wider signed type.
_ARROW_UINT_NAMES = {8: "smallint", 16: "int", 32: "bigint", 64: "decimal(20,0)"}


def arrow_kind(arrow_type: pa.DataType) -> tuple[ValueKind | None, str]:
    """The value kind and the Spark type name of an Arrow column type."""
    if pat.is_dictionary(arrow_type):
        return arrow_kind(arrow_type.value_type)
    if pat.is_signed_integer(arrow_type):
        return "number", _ARROW_INT_NAMES[arrow_type.bit_width]
    if pat.is_unsigned_integer(arrow_type):
        return "number", _ARROW_UINT_NAMES[arrow_type.bit_width]
    if pat.is_floating(arrow_type):
        return "number", "float" if arrow_type.bit_width <= 32 else "double"
    if pat.is_decimal(arrow_type):
        return "number", f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pat.is_string(arrow_type) or pat.is_large_string(arrow_type):
        return "string", "string"
    if pat.is_date(arrow_type):
        return "date", "date"
    if pat.is_timestamp(arrow_type):
        return "date", "timestamp" if arrow_type.tz else "timestamp_ntz"
    if pat.is_boolean(arrow_type):
        return "boolean", "boolean"
    return None, _nested_name(arrow_type)


def _nested_name(arrow_type: pa.DataType) -> str:
    if pat.is_binary(arrow_type) or pat.is_large_binary(arrow_type):
        return "binary"
    if pat.is_list(arrow_type) or pat.is_large_list(arrow_type):
        return f"array<{arrow_kind(arrow_type.value_type)[1]}>"
    if pat.is_map(arrow_type):
        return f"map<{arrow_kind(arrow_type.key_type)[1]},{arrow_kind(arrow_type.item_type)[1]}>"
    if pat.is_struct(arrow_type):
        fields = (f"{f.name}:{arrow_kind(f.type)[1]}" for f in arrow_type)
        return f"struct<{','.join(fields)}>"
    return str(arrow_type)


def spark_kind(data_type: DataType) -> tuple[ValueKind | None, str]:
    """The value kind and type name of a Spark column type (catalog tables)."""
    from pyspark.sql import types as T

    kind: ValueKind | None = None
    if isinstance(data_type, T.NumericType):
        kind = "number"
    elif isinstance(data_type, T.StringType | T.VarcharType | T.CharType):
        kind = "string"
    elif isinstance(data_type, T.DateType | T.TimestampType | T.TimestampNTZType):
        kind = "date"
    elif isinstance(data_type, T.BooleanType):
        kind = "boolean"
    return kind, data_type.simpleString()
