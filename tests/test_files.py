from __future__ import annotations

import pytest

from hibiki.files import atomic_path, write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "rows.jsonl"
    write_text_atomic(target, "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]
    write_text_atomic(target, "new\n")
    assert target.read_text() == "new\n" and not list(tmp_path.glob("*.jsonl.tmp")) and not list(tmp_path.glob(".*"))
