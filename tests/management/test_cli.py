"""The CLI over tag management: preview a rule file, export and apply a folder of tags."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession

from tagsys.cli import main
from tagsys.management.definition import TagSpec
from tagsys.management.manager import TagManager
from tests.engine.lakes import AS_OF
from tests.management.conftest import ALICE
from tests.management.test_manager import BROKEN, NESTED
from tests.oracle import computed_tags


@pytest.fixture
def args(
    tmp_path: Path, lake: Path, monkeypatch: pytest.MonkeyPatch, spark: SparkSession
) -> list[str]:
    for name in list(os.environ):
        if name.startswith(("TAGSYS_", "MYSQL_")):
            monkeypatch.delenv(name)
    url = f"sqlite:///{tmp_path / 'tagsys.db'}"
    return ["--env", "local", "--db-url", url, "--lake-uri", str(lake)]


@pytest.fixture
def sqlite_manager(args: list[str], lake: Path) -> TagManager:
    from tagsys.lake.catalog import LakeCatalog
    from tagsys.store.db import create_store_engine
    from tagsys.store.migrate import upgrade

    upgrade(args[3])
    manager = TagManager(create_store_engine(args[3]), LakeCatalog(str(lake)).schema)
    manager.create_category(ALICE, "value")
    return manager


def test_preview_of_a_rule_file(args: list[str], tmp_path: Path, lake: Path, capsys) -> None:
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps(NESTED))
    as_of = ["--as-of", AS_OF.isoformat(), "--json"]
    assert main([*args, "--mode", "preview", "--rule-file", str(rule), *as_of]) == 0
    shown = json.loads(capsys.readouterr().out)
    expected = computed_tags(lake, {1: ("t", "c", [NESTED])}, AS_OF)
    assert shown["matched"] == sum(1 in tags for tags in expected.values())
    rule.write_text(json.dumps(json.dumps(NESTED)))  # a JSON text, as tag_rules holds it
    assert main([*args, "--mode", "preview", "--rule-file", str(rule), *as_of]) == 0
    assert json.loads(capsys.readouterr().out)["matched"] == shown["matched"]
    rule.write_text(json.dumps(BROKEN))
    assert main([*args, "--mode", "preview", "--rule-file", str(rule)]) == 1
    error = capsys.readouterr().err
    assert "rule.conditions[1].conditions[0].value" in error
    assert "rule.conditions[1].conditions[1].field" in error


def test_tags_export_then_apply(
    args: list[str], sqlite_manager: TagManager, tmp_path: Path, capsys
) -> None:
    sqlite_manager.create_tag(
        ALICE, TagSpec.from_dict({"name": "big", "category": "value", "rules": [NESTED]})
    )
    folder = str(tmp_path / "tags")
    (tmp_path / "a-file").write_text("")
    for unwritable in (tmp_path / "a-file", Path("/proc/tagsys-tags")):
        assert main(["tags", "export", "--dir", str(unwritable), *args]) == 1
        assert "cannot write the tag files there" in capsys.readouterr().err
    assert main(["tags", "export", "--dir", folder, *args]) == 0
    assert main(["tags", "apply", "--dir", folder, *args]) == 0
    assert "0 to create, 0 to change, 0 to delete, 1 unchanged" in capsys.readouterr().out
    path = tmp_path / "tags" / "big.yaml"
    data = yaml.safe_load(path.read_text())
    data["active"] = False
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["tags", "apply", "--dir", folder, "--comment", "pause", *args]) == 0
    out = capsys.readouterr().out
    assert "~ tag 1 'big' (big.yaml):\n    ~ active: true -> false" in out
    latest = sqlite_manager.versions(1)[-1]
    assert (latest.version, latest.comment, latest.action) == (2, "pause", "apply")
    assert latest.actor
