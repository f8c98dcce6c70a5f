"""labship.compress.dialect: the sniffer on small cases: what it detects, what it refuses, and that settings win."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from labship.compress.dialect import (
    Dialect,
    DialectError,
    DialectSettings,
    detect,
    detect_file,
    setting_hint,
    settings_from,
)


def read(text: str | bytes, **settings: object) -> Dialect:
    data = text.encode() if isinstance(text, str) else text
    return detect(data, DialectSettings(**settings), path="data/x.csv", at_eof=True)  # type: ignore[arg-type]


def refused(text: str | bytes, **settings: object) -> str:
    with pytest.raises(DialectError) as caught:
        read(text, **settings)
    message = str(caught.value)
    assert message.startswith("data/x.csv: "), message
    return message


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("a,b,c\n1,2,3\n4,5,6\n", ","),
        ("a;b;c\n1;2;3\n4;5;6\n", ";"),
        ("a|b|c\n1|2|3\n4|5|6\n", "|"),
        ("a\tb\tc\n1\t2\t3\n4\t5\t6\n", "\t"),
        # decimal commas: `,` splits every data row evenly, but not the header: `;` wins
        ("name;price;qty\napple;1,50;3\npear;2,25;4\n", ";"),
        # commas inside quoted fields do not count
        ('id;text\n1;"a, b, c"\n2;"d, e"\n', ";"),
        ('id,text\n1,"a; b"\n2,"c; d; e"\n', ","),
        # one column: nothing splits it
        ("name\nalice\nbob\n", ","),
    ],
)
def test_delimiter(text: str, delimiter: str) -> None:
    assert read(text).delimiter == delimiter


def test_two_delimiters_that_split_every_row_are_refused_with_both_settings() -> None:
    message = refused("a,b;c\n1,2;3\n4,5;6\n")
    assert "cannot tell the delimiter" in message
    assert 'delimiter = ","' in message and 'delimiter = ";"' in message
    assert "[tool.labship.datasets.NAME]" in message


def test_explicit_delimiter_wins() -> None:
    dialect = read("a,b;c\n1,2;3\n4,5;6\n", delimiter=";")
    assert (dialect.delimiter, dialect.columns, dialect.names) == (";", 2, ("a,b", "c"))
    assert "delimiter" in dialect.explicit


@pytest.mark.parametrize(
    ("data", "ending"),
    [
        (b"a,b\n1,2\n", "LF"),
        (b"a,b\r\n1,2\r\n", "CRLF"),
        (b"a,b\r1,2\r3,4\r", "CR"),
        (b"a,b\r\n1,2\n3,4\r\n", "mixed"),
        (b"a,b", "none"),
    ],
)
def test_line_endings(data: bytes, ending: str) -> None:
    dialect = read(data)
    assert dialect.line_endings == ending
    assert dialect.names == ("a", "b")


def test_bare_cr_file_is_split_into_rows() -> None:
    dialect = read(b"id,v\r1,2.5\r2,3.5\r")
    assert (dialect.columns, dialect.header, dialect.line_endings) == (2, True, "CR")


def test_bom_is_stripped_and_recorded() -> None:
    dialect = read(b"\xef\xbb\xbfid;name\n1;a\n2;b\n")
    assert dialect.bom and dialect.names == ("id", "name") and dialect.delimiter == ";"


@pytest.mark.parametrize(
    ("text", "header"),
    [
        ("id,value\n1,2.5\n2,3.5\n", True),
        ("1,2.5\n2,3.5\n3,4.5\n", False),
        ("2024-01-01,5\n2024-01-02,6\n", False),
        ("date,count\n2024-01-01,5\n2024-01-02,6\n", True),
        ("city,country\nParis,France\nLyon,France\n", True),
        # zip codes with leading zeros are data, not names
        ("08123,12.5\n09001,13.5\n", False),
        ("zip,temp\n08123,12.5\n09001,13.5\n", True),
        # a lone row is a header
        ("a,b,c\n", True),
    ],
)
def test_header(text: str, header: bool) -> None:
    dialect = read(text)
    assert dialect.header is header
    if not header:
        assert dialect.names == tuple(f"column_{i}" for i in range(1, dialect.columns + 1))


def test_boolean_like_tokens_do_not_decide_a_header() -> None:
    # `f` / `YES` are text: an all-text table whose first row repeats below cannot be told apart
    message = refused("f,YES\nt,NO\nf,NO\n")
    assert "line 1" in message and "header = true" in message


def test_boolean_like_tokens_under_a_header_with_an_id_column() -> None:
    dialect = read("id,active,flag\n1,f,YES\n2,t,NO\n")
    assert dialect.header and dialect.names == ("id", "active", "flag")


def test_year_named_columns_above_measures_are_a_header() -> None:
    # World Bank style exports: a preamble, then years as column names above measures
    text = (
        '"Data Source","World Development Indicators",\n\n"Last Updated Date","2024-03-28",\n\n'
        '"Country Name","Country Code","1990","1991","1992",\n'
        '"Aruba","ABW","62149","64622","68235",\n"Angola","AGO","11828638","12228691","12632507",\n'
    )
    dialect = read(text)
    assert dialect.header and dialect.skip_lines == 4
    assert dialect.names[:3] == ("Country Name", "Country Code", "1990")


def test_year_named_columns_above_years_are_refused() -> None:
    message = refused("from,2001,2002,2003\nx,2001,2002,2003\ny,2004,2005,2006\n")
    assert "header = true" in message and "line 1" in message


def test_mixed_header_votes_are_refused() -> None:
    message = refused("id,2\n1,3\n2,4\n5,6\n")
    assert "cannot tell whether this row is a header" in message


def test_explicit_header_wins() -> None:
    assert read("country,1990,1991\nFR,1,2\n", header=True).header is True
    dialect = read("city,country\nParis,France\nLyon,France\n", header=False)
    assert dialect.header is False and dialect.names == ("column_1", "column_2")


def test_leading_blank_lines_are_skipped_not_called_empty() -> None:
    dialect = read("\n\n  \nid,v\n1,2\n")
    assert (dialect.skip_lines, dialect.names) == (3, ("id", "v"))
    assert any("3 blank" in line for line in dialect.evidence)


def test_comment_lines_are_skipped() -> None:
    dialect = read("# exported by logger v2\n# units: m/s, degC\nt,speed\n1,2.5\n2,3.0\n")
    assert (dialect.skip_lines, dialect.comment, dialect.names) == (2, "#", ("t", "speed"))


def test_comment_detection_can_be_turned_off() -> None:
    dialect = read("#id,v\n1,2\n3,4\n", comment="", header=True)
    assert dialect.names == ("#id", "v") and dialect.skip_lines == 0


def test_metadata_preamble_above_a_header_is_skipped() -> None:
    text = "Station: 401\nExported: 2024-03-01 10:00\nUnits: veh/h\n\ntime,flow,speed\n1,20,55.5\n2,21,56.0\n"
    dialect = read(text)
    assert dialect.skip_lines == 4 and dialect.names == ("time", "flow", "speed")
    assert any("3 preamble" in line for line in dialect.evidence)


def test_preamble_above_headerless_rows_is_refused() -> None:
    message = refused("x,y\n1,2,3\n2,3,4\n4,5,6\n")
    assert "line 2" in message and "skip-lines = 1" in message and "header = false" in message


def test_header_one_field_short_right_above_is_refused() -> None:
    # R's write.csv: a header without a name for the row-name column, or a preamble line?
    message = refused("Exported by R\na,b\nx,p,q\ny,r,s\nz,t,u\n")
    assert "line 2" in message and "skip-lines = 2" in message and "skip-lines = 1" in message
    # with numbers below, the first full-width row is data: refused as well, naming the line
    message = refused("Exported by R\na,b\nx,1,2\ny,3,4\nz,5,6\n")
    assert "line 3" in message and "skip-lines = 2" in message


def test_one_wider_row_under_the_first_is_a_ragged_row_not_a_preamble() -> None:
    dialect = read("id,name\n3,z,extra\n")
    assert (dialect.skip_lines, dialect.columns, dialect.names) == (0, 2, ("id", "name"))


def test_explicit_skip_lines_wins() -> None:
    dialect = read("junk line one\njunk, line, two, here\nid,v\n1,2\n", skip_lines=2)
    assert dialect.skip_lines == 2 and dialect.names == ("id", "v")


def test_ragged_rows_keep_the_delimiter_never_one_column() -> None:
    dialect = read("a,b,c\n1,2,3\n1,2\n4,5,6\n7,8,9,10\n1,1,1\n")
    assert dialect.delimiter == "," and dialect.columns == 3
    assert any("ragged" in line for line in dialect.evidence)


def test_stray_quote_inside_unquoted_field_is_literal() -> None:
    dialect = read('item,size,note\nruler,12" long,x\nbox,3,y\nfilter,E"(1.000 Hz),z\n')
    assert dialect.delimiter == "," and dialect.columns == 3 and dialect.quote == '"'


def test_backslash_escapes() -> None:
    dialect = read('id,quote\n1,"she said \\"hi\\" twice"\n2,"plain"\n')
    assert dialect.escape == "backslash"


def test_doubled_quotes() -> None:
    dialect = read('id,quote\n1,"she said ""hi"" twice"\n2,"plain"\n')
    assert dialect.escape == "double"


def test_both_escape_styles_are_refused() -> None:
    message = refused('id,quote\n1,"a \\"b\\" c"\n2,"d ""e"" f"\n')
    assert 'escape = "double"' in message and 'escape = "backslash"' in message


def test_single_quote_character() -> None:
    dialect = read("'id','name'\n'1','a, b'\n'2','c'\n")
    assert dialect.quote == "'" and dialect.columns == 2 and dialect.names == ("id", "name")


def test_quoted_newline_in_header_and_rows() -> None:
    dialect = read('id,"long\nname"\n1,"x\ny"\n2,z\n')
    assert dialect.names == ("id", "long\nname") and dialect.columns == 2


def test_cut_head_ignores_the_partial_last_record() -> None:
    head = b"id,v\r\n1,2\r\n3,4\r\n5,6\r"  # the cut fell between CR and LF
    dialect = detect(head, path="x.csv", at_eof=False)
    assert dialect.line_endings == "CRLF" and dialect.columns == 2
    cut_inside_utf8 = "id,name\n1,caf\u00e9\n2,na\u00efve\n".encode()[:-3]
    assert detect(cut_inside_utf8, path="x.csv", at_eof=False).names == ("id", "name")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"\n\n\n", "empty"),
        (gzip.compress(b"a,b\n1,2\n"), ".csv.gz"),
        (b"\xff\xfea\x00,\x00b\x00", "UTF-16"),
        (b"a,b\n1,\x002\n", "line 2"),
        (b"# only\n# comments\n", "no table"),
    ],
)
def test_refusals(data: bytes, words: str) -> None:
    assert words in refused(data)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        (DialectSettings(escape="none"), "escape"),
        (DialectSettings(delimiter=";;"), "delimiter"),
        (DialectSettings(delimiter=":"), "delimiter"),
        (DialectSettings(skip_lines=-1), "skip-lines"),
        (DialectSettings(quote=";", delimiter=";"), "quote and delimiter"),
        (DialectSettings(comment="//"), "comment"),
    ],
)
def test_settings_are_validated_naming_origin_and_key(settings: DialectSettings, key: str) -> None:
    with pytest.raises(DialectError) as caught:
        settings.check("pyproject.toml [tool.labship.datasets.x]")
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(f"pyproject.toml [tool.labship.datasets.x]: {key}")


def test_setting_hint_for_flags_and_toml() -> None:
    toml = "[tool.labship.datasets.x]"
    assert setting_hint("delimiter", "\t", toml) == 'delimiter = "\\t" in [tool.labship.datasets.x]'
    assert setting_hint("skip_lines", 3, toml) == "skip-lines = 3 in [tool.labship.datasets.x]"
    assert setting_hint("skip_lines", 3, "--source/--target") == "--skip-lines 3"
    assert setting_hint("header", False, "--source/--target") == "--header false"
    assert setting_hint("delimiter", "\t", "--source/--target") == "--delimiter tab"


@pytest.mark.parametrize(
    ("text", "char"), [("tab", "\t"), ("\\t", "\t"), ("Semicolon", ";"), ("|", "|"), (",", ",")]
)
def test_delimiter_names(text: str, char: str) -> None:
    assert settings_from({"delimiter": text}).delimiter == char


def test_json_and_description(tmp_path: Path) -> None:
    path = tmp_path / "x.csv.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf# note\r\na\tb\r\n1\t2\r\n"))
    dialect = detect_file(path)
    data = dialect.describe()
    assert data["delimiter_name"] == "tab" and data["bom"] is True and data["skip_lines"] == 1
    assert data["names"] == ["a", "b"] and data["line_endings"] == "CRLF"
    assert dialect.summary() == "tab, CRLF, header, skip 1, BOM"


def test_bare_cr_records_are_cut_after_cr() -> None:
    assert read(b"a,b\r1,2\r").newline == b"\r"
    assert read(b"a,b\r\n1,2\r\n").newline == b"\n"
    assert read(b"a,b\r\n1,2\r3,4\n").newline == b"\r"


def test_default_at_eof_is_a_head_shorter_than_the_sniff_size() -> None:
    assert detect(b"a,b\n1,2").names == ("a", "b")


INVOKE = Path(sys.executable).with_name("invoke")
PYPROJECT = """[project]
name = "exp"

