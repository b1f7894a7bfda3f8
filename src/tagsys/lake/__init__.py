"""The data lake: table discovery, schemas, field resolution and reading."""
