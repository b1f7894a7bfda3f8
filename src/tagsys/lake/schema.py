"""Lake schema as the rule language sees it: tables, columns, and their value kinds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from tagsys.errors import FieldError

ValueKind = Literal["number", "string", "date", "boolean"]
VALUE_KINDS: tuple[ValueKind, ...] = ("number", "string", "date", "boolean")


@dataclass(frozen=True)
class LakeColumn:
    """One column of one lake table.

    `kind` is the rule language's view of the column's type (None: not usable in rules).
    `data_type` is the engine's type name (a Spark simpleString such as `bigint`, `date`).
    """

    table: str
    name: str
    kind: ValueKind | None
    data_type: str

    @property
    def alias(self) -> str:
        """Name of this column in the engine's joined, one-row-per-user frame."""
        return f"{self.table}__{self.name}"

    @property
    def qualified(self) -> str:
        return f"{self.table}.{self.name}"


@dataclass(frozen=True)
class LakeSchema:
    """Columns of every lake table, keyed by table then column name."""

    tables: Mapping[str, Mapping[str, LakeColumn]]
    user_id_column: str = "user_id"
    _by_name: dict[str, list[LakeColumn]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, list[LakeColumn]] = {}
        for table in sorted(self.tables):
            for column in self.tables[table].values():
                if column.name != self.user_id_column:
                    by_name.setdefault(column.name, []).append(column)
        object.__setattr__(self, "_by_name", by_name)

    @classmethod
    def from_columns(
        cls, columns: Iterable[LakeColumn], user_id_column: str = "user_id"
    ) -> LakeSchema:
        tables: dict[str, dict[str, LakeColumn]] = {}
        for column in columns:
            tables.setdefault(column.table, {})[column.name] = column
        return cls(tables=tables, user_id_column=user_id_column)

    def resolve(self, field_name: str) -> LakeColumn:
        """Resolve `col` or `table.col` to exactly one column, or raise FieldError."""
        if "." in field_name:
            table, _, name = field_name.partition(".")
            if table not in self.tables:
                raise FieldError(
                    f"unknown table '{table}' in field '{field_name}'; "
                    f"tables: {', '.join(sorted(self.tables)) or '(none)'}"
                )
            if name not in self.tables[table]:
                raise FieldError(
                    f"table '{table}' has no column '{name}'; "
                    f"its columns: {', '.join(sorted(self.tables[table]))}"
                )
            return self.tables[table][name]
        matches = self._by_name.get(field_name, [])
        if not matches:
            raise FieldError(
                f"unknown field '{field_name}': no lake table has such a column; "
                f"known fields: {', '.join(sorted(self._by_name)) or '(none)'}"
            )
        if len(matches) > 1:
            choices = ", ".join(c.qualified for c in matches)
            raise FieldError(
                f"ambiguous field '{field_name}': it is in several tables; write one of {choices}"
            )
        return matches[0]
