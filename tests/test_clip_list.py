import pytest

from trainers.data.clip_list import ClipListError, TaskClasses, infer_num_classes, read_clip_list, write_clip_list

TASKS = [TaskClasses("k400", 5), TaskClasses("ssv2", 3)]


def write(tmp_path, text, name="list.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_space_and_comma_separated_relative_and_absolute_paths(tmp_path):
    path = write(tmp_path, "# comment\n\na.mp4 1 2\nsub dir/b c.mp4,4,0\n/abs/c.mp4 0 1\n")
    entries = read_clip_list(path, TASKS)
    assert [e.path for e in entries] == [
        str(tmp_path / "a.mp4"), str(tmp_path / "sub dir/b c.mp4"), "/abs/c.mp4"
    ]
    assert [e.labels for e in entries] == [(1, 2), (4, 0), (0, 1)]
    assert [e.line for e in entries] == [3, 4, 5]


def test_wrong_column_count_names_file_and_line(tmp_path):
    path = write(tmp_path, "a.mp4 1 2\nb.mp4 1\n")
    with pytest.raises(ClipListError, match=r"list\.csv:2: expected a path and 2 label column"):
        read_clip_list(path, TASKS)


def test_label_not_an_integer_or_class_name(tmp_path):
    path = write(tmp_path, "a.mp4 1 x\n")
    with pytest.raises(ClipListError, match=r"list\.csv:1: label 'x' of task 'ssv2'"):
        read_clip_list(path, TASKS)


def test_label_outside_the_task_classes(tmp_path):
    path = write(tmp_path, "a.mp4 1 2\na.mp4 5 0\n")
    with pytest.raises(ClipListError, match=r"list\.csv:2: label 5 is not a class of task 'k400' 0\.\.4"):
        read_clip_list(path, TASKS)
    with pytest.raises(ClipListError, match="label -1"):
        read_clip_list(write(tmp_path, "a.mp4 -1 0\n", "neg.csv"), TASKS)


def test_class_names_as_labels(tmp_path):
    tasks = [TaskClasses("motion", class_names=("left", "right"))]
    entries = read_clip_list(write(tmp_path, "a.mp4 right\nb.mp4 0\n"), tasks)
    assert [e.labels for e in entries] == [(1,), (0,)]


def test_missing_and_empty_lists(tmp_path):
    with pytest.raises(ClipListError, match="does not exist"):
        read_clip_list(tmp_path / "nope.csv", TASKS)
    with pytest.raises(ClipListError, match="has no clips"):
        read_clip_list(write(tmp_path, "# only a comment\n\n"), TASKS)


def test_class_count_inferred_from_labels(tmp_path):
    entries = read_clip_list(write(tmp_path, "a.mp4 7 0\nb.mp4 2 1\n"), [TaskClasses("a"), TaskClasses("b", 4)])
    tasks = infer_num_classes(entries, [TaskClasses("a"), TaskClasses("b", 4)])
    assert [t.num_classes for t in tasks] == [8, 4]


def test_written_list_reads_back(tmp_path):
    rows = [("x.mp4", [1, 2]), ("with space.mp4", [0, 0])]
    write_clip_list(tmp_path / "out.csv", rows)
    entries = read_clip_list(tmp_path / "out.csv", TASKS)
    assert [(e.path, list(e.labels)) for e in entries] == [(str(tmp_path / p), labels) for p, labels in rows]


def test_paths_with_spaces_quoted_or_tab_separated(tmp_path):
    path = write(tmp_path, '"my clip.mp4" 1 2\nother clip.mp4\t3\t0\n\'b c.mp4\' 0 1\n')
    entries = read_clip_list(path, TASKS)
    assert [e.path for e in entries] == [str(tmp_path / n) for n in ("my clip.mp4", "other clip.mp4", "b c.mp4")]
    assert [e.labels for e in entries] == [(1, 2), (3, 0), (0, 1)]


def test_unquoted_space_in_a_labelled_path_fails_with_file_line(tmp_path):
    path = write(tmp_path, "a.mp4 1 2\nmy clip.mp4 1 2\n")
    with pytest.raises(ClipListError, match=r"list\.csv:2: expected a path and 2 label column.*quoted"):
        read_clip_list(path, TASKS)


def test_pretraining_list_never_cuts_a_path_at_a_space(tmp_path):
    """V-JEPA's 'path 0' lines keep working; a path with spaces is read whole when quoted or tab-separated, and
    refused with file:line when bare, instead of being cut to its first word."""
    ok = write(tmp_path, 'a.mp4 0\nb.mp4\n"my clip.mp4" 0\nyour clip.mp4\t0\n', "ok.csv")
    assert [e.path for e in read_clip_list(ok, [], labels=False)] == [
        str(tmp_path / n) for n in ("a.mp4", "b.mp4", "my clip.mp4", "your clip.mp4")]
    for text in ("a.mp4 0\nmy clip.mp4\n", "a.mp4\nmy clip.mp4 0\n"):
        bad = write(tmp_path, text, "bad.csv")
        with pytest.raises(ClipListError, match=r"bad\.csv:2: expected a path .*quoted"):
            read_clip_list(bad, [], labels=False)


def test_unclosed_quote_names_file_and_line(tmp_path):
    path = write(tmp_path, 'a.mp4 1 2\n"b.mp4 1 2\n')
    with pytest.raises(ClipListError, match=r"list\.csv:2: .*close the quote"):
        read_clip_list(path, TASKS)


def test_written_list_with_spaces_reads_back(tmp_path):
    rows = [("my clip.mp4", (1, 2)), ("/abs/x y.mp4", (0, 0))]
    write_clip_list(tmp_path / "out.csv", rows)
    assert [(e.path, e.labels) for e in read_clip_list(tmp_path / "out.csv", TASKS)] == [
        (str(tmp_path / "my clip.mp4"), (1, 2)), ("/abs/x y.mp4", (0, 0))]
