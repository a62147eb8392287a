"""Task registry: lazy resolution, ad-hoc ``module:function`` tasks, model-version checks."""

from __future__ import annotations

import sys
import types

import pytest

from neurospine.batch.tasks import TaskSpec, VersionCheck, get_task, parse_tasks, resolve, task_names
from neurospine.errors import InputError


def test_registry_names_and_lazy_targets() -> None:
    assert {"spine", "cord", "slice2d", "brainage-t1", "info"} <= set(task_names())
    assert "selftest" not in task_names() and "selftest" in task_names(include_hidden=True)
    assert get_task("spine").target == "neurospine.spine.api:run_file"
    assert get_task("brainage-t1").suffixes == ("T1w",)
    assert get_task("brainage-t1").target == "neurospine.batch.adapters:brainage_t1"
    assert [s.name for s in parse_tasks("info, info,selftest")] == ["info", "selftest"]
    with pytest.raises(InputError, match="no task"):
        parse_tasks(" , ")


def test_adhoc_task_and_missing_module() -> None:
    spec = get_task("neurospine.batch.info_task:run_file")
    assert callable(resolve(spec.target))
    with pytest.raises(InputError, match="not available"):
        resolve("neurospine.not_there.api:run_file")
    with pytest.raises(InputError, match="no callable"):
        resolve("neurospine.batch.info_task:nothing_here")
    with pytest.raises(InputError, match="unknown task"):
        get_task("pkg.mod:")


def test_version_check_uses_declared_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = types.ModuleType("fake_task_mod")
    mod.model_versions = lambda: {"seg": "2.0"}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_task_mod", mod)
    spec = TaskSpec("fake", "fake_task_mod")
    check = VersionCheck()
    assert check.is_current(spec, {"seg": "2.0"})
    assert not check.is_current(spec, {"seg": "1.0"})
    assert check.is_current(spec, {})
    # without model_versions(): compared with installed cards; an uninstalled model is never current
    plain = TaskSpec("plain", "neurospine.batch.info_task")
    assert not VersionCheck().is_current(plain, {"no-such-model": "1"})
