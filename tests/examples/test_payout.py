"""The payout example's reading of a clerk's spreadsheet, without a running system: encodings,
missing columns and cells, one request per run of an applicant's rows."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType

import pytest
from testkit import script

ROOT = Path(__file__).resolve().parents[2]
HEADER = "applicant_id,kind,name,region,matter,date,subject,quantity,attributes\n"
ROW = "91510500MA62B8XY4F,enterprise,泸州示例科技有限公司,510502,patent.invention.granted,2016-05-10,{subject},1,{{}}\n"


@pytest.fixture(scope="module")
def payout() -> ModuleType:
    return script(ROOT / "examples" / "payout.py", "payout")


def test_a_utf8_file_with_its_byte_order_mark(payout: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(HEADER + ROW.format(subject="ZL1") + ROW.format(subject="ZL2"), "utf-8-sig")
    assert payout.survey(path) == ("utf-8-sig", 1)
    (case,) = payout.read_cases(path, "utf-8-sig")
    assert case["applicant"]["name"] == "泸州示例科技有限公司"
    assert [e["subject"] for e in case["events"]] == ["ZL1", "ZL2"]


def test_a_gbk_file_as_excel_saves_it(payout: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes((HEADER + ROW.format(subject="ZL1")).encode("gbk"))
    encoding, applicants = payout.survey(path)
    assert (encoding, applicants) == ("gb18030", 1)
    (case,) = payout.read_cases(path, encoding)
    assert case["applicant"]["name"] == "泸州示例科技有限公司"


def test_a_missing_column_is_named_before_anything_is_sent(
    payout: ModuleType, tmp_path: Path
) -> None:
    path = tmp_path / "events.csv"
    path.write_text("applicant_id,kind,name,matter,date\n", "utf-8")
    with pytest.raises(payout.BadFile, match="no column region, subject"):
        payout.survey(path)


def test_an_applicant_whose_rows_come_apart_is_refused_before_anything_is_sent(
    payout: ModuleType, tmp_path: Path
) -> None:
    """A file sorted by date: each run of one applicant's rows would be calculated alone, and
    the same events paid once per run."""
    other = ROW.replace("91510500MA62B8XY4F", "91510502MA62B8XY5F")
    path = tmp_path / "events.csv"
    path.write_text(
        HEADER
        + ROW.format(subject="ZL1")
        + other.format(subject="ZL9")
        + ROW.format(subject="ZL1"),
        "utf-8",
    )
    with pytest.raises(payout.BadFile, match="91510500MA62B8XY4F are not all next to each other"):
        payout.survey(path)


def test_one_id_typed_two_ways_is_one_applicant(payout: ModuleType, tmp_path: Path) -> None:
    """The service reads `91510500ma62b8xy4f` and its full-width form as one enterprise: rows
    grouped apart by their spelling would each be calculated alone, and one patent paid twice."""
    lower = ROW.replace("91510500MA62B8XY4F", "91510500ma62b8xy4f")
    wide = ROW.replace("91510500MA62B8XY4F", "９１５１０５００ＭＡ６２Ｂ８ＸＹ４Ｆ")
    spaced = ROW.replace("91510500MA62B8XY4F", "9151 0500 MA62​B8XY4F")
    path = tmp_path / "events.csv"
    path.write_text(
        HEADER + ROW.format(subject="ZL1") + lower.format(subject="ZL1")
        + wide.format(subject="ZL2") + spaced.format(subject="ZL3"),
        "utf-8",
    )  # fmt: skip
    encoding, applicants = payout.survey(path)
    assert applicants == 1
    (case,) = payout.read_cases(path, encoding)
    assert case["applicant"]["id"] == "91510500MA62B8XY4F"
    assert [e["subject"] for e in case["events"]] == ["ZL1", "ZL1", "ZL2", "ZL3"]
    answer = {"results": [{"status": "granted", "amount": "3000.00"}] * 4}
    assert {row["applicant_id"] for row in payout.payout_rows(case, answer)} == {
        "91510500MA62B8XY4F"
    }
    path.write_text(
        HEADER + ROW.format(subject="ZL1")
        + ROW.replace("91510500MA62B8XY4F", "91510502MA62B8XY5F").format(subject="ZL9")
        + lower.format(subject="ZL1"),
        "utf-8",
    )  # fmt: skip
    with pytest.raises(payout.BadFile, match="not all next to each other"):
        payout.survey(path)


@pytest.mark.parametrize(
    ("column", "other"), [("region", "510521"), ("kind", "individual"), ("region", "")]
)
def test_rows_of_one_applicant_that_disagree_are_refused_before_anything_is_sent(
    payout: ModuleType, tmp_path: Path, column: str, other: str
) -> None:
    """Only an applicant's first row says where it is: a second row in another county would
    be judged, and paid, under the first row's documents."""
    first = ROW.format(subject="ZL1")
    cells = ROW.format(subject="ZL2").split(",")
    cells[HEADER.split(",").index(column)] = other
    path = tmp_path / "events.csv"
    path.write_text(HEADER + first + ",".join(cells), "utf-8")
    with pytest.raises(payout.BadFile, match=f"91510500MA62B8XY4F give different {column}s"):
        payout.survey(path)
    wide = ROW.format(subject="ZL2").replace(",510502,", ",５１０５０２,")
    path.write_text(HEADER + first + wide, "utf-8")
    assert payout.survey(path)[1] == 1  # the same code typed full width


