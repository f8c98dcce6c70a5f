"""Quiet, readable output: DVC's progress condensed to one line per step on a terminal (all of it
with --verbose), and tables that fit 80 columns whatever the terminal or log width."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from labship import data
from labship.compress.report import REPORT_HEADERS
from labship.progress import CondensedProgress, parse_bar
from labship.report import TABLE_WIDTH, print_table
from tests.data_servers import invoke

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeTerminal(io.StringIO):
    """What a terminal receives (isatty: DVC draws its bars into it)."""

    def isatty(self) -> bool:
        return True


def screen(raw: str) -> list[str]:
    """The lines a terminal shows for `raw`: each `\\r` returns to the line start and overwrites."""
    lines = []
    for line in ANSI.sub("", raw).split("\n"):
        shown = ""
        for part in line.split("\r"):
            shown = part + shown[len(part) :]
        lines.append(shown.rstrip())
    return [line for line in lines if line]


def fragments(raw: str) -> int:
    return len([part for part in re.split(r"[\r\n]", raw) if part.strip()])


class Recorder:
    """Keeps what DVC wrote (as --verbose shows it) and passes it on to the condensed stream."""

    def __init__(self, inner: CondensedProgress) -> None:
        self.inner, self.raw = inner, ""

    def isatty(self) -> bool:
        return self.inner.isatty()

    def write(self, text: str) -> int:
        self.raw += text
        return self.inner.write(text)

    def flush(self) -> None:
        self.inner.flush()


def test_dvc_push_shows_one_line_per_step(experiment: Path) -> None:
    terminal = FakeTerminal()
    condensed = CondensedProgress(terminal)
    recorder = Recorder(condensed)

    pushed = data.push(experiment, uplink_mbps=24.5, echo=recorder)  # type: ignore[arg-type]
    condensed.finish()

    lines = screen(terminal.getvalue())
    assert pushed.files > 0
    assert not [line for line in lines if line.strip() in {"!", ""}], lines
    step_lines = [line for line in lines if re.search(r" \d[\d./?kMGT]*$", line)]
    labels = [line.rsplit(" ", 1)[0] for line in step_lines]
    assert labels and len(labels) == len(set(labels)), lines  # one line per step
    assert any(label.startswith("Pushing to") for label in labels), lines
    assert lines[-1] == f"{pushed.files + pushed.manifests} files pushed"  # DVC's own summary is kept
    assert len(lines) < fragments(recorder.raw) / 2, (lines, recorder.raw)


def test_dvc_bar_fragments_are_parsed() -> None:
    # fragments as DVC 3.67 writes them on a terminal
    assert parse_bar("Collecting          |14.0 [00:00, 64.9entry/s]") == ("Collecting", "14.0")
    assert parse_bar("  0% Querying remote cache|          |0/2 [00:00<?,    ?files/s]") == (
        "Querying remote cache",
        "0/2",
    )
    assert parse_bar("  0%|          |Pushing to local            0/14 [00:00<?,     ?file/s]") == (
        "Pushing to local",
        "0/14",
    )
    assert parse_bar("  0% |          |0/? [00:00<?,    ?files/s]") == ("", "0/?")
    assert parse_bar("14 files pushed") is None
    assert parse_bar("ERROR: failed to push data to the cloud - 3 files failed to upload") is None


def test_in_a_log_each_step_is_written_once_without_carriage_returns() -> None:
    log = io.StringIO()
    condensed = CondensedProgress(log)
    condensed.write("Collecting   |8.00 [00:00, 71.6entry/s]\rCollecting   |14.0 [00:00, 64.9entry/s]\n\r!\r")
    condensed.write("Pushing\n\r  0%|   |Pushing to local   3/14 [00:00<?, ?file/s]\r")
    condensed.write("  0%|   |Pushing to local   14/14 [00:01, 9 file/s]\n\rPushing\n14 files pushed\n")
    condensed.finish()
    assert "\r" not in log.getvalue()
    assert log.getvalue().splitlines() == [
        "Collecting 14.0",
        "Pushing",
        "Pushing to local 14/14",
        "14 files pushed",
    ]


def compress_rows(count: int) -> list[list[str]]:
    row = [
        "pems",
        "6",
        "6",
        "2,400",
        "0",
        "1.2 MB",
        "280 kB",
        "4.2x",
        "5/47",
        "0.4 s",
        "3.0",
        "0.4 s -> 0.1 s",
    ]
    return [[f"{row[0]}-{index}", *row[1:]] for index in range(count)]


def test_compress_table_fits_80_columns_for_any_number_of_datasets() -> None:
    headers = [*REPORT_HEADERS[:-1], "upload at 24.5 Mbit/s: CSV -> Parquet"]
    for terminal in (True, False):
        for count in (1, 3, 8):
            out = io.StringIO()
            console = Console(file=out, width=200, force_terminal=terminal)
            print_table("labship compress", headers, compress_rows(count), console)
            text = ANSI.sub("", out.getvalue())
            assert max(len(line) for line in text.splitlines()) <= TABLE_WIDTH, text
            for index in range(count):  # nothing cut or folded: every dataset and value is there
                assert f"pems-{index}" in text
            assert text.count("0.4 s -> 0.1 s") == count
            assert "upload at 24.5 Mbit/s: CSV -> Parquet" in text


def test_invoke_compress_output_fits_80_columns(experiment: Path) -> None:
    result = invoke(experiment, "compress", extra_env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "upload at 24.5 Mbit/s" in result.stdout
    too_wide = [line for line in result.stdout.splitlines() if len(line) > 80]
    assert not too_wide, result.stdout
