"""Policy files are refused whole, with every problem located by file, line and field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from registry.policy_files.conditions import judgement_problem
from registry.policy_files.integrity import check_policy_set
from registry.policy_files.loader import PolicyFilesInvalid, parse_yaml, read_policy_dir
from registry.policy_files.models import Document
from registry.policy_files.schema import schema_documents

POLICIES = Path(__file__).resolve().parents[4] / "policies"

VALID = """\
id: test-doc
doc_no: 测试〔2020〕1号
title: 测试文件
issuer: 测试机关
level: city
jurisdiction: ["510500"]
effective_from: 2020-01-01
source: {title: 测试来源}
clauses:
  - id: invention
    ref: （一）
    matter: patent.invention.granted
    beneficiaries: [enterprise]
    amount: {kind: per_unit, rate: 3000, unit: 件}
    quote: 对新授权的发明专利每件资助 3000 元
"""


def test_the_repository_policy_files_are_valid() -> None:
    policy_set = read_policy_dir(POLICIES)
    errors = [p for p in check_policy_set(policy_set) if p.severity == "error"]
    assert errors == []


def test_the_json_schemas_are_generated_from_the_models() -> None:
    for name, schema in schema_documents().items():
        on_disk = json.loads((POLICIES / name).read_text(encoding="utf-8"))
        assert on_disk == schema, f"{name} is stale: run `make schema`"


def test_a_valid_document_parses() -> None:
    document, problems = parse_yaml(VALID, Document, "test.yaml")
    assert problems == []
    assert document is not None
    assert str(document.clauses[0].amount.rate) == "3000"


def test_every_problem_is_listed_with_its_line() -> None:
    broken = (
        VALID.replace("level: city", "level: town")
        .replace("rate: 3000", "rate: -5")
        .replace("effective_from: 2020-01-01", "effective_from: 2020-02-30")
    )
    document, problems = parse_yaml(broken, Document, "broken.yaml")
    assert document is None
    found = {(p.field, p.line) for p in problems}
    assert ("level", 5) in found
    assert ("effective_from", 7) in found
    assert ("clauses[0].amount.rate", 14) in found


def test_unknown_fields_are_refused() -> None:
    _, problems = parse_yaml(VALID + "colour: blue\n", Document, "x.yaml")
    assert [(p.field, p.message) for p in problems] == [
        ("colour", "Extra inputs are not permitted")
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("amount: {kind: range, min: 500, max: 100}", "clauses[0].amount"),
        (
            "amount: {kind: tiered, attribute: sales_yuan, tiers: "
            "[{at_least: 50, amount: {kind: fixed, value: 2}}, "
            "{at_least: 20, amount: {kind: fixed, value: 1}}]}",
            "clauses[0].amount",
        ),
    ],
)
def test_inconsistent_amounts_are_refused(change: str, field: str) -> None:
    text = VALID.replace("amount: {kind: per_unit, rate: 3000, unit: 件}", change)
    _, problems = parse_yaml(text, Document, "x.yaml")
    assert [p.field for p in problems] == [field]


@pytest.mark.parametrize(
    ("caps", "refused"),
    [
        ("{cumulative: 100000, cumulative_key: lead}", False),
        ("{per_applicant_year: 1000000, cumulative_key: contract-reward}", False),
        ("{per_event: 1000, cumulative_key: lead}", True),
    ],
)
def test_a_cap_key_shares_a_running_cap(caps: str, refused: bool) -> None:
    """Clauses share a cumulative or a yearly cap under one key; a key with neither is refused."""
    text = VALID.replace("    quote: 对新授权", f"    caps: {caps}\n    quote: 对新授权")
    _, problems = parse_yaml(text, Document, "x.yaml")
    assert [p.field for p in problems] == (["clauses[0].caps"] if refused else [])


def test_cross_file_problems_are_all_reported(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    text = (
        VALID.replace('jurisdiction: ["510500"]', 'jurisdiction: ["999999"]')
        .replace("matter: patent.invention.granted", "matter: patent.unknown.kind")
        .replace("    quote:", "    condition: \"event.colour == 'red'\"\n    quote:")
    )
    (root / "documents" / "test-doc.yaml").write_text(text, encoding="utf-8")
    messages = {(p.field, p.message) for p in check_policy_set(read_policy_dir(root))}
    assert ("jurisdiction[0]", "unknown region '999999'") in messages
    assert ("clauses[0].matter", "unknown matter 'patent.unknown.kind'") in messages


def test_condition_reading_undeclared_attribute_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    text = VALID.replace("    quote:", "    condition: \"event.colour == 'red'\"\n    quote:")
    (root / "documents" / "test-doc.yaml").write_text(text, encoding="utf-8")
    problems = check_policy_set(read_policy_dir(root))
    assert [(p.field, p.message) for p in problems if p.severity == "error"] == [
        ("clauses[0].condition", "event.colour is not an attribute of the matter")
    ]


@pytest.mark.parametrize(
    ("condition", "refused"),
    [
        ("1 + 2", "gives 3"),
        ("1 / 0 == 1", "cannot be judged"),
        ("applicant.major_incident_years > 1", "cannot be judged"),
        ("event.quantity * 1.5 > 2.0", "cannot be judged"),
        ("event.subject", "not true or false"),
        ("event.year in applicant.major_incident_years", None),
        ("double(event.quantity) * 1.5 > 2.0", None),
    ],
)
def test_a_condition_is_tried_on_values_of_the_declared_types(
    tmp_path: Path, condition: str, refused: str | None
) -> None:
    """A condition that parsed but failed on every event, blaming the client's request, made
    every calculation of its matter a 422 wherever its document applied."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    text = VALID.replace("    quote:", f"    condition: {condition!r}\n    quote:")
    (root / "documents" / "test-doc.yaml").write_text(text, encoding="utf-8")
    problems = [p for p in check_policy_set(read_policy_dir(root)) if p.severity == "error"]
    if refused is None:
        assert problems == []
    else:
        ((field, message),) = [(p.field, p.message) for p in problems]
        assert (field, refused in message) == ("clauses[0].condition", True), message