[tool.labship.datasets.lab]
source = "raw"
target = "out"
delimiter = "semicolon"
header = false
skip-lines = 1
"""


def invoke(root: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INVOKE), "compress", *arguments], cwd=root, capture_output=True, text=True, timeout=300
    )


def test_dataset_settings_and_flags_decide_and_are_recorded_in_the_json_report(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "tasks.py").write_text("from labship.tasks import namespace\n\nns = namespace()\n")
    (tmp_path / "raw").mkdir()
    # ambiguous alone (`,` and `;` both split every row): the dataset's settings decide
    (tmp_path / "raw" / "a.csv").write_bytes(b"exported 2024\n1,5;x\n2,5;y\n")
    result = invoke(tmp_path, "--report", "report.json")
    assert result.returncode == 0, result.stderr
    assert "read as semicolon, LF, no header, skip 1: a.csv" in result.stdout
    report = json.loads((tmp_path / "report.json").read_text())["datasets"][0]
    dialect = report["dialects"]["a.csv"]
    assert (dialect["delimiter"], dialect["header"], dialect["skip_lines"]) == (";", False, 1)
    assert sorted(dialect["explicit"]) == ["delimiter", "header", "skip_lines"]
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "out" / "a.parquet")
    assert table.column_names == ["column_1", "column_2"]
    assert table.column("column_1").to_pylist() == ["1,5", "2,5"]

    # the ad-hoc form: detection refuses, naming the flag; the flag decides
    (tmp_path / "adhoc").mkdir()
    (tmp_path / "adhoc" / "b.csv").write_bytes(b"a,b;c\n1,2;3\n4,5;6\n")
    result = invoke(tmp_path, "--source", "adhoc", "--target", "adhoc-out")
    assert result.returncode == 1 and "b.csv" in result.stderr and "Traceback" not in result.stderr
    assert "--delimiter comma" in result.stderr and "--delimiter semicolon" in result.stderr
    result = invoke(tmp_path, "--source", "adhoc", "--target", "adhoc-out", "--delimiter", "semicolon")
    assert result.returncode == 0, result.stderr
    assert pq.read_table(tmp_path / "adhoc-out" / "b.parquet").column_names == ["a,b", "c"]
    result = invoke(tmp_path, "--source", "adhoc", "--target", "adhoc-out", "--header", "maybe")
    assert result.returncode == 2 and "--header maybe: use true or false" in result.stderr
    help_text = subprocess.run(
        [str(INVOKE), "--help", "compress"], cwd=tmp_path, capture_output=True, text=True
    )
    for flag in ("--delimiter", "--quote", "--escape", "--header", "--skip-lines", "--comment"):
        assert flag in help_text.stdout


def test_a_bad_dialect_key_names_file_and_key(tmp_path: Path) -> None:
    from labship.config import ConfigError, load_config

    (tmp_path / "pyproject.toml").write_text(PYPROJECT.replace("header = false", 'header = "no"'))
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "pyproject.toml" in str(caught.value) and "header" in str(caught.value)


def test_files_of_one_dataset_may_differ_in_dialect_and_share_one_schema(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from labship.compress import Settings, compress_dataset

    source = tmp_path / "raw"
    source.mkdir()
    (source / "a.csv").write_bytes(b"id,zip,value\n1,08123,2.5\n2,10001,3\n")
    (source / "b.csv").write_bytes(
        b"\xef\xbb\xbf# site north\r\nid;zip;value\r\n3;09001;4.25\r\n4;75001;\r\n"
    )
    (source / "c.csv").write_bytes(b"id\tzip\tvalue\r5\t02134\t1e3\r")
    report = compress_dataset("mixed", source, tmp_path / "out", Settings(), jobs=1)
    assert report.converted == 3
    assert {name: d["delimiter"] for name, d in report.dialects.items()} == {
        "a.csv": ",",
        "b.csv": ";",
        "c.csv": "\t",
    }
    assert (report.dialects["b.csv"]["bom"], report.dialects["b.csv"]["skip_lines"]) == (True, 1)
    assert report.dialects["c.csv"]["line_endings"] == "CR"
    tables = {name: pq.read_table(tmp_path / "out" / f"{name}.parquet") for name in "abc"}
    assert len({table.schema for table in tables.values()}) == 1
    assert tables["b"].column("zip").to_pylist() == ["09001", "75001"]
    assert tables["b"].column("value").to_pylist() == [4.25, None]
    assert tables["c"].to_pylist() == [{"id": 5, "zip": "02134", "value": 1000.0}]
