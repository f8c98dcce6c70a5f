"""Condense DVC's progress output to one line per step on a terminal.

DVC draws tqdm bars (each update ends in `\\r`), blank "clear" lines and `!` spinner frames; a
`dvc push` of 14 files writes ~15 such fragments, a large one hundreds, and in a log or a narrow
terminal each becomes a line. `CondensedProgress` wraps the stream `labship.data.run_dvc` forwards
DVC's output to and, fragment by fragment:

- a bar (`NN%|...|`, `N/M [..]`, `N.N [..]`) becomes `<step> <count>`, where the step is the bar's
  text label ("Collecting", "Querying remote cache", "Pushing to local"). On a terminal it rewrites
  the current line (`\\r`) while the step stays the same and starts a new line when it changes;
  elsewhere only the last state of each step is written, once;
- `!` frames and blank or whitespace-only fragments are dropped;
- a bar without a label (a per-file bar inside a step) is dropped;
- any other line (DVC's messages, warnings, errors) is written as it is, after closing the step line;
  a line equal to the previous such line is dropped (DVC repeats "Pushing" around its bars).

Secrets are already masked by `run_dvc` before the text arrives here.
"""

from __future__ import annotations

import re
import shutil
from typing import TextIO

# tqdm's pieces: a percentage, a bar between pipes, a count with an optional total, the [time, rate]
_PERCENT = re.compile(r"^\s*\d+%")
_BAR = re.compile(r"\|[^|]*\|")
_COUNT = re.compile(r"(\d+(?:\.\d+)?[kMGT]?(?:/(?:\d+(?:\.\d+)?[kMGT]?|\?))?)\s*\[[^\]]*\]")
_SPINNER = frozenset({"!", "|", "/", "-", "\\"})


def parse_bar(fragment: str) -> tuple[str, str] | None:
    """(step label, count) of a tqdm bar fragment, or None when the fragment is not a bar."""
    count = _COUNT.search(fragment)
    if count is None and not _PERCENT.match(fragment):
        return None
    label = _COUNT.sub(" ", fragment)
    label = _BAR.sub(" ", _PERCENT.sub(" ", label)).replace("|", " ")
    return " ".join(label.split()), count.group(1) if count else ""


class CondensedProgress:
    """A text stream that writes DVC's output to `stream` with its progress condensed (see module)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.terminal = bool(getattr(stream, "isatty", lambda: False)())
        self._pending = ""
        self._step = ""  # label of the open step line ("" when none)
        self._shown = ""  # what the open step line shows
        self._last_line = ""  # the last plain (non-bar) line written

    def isatty(self) -> bool:
        """As the wrapped stream: `run_dvc` asks DVC for bars only when this is a terminal."""
        return self.terminal

    def write(self, text: str) -> int:
        self._pending += text
        *complete, self._pending = re.split(r"(?<=[\r\n])", self._pending)
        for fragment in complete:
            self._fragment(fragment)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def finish(self) -> None:
        """Write what is still pending and close the open step line."""
        if self._pending:
            self._fragment(self._pending)
            self._pending = ""
        self._close_step()
        self.stream.flush()

    def _fragment(self, fragment: str) -> None:
        text = fragment.strip()
        if not text or text in _SPINNER:
            return
        bar = parse_bar(text)
        if bar is None:
            self._close_step()
            if text != self._last_line:
                self.stream.write(text + "\n")
            self._last_line = text
            return
        label, count = bar
        if label:  # a bar without a label is a per-file bar inside the step: not shown
            self._show(label, count)

    def _show(self, label: str, count: str) -> None:
        if label != self._step:
            self._close_step()
            self._step = label
        line = " ".join(filter(None, (label, count)))
        if self.terminal:
            width = shutil.get_terminal_size().columns - 1
            line = line[:width]
            self.stream.write("\r" + line.ljust(len(self._shown)))
            self.stream.flush()
        self._shown = line

    def _close_step(self) -> None:
        if self._shown:
            self.stream.write("\n" if self.terminal else self._shown + "\n")
        self._step = self._shown = ""
