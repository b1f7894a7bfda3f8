"""Rules as code: every tag as one YAML file, and applying a folder of them as a plan.

`export` writes `categories.yaml` and one `<name>.yaml` per tag (keys in reading order, so
files diff well in review). `plan` reads a folder and says what applying it would do: tags
created, changed (with the exact changes) and deleted (tags of the store that no file names).
`apply` carries the plan out in one transaction, each change a new version; any invalid file
refuses the whole folder with file, location and problem, and nothing changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from tagsys.errors import DefinitionError, UsageError
from tagsys.management.checks import check_unique_name, rule_problems
from tagsys.management.definition import Change, TagSpec, TagState, diff, readable_rule
from tagsys.management.manager import Actor, TagManager
from tagsys.store.db import transaction

CATEGORIES_FILE = "categories.yaml"
SUFFIXES = (".yaml", ".yml")


class TagFile(BaseModel):
    """One tag file. Without `id` the tag is found by name, or created."""

    model_config = ConfigDict(extra="forbid")

    id: int | None = Field(None, ge=1)
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    category: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    description: str | None = None
    active: bool = True
    rules: list[dict[str, Any]] = Field(default_factory=list)

    def spec(self) -> TagSpec:
        return TagSpec(self.name, self.category, self.description, self.active).changed(
            rules=self.rules
        )


class CategoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    description: str | None = None
    active: bool = True


# --- export ------------------------------------------------------------------------------


def dump(data: Any) -> str:
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))


def tag_document(state: TagState) -> dict[str, Any]:
    spec = state.spec
    return {
        "id": state.tag_id,
        "name": spec.name,
        "category": spec.category,
        "description": spec.description,
        "active": spec.active,
        "rules": [readable_rule(r) for r in spec.rules],
    }


def file_name(name: str, taken: set[str], tag_id: int) -> str:
    slug = re.sub(r"[^\w.-]+", "-", name.strip().lower()).strip("-.") or "tag"
    candidate = f"{slug}.yaml"
    if candidate in taken or candidate == CATEGORIES_FILE:
        candidate = f"{slug}-{tag_id}.yaml"
    taken.add(candidate)
    return candidate


def export(manager: TagManager, folder: Path) -> list[Path]:
    """Write the categories and every tag that is not deleted; tag files of tags that are
    gone (or renamed) are removed, so the folder mirrors the store."""
    try:
        return _export(manager, folder)
    except OSError as exc:
        raise UsageError(
            f"{folder}: cannot write the tag files there ({exc.strerror or exc}): give a "
            "folder you may write, or a new path"
        ) from exc


def _export(manager: TagManager, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    categories = [
        {"name": c["name"], "description": c["description"], "active": c["active"]}
        for c in sorted(manager.list_categories(), key=lambda c: c["name"])
    ]
    written = {folder / CATEGORIES_FILE: dump(categories)}
    taken: set[str] = set()
    for state in sorted(manager.list_tags(), key=lambda s: s.tag_id):
        written[folder / file_name(state.spec.name, taken, state.tag_id)] = dump(
            tag_document(state)
        )
    for stale in tag_files(folder):
        if stale not in written:
            stale.unlink()
    for path, text in written.items():
        path.write_text(text, encoding="utf-8")
    return sorted(written)


def tag_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.name != CATEGORIES_FILE)


# --- plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagChange:
    file: str | None
    tag_id: int | None
    name: str
    spec: TagSpec
    changes: tuple[Change, ...] = ()

    def view(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "tag_id": self.tag_id,
            "name": self.name,
            "changes": [c.view() for c in self.changes],
        }


@dataclass
class Plan:
    categories: list[CategoryFile] = field(default_factory=list)
    created: list[TagChange] = field(default_factory=list)
    changed: list[TagChange] = field(default_factory=list)
    deleted: list[TagChange] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.categories or self.created or self.changed or self.deleted)

    def view(self) -> dict[str, Any]:
        return {
            "categories_created": [c.name for c in self.categories],
            "created": [c.view() for c in self.created],
            "changed": [c.view() for c in self.changed],
            "deleted": [c.view() for c in self.deleted],
            "unchanged": self.unchanged,
        }

    def render(self) -> str:
        lines = [f"+ category '{c.name}'" for c in self.categories]
        for c in self.created:
            lines.append(f"+ tag '{c.name}' ({c.file}): {len(c.spec.rules)} rule(s)")
        for c in self.changed:
            lines.append(f"~ tag {c.tag_id} '{c.name}' ({c.file}):")
            lines.extend(f"    {change.render()}" for change in c.changes)
        for c in self.deleted:
            lines.append(f"- tag {c.tag_id} '{c.name}' (no file names it: soft-deleted)")
        lines.append(
            f"{len(self.created)} to create, {len(self.changed)} to change, "
            f"{len(self.deleted)} to delete, {self.unchanged} unchanged"
        )
        return "\n".join(lines)


@dataclass
class _Reading:
    problems: list[tuple[str, str]] = field(default_factory=list)

    def add(self, file: str, location: str, problem: str) -> None:
        self.problems.append((f"{file}: {location}", problem))


def plan(manager: TagManager, folder: Path) -> Plan:
    """What applying `folder` would do; DefinitionError lists every problem of every file."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder: export one with `tagsys tags export --dir`")
    reading = _Reading()
    categories = _read_categories(folder, reading)
    files = _read_tags(folder, reading)
    existing = {s.tag_id: s for s in manager.list_tags(include_deleted=True)}
    known = {c["name"] for c in manager.list_categories()}
    result = Plan(categories=[c for c in categories if c.name not in known])
    _check(manager, files, known | {c.name for c in categories}, existing, reading)
    if reading.problems:
        by_file = sorted(reading.problems, key=lambda p: p[0].split(": ", 1)[0])  # stable
        raise DefinitionError(
            f"{folder}: {len(by_file)} problem(s) in the tag files; nothing was applied",
            by_file,
        )
    _match(files, existing, result)
    return result


