"""A schema as numbered migrations with their own version table.

The version table holds one row per applied migration. Opening a database applies every
migration newer than its latest row, each in its own transaction with its row, so an older
database is brought up to date and a failed migration leaves it at the version before. A
migration is never edited once released: a change is a new, higher-numbered one. Several
schemas can share one database when their tables and version tables are named apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agogosml.errors import AgogosmlError

AUTO_ID = {
    "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "postgres": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
}
"""`{id}` in a statement: each backend's auto-increment primary key."""


class SchemaTooNewError(AgogosmlError):
    """The database was migrated by newer code than this."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


@dataclass(frozen=True)
class Schema:
    owner: str
    """What the schema belongs to, for messages ("the event store")."""
    version_table: str
    migrations: tuple[Migration, ...]
    placeholders: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """`{name}` in a statement -> its text per dialect (beyond `{id}`)."""

    @property
    def current(self) -> int:
        return self.migrations[-1].version

    def version_table_ddl(self) -> str:
        return (f"CREATE TABLE IF NOT EXISTS {self.version_table} ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at_ms BIGINT NOT NULL)")

    def statements(self, migration: Migration, dialect: str) -> list[str]:
        texts = {"{id}": AUTO_ID[dialect],
                 **{f"{{{name}}}": per[dialect] for name, per in self.placeholders.items()}}
        out = []
        for statement in migration.statements:
            for placeholder, text in texts.items():
                statement = statement.replace(placeholder, text)
            out.append(statement)
        return out
