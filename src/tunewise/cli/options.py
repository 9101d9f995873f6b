"""Command-line options generated from a typed config section, so that a setting is declared once.

    @config_options(TrainConfig, aliases={"learning_rate": ("--lr",)})
    def train_command(config_file: Path = typer.Option(None, "--config"), *, settings: dict) -> None:
        config = override(load_config().train, **settings)

Every field of the pydantic model becomes `--kebab-name` with the field's description as its help;
a bool becomes `--x/--no-x`; a list is written comma-separated. Every generated option defaults to
None, "not given", so the YAML (or the recipe, where the field's empty value means "the recipe
chooses") keeps its say; the field's own default is shown in the help. Values are validated by the
model itself (`tunewise.config.override`), so a bad one is the same one-line error as in a YAML file.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Optional

import typer
from pydantic import BaseModel

from tunewise.config import flag_name


def config_options(
    model: type[BaseModel],
    *,
    into: str = "settings",
    aliases: Mapping[str, tuple[str, ...]] | None = None,
    parsers: Mapping[str, Callable[[str], Any]] | None = None,
    exclude: tuple[str, ...] = (),
    panel: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator that adds one option per field of `model` to a Typer command.

    The command receives the generated options as one dict, keyword `into`: {field: value or None}.
    `aliases` keeps older or shorter flag names working beside the generated one (`--lr`), `parsers`
    turns a field's text into its value where comma-splitting is not enough, `exclude` leaves fields
    out, and `panel` groups the options in `--help`. Nested sections (a field that is itself a model)
    have no flag.
    """
    aliases, parsers = dict(aliases or {}), dict(parsers or {})
    fields = {name: field for name, field in model.model_fields.items() if name not in exclude and not _is_model(field.annotation)}
    for name in [*aliases, *parsers]:
        if name not in fields:
            raise ValueError(f"{model.__name__} has no field {name!r} to give a flag")

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != into]
        clash = sorted(set(fields) & {p.name for p in own})
        if clash:
            raise ValueError(f"{command.__name__}: parameters {clash} are also {model.__name__} fields")
        generated = [_parameter(name, field, aliases.get(name, ()), parsers.get(name), panel) for name, field in fields.items()]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            settings = {name: kwargs.pop(name) for name in fields}
            return command(**kwargs, **{into: settings})

        # Typer reads the parameters from the signature and their types from the annotations.
        wrapper.__signature__ = signature.replace(parameters=[_keyword(p) for p in own] + generated)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in wrapper.__signature__.parameters.values()}  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _parameter(name: str, field, aliases: tuple[str, ...], parser, panel: str | None) -> inspect.Parameter:
    kind = _base_type(field.annotation)
    help_text = field.description or name.replace("_", " ")
    if typing.get_origin(kind) is typing.Literal:
        values = typing.get_args(kind)
        if not all(str(v) in help_text for v in values):
            help_text += f" (one of: {', '.join(map(str, values))})"
        # Kept as text: the model rejects a wrong choice with the same one-line error as a YAML file does.
        kind = str
    elif _is_list(kind):
        parser = parser or _comma_list
        help_text += " (comma-separated on the command line)"
    if kind is bool:
        decls = [f"{flag}/--no-{flag[2:]}" for flag in (flag_name(name), *aliases)]
        annotation: Any = Optional[bool]
    else:
        decls = [flag_name(name), *aliases]
        annotation = Optional[str] if parser is not None or kind not in (int, float, str) else Optional[kind]
    shown = _shown_default(field)
    option = typer.Option(
        None, *decls, help=help_text, rich_help_panel=panel, parser=parser, metavar="a,b,..." if _is_list(kind) else None,
        show_default=shown if shown is not None else False,
    )
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def _keyword(parameter: inspect.Parameter) -> inspect.Parameter:
    # Typer passes every value by name; keyword-only lets the generated parameters follow ones with defaults.
    return parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)


def _base_type(annotation: Any) -> Any:
    """`int | None` -> int; `list[str] | str` -> list[str] (the list is what the command line writes)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        lists = [a for a in members if _is_list(a)]
        return lists[0] if lists else members[0] if len(members) == 1 else str
    return annotation


def _is_list(kind: Any) -> bool:
    return kind is list or typing.get_origin(kind) in (list, tuple, set)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _shown_default(field) -> str | None:
    """The field's own default as help text; None (no default shown) where it is empty or computed."""
    if field.default_factory is not None or field.default is None:
        return None
    if isinstance(field.default, bool):
        return "yes" if field.default else "no"
    if isinstance(field.default, (list, tuple)):
        return ",".join(map(str, field.default))
    return str(field.default)


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


__all__ = ["config_options"]