class _TextDates(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no stubs here
    """YAML without its timestamp type: an unquoted 2024-01-01 stays the text rules expect."""


_TextDates.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load(path: Path, reading: _Reading) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_TextDates)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        reading.add(path.name, "$", f"not readable YAML: {str(exc).splitlines()[0]}")
        return None


def _validated(model: type[BaseModel], data: Any, file: str, reading: _Reading, at: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            where = at + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
            reading.add(file, where.lstrip(".") or "$", error["msg"])
        return None


def _read_categories(folder: Path, reading: _Reading) -> list[CategoryFile]:
    path = folder / CATEGORIES_FILE
    if not path.exists():
        return []
    data = _load(path, reading)
    if not isinstance(data, list):
        if data is not None:
            reading.add(path.name, "$", "must be a list of categories (name, description)")
        return []
    found: dict[str, int] = {}
    categories = []
    for index, item in enumerate(data):
        category = _validated(CategoryFile, item, path.name, reading, f"[{index}]")
        if category is None:
            continue
        if category.name in found:
            where = f"[{index}].name"
            reading.add(path.name, where, f"'{category.name}' is also [{found[category.name]}]")
            continue
        found[category.name] = index
        categories.append(category)
    return categories


def _read_tags(folder: Path, reading: _Reading) -> dict[str, TagFile]:
    files: dict[str, TagFile] = {}
    for path in tag_files(folder):
        data = _load(path, reading)
        if data is None and path.read_bytes().strip() == b"":
            reading.add(path.name, "$", "the file is empty")
            continue
        if data is not None:
            tag = _validated(TagFile, data, path.name, reading, "")
            if tag is not None:
                files[path.name] = tag
    return files


def _check(
    manager: TagManager,
    files: Mapping[str, TagFile],
    categories: set[str],
    existing: Mapping[int, TagState],
    reading: _Reading,
) -> None:
    seen_ids: dict[int, str] = {}
    seen_names: dict[str, str] = {}
    schema = None
    for file, tag in files.items():
        if tag.id is not None:
            if tag.id in seen_ids:
                reading.add(file, "id", f"tag {tag.id} is also in {seen_ids[tag.id]}")
            elif tag.id not in existing:
                reading.add(file, "id", f"no tag {tag.id} in the store: remove `id` to create it")
            seen_ids[tag.id] = file
        if tag.name in seen_names:
            reading.add(
                file, "name", f"the name '{tag.name}' is also used in {seen_names[tag.name]}"
            )
        seen_names[tag.name] = file
        if tag.category not in categories:
            reading.add(
                file,
                "category",
                f"no category named '{tag.category}' (add it to {CATEGORIES_FILE})",
            )
        if tag.active and tag.rules:
            schema = schema or manager.schema()
            for where, what in rule_problems(tag.rules, schema):
                reading.add(file, where, what)


def _match(files: Mapping[str, TagFile], existing: Mapping[int, TagState], result: Plan) -> None:
    by_id = {tag.id for tag in files.values() if tag.id is not None}
    # A file without `id` takes the tag of its name unless another file names that tag by id
    # (and renames it): then the name is free, and the file's tag is a new one.
    by_name = {
        s.spec.name: s for s in existing.values() if not s.spec.deleted and s.tag_id not in by_id
    }
    claimed: set[int] = set()
    for file, tag in files.items():
        current = existing.get(tag.id) if tag.id is not None else by_name.get(tag.name)
        spec = tag.spec()
        if current is None:
            result.created.append(TagChange(file, None, tag.name, spec))
            continue
        claimed.add(current.tag_id)
        if spec.same_as(current.spec):
            result.unchanged += 1
            continue
        changes = diff(_document(current.spec), _document(spec))
        result.changed.append(TagChange(file, current.tag_id, tag.name, spec, tuple(changes)))
    for tag_id, state in sorted(existing.items()):
        if tag_id not in claimed and not state.spec.deleted:
            result.deleted.append(
                TagChange(None, tag_id, state.spec.name, state.spec.changed(deleted=True))
            )


def _document(spec: TagSpec) -> dict[str, Any]:
    data = spec.to_dict()
    if not spec.deleted:
        data.pop("deleted")
    return data


# --- apply -------------------------------------------------------------------------------


def apply(manager: TagManager, folder: Path, actor: Actor, dry_run: bool = False) -> Plan:
    """Plan, then (unless `dry_run`) carry the plan out in one transaction."""
    result = plan(manager, folder)
    if dry_run or result.empty:
        return result
    with transaction(manager.engine) as conn:
        for category in result.categories:
            manager.create_category_in(
                conn, actor, category.name, category.description, category.active
            )
        # Names are unique in the folder (`_check`); renames are checked once all are made,
        # so tags can swap names.
        for change in [*result.deleted, *result.changed]:
            assert change.tag_id is not None
            current = manager.read_in(conn, change.tag_id)
            manager.change_in(conn, actor, current, change.spec, check_name=False)
        for change in result.changed:
            check_unique_name(conn, change.spec, change.tag_id)
        for change in result.created:
            manager.create_tag_in(conn, actor, change.spec)
    return result