def test_excel_dates_and_empty_rows(payout: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    rows = [ROW.format(subject=f"ZL{i}").replace("2016-05-10", day) for i, day in
            enumerate(["2016/5/10", "2016年5月9日", "２０１６/05/08", "2016-05-07", "May 6",
                       "2016/5/5 0:00", "2016/5/4 12:30"])]  # fmt: skip
    path.write_bytes((HEADER + "".join(rows) + ",,,,,,,,\r\n,,,,,,,,\r\n").encode("gbk"))
    assert payout.survey(path) == ("gb18030", 1)
    (case,) = payout.read_cases(path, "gb18030")
    assert [e["date"] for e in case["events"]] == [
        "2016-05-10", "2016-05-09", "2016-05-08", "2016-05-07", "May 6", "2016-05-05",
        "2016/5/4 12:30",  # a time of day is not a date: the service says so
    ]  # fmt: skip


def test_each_event_keeps_its_row_in_the_file(payout: ModuleType, tmp_path: Path) -> None:
    """Rows as a spreadsheet numbers them: the header is row 1, a blank line counts."""
    other = ROW.replace("91510500MA62B8XY4F", "91510502MA62B8XY5F")
    path = tmp_path / "events.csv"
    path.write_text(
        HEADER + ROW.format(subject="ZL1") + "\n" + ROW.format(subject="ZL2")
        + ",,,,,,,,\n" + other.format(subject="ZL9"),
        "utf-8",
    )  # fmt: skip
    (first, case), (second, _) = payout.read_applicants(path)
    assert (first, second) == ([2, 4], [6])
    answer = {"results": [{"status": "granted", "amount": "3000.00"}] * 2}
    assert [row["row"] for row in payout.payout_rows(case, answer, first)] == [2, 4]


def test_a_refusal_names_the_rows_and_cells_at_fault(payout: ModuleType) -> None:
    """The problem's detail counts the case's place in its stream, which is no row of the file:
    each error is told at its row instead."""
    case = {
        "applicant": {"id": "X", "name": "", "region": "510502"},
        "events": [{"matter": "m", "subject": "a"}, {"matter": "m", "subject": "b"}],
    }
    problem = {
        "status": 422,
        "detail": "Case 7 is invalid.",
        "errors": [
            {"loc": ["body", "events", 1, "quantity"], "msg": "Input should be a valid integer"},
            {"loc": ["body", "applicant", "id"], "msg": "not a valid id"},
        ],
    }
    (row,) = payout.payout_rows(case, problem, [5, 6])
    assert row["row"] == "5-6"
    assert row["status"] == "refused"
    assert row["problem"] == (
        "row 6 quantity: Input should be a valid integer; applicant.id: not a valid id"
    )
    (row,) = payout.payout_rows(case, {"status": 403, "detail": "Outside your region."}, [9])
    assert (row["row"], row["problem"]) == ("9", "Outside your region.")


def test_nothing_paid_says_why_and_a_range_says_its_bounds(payout: ModuleType) -> None:
    """0.00 alone read as nothing owed: a sum to be assessed, up to a million, looked like
    none, and an ineligible event gave no reason."""
    case = {
        "applicant": {"id": "X", "name": "", "region": "510502"},
        "events": [{"matter": "m", "subject": "a", "date": "2016-05-10"}] * 3,
    }
    assessed = {"doc_no": "泸组发〔2021〕2号", "ref": "措施8", "outcome": "needs_assessment",
                "reason": "需评定金额（500000.00–1000000.00 元）"}  # fmt: skip
    out_of_force = {"doc_no": "泸市府发〔2015〕33号", "ref": "（二十）", "outcome": "not_in_force",
                    "reason": "事件日期不在文件有效期内"}  # fmt: skip
    answer = {
        "results": [
            {"status": "needs_assessment", "amount": "0.00",
             "range": {"min": "500000.00", "max": "1000000.00"},
             "considered": [assessed, out_of_force]},
            {"status": "ineligible", "amount": "0.00", "considered": [out_of_force]},
            {"status": "ineligible", "amount": "0.00", "considered": []},
        ]
    }  # fmt: skip
    paid_before = {"status": "eligible", "amount": "0.00", "entitlement": "3000.00",
                   "previously_granted": "3000.00", "considered": []}  # fmt: skip
    (already,) = payout.payout_rows(
        {**case, "events": case["events"][:1]}, {"results": [paid_before]}
    )
    assert (already["amount"], already["entitlement"], already["previously_granted"]) == (
        "0.00", "3000.00", "3000.00",
    )  # fmt: skip
    assert already["reason"] == "台账已发放 3,000.00 元，已发足，本次不再发放"
    rows = list(payout.payout_rows(case, answer, [2, 3, 4]))
    assert [(r["range_min"], r["range_max"]) for r in rows] == [
        ("500000.00", "1000000.00"), ("", ""), ("", ""),
    ]  # fmt: skip
    assert [r["reason"] for r in rows] == [
        "泸组发〔2021〕2号 措施8：需评定金额（500000.00–1000000.00 元）",
        "泸市府发〔2015〕33号 （二十）：事件日期不在文件有效期内",
        "无适用于该事项和地区的条款",
    ]


def test_a_cell_a_spreadsheet_would_take_for_a_formula_is_written_as_text(
    payout: ModuleType,
) -> None:
    assert payout._as_text('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert payout._as_text("@SUM(A1)") == "'@SUM(A1)"
    assert payout._as_text("泸州示例科技有限公司") == "泸州示例科技有限公司"
    assert payout._as_text(7) == 7


def test_no_list_and_no_traceback_where_the_list_cannot_be_written(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text(HEADER + ROW.format(subject="ZL1"), "utf-8")
    done = _payout(events, tmp_path / "no-such-dir" / "payout.csv", "http://127.0.0.1:1")
    assert done.returncode == 1
    assert "no payout list written; cannot write " in done.stderr
    assert "Traceback" not in done.stderr


def test_text_in_neither_encoding_is_refused(payout: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(HEADER.encode() + b"\x80\x80\xff\xff\n")
    with pytest.raises(payout.BadFile, match="neither UTF-8 nor GB 18030"):
        payout.survey(path)


def test_short_rows_and_padded_headers_are_read(payout: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        " applicant_id , kind , region , matter , date , subject \n"
        "91510500MA62B8XY4F, enterprise ,510502,patent.invention.granted,2016-05-10\n",
        "utf-8",
    )
    assert payout.survey(path) == ("utf-8-sig", 1)
    (case,) = payout.read_cases(path)
    assert case["applicant"] == {
        "id": "91510500MA62B8XY4F", "kind": "enterprise", "name": "", "region": "510502",
    }  # fmt: skip
    # The missing subject is sent empty: the service refuses it and says why.
    assert case["events"] == [
        {"matter": "patent.invention.granted", "date": "2016-05-10", "subject": "",
         "quantity": 1, "attributes": {}},
    ]  # fmt: skip


def test_cells_the_service_must_refuse_are_sent_as_they_are(
    payout: ModuleType, tmp_path: Path
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(HEADER + ROW.format(subject="ZL1").replace(",1,{}", ",many,{not json"), "utf-8")
    (case,) = payout.read_cases(path)
    assert case["events"][0]["quantity"] == "many"
    assert case["events"][0]["attributes"] == "{not json"
    assert [payout._quantity(q) for q in (" 2 ", "２", "²", "", None)] == [2, 2, "²", 1, 1]


def test_the_command_refuses_a_file_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("applicant_id\n", "utf-8")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "payout.py"), str(path), str(tmp_path / "out.csv"),
         "--key", "k", "--api", "http://127.0.0.1:1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "has no column kind, region, matter, date, subject" in done.stderr
    assert not (tmp_path / "out.csv").exists()


def test_no_list_is_left_when_the_service_cannot_be_reached(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text(HEADER + ROW.format(subject="ZL1"), "utf-8")
    done = _payout(events, tmp_path / "payout.csv", "http://127.0.0.1:1")
    assert done.returncode == 1
    assert "no payout list written; Cannot connect" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv"]


def test_no_list_is_left_when_the_answers_stop_short(tmp_path: Path) -> None:
    """A service that answers the first applicant and closes the stream."""
    result = {"event_index": 0, "status": "not_eligible", "amount": "0.00", "granted": None}
    answer = json.dumps({"case_index": 0, "total": "0.00", "results": [result]})

    class CutShort(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer.encode() + b"\n")

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CutShort)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        events = tmp_path / "events.csv"
        events.write_text(HEADER + ROW.format(subject="ZL1") + ROW2, "utf-8")
        url = f"http://127.0.0.1:{server.server_address[1]}"
        done = _payout(events, tmp_path / "payout.csv", url)
    finally:
        server.shutdown()
    assert done.returncode == 1, done.stderr
    assert "no payout list written" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv"]


@pytest.mark.parametrize(
    "answer",
    [
        b'{"total": "0.00", "results": []}\n',  # no case_index
        b'{"case_index": 5, "total": "0.00", "results": []}\n',  # no such case sent
        b'{"case_index": 0, "total": "0.00", "results": []}\n',  # no result for its event
        b"<html>busy</html>\n",
    ],
)
def test_no_list_is_left_when_the_answers_cannot_be_read(tmp_path: Path, answer: bytes) -> None:
    """A service that breaks the protocol: the script says so, without a traceback."""

    class Garbled(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbled)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        events = tmp_path / "events.csv"
        events.write_text(HEADER + ROW.format(subject="ZL1"), "utf-8")
        done = _payout(
            events, tmp_path / "payout.csv", f"http://127.0.0.1:{server.server_address[1]}"
        )
    finally:
        server.shutdown()
    assert done.returncode == 1, done.stderr
    assert "no payout list written; the service answered a line this script cannot read" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv"]


ROW2 = "91510500MA00000019,enterprise,泸县示例制造有限公司,510521,patent.utility_model.granted,2017-03-02,ZL2,2,{}\n"


def _payout(events: Path, payout: Path, api: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "payout.py"), str(events), str(payout),
         "--key", "k", "--api", api],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
