"""Registry of batch tasks: name -> ``module:function`` imported only when the task runs.

Every task function has the signature of the pipelines' public API::

    run_file(image_path: Path, out_dir: Path, *, threads: int = 1, **options) -> TaskResult

A task module may also expose ``model_versions() -> dict[str, str]`` (cheap, no model loading); the
batch runner uses it to decide whether a finished case is still current. Without it, the versions a
case recorded are compared with the installed model cards. ``--tasks`` also accepts
``package.module:function`` for a task of your own.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from neurospine.errors import InputError, ModelNotFoundError

log = logging.getLogger(__name__)

TaskFunction = Callable[..., Any]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    module: str
    function: str = "run_file"
    description: str = ""
    #: BIDS suffixes the task accepts; other scans are recorded as ``skipped``. ``None``: any.
    suffixes: tuple[str, ...] | None = None
    #: left out of ``--help`` listings (test helpers)
    hidden: bool = False

    @property
    def target(self) -> str:
        return f"{self.module}:{self.function}"


_BUILTIN: tuple[TaskSpec, ...] = (
    TaskSpec("spine", "neurospine.spine.api", description="whole-spine semantic + instance masks, levels, heights"),
    TaskSpec("cord", "neurospine.cord.api", description="spinal cord mask and CSA per level"),
    TaskSpec("slice2d", "neurospine.slice2d.api", description="mid-sagittal body/disc masks, heights, radiomics"),
    # adapter: uses neurospine.brainage.api.run_file when present, else wraps its predict_t1_files
    TaskSpec(
        "brainage-t1",
        "neurospine.batch.adapters",
        "brainage_t1",
        description="brain age from a raw T1w volume",
        suffixes=("T1w",),
    ),
    TaskSpec(
        "info",
        "neurospine.batch.info_task",
        description="image facts: grid, spacing, intensities, foreground volume, snapshot (no model; fast)",
    ),
    TaskSpec(
        "selftest",
        "neurospine.batch.selftest_task",
        description="test helper: info + sleep/fail on demand",
        hidden=True,
    ),
)

_REGISTRY: dict[str, TaskSpec] = {t.name: t for t in _BUILTIN}


def register_task(spec: TaskSpec) -> None:
    """Add or replace a task (in this process only; worker processes import by ``spec.target``)."""
    _REGISTRY[spec.name] = spec


def task_names(*, include_hidden: bool = False) -> list[str]:
    return [n for n, t in _REGISTRY.items() if include_hidden or not t.hidden]


def get_task(name: str) -> TaskSpec:
    """The spec for ``name``; ``pkg.module:function`` defines an ad-hoc task."""
    name = name.strip()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        module, _, function = name.partition(":")
        if module and function.isidentifier():
            return TaskSpec(name, module, function, description="user task")
    raise InputError(
        None,
        f"unknown task '{name}'",
        f"use one of {', '.join(task_names())} or 'package.module:function'",
    )


def parse_tasks(text: str | list[str]) -> list[TaskSpec]:
    names = text.split(",") if isinstance(text, str) else [n for part in text for n in part.split(",")]
    specs = [get_task(n) for n in names if n.strip()]
    if not specs:
        raise InputError(None, "no task given", "pass --tasks, e.g. --tasks spine,cord")
    seen: set[str] = set()
    unique = [s for s in specs if not (s.name in seen or seen.add(s.name))]  # type: ignore[func-returns-value]
    return unique


def resolve(target: str) -> TaskFunction:
    """Import ``module:function`` (lazily, in whichever process runs the task)."""
    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise InputError(
                None,
                f"task module {module_name} is not available in this installation",
                "update neurospine or pick another task (`neurospine batch --help` lists them)",
            ) from e
        raise
    fn = getattr(module, function, None)
    if not callable(fn):
        raise InputError(None, f"{module_name} has no callable '{function}'", "check the task name")
    return fn


def check_available(spec: TaskSpec) -> None:
    """Fail early (before any case runs) when a task's module cannot be imported."""
    resolve(spec.target)


class VersionCheck:
    """Is a finished case's model set still the installed one? Cached per task for one run."""

    def __init__(self) -> None:
        self._declared: dict[str, dict[str, str] | None] = {}

    def _declared_versions(self, spec: TaskSpec) -> dict[str, str] | None:
        if spec.name not in self._declared:
            versions: dict[str, str] | None = None
            try:
                module = importlib.import_module(spec.module)
                fn = getattr(module, "model_versions", None)
                if callable(fn):
                    versions = {str(k): str(v) for k, v in dict(fn()).items()}
            except ImportError:
                versions = None
            self._declared[spec.name] = versions
        return self._declared[spec.name]

    def is_current(self, spec: TaskSpec, recorded: Mapping[str, str]) -> bool:
        declared = self._declared_versions(spec)
        for name, version in recorded.items():
            if declared is not None:
                if declared.get(name) != version:
                    return False
                continue
            try:
                from neurospine.models import load_card

                if load_card(name).version != version:
                    return False
            except ModelNotFoundError:
                log.info("model %s recorded by a finished %s case is no longer installed", name, spec.name)
                return False
        return True
