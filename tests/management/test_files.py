"""Rules as code: export, plan, apply, against a real store."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tagsys.errors import DefinitionError
from tagsys.management import files
from tagsys.management.definition import TagSpec
from tagsys.management.manager import TagManager
from tests.management.conftest import ALICE, BOB
from tests.management.test_manager import BROKEN, NESTED


@pytest.fixture
def exported(manager: TagManager, tmp_path: Path) -> Path:
    manager.create_tag(
        ALICE, TagSpec.from_dict({"name": "Big Spender", "category": "value", "rules": [NESTED]})
    )
    manager.create_tag(
        ALICE, TagSpec.from_dict({"name": "young", "category": "people", "rules": []})
    )
    folder = tmp_path / "tags"
    files.export(manager, folder)
    return folder


def test_export_writes_one_readable_file_per_tag(exported: Path) -> None:
    assert sorted(p.name for p in exported.iterdir()) == [
        "big-spender.yaml",
        "categories.yaml",
        "young.yaml",
    ]
    text = (exported / "big-spender.yaml").read_text()
    assert text.splitlines()[:5] == [
        "id: 1",
        "name: Big Spender",
        "category: value",
        "description: null",
        "active: true",
    ]
    assert (
        "- logic: AND\n  conditions:\n  - field: amount\n    operator: '>='\n    value: 1000"
        in text
    )


def test_export_then_apply_is_a_no_op(manager: TagManager, exported: Path) -> None:
    plan = files.apply(manager, exported, BOB)
    assert plan.empty and plan.unchanged == 2
    assert [v.version for v in manager.versions(1)] == [1]


def test_a_plan_shows_the_exact_diff_and_apply_makes_versions(
    manager: TagManager, exported: Path
) -> None:
    path = exported / "big-spender.yaml"
    data = yaml.safe_load(path.read_text())
    data["rules"][0]["conditions"][0]["value"] = 2500
    data["description"] = "spends"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    (exported / "young.yaml").unlink()
    (exported / "new.yaml").write_text("name: fresh\ncategory: people\nrules: []\n")
    plan = files.apply(manager, exported, BOB, dry_run=True)
    assert [c.render() for c in plan.changed[0].changes] == [
        '~ description: null -> "spends"',
        "~ rules[0].conditions[0].value: 1000 -> 2500",
    ]
    assert [(c.tag_id, c.name) for c in plan.deleted] == [(2, "young")]
    assert [c.name for c in plan.created] == ["fresh"]
    assert manager.get_tag(1).version == 1  # a dry run changes nothing
    files.apply(manager, exported, BOB)
    assert manager.get_tag(1).spec.description == "spends"
    assert manager.get_tag(2).spec.deleted
    assert [t.spec.name for t in manager.list_tags()] == ["Big Spender", "fresh"]
    assert files.apply(manager, exported, BOB).empty


def test_a_broken_file_refuses_the_whole_folder(manager: TagManager, exported: Path) -> None:
    (exported / "young.yaml").write_text(
        yaml.safe_dump({"name": "young", "category": "people", "rules": [BROKEN], "colour": 1})
    )
    (exported / "bad.yaml").write_text("name: [unclosed\n")
    (exported / "new.yaml").write_text("name: fresh\ncategory: nowhere\n")
    with pytest.raises(DefinitionError) as caught:
        files.apply(manager, exported, BOB)
    assert caught.value.problems[0][0] == "bad.yaml: $"
    assert [where for where, _ in caught.value.problems[1:]] == [
        "new.yaml: category",
        "young.yaml: colour",
    ]
    (exported / "young.yaml").write_text(
        yaml.safe_dump({"name": "young", "category": "people", "rules": [BROKEN]})
    )
    (exported / "bad.yaml").unlink()
    (exported / "new.yaml").unlink()
    (exported / "big-spender.yaml").write_text("name: renamed\ncategory: value\nid: 1\n")
    with pytest.raises(DefinitionError) as caught:
        files.apply(manager, exported, BOB)
    assert [where for where, _ in caught.value.problems] == [
        "young.yaml: rules[0].conditions[1].conditions[0].value",
        "young.yaml: rules[0].conditions[1].conditions[1].field",
    ]
    assert manager.get_tag(1).spec.name == "Big Spender"  # nothing was applied
    assert [len(manager.versions(t)) for t in (1, 2)] == [1, 1]


def test_a_file_without_id_takes_the_name_another_file_renames_away(
    manager: TagManager, exported: Path
) -> None:
    """The name belongs to the tag a file names by id: the file without id is a new tag,
    and a second apply finds nothing to do."""
    path = exported / "big-spender.yaml"
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**data, "name": "Whale"}, sort_keys=False))
    (exported / "again.yaml").write_text("name: Big Spender\ncategory: value\nrules: []\n")
    plan = files.apply(manager, exported, BOB)
    assert [(c.tag_id, c.name) for c in plan.changed] == [(1, "Whale")]
    assert [c.name for c in plan.created] == ["Big Spender"]
    names = {t.tag_id: t.spec.name for t in manager.list_tags()}
    assert names == {1: "Whale", 2: "young", 3: "Big Spender"}
    assert files.apply(manager, exported, BOB).empty


def test_two_tags_can_swap_names_and_a_category_is_listed_once(
    manager: TagManager, exported: Path
) -> None:
    for file, name in (("big-spender.yaml", "young"), ("young.yaml", "Big Spender")):
        data = yaml.safe_load((exported / file).read_text())
        (exported / file).write_text(yaml.safe_dump({**data, "name": name}, sort_keys=False))
    plan = files.apply(manager, exported, BOB)
    assert sorted(c.tag_id for c in plan.changed) == [1, 2]
    assert {t.tag_id: t.spec.name for t in manager.list_tags()} == {1: "young", 2: "Big Spender"}
    categories = exported / "categories.yaml"
    listed = yaml.safe_load(categories.read_text())
    categories.write_text(yaml.safe_dump([*listed, {"name": "fresh"}, {"name": "fresh"}]))
    with pytest.raises(DefinitionError) as caught:
        files.apply(manager, exported, BOB, dry_run=True)
    assert caught.value.problems == [
        (f"categories.yaml: [{len(listed) + 1}].name", "'fresh' is also [2]")
    ]


def test_an_unquoted_date_is_the_text_a_rule_needs(manager: TagManager, exported: Path) -> None:
    (exported / "recent.yaml").write_text(
        "name: recent\ncategory: people\nactive: false\nrules:\n- logic: AND\n  conditions:\n"
        "  - field: joined\n    operator: '>='\n    value: 2025-01-01\n"
    )
    files.apply(manager, exported, BOB)
    recent = next(t for t in manager.list_tags() if t.spec.name == "recent")
    assert recent.spec.rules[0]["conditions"][0]["value"] == "2025-01-01"
