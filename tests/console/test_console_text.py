"""The console's text (no browser needed): both languages have every key, and every key a
page uses exists; the console's files are in the package data, so a wheel ships them."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "src" / "tagsys" / "service" / "ui"
SOURCES = sorted((UI / "js").rglob("*.js"))
_KEY = re.compile(r'^\s*"([^"]+)":', re.MULTILINE)
_USED = re.compile(r'(?<![\w.])t\("([^"]+)"')
_LISTED = re.compile(r'"((?:nav|tags|rules|runs|users|aud|common)\.[A-Za-z]+)"')
# Keys built at run time: t(`op.${operator}`) and the like.
DYNAMIC = {
    "op": ["=", "!=", ">", "<", ">=", "<=", "in", "not_in", "is_null", "is_not_null", "contains",
           "not_contains", "starts_with", "ends_with", "in_range", "not_in_range", "recent_days",
           "days_ago", "days_ago_between", "date_between"],
    "kind": ["number", "string", "date", "boolean"],
    "mode": ["task-all", "task-tags", "task-users", "incremental", "rollback"],
    "phase": ["plan", "compute", "write"],
    "status": ["submitted", "running", "completed", "failed", "cancelled", "abandoned"],
    "title": ["tags", "rules", "runs", "jobs", "users", "audiences", "login"],
    "builder.logic": ["AND", "OR", "NOT"],
    "aud.op": ["and", "or", "not"],
    "aud.word": ["and", "or", "not"],
}  # fmt: skip


def languages() -> dict[str, set[str]]:
    text = (UI / "js" / "messages.js").read_text(encoding="utf-8")
    english, chinese = text.split("const zh = {")
    return {"en": set(_KEY.findall(english)), "zh": set(_KEY.findall(chinese))}


def used_keys() -> set[str]:
    found = {f"{prefix}.{name}" for prefix, names in DYNAMIC.items() for name in names}
    for source in SOURCES:
        if source.name == "messages.js":
            continue
        text = source.read_text(encoding="utf-8")
        found |= set(_USED.findall(text)) | set(_LISTED.findall(text))
    return found


def test_both_languages_have_the_same_keys() -> None:
    found = languages()
    assert found["en"] - found["zh"] == set(), "missing in Chinese"
    assert found["zh"] - found["en"] == set(), "missing in English"


def test_every_key_the_pages_use_has_a_text() -> None:
    missing = used_keys() - languages()["en"]
    assert not missing, f"keys without a text: {sorted(missing)}"


def test_the_console_s_files_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["tagsys"]
    package = ROOT / "src" / "tagsys"
    for path in UI.rglob("*"):
        if path.is_file():
            relative = path.relative_to(package).as_posix()
            assert any(
                fnmatch(relative, p) and relative.count("/") == p.count("/") for p in patterns
            ), relative
