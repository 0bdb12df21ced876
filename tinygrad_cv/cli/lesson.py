"""``tgcv lesson list`` and ``tgcv lesson run NAME [--quick] [--out DIR]``.

Lessons are the modules ``lessons/NN_topic.py`` of the ``lessons`` package. Their
titles are read from the source (docstring first line, or a ``TITLE`` constant)
without importing them, so listing works even while a lesson cannot run.
"""
from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path
from types import ModuleType

import click

from . import fail

LESSON_NAME = re.compile(r"^\d+_\w+$")


def lessons_package() -> ModuleType:
    """The ``lessons`` package: installed, or found next to this checkout's ``tinygrad_cv``.

    "lessons" is a generic name; a package of that name from another distribution is
    refused with one line rather than run.
    """
    try:
        module = importlib.import_module("lessons")
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "lessons" / "__init__.py").is_file():
            raise
        sys.path.insert(0, str(root))
        module = importlib.import_module("lessons")
    if getattr(module, "PROJECT", None) != "tinygrad_cv":
        where = getattr(module, "__file__", None) or list(getattr(module, "__path__", []))
        fail(f"the 'lessons' package at {where} is not tinygrad_cv's (another package of that name "
             f"shadows it); install tinygrad_cv in a virtual environment of its own")
    return module


def discover() -> dict[str, Path]:
    """Lesson id (``01_knn``) -> source file, in the course's order."""
    folder = Path(next(iter(lessons_package().__path__)))
    files = {p.stem: p for p in folder.glob("*.py") if LESSON_NAME.match(p.stem)}
    return {k: files[k] for k in sorted(files, key=lambda s: (int(s.split("_", 1)[0]), s))}


def title(path: Path) -> str:
    """A lesson's one-line title: its ``TITLE`` constant, else its docstring's first line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "TITLE" for t in node.targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value.strip()
    doc = (ast.get_docstring(tree) or "").strip()
    return doc.splitlines()[0].strip().rstrip(".") if doc else ""


def resolve(name: str, known: list[str]) -> str:
    """The lesson id meant by ``name``: the id, its number (``6`` or ``06``), the name without its
    number, or a unique prefix of either."""
    bare = {k: k.split("_", 1)[1] for k in known}
    number = [k for k in known if name.isdigit() and int(k.split("_", 1)[0]) == int(name)]
    for matches in ([k for k in known if k == name], number, [k for k in known if bare[k] == name],
                    [k for k in known if k.startswith(name) or bare[k].startswith(name)]):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise click.UsageError(f"lesson {name!r} is ambiguous: {', '.join(matches)}")
    raise click.UsageError(f"no lesson {name!r}; `tgcv lesson list` shows the {len(known)} lessons")


@click.group(name="lesson")
def command() -> None:
    """List or run the course's lessons."""


@command.command(name="list")
def list_lessons() -> None:
    """One line per lesson: its id, then its title."""
    found = discover()
    width = max((len(k) for k in found), default=0)
    for key, path in found.items():
        click.echo(f"{key.ljust(width)}  {title(path)}")


@command.command(name="run", short_help="Run one lesson, by id, number or topic: 01_knn, 1, knn.")
@click.argument("name")
@click.option("--quick", is_flag=True, help="Smaller data and fewer steps: seconds, not minutes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Folder for the lesson's figures.")
def run_lesson(name: str, quick: bool, out: Path | None) -> None:
    """Run lesson NAME, given by its id, its number or its topic: 01_knn, 1, 01 or knn."""
    found = discover()
    try:
        key = resolve(name, list(found))
    except click.UsageError as e:
        fail(e.format_message())
    argv = (["--quick"] if quick else []) + (["--out", str(out)] if out is not None else [])
    try:
        module = importlib.import_module(f"lessons.{key}")
        module.main(argv)
    except AssertionError as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else "a check failed"
        fail(f"lesson {key}: {msg}", 1)
    except (Exception, SystemExit) as e:
        if isinstance(e, SystemExit) and not e.code:
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        fail(f"lesson {key} stopped: {type(e).__name__}{': ' + msg if msg else ''}", 1)
    click.echo("\nAll checks passed.")
