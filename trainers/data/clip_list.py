"""Clip lists in the format users already have for K400/SSv2 (V-JEPA's CSV lists).

One clip per line: a path, then one label column per task (pre-training lists need no labels: a
path per line, or a path and integer columns such as V-JEPA's dummy label, which are ignored).
Columns are separated by tabs when the line has a tab, else by commas when it has a comma (CSV
quoting allowed), else by whitespace, where a path with spaces must be quoted ("my clip.mp4" 3);
there is no header. A line whose columns do not fit fails with `file:line`: a path is never cut at
a space without a word. Blank lines and lines that start with '#' are ignored. A relative path is relative to the folder of the list file, so a
list and its clips can move together. A label is an integer class index, or a class name when
the task's class names are known.
"""

from __future__ import annotations

import csv
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class ClipListError(ValueError):
    """A clip list that cannot be used; the message names the file (and line) and the fix."""


@dataclass(frozen=True)
class TaskClasses:
    """The label space of one task: its name, class count and (optionally) class names."""

    name: str
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.class_names is not None and self.num_classes is None:
            object.__setattr__(self, "num_classes", len(self.class_names))
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"task {self.name!r}: {len(self.class_names)} class names but num_classes={self.num_classes}"
            )


@dataclass(frozen=True)
class ClipEntry:
    path: str
    labels: tuple[int, ...]
    line: int


_SPACES_HINT = ("a path with spaces must be quoted (\"my clip.mp4\" 3) or the line's columns separated by tabs "
                "or commas")


def _split_line(text: str, where: str) -> tuple[list[str], bool]:
    """The line's columns, and whether they were split on whitespace (where a space in a path is ambiguous)."""
    if "\t" in text:
        return [part.strip() for part in text.split("\t")], False
    if "," in text:
        return [part.strip() for part in next(csv.reader([text], skipinitialspace=True))], False
    if '"' in text or "'" in text:
        try:
            return shlex.split(text), True
        except ValueError as error:
            raise ClipListError(f"{where}: {error} in {text!r}; close the quote around the path") from None
    return text.split(), True


def _is_integer(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True


def _parse_label(token: str, task: TaskClasses, where: str) -> int:
    try:
        label = int(token)
    except ValueError:
        if task.class_names is not None and token in task.class_names:
            return task.class_names.index(token)
        known = "" if task.class_names is None else f" (known names: {', '.join(task.class_names[:12])}...)"
        raise ClipListError(
            f"{where}: label {token!r} of task {task.name!r} is neither an integer class index "
            f"nor a class name{known}"
        ) from None
    if label < 0 or (task.num_classes is not None and label >= task.num_classes):
        bound = "" if task.num_classes is None else f" 0..{task.num_classes - 1}"
        raise ClipListError(
            f"{where}: label {label} is not a class of task {task.name!r}{bound}; fix the list or "
            f"set the task's class count in the experiment config (data.num_classes)"
        )
    return label


def read_clip_list(path: str | os.PathLike, tasks: Sequence[TaskClasses], *, labels: bool = True) -> list[ClipEntry]:
    """Parse a clip list; every error names `file:line` and what was expected there. `labels=False` reads
    a pre-training list: the path only, any further columns (V-JEPA's dummy label, say) ignored."""
    list_path = Path(path).expanduser()
    if not list_path.is_file():
        raise ClipListError(
            f"clip list {str(list_path)!r} does not exist; give a CSV with one 'path label...' line per clip, "
            f"or use the embedded synthetic data set (data.dataset: synthetic)"
        )
    root = list_path.resolve().parent
    tasks = tasks if labels else ()
    entries: list[ClipEntry] = []
    with open(list_path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            where = f"{list_path}:{number}"
            columns, by_whitespace = _split_line(text, where)
            if not labels:
                # V-JEPA's pre-training lists carry a dummy integer label; anything else after a path split on
                # whitespace is most likely the rest of a path with spaces, which must not be dropped silently.
                if by_whitespace and not all(_is_integer(column) for column in columns[1:]):
                    raise ClipListError(f"{where}: expected a path (then integer labels, ignored), found "
                                        f"{len(columns)} columns in {text!r}; {_SPACES_HINT}")
                columns = columns[:1]
            if len(columns) != 1 + len(tasks):
                names = ", ".join(task.name for task in tasks) or "none"
                hint = f"; {_SPACES_HINT}" if by_whitespace and len(columns) > 1 + len(tasks) else ""
                raise ClipListError(
                    f"{where}: expected a path and {len(tasks)} label column(s) (tasks: {names}), "
                    f"found {len(columns)} column(s) in {text!r}{hint}"
                )
            clip_path = columns[0]
            if not clip_path:
                raise ClipListError(f"{where}: empty path")
            if not os.path.isabs(clip_path):
                clip_path = str(root / clip_path)
            parsed = tuple(_parse_label(tok, task, where) for tok, task in zip(columns[1:], tasks))
            entries.append(ClipEntry(clip_path, parsed, number))
    if not entries:
        raise ClipListError(f"clip list {str(list_path)!r} has no clips (only blank or comment lines)")
    return entries


def infer_num_classes(entries: Sequence[ClipEntry], tasks: Sequence[TaskClasses]) -> list[TaskClasses]:
    """Fill in unknown class counts from the labels seen (max + 1), e.g. from the train list."""
    filled = []
    for column, task in enumerate(tasks):
        if task.num_classes is None:
            task = TaskClasses(task.name, max(entry.labels[column] for entry in entries) + 1, None)
        filled.append(task)
    return filled


def write_clip_list(path: str | os.PathLike, rows: Sequence[tuple[str, Sequence[int]]]) -> None:
    """Write a list in the same format (space-separated; paths as given), atomically."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        for clip_path, labels in rows:
            if any(ch.isspace() for ch in clip_path):
                handle.write("\t".join([clip_path, *map(str, labels)]) + "\n")
            else:
                handle.write(" ".join([clip_path, *map(str, labels)]) + "\n")
    os.replace(tmp, target)