MONEY = ("money", ())


@pytest.mark.parametrize(
    ("condition", "attributes", "refused"),
    [
        ("event.a + event.b > 100", {("event", "a"): MONEY, ("event", "b"): MONEY}, True),
        ("event.a + event.b > 100.0", {("event", "a"): MONEY, ("event", "b"): MONEY}, True),
        (
            "double(event.a) + double(event.b) > 1.0",
            {("event", "a"): MONEY, ("event", "b"): MONEY},
            False,
        ),
        ("int(event.code) > 2000", {("event", "code"): ("string", ())}, False),
        (
            "applicant.level == 'A'",
            {("event", "level"): ("enum", ("X",)), ("applicant", "level"): ("enum", ("A", "B"))},
            False,
        ),
    ],
)
def test_every_mix_of_the_values_read_is_tried(
    condition: str, attributes: dict[tuple[str, str], tuple[str, tuple[str, ...]]], refused: bool
) -> None:
    """Two amounts were tried both whole or both with fen, never one of each."""
    assert (judgement_problem(condition, "m", attributes) is not None) == refused


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("    caps: {per_event: 0}\n    quote:", "clauses[0].caps"),
        ("    caps: {cumulative: '0.00'}\n    quote:", "clauses[0].caps"),
    ],
)
def test_a_cap_of_zero_is_refused(tmp_path: Path, change: str, field: str) -> None:
    """A zero was taken for no cap at all, and the clause then paid "eligible 0.00"."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    (root / "documents" / "test-doc.yaml").write_text(VALID.replace("    quote:", change), "utf-8")
    problems = [p for p in check_policy_set(read_policy_dir(root)) if p.severity == "error"]
    assert [(p.field, "pays nothing" in p.message) for p in problems] == [(field, True)]


def test_an_amount_is_reckoned_from_a_number_only(tmp_path: Path) -> None:
    """An amount read off a text paid its digits, or asked for an attribute already sent."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    text = VALID.replace("unit: 件}", "unit: 件, units_from: major_incident_years}")
    (root / "documents" / "test-doc.yaml").write_text(text, "utf-8")
    problems = [p for p in check_policy_set(read_policy_dir(root)) if p.severity == "error"]
    assert [(p.field, p.message) for p in problems] == [
        (
            "clauses[0].amount.units_from",
            "'major_incident_years' is of type integer_list: an amount is reckoned from a number",
        )
    ]


