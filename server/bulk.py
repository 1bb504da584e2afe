"""Many new rows of one table in one go, cheaper than the unit of work or insertmanyvalues.

On PostgreSQL the rows travel by COPY, with ids drawn beforehand from the table's
sequence when the caller needs them: psycopg re-parses a multi-row `INSERT ... VALUES`
placeholder by placeholder on every call (its statement cache skips long statements),
which cost more than building the rows did (bench/CASES.md). Elsewhere (SQLite) one
executemany INSERT, with `RETURNING` ids in parameter order when asked.

Values go through each column's bind processor first, as SQLAlchemy would send them
(JSON columns become the driver's JSON wrapper, and so on). Nothing here fires ORM
events: the caller keeps its objects in step (`set_committed_value`).
"""

from __future__ import annotations

from sqlalchemy import Column, Table, func, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def insert_rows(
    session: Session, table: Table, columns: list[Column], rows: list[dict], *, ids: bool
) -> list[int] | None:
    """Insert `rows` (dicts keyed by column key) into `table`; their new ids, in order,
    when `ids` is true. Columns not named are left to the database's defaults."""
    if not rows:
        return [] if ids else None
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        statement = insert(table)
        if not ids:
            session.execute(statement, rows)
            return None
        returning = statement.returning(table.c.id, sort_by_parameter_order=True)
        return list(session.execute(returning, rows).scalars())
    new_ids = _next_ids(session, table, len(rows)) if ids else None
    if new_ids is not None:
        columns = [table.c.id, *columns]
        rows = [{**row, "id": new_id} for row, new_id in zip(rows, new_ids, strict=True)]
    _copy(connection, table, columns, rows)
    return new_ids


def _next_ids(session: Session, table: Table, count: int) -> list[int]:
    sequence = func.pg_get_serial_sequence(table.name, "id")
    return list(
        session.scalars(select(func.nextval(sequence)).select_from(func.generate_series(1, count)))
    )


def _copy(connection, table: Table, columns: list[Column], rows: list[dict]) -> None:
    dialect = connection.dialect
    processors = [column.type._cached_bind_processor(dialect) for column in columns]
    keys = [column.key for column in columns]
    names = ", ".join(dialect.identifier_preparer.quote(column.name) for column in columns)
    quoted_table = dialect.identifier_preparer.format_table(table)
    statement = f"COPY {quoted_table} ({names}) FROM STDIN"  # noqa: S608 - names from the schema
    cursor = connection.connection.driver_connection.cursor()
    dbapi_error = dialect.loaded_dbapi.Error
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [
                        value if process is None or value is None else process(value)
                        for process, value in zip(
                            processors, (row[key] for key in keys), strict=True
                        )
                    ]
                )
    except dbapi_error as error:
        # As SQLAlchemy would raise it (a lock timeout is an OperationalError, which the
        # batch job retries whole), not the driver's own class.
        raise DBAPIError.instance(statement, None, error, dbapi_error) from error
