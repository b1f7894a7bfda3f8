"""Tag management: categories, tags and rules changed safely. Every change of a tag is an
immutable version (who, when, why, the full definition) and an audit entry; edits are
optimistically locked; rules are validated against the lake before an active tag is saved;
unsaved rules can be previewed on Spark; and tags can be kept as files (rules as code).

Thin over `tagsys.store` (tables), `tagsys.rules` (validation) and `tagsys.engine` (frames);
the CLI and the REST service are thin over this package."""
