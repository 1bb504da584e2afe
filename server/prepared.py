"""INSERTs compiled once per dialect and run on the driver's cursor: receiving's hot path.

SQLAlchemy's execute (cache key, compiled-cache lookup, parameter and result set-up) cost
more per statement than SQLite's INSERT itself, and a submission runs three
(bench/README.md). A `PreparedInsert` is compiled by SQLAlchemy once per dialect, then runs
on the session's own connection, in its transaction: the caller commits through the session
as always. Values go through each column's bind processor, as SQLAlchemy would send them;
a driver error is raised as SQLAlchemy's (IntegrityError, OperationalError: the view's retry
and the 503 handler see them). Nothing here fires ORM events or fills Python-side column
defaults: every column the statement names needs a value in each row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: Bind names in the order the driver wants them (positional paramstyles), else None.
    order: tuple[str, ...] | None
    processors: dict[str, Callable | None]


class PreparedInsert:
    """`build(dialect_name)` makes the statement; `keys` are the columns every row gives."""

    def __init__(self, build: Callable[[str], Insert], keys: Sequence[str]):
        self._build = build
        self.keys = tuple(keys)
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            statement = self._build(dialect.name)
            sql = statement.compile(dialect=dialect, column_keys=list(self.keys))
            if set(sql.binds) != set(self.keys):
                # A column with a Python-side default was added, or a key is not a column.
                raise ValueError(f"{statement.table.name}: binds {sorted(sql.binds)}")
            columns = statement.table.c
            compiled = _Compiled(
                sql=sql.string,
                order=tuple(sql.positiontup) if sql.positional else None,
                processors={
                    key: columns[key].type._cached_bind_processor(dialect) for key in self.keys
                },
            )
            self._compiled[dialect.name] = compiled
        return compiled

    def _parameters(self, compiled: _Compiled, row: dict) -> tuple | dict:
        values = {}
        for key, process in compiled.processors.items():
            value = row[key]
            values[key] = value if process is None or value is None else process(value)
        if compiled.order is None:
            return values
        return tuple(values[key] for key in compiled.order)

    def execute(self, session: Session, row: dict) -> tuple | None:
        """Insert one row; the first row the statement returns (RETURNING), if any."""
        return self._run(session, [row], many=False)

    def executemany(self, session: Session, rows: list[dict]) -> None:
        if rows:
            self._run(session, rows, many=True)

    def _run(self, session: Session, rows: list[dict], *, many: bool) -> tuple | None:
        connection = session.connection()
        dialect = connection.dialect
        compiled = self._for(dialect)
        parameters = [self._parameters(compiled, row) for row in rows]
        cursor = connection.connection.driver_connection.cursor()
        dbapi_error = dialect.loaded_dbapi.Error
        try:
            if many:
                cursor.executemany(compiled.sql, parameters)
                return None
            cursor.execute(compiled.sql, parameters[0])
            returned = cursor.fetchall() if cursor.description else []
            return tuple(returned[0]) if returned else None
        except dbapi_error as error:
            raise DBAPIError.instance(
                compiled.sql, None, error, dbapi_error, hide_parameters=True, dialect=dialect
            ) from error
        finally:
            cursor.close()
