"""CSV/TSV connector: encodings, detection, skipped rows, fingerprints, streaming."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from connectors.base import ConnectorError, LegacyRow
from connectors.config import load_source
from connectors.csv_source import CsvSource, detect_encoding

FIELDS = {"legacy_id": "用户ID", "name": "姓名", "id_number": "身份证号", "phone": "手机",
          "password_hash": "密码"}
ROWS = [
    ["u001", "张三", "11010519491231002X", "13800138000", "e10adc3949ba59abbe56e057f20f883e"],
    ["u002", "欧阳娜娜", "440301199001011234", "", ""],
    ["u003", "李䶮", " 310101198001010011 ", "13900139000", "x"],  # 䶮: not in GBK
]
HEADER = ["用户ID", "姓名", "身份证号", "手机", "密码"]


def write(path: Path, rows: list[list[str]], encoding: str, delimiter: str = ",",
          bom: bool = False) -> Path:
    text = "\r\n".join(delimiter.join(r) for r in [HEADER, *rows]) + "\r\n"
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def read(path: Path, **kw) -> list[LegacyRow]:
    return list(CsvSource("old-portal", FIELDS, path=path, **kw).rows())


@pytest.mark.parametrize("encoding", ["auto", "gb18030"])
def test_gb18030_with_rare_character(tmp_path, encoding):
    path = write(tmp_path / "u.csv", ROWS, "gb18030")
    rows = read(path, encoding=encoding)
    assert [r.name for r in rows] == ["张三", "欧阳娜娜", "李䶮"]
    assert rows[2].id_number == "310101198001010011"  # trimmed, not otherwise normalised
    assert rows[1].phone is None and rows[1].password_hash is None
    assert rows[0].source == "old-portal" and rows[0].legacy_id == "u001"


@pytest.mark.parametrize("encoding", ["auto", "gbk", "gb18030"])
def test_gbk(tmp_path, encoding):
    path = write(tmp_path / "u.csv", ROWS[:2], "gbk")
    assert detect_encoding(path) == "gb18030"
    rows = read(path, encoding=encoding)
    assert [(r.legacy_id, r.name) for r in rows] == [("u001", "张三"), ("u002", "欧阳娜娜")]


def test_gbk_declared_but_gb18030_only_character_is_a_clear_error(tmp_path):
    path = write(tmp_path / "u.csv", ROWS, "gb18030")
    with pytest.raises(ConnectorError, match=r"not valid gbk near line 4"):
        read(path, encoding="gbk")


@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("encoding", ["auto", "utf-8"])
def test_utf8_with_and_without_bom(tmp_path, bom, encoding):
    path = write(tmp_path / "u.csv", ROWS, "utf-8", bom=bom)
    assert detect_encoding(path) == ("utf-8-sig" if bom else "utf-8")
    rows = read(path, encoding=encoding)
    assert [r.name for r in rows] == ["张三", "欧阳娜娜", "李䶮"]
    assert rows[0].raw["legacy_id"] == "u001"  # the BOM did not stick to the header


def test_utf8_declared_on_gbk_file_is_a_clear_error(tmp_path):
    path = write(tmp_path / "u.csv", ROWS[:1], "gbk")
    with pytest.raises(ConnectorError, match=r"not valid utf-8-sig near line 1.*gb18030"):
        read(path, encoding="utf-8")


def test_detection_does_not_trip_on_a_character_cut_at_the_sniff_boundary(tmp_path):
    path = tmp_path / "u.csv"
    filler = "a" * (256 * 1024 - 1)  # the 3-byte 张 straddles the sniffed chunk's end
    path.write_bytes(("用户ID,姓名,身份证号,手机,密码\r\nu1," + filler + "张,,,\r\n").encode())
    assert detect_encoding(path) == "utf-8"


def test_tsv_by_extension_and_explicit(tmp_path):
    path = write(tmp_path / "u.tsv", ROWS, "utf-8", delimiter="\t")
    assert [r.legacy_id for r in read(path)] == ["u001", "u002", "u003"]
    other = write(tmp_path / "u.txt", ROWS, "gb18030", delimiter="\t")
    assert [r.name for r in read(other, delimiter="\t")][2] == "李䶮"


def test_tab_file_read_as_csv_hints_at_the_delimiter(tmp_path):
    path = write(tmp_path / "u.txt", ROWS, "utf-8", delimiter="\t")
    with pytest.raises(ConnectorError, match=r"tab-separated"):
        read(path)


def test_quoted_fields_with_delimiters_and_newlines(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text('用户ID,姓名,身份证号,手机,密码\n"u1","张,三","x\ny",,\n', encoding="utf-8")
    (row,) = read(path)
    assert row.name == "张,三" and row.id_number == "x\ny"


def test_rows_without_legacy_id_are_skipped_and_reported(tmp_path):
    rows = [ROWS[0], ["", "无名", "", "", ""], ["  ", "空白", "", "", ""], ROWS[1]]
    path = write(tmp_path / "u.csv", rows, "utf-8")
    source = CsvSource("s", FIELDS, path=path)
    got = list(source.rows())
    assert [r.legacy_id for r in got] == ["u001", "u002"]
    assert [r.where for r in got] == ["line 2", "line 5"]
    assert source.rows_read == 2
    assert source.error_count == 2
    assert source.error_counts == {"missing legacy id": 2}
    assert [str(e) for e in source.errors] == [
        "line 3: missing legacy id (column '用户ID' is empty)",
        "line 4: missing legacy id (column '用户ID' is empty)"]
    list(source.rows())  # a second pass starts a fresh report
    assert source.error_count == 2


def test_blank_lines_and_empty_file(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("\n用户ID,姓名,身份证号,手机,密码\n\nu1,a,,,\n\n", encoding="utf-8")
    assert [r.legacy_id for r in read(path)] == ["u1"]
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert read(empty) == []


def test_missing_column_is_a_clear_error(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("用户ID,姓名\nu1,a\n", encoding="utf-8")
    with pytest.raises(ConnectorError) as info:
        read(path)
    message = str(info.value)
    assert "no column(s) '身份证号', '手机', '密码'" in message
    assert "'用户ID', '姓名'" in message


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConnectorError, match=r"cannot read .*nope.csv"):
        read(tmp_path / "nope.csv")


def test_bad_options(tmp_path):
    with pytest.raises(ConnectorError, match="unsupported encoding 'latin-1'"):
        CsvSource("s", FIELDS, path=tmp_path / "u.csv", encoding="latin-1")
    with pytest.raises(ConnectorError, match="unsupported delimiter"):
        CsvSource("s", FIELDS, path=tmp_path / "u.csv", delimiter="::")
    with pytest.raises(ConnectorError, match="must map 'legacy_id'"):
        CsvSource("s", {"name": "n"}, path=tmp_path / "u.csv")
    with pytest.raises(ConnectorError, match="unknown field"):
        CsvSource("s", {"legacy_id": "a", "nickname": "b"}, path=tmp_path / "u.csv")


def test_fingerprint_stable_and_sensitive(tmp_path):
    path = write(tmp_path / "u.csv", ROWS, "gb18030")
    first = [r.fingerprint() for r in read(path)]
    again = [r.fingerprint() for r in read(path)]
    assert first == again and len(set(first)) == 3
    assert all(len(f) == 64 and int(f, 16) >= 0 for f in first)
    # Re-encoding the same data (and trailing spaces) changes nothing.
    path2 = write(tmp_path / "u2.csv", [[c + " " for c in r] for r in ROWS], "utf-8", bom=True)
    assert [r.fingerprint() for r in read(path2)] == first
    # A mapped field's change changes only that row's fingerprint.
    changed = [list(r) for r in ROWS]
    changed[1][3] = "13700137000"
    path3 = write(tmp_path / "u3.csv", changed, "gb18030")
    third = [r.fingerprint() for r in read(path3)]
    assert third[0] == first[0] and third[2] == first[2] and third[1] != first[1]
    # The source name and password format are part of it too.
    row = read(path)[0]
    assert row.fingerprint() != LegacyRow(**{**row.__dict__, "source": "other"}).fingerprint()
    assert row.fingerprint() != LegacyRow(
        **{**row.__dict__, "password_format": "md5"}).fingerprint()


@pytest.mark.parametrize("name", ["张\"三\\", "李䶮\u2028\t\x01", "𠀀·O'Brien", None])
def test_fingerprint_is_sha256_of_the_canonical_json(name):
    """Fingerprints stored by earlier imports stay valid: the hand-written serialisation
    is byte for byte the canonical JSON (sorted keys, no spaces, UTF-8)."""
    import hashlib
    import json

    from connectors.base import FIELDS as ALL_FIELDS

    row = LegacyRow(source="旧系统", legacy_id="u1", name=name, id_number="110105194912310021",
                    password_format="md5", org_code="M0001000-6")
    payload = {"source": row.source, "password_format": row.password_format,
               **{f: getattr(row, f) for f in ALL_FIELDS}}
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert row.fingerprint() == hashlib.sha256(canonical.encode()).hexdigest()


def test_unmapped_columns_do_not_affect_fingerprint(tmp_path):
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_text("id,name,extra\n1,张三,x\n", encoding="utf-8")
    b.write_text("id,name,extra\n1,张三,y\n", encoding="utf-8")
    fields = {"legacy_id": "id", "name": "name"}
    fa = next(CsvSource("s", fields, path=a).rows()).fingerprint()
    fb = next(CsvSource("s", fields, path=b).rows()).fingerprint()
    assert fa == fb


N_ROWS = 200_000


@pytest.fixture(scope="module")
def big_gbk(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.csv"
    with open(path, "w", encoding="gbk", newline="") as fh:
        fh.write(",".join(HEADER) + "\r\n")
        for i in range(N_ROWS):
            fh.write(f"u{i:07d},张三{i % 97},1101051949123{i % 10000:04d}X,138{i:08d},"
                     f"{i:032x}\r\n")
    return path


def test_streams_200k_rows_with_flat_memory(big_gbk):
    source = CsvSource("big", FIELDS, path=big_gbk)
    assert big_gbk.stat().st_size > 15_000_000
    tracemalloc.start()
    try:
        count = 0
        start = time.perf_counter()
        for row in source.rows():
            count += 1
            row.fingerprint()
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == N_ROWS and source.error_count == 0
    assert peak < 3 * 1024 * 1024, f"peak {peak} bytes"
    print(f"\nCSV (GBK, auto-detected, with fingerprint): {N_ROWS / elapsed:,.0f} rows/s "
          f"under tracemalloc; peak {peak / 1024:.0f} KiB")


def test_throughput_gbk(big_gbk):
    source = load_source_for(big_gbk)
    start = time.perf_counter()
    count = sum(1 for _ in source.rows())
    elapsed = time.perf_counter() - start
    assert count == N_ROWS
    print(f"\nCSV (GBK) read: {count / elapsed:,.0f} rows/s")


def load_source_for(path: Path):
    config = path.parent / "big.toml"
    config.write_text(
        '[source]\nname = "big"\nkind = "csv"\n'
        '[fields]\nlegacy_id = "用户ID"\nname = "姓名"\nid_number = "身份证号"\n'
        'phone = "手机"\npassword_hash = "密码"\n'
        '[password]\nformat = "md5"\n'
        '[csv]\npath = "big.csv"\nencoding = "gbk"\n', encoding="utf-8")
    return load_source(config)
