"""The saved-scripts store: names, atomic saves, rename, delete."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.runs.scripts_store import MAX_SCRIPT_BYTES, ScriptError, ScriptStore, check_name


def test_save_read_list_rename_delete(tmp_path: Path) -> None:
    store = ScriptStore(tmp_path)
    assert store.list() == []
    info = store.save("b.py", "print('é')\n")
    assert info.name == "b.py" and info.size == len("print('é')\n".encode())
    store.save("A.py", "x = 1\n")
    assert [s.name for s in store.list()] == ["A.py", "b.py"]
    assert store.read("b.py") == "print('é')\n"
    store.save("b.py", "print(2)\n")
    assert store.read("b.py") == "print(2)\n"
    store.rename("b.py", "c.py")
    assert [s.name for s in store.list()] == ["A.py", "c.py"]
    store.delete("c.py")
    assert [p.name for p in (tmp_path / "projects").iterdir()] == ["A"]
    assert [p.name for p in (tmp_path / "projects" / "A").iterdir()] == ["A.py"]


@pytest.mark.parametrize(
    "name", ["../x.py", "a/b.py", ".hidden.py", "x.txt", "x", "", "a..b.py", "x" * 81 + ".py"]
)
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(ScriptError) as err:
        check_name(name)
    assert str(err.value) == (
        f"script name {name!r} is not allowed; use letters, digits, '_', '-', '.' or spaces, "
        "at most 80 characters, ending in .py"
    )


def test_refusals_name_the_problem(tmp_path: Path) -> None:
    store = ScriptStore(tmp_path)
    with pytest.raises(ScriptError, match=r"no script named 'nope\.py'"):
        store.read("nope.py")
    with pytest.raises(ScriptError, match=r"no script named 'nope\.py'"):
        store.delete("nope.py")
    store.save("a.py", "")
    store.save("b.py", "")
    with pytest.raises(ScriptError, match=r"a script named 'b\.py' exists already"):
        store.rename("a.py", "b.py")
    with pytest.raises(ScriptError, match=f"keeps scripts up to {MAX_SCRIPT_BYTES} bytes"):
        store.save("big.py", "#" * (MAX_SCRIPT_BYTES + 1))
    assert not (tmp_path / "projects" / "big" / "big.py").exists()
