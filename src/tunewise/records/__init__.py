"""Typed, versioned records: what tunewise writes to the store's JSON columns and reads back.

Every JSON column holds one record: the evaluation's results (`records.evaluation`), an audit's
summary (`records.audit`), a decision (`records.decision`). Each record type carries `kind` and
`schema_version`; readers call `Model.from_store(value)` and get the type or a clear error, so no
reader guesses at shapes. When a record's shape changes, bump `SCHEMA_VERSION` and teach
`upgrade` to lift the older version, so stores written by earlier releases keep opening.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from tunewise.errors import StoreError

__all__ = ["Record"]


class Record(BaseModel):
    """Base of every stored record. Subclasses set KIND and SCHEMA_VERSION."""

    model_config = ConfigDict(extra="forbid")

    KIND: ClassVar[str] = "record"
    SCHEMA_VERSION: ClassVar[int] = 1

    kind: str = ""
    schema_version: int = 0

    def model_post_init(self, __context: Any) -> None:
        self.kind = self.KIND
        self.schema_version = self.SCHEMA_VERSION

    @classmethod
    def upgrade(cls, value: dict[str, Any], version: int) -> dict[str, Any]:
        """Lift a stored dict of an older `version` to the current shape.

        Version 0 is what tunewise wrote before records were typed: version 1 of each record models
        exactly those shapes, so they read as they are (a subclass whose shape moved overrides this).
        """
        if version == 0:
            return value
        raise StoreError(f"{cls.KIND} record of schema version {version} is older than this tunewise can read (it reads {cls.SCHEMA_VERSION})")

    @classmethod
    def from_store(cls, value: dict[str, Any] | None, *, where: str = "store"):
        """Validate a stored JSON value; an unknown or malformed shape is a StoreError naming `where`."""
        if not isinstance(value, dict):
            raise StoreError(f"{where}: no {cls.KIND} record (found {type(value).__name__})")
        version = value.get("schema_version", 0)  # 0: written before records were typed
        if not isinstance(version, int):
            raise StoreError(f"{where}: {cls.KIND} record has a schema_version that is not a number ({version!r})")
        if version > cls.SCHEMA_VERSION:
            raise StoreError(f"{where}: {cls.KIND} record of schema version {version} is newer than this tunewise ({cls.SCHEMA_VERSION}); upgrade tunewise")
        if version < cls.SCHEMA_VERSION:
            value = cls.upgrade({k: v for k, v in value.items() if k not in ("kind", "schema_version")}, version)
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            older = " (written by an earlier tunewise in a shape this one cannot read; rerun the command that made it)" if version < cls.SCHEMA_VERSION else ""
            raise StoreError(f"{where}: {cls.KIND} record is malformed at {field}: {first['msg']}{older}") from exc

    def to_store(self) -> dict[str, Any]:
        """The JSON value to write to the store."""
        return self.model_dump(mode="json")
