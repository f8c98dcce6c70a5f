"""Write the awkward-CSV corpus: each case a `<category>/<name>.csv` and its `<name>.expected.json`.

    python tests/corpus/make_corpus.py      # rewrites every file below this directory

The files imitate what real exports look like (open-data portals, instruments, spreadsheets, R and
database dumps); the bytes are the point, so every file is written exactly as given here. An
expected file holds either the converted table (column names, type family per column, every value)
or the refusal (words the message must contain besides the file's name, e.g. "line 4"); `dialect`
lists properties the report must record for the file. Type families: int, float, decimal, string,
bool, timestamp, date; "decimal|string" accepts either (a lossless choice both ways).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def ok(columns: list[tuple[str, str]], rows: list[list[object]], **dialect: object) -> dict[str, object]:
    return {"outcome": "converted", "columns": [list(c) for c in columns], "rows": rows, "dialect": dialect}


def refused(*mentions: str) -> dict[str, object]:
    return {"outcome": "refused", "mentions": list(mentions)}


CASES: dict[str, dict[str, tuple[bytes, dict[str, object]]]] = {
    "cr_endings": {
        "logger_export": (
            b"time,temp_c,rh\r2024-03-01 00:00,4.5,81\r2024-03-01 00:10,4.4,82\r2024-03-01 00:20,4.1,84\r",
            ok(
                [("time", "timestamp|string"), ("temp_c", "float"), ("rh", "int")],
                [["2024-03-01 00:00", 4.5, 81], ["2024-03-01 00:10", 4.4, 82], ["2024-03-01 00:20", 4.1, 84]],
                line_endings="CR",
            ),
        ),
        "old_mac_excel": (
            b"Name,City,Amount\rAlice,Paris,12\rBob,Lyon,7\rChlo\xc3\xa9,Nice,3\r",
            ok(
                [("Name", "string"), ("City", "string"), ("Amount", "int")],
                [["Alice", "Paris", 12], ["Bob", "Lyon", 7], ["Chlo\u00e9", "Nice", 3]],
                line_endings="CR",
            ),
        ),
        "quoted_fields": (
            b'id,comment,score\r1,"fine, thanks",3.5\r2,"said ""ok""",4\r3,plain,\r',
            ok(
                [("id", "int"), ("comment", "string"), ("score", "float")],
                [[1, "fine, thanks", 3.5], [2, 'said "ok"', 4.0], [3, "plain", None]],
                line_endings="CR",
            ),
        ),
    },
    "crlf": {
        "portal_export": (
            b"code,label,population\r\n75056,Paris,2133111\r\n69123,Lyon,522250\r\n13055,Marseille,873076\r\n",
            ok(
                [("code", "int"), ("label", "string"), ("population", "int")],
                [[75056, "Paris", 2133111], [69123, "Lyon", 522250], [13055, "Marseille", 873076]],
                line_endings="CRLF",
            ),
        ),
        "no_final_newline": (
            b"a,b\r\n1,x\r\n2,y",
            ok([("a", "int"), ("b", "string")], [[1, "x"], [2, "y"]], line_endings="CRLF"),
        ),
        "mixed_with_lf": (
            b"k,v\r\n1,one\n2,two\r\n3,three\n",
            ok([("k", "int"), ("v", "string")], [[1, "one"], [2, "two"], [3, "three"]], line_endings="mixed"),
        ),
    },
    "semicolon": {
        "european_decimals": (
            "commune;libell\u00e9;surface_km2\n01001;L'Abergement;15,95\n01002;Ambl\u00e9on;5,88\n"
            "01004;Amb\u00e9rieu;24,60\n".encode(),
            ok(
                [("commune", "string"), ("libell\u00e9", "string"), ("surface_km2", "string")],
                [
                    ["01001", "L'Abergement", "15,95"],
                    ["01002", "Ambl\u00e9on", "5,88"],
                    ["01004", "Amb\u00e9rieu", "24,60"],
                ],
                delimiter=";",
            ),
        ),
        "quoted_semicolons": (
            b'id;text;n\n1;"a; b";10\n2;"c";20\n3;"d;e;f";30\n',
            ok(
                [("id", "int"), ("text", "string"), ("n", "int")],
                [[1, "a; b", 10], [2, "c", 20], [3, "d;e;f", 30]],
                delimiter=";",
            ),
        ),
        "excel_crlf": (
            b"Datum;Menge;Preis\r\n2024-01-02;3;4.5\r\n2024-01-03;1;2.25\r\n",
            ok(
                [("Datum", "date|timestamp|string"), ("Menge", "int"), ("Preis", "float")],
                [["2024-01-02", 3, 4.5], ["2024-01-03", 1, 2.25]],
                delimiter=";",
                line_endings="CRLF",
            ),
        ),
    },
    "pipe": {
        "db_dump": (
            b"id|name|balance\n1|ann|10.5\n2|ben|-3\n3|cy|0\n",
            ok(
                [("id", "int"), ("name", "string"), ("balance", "float")],
                [[1, "ann", 10.5], [2, "ben", -3.0], [3, "cy", 0.0]],
                delimiter="|",
            ),
        ),
        "with_commas_in_text": (
            b"sku|title|qty\nA1|Bolts, M4, zinc|100\nB2|Nuts, M4|250\nC3|Washer|75\n",
            ok(
                [("sku", "string"), ("title", "string"), ("qty", "int")],
                [["A1", "Bolts, M4, zinc", 100], ["B2", "Nuts, M4", 250], ["C3", "Washer", 75]],
                delimiter="|",
            ),
        ),
        "empty_fields": (
            b"a|b|c\n1||x\n2|5|\n|6|z\n",
            ok(
                [("a", "int"), ("b", "int"), ("c", "string")],
                [[1, None, "x"], [2, 5, None], [None, 6, "z"]],
                delimiter="|",
            ),
        ),
    },
    "tab": {
        "spreadsheet_paste": (
            b"station\tflow\tspeed\n401\t120\t61.5\n402\t98\t58.0\n403\t0\t\n",
            ok(
                [("station", "int"), ("flow", "int"), ("speed", "float")],
                [[401, 120, 61.5], [402, 98, 58.0], [403, 0, None]],
                delimiter="\t",
            ),
        ),
        "text_with_commas": (
            b"name\taddress\n Ann\t1 Main St, Springfield\nBob\t2 Oak Ave, Shelbyville\n",
            ok(
                [("name", "string"), ("address", "string")],
                [[" Ann", "1 Main St, Springfield"], ["Bob", "2 Oak Ave, Shelbyville"]],
                delimiter="\t",
            ),
        ),
        "genomics_like": (
            b"chrom\tpos\tref\talt\nchr1\t10177\tA\tAC\nchr1\t10352\tT\tTA\nchrX\t2699555\tC\tA\n",
            ok(
                [("chrom", "string"), ("pos", "int"), ("ref", "string"), ("alt", "string")],
                [["chr1", 10177, "A", "AC"], ["chr1", 10352, "T", "TA"], ["chrX", 2699555, "C", "A"]],
                delimiter="\t",
            ),
        ),
    },
    "headerless": {
        "sensor_rows": (
            b"1,2024-03-01T00:00:00,4.5\n2,2024-03-01T00:10:00,4.4\n3,2024-03-01T00:20:00,4.1\n",
            ok(
                [("column_1", "int"), ("column_2", "timestamp|string"), ("column_3", "float")],
                [
                    [1, "2024-03-01T00:00:00", 4.5],
                    [2, "2024-03-01T00:10:00", 4.4],
                    [3, "2024-03-01T00:20:00", 4.1],
                ],
                header=False,
            ),
        ),
        "numbers_only": (
            b"10,20,30\n11,21,31\n12,22,32\n",
            ok(
                [("column_1", "int"), ("column_2", "int"), ("column_3", "int")],
                [[10, 20, 30], [11, 21, 31], [12, 22, 32]],
                header=False,
            ),
        ),
        "semicolon_headerless": (
            b"A;1.5;x\nB;2.5;y\nC;3.5;z\n",
            ok(
                [("column_1", "string"), ("column_2", "float"), ("column_3", "string")],
                [["A", 1.5, "x"], ["B", 2.5, "y"], ["C", 3.5, "z"]],
                header=False,
                delimiter=";",
            ),
        ),
    },
    "comments": {
        "hash_header_block": (
            b"# exported by logger v2.1\n# site: north, units: metric\nt,speed\n1,2.5\n2,3.0\n",
            ok([("t", "int"), ("speed", "float")], [[1, 2.5], [2, 3.0]], skip_lines=2),
        ),
        "comments_and_blank": (
            b"# generated 2024-03-01\n\n# columns: id, value\nid,value\n7,a\n8,b\n",
            ok([("id", "int"), ("value", "string")], [[7, "a"], [8, "b"]], skip_lines=3),
        ),
        "indented_comment_tab": (
            b"  # note\nx\ty\n1\t2\n3\t4\n",
            ok([("x", "int"), ("y", "int")], [[1, 2], [3, 4]], skip_lines=1, delimiter="\t"),
        ),
    },
    "preamble": {
        "instrument_metadata": (
            b"Instrument: HX-200\nSerial: 00451\nExported: 2024-03-01 10:00\n\ntime,ch1,ch2,ch3\n0,0.1,0.2,0.3\n1,0.2,0.3,0.4\n",
            ok(
                [("time", "int"), ("ch1", "float"), ("ch2", "float"), ("ch3", "float")],
                [[0, 0.1, 0.2, 0.3], [1, 0.2, 0.3, 0.4]],
                skip_lines=4,
            ),
        ),
        "portal_title_lines": (
            b"Table 3. Population by region\nSource: national office\n\nregion,year,population\nNorth,2020,1500\nSouth,2020,2300\nEast,2021,900\n",
            ok(
                [("region", "string"), ("year", "int"), ("population", "int")],
                [["North", 2020, 1500], ["South", 2020, 2300], ["East", 2021, 900]],
                skip_lines=3,
            ),
        ),
        "key_value_semicolon": (
            b"Station: 401\nPeriod: 2024-03\n\nday;flow;speed\n1;120;61.5\n2;98;58.0\n3;101;60.2\n",
            ok(
                [("day", "int"), ("flow", "int"), ("speed", "float")],
                [[1, 120, 61.5], [2, 98, 58.0], [3, 101, 60.2]],
                skip_lines=3,
                delimiter=";",
            ),
        ),
        "world_bank_style": (
            b'"Data Source","World Development Indicators",\n\n"Last Updated Date","2024-03-28",\n\n'
            b'"Country Name","Country Code","1990","1991",\n"Aruba","ABW","62149","64622",\n'
            b'"Angola","AGO","11828638","12228691",\n',
            ok(
                [
                    ("Country Name", "string"),
                    ("Country Code", "string"),
                    ("1990", "int"),
                    ("1991", "int"),
                    ("column_5", "string|int|float"),
                ],
                [["Aruba", "ABW", 62149, 64622, None], ["Angola", "AGO", 11828638, 12228691, None]],
                skip_lines=4,
            ),
        ),
    },
    "bom": {
        "excel_utf8": (
            b"\xef\xbb\xbfid,name\n1,Zo\xc3\xab\n2,Ann\n",
            ok([("id", "int"), ("name", "string")], [[1, "Zo\u00eb"], [2, "Ann"]], bom=True),
        ),
        "bom_semicolon_crlf": (
            b"\xef\xbb\xbfcode;value\r\n01;1.5\r\n02;2.5\r\n",
            ok([("code", "string"), ("value", "float")], [["01", 1.5], ["02", 2.5]], bom=True, delimiter=";"),
        ),
        "bom_quoted_header": (
            b'\xef\xbb\xbf"id","label"\n"1","a"\n"2","b"\n',
            ok([("id", "int"), ("label", "string")], [[1, "a"], [2, "b"]], bom=True),
        ),
    },
    "blank_first_line": {
        "one_blank": (
            b"\nid,v\n1,2\n3,4\n",
            ok([("id", "int"), ("v", "int")], [[1, 2], [3, 4]], skip_lines=1),
        ),
        "blank_lines_crlf": (
            b"\r\n\r\nid,v\r\n1,x\r\n",
            ok([("id", "int"), ("v", "string")], [[1, "x"]], skip_lines=2),
        ),
        "spaces_line": (
            b"   \nname|n\nann|1\nbob|2\n",
            ok([("name", "string"), ("n", "int")], [["ann", 1], ["bob", 2]], skip_lines=1, delimiter="|"),
        ),
    },
    "leading_zeros": {
        "zip_codes": (
            b"zip,city\n08123,Newark\n10001,New York\n02134,Boston\n",
            ok(
                [("zip", "string"), ("city", "string")],
                [["08123", "Newark"], ["10001", "New York"], ["02134", "Boston"]],
            ),
        ),
        "commune_codes": (
            b"code_commune,nb\n09001,12\n09002,0\n01,5\n",
            ok([("code_commune", "string"), ("nb", "int")], [["09001", 12], ["09002", 0], ["01", 5]]),
        ),
        "zero_itself_is_a_number": (
            b"id,count\n0,0\n10,007\n20,3\n",
            ok([("id", "int"), ("count", "string")], [[0, "0"], [10, "007"], [20, "3"]]),
        ),
    },
    "big_numbers": {
        "beyond_int64": (
            b"id,big\n1,12345678901234567890\n2,5\n3,-99999999999999999999\n",
            ok(
                [("id", "int"), ("big", "decimal|string")],
                [[1, "12345678901234567890"], [2, "5"], [3, "-99999999999999999999"]],
            ),
        ),
        "many_digit_decimals": (
            b"account,amount\nA,82544000000000707.52\nB,1.5\nC,0.25\n",
            ok(
                [("account", "string"), ("amount", "decimal|string")],
                [["A", "82544000000000707.52"], ["B", "1.5"], ["C", "0.25"]],
            ),
        ),
        "precise_constants": (
            b"name,value\npi,3.14159265358979323846\ne,2.71828182845904523536\n",
            ok(
                [("name", "string"), ("value", "decimal|string")],
                [["pi", "3.14159265358979323846"], ["e", "2.71828182845904523536"]],
            ),
        ),
    },
    "booleans": {
        "f_t_letters": (
            b"id,active\n1,f\n2,t\n3,f\n",
            ok([("id", "int"), ("active", "string")], [[1, "f"], [2, "t"], [3, "f"]]),
        ),
        "yes_no": (
            b"id,member\n1,YES\n2,NO\n3,YES\n",
            ok([("id", "int"), ("member", "string")], [[1, "YES"], [2, "NO"], [3, "YES"]]),
        ),
        "true_false_and_digits": (
            b"id,ok,flag\n1,true,1\n2,false,0\n3,TRUE,1\n",
            ok([("id", "int"), ("ok", "bool"), ("flag", "int")], [[1, True, 1], [2, False, 0], [3, True, 1]]),
        ),
    },
    "stray_quote": {
        "inches": (
            b'item,size,qty\nruler,12" long,3\npipe,3/4" wide,5\n',
            ok(
                [("item", "string"), ("size", "string"), ("qty", "int")],
                [["ruler", '12" long', 3], ["pipe", '3/4" wide', 5]],
            ),
        ),
        "instrument_label": (
            b'channel,label\n1,E"(1.000 Hz)\n2,E"(2.000 Hz)\n3,plain\n',
            ok(
                [("channel", "int"), ("label", "string")],
                [[1, 'E"(1.000 Hz)'], [2, 'E"(2.000 Hz)'], [3, "plain"]],
            ),
        ),
        "quote_mid_word": (
            b'id,name\n1,O"Brien\n2,Smith\n',
            ok([("id", "int"), ("name", "string")], [[1, 'O"Brien'], [2, "Smith"]]),
        ),
    },
    "unclosed_quote": {
        "mid_file": (
            b'id,text\n1,ok\n2,"never closed\n3,x\n4,y\n',
            refused("line 3", "never closed"),
        ),
        "last_line": (
            b'id,text\n1,ok\n2,fine\n3,"open\n',
            refused("line 4", "never closed"),
        ),
        "crlf_unclosed": (
            b'a,b\r\n1,2\r\n"3,4\r\n5,6\r\n',
            refused("line 3", "never closed"),
        ),
    },
    "ragged": {
        "extra_field": (
            b"a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n",
            refused("line 3"),
        ),
        "missing_field": (
            b"a;b;c\n1;2;3\n4;5\n6;7;8\n9;10;11\n",
            refused("line 3"),
        ),
        "trailing_junk_row": (
            b"x,y\n1,2\n3,4\n5,6\nTotal rows: 3, printed 2024-03-01, page 1\n",
            refused("line 5"),
        ),
    },
}


def main() -> None:
    for category, cases in CASES.items():
        directory = HERE / category
        directory.mkdir(exist_ok=True)
        for name, (data, expected) in cases.items():
            (directory / f"{name}.csv").write_bytes(data)
            (directory / f"{name}.expected.json").write_text(
                json.dumps(expected, indent=1, ensure_ascii=False) + "\n"
            )


if __name__ == "__main__":
    main()