def test_running_caps_are_refused_on_a_matter_settled_cumulatively(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    matters = (root / "matters.yaml").read_text("utf-8")
    matters = matters.replace(
        "  subject: patent number\n", "  subject: patent number\n  strategy: {kind: cumulative}\n"
    )
    (root / "matters.yaml").write_text(matters, "utf-8")
    text = VALID.replace(
        "    quote: 对新授权", "    caps: {cumulative: 100000}\n    quote: 对新授权"
    )
    (root / "documents" / "test-doc.yaml").write_text(text, encoding="utf-8")
    problems = check_policy_set(read_policy_dir(root))
    assert [p.field for p in problems if p.severity == "error"] == ["clauses[0].caps"]
    (root / "documents" / "test-doc.yaml").write_text(VALID, encoding="utf-8")
    assert [p for p in check_policy_set(read_policy_dir(root)) if p.severity == "error"] == []


def test_a_broken_file_refuses_the_whole_set(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    (root / "documents" / "good.yaml").write_text(VALID.replace("test-doc", "good"), "utf-8")
    (root / "documents" / "bad.yaml").write_text("id: [unclosed\n", "utf-8")
    with pytest.raises(PolicyFilesInvalid) as caught:
        read_policy_dir(root)
    assert [p.file for p in caught.value.problems] == ["documents/bad.yaml"]
    assert caught.value.problems[0].line == 2  # where the parser found the sequence unclosed


@pytest.mark.parametrize(
    ("start", "message"),
    [("2021-06-01", "overlaps old-doc"), ("2021-09-01", "leaves a gap after old-doc")],
)
def test_succession_gaps_and_overlaps_are_reported(
    tmp_path: Path, start: str, message: str
) -> None:
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    old = VALID.replace("test-doc", "old-doc").replace(
        "effective_from: 2020-01-01", "effective_from: 2020-01-01\neffective_to: 2021-06-30"
    )
    new = VALID.replace("test-doc", "new-doc").replace("2020-01-01", start) + (
        "supersedes:\n  - document: old-doc\n"
    )
    (root / "documents" / "old-doc.yaml").write_text(old, "utf-8")
    (root / "documents" / "new-doc.yaml").write_text(new, "utf-8")
    warnings = [p for p in check_policy_set(read_policy_dir(root)) if p.field == "supersedes[0]"]
    assert len(warnings) == 1
    assert warnings[0].severity == "warning"
    assert message in warnings[0].message


@pytest.mark.parametrize(
    ("caps", "condition", "message"),
    [
        ("{cumulative: 20000000, per: achievement}", "event.achievement != ''", None),
        (
            "{cumulative: 20000000, per: colour}",
            "event.achievement != ''",
            "matter tech_achievement.sales has no event attribute 'colour'",
        ),
        (
            "{cumulative: 20000000, per: sales_yuan}",
            "event.sales_yuan > 0",
            "'sales_yuan' is a money: caps are divided by a name or number",
        ),
        (
            "{cumulative: 20000000, per: achievement}",
            "event.year_index <= 3",
            "the condition must read event.achievement: an event without it is then asked for"
            " it, where it would count under the applicant's whole cap",
        ),
    ],
)
def test_a_cap_per_project_names_an_attribute_the_condition_asks_for(
    tmp_path: Path, caps: str, condition: str, message: str | None
) -> None:
    """按该成果……累计最高2000万元: the cap counts per achievement, named by an event attribute."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    text = (
        VALID.replace("matter: patent.invention.granted", "matter: tech_achievement.sales")
        .replace(
            "amount: {kind: per_unit, rate: 3000, unit: 件}",
            "amount: {kind: percentage, rate: 0.01, base: sales_yuan}",
        )
        .replace("    quote:", f'    condition: "{condition}"\n    caps: {caps}\n    quote:')
    )
    (root / "documents" / "test-doc.yaml").write_text(text, encoding="utf-8")
    problems = check_policy_set(read_policy_dir(root))
    found = [(p.field, p.message) for p in problems if p.severity == "error"]
    assert found == ([] if message is None else [("clauses[0].caps.per", message)])


def test_a_cap_per_project_needs_a_running_cap() -> None:
    text = VALID.replace(
        "    quote: 对新授权", "    caps: {per_event: 1000, per: lot}\n    quote: 对新授权"
    )
    _, problems = parse_yaml(text, Document, "x.yaml")
    assert [p.field for p in problems] == ["clauses[0].caps"]


@pytest.mark.parametrize(("clause_id", "refused"), [("c" * 39, False), ("c" * 40, True)])
def test_a_caps_key_fits_the_ledger(tmp_path: Path, clause_id: str, refused: bool) -> None:
    """The ledger keeps a cap's key (document id, clause id) in 120 characters: a longer one
    had been accepted here and refused by the ledger's database at the first claim."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    document_id = "d" * 80
    text = (
        VALID.replace("id: test-doc", f"id: {document_id}")
        .replace("  - id: invention", f"  - id: {clause_id}")
        .replace("    quote: 对新授权", "    caps: {cumulative: 100000}\n    quote: 对新授权")
    )
    (root / "documents" / f"{document_id}.yaml").write_text(text, encoding="utf-8")
    problems = [p for p in check_policy_set(read_policy_dir(root)) if p.severity == "error"]
    assert [p.field for p in problems] == (["clauses[0].caps"] if refused else [])


def test_clauses_sharing_a_cap_divide_it_alike(tmp_path: Path) -> None:
    """One clause counting a shared cap per achievement and another counting it whole would
    each see only part of what was paid under it."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    clause = (
        "  - id: {id}\n    ref: （一）\n    matter: tech_achievement.sales\n"
        "    beneficiaries: [enterprise]\n    condition: \"event.achievement != ''\"\n"
        "    amount: {{kind: percentage, rate: 0.01, base: sales_yuan}}\n"
        "    caps: {{cumulative: 100000, cumulative_key: shared{per}}}\n"
        "    quote: 对新授权的发明专利每件资助 3000 元\n"
    )
    head = VALID.split("clauses:\n")[0] + "clauses:\n"
    text = head + clause.format(id="aa", per=", per: achievement") + clause.format(id="bb", per="")
    (root / "documents" / "test-doc.yaml").write_text(text, encoding="utf-8")
    problems = [p for p in check_policy_set(read_policy_dir(root)) if p.severity == "error"]
    assert [(p.field, p.message) for p in problems] == [
        (
            "clauses[1].caps.per",
            "clauses sharing the cap 'shared' must divide it alike: one divides it by"
            " 'achievement', this one by None",
        )
    ]


def test_two_documents_naming_one_cap_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    for number, document_id in enumerate(("doc-one", "doc-two"), start=1):
        text = (
            VALID.replace("id: test-doc", f"id: {document_id}")
            .replace("doc_no: 测试〔2020〕1号", f"doc_no: 测试〔2021〕{number}号")
            .replace(
                "    quote: 对新授权",
                "    caps: {cumulative: 100000, cumulative_key: lead}\n    quote: 对新授权",
            )
        )
        (root / "documents" / f"{document_id}.yaml").write_text(text, encoding="utf-8")
    problems = [p for p in check_policy_set(read_policy_dir(root)) if p.severity == "error"]
    assert sorted((p.file.rsplit("/", 1)[-1], p.message) for p in problems) == [
        (f"{mine}.yaml", f"'lead' is already a cap of {other}: a cap is shared by clauses of one"
         " document; name this one differently")
        for mine, other in (("doc-one", "doc-two"), ("doc-two", "doc-one"))
    ]  # fmt: skip


def test_two_files_with_one_doc_no_are_refused(tmp_path: Path) -> None:
    """One document recorded under two ids would be paid from twice, however its 文号 is typed."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root, ignore=shutil.ignore_patterns("documents"))
    (root / "documents").mkdir()
    for document_id, doc_no in (
        ("doc-one", "测试〔2020〕1号"),
        ("doc-two", "测试﹝２０２０﹞第1号"),
    ):
        text = VALID.replace("id: test-doc", f"id: {document_id}")
        text = text.replace("doc_no: 测试〔2020〕1号", f"doc_no: {doc_no}")
        (root / "documents" / f"{document_id}.yaml").write_text(text, encoding="utf-8")
    problems = [p for p in check_policy_set(read_policy_dir(root)) if p.severity == "error"]
    assert [(p.file.rsplit("/", 1)[-1], p.field, p.message) for p in problems] == [
        ("doc-two.yaml", "doc_no", "文号 already used by documents/doc-one.yaml")
    ]
