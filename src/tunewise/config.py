"""The workspace configuration: one typed object, loaded from `tunewise.yaml`, overridden by CLI flags.

Each lifecycle stage owns its section (`DataConfig` in `tunewise.data.config`, `TrainConfig` in
`tunewise.train.config`, ...). `tunewise init` writes the defaults with each field's description as
a YAML comment, so the file documents itself. Runs save the merged config beside their artifacts.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tunewise.advise.config import MOVED_TO_THRESHOLDS, AdviseConfig
from tunewise.data.config import DataConfig
from tunewise.deploy.config import DeployConfig
from tunewise.errors import ConfigError, SettingMovedWarning
from tunewise.evaluate.config import EvalConfig
from tunewise.serve.config import ServeConfig
from tunewise.train.config import TrainConfig

M = TypeVar("M", bound=BaseModel)


class HardwareConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("cpu", description="What this machine is, for reports (e.g. 'laptop-cpu', 'h100')")
    hourly_usd: float = Field(
        0.10, ge=0, description="What an hour of this machine costs, in USD: prices local training and inference"
    )


class TunewiseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field("smollm2-135m", description="Base model: 'smollm2-135m' (embedded), a local Hugging Face folder or a .gguf file")
    store_url: str | None = Field(None, description="SQLAlchemy URL of the store; empty means SQLite in .tunewise/ (TUNEWISE_DB_URL overrides)")
    hardware: HardwareConfig = Field(default_factory=HardwareConfig, description="The machine that trains and serves locally")
    data: DataConfig = Field(default_factory=DataConfig, description="Data import, audit, cleaning and splitting")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Evaluation")
    advise: AdviseConfig = Field(default_factory=AdviseConfig, description="Decision and ROI")
    serve: ServeConfig = Field(default_factory=ServeConfig, description="The OpenAI-compatible server (tunewise serve)")
    deploy: DeployConfig = Field(default_factory=DeployConfig, description="Deployments: traffic splits, the request log and alert rules")

    @model_validator(mode="before")
    @classmethod
    def _lift_moved_settings(cls, data: Any) -> Any:
        # The advice's bars moved to data.thresholds (one set for the audit and the advice); a tunewise.yaml
        # written by an earlier `tunewise init` must still open, with a warning that says which line to move.
        advise = data.get("advise") if isinstance(data, dict) else None
        moved = [old for old in MOVED_TO_THRESHOLDS if isinstance(advise, dict) and old in advise]
        if not moved:
            return data
        advise = dict(advise)
        section = dict(data.get("data") or {})
        thresholds = dict(section.get("thresholds") or {})
        for old in moved:
            new = MOVED_TO_THRESHOLDS[old]
            value = advise.pop(old)
            if new in thresholds:
                note = f"advise.{old} is ignored: data.thresholds.{new} is set too; delete the advise line"
            else:
                thresholds[new] = value
                note = f"advise.{old} is now data.thresholds.{new}; read from the old place this time, move the line"
            warnings.warn(note, SettingMovedWarning, stacklevel=2)
        section["thresholds"] = thresholds
        return {**data, "advise": advise, "data": section}


def load_yaml_model(path: str | Path, model: type[BaseModel], *, section: str | None = None) -> BaseModel:
    """Load a YAML file into a pydantic model; every problem becomes one line naming the file and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from exc
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: invalid YAML ({problem})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    if section is not None and section in raw and isinstance(raw[section], dict) and len(raw) == 1:
        raw = raw[section]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation_error(exc)}") from exc


def format_validation_error(exc: ValidationError, *, flags: bool = False) -> str:
    """Every problem of `exc` on one line; `flags` names the top-level setting as its flag (`--lora-r`)."""
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        if flags and loc:
            loc[0] = flag_name(loc[0])
        field = ".".join(loc) or "(top level)"
        message = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def load_config(path: str | Path | None = None) -> TunewiseConfig:
    """The workspace config: `path`, else the workspace's `tunewise.yaml`, else the defaults."""
    from tunewise import workspace

    if path is None:
        candidate = workspace.config_path()
        if not candidate.exists():
            return TunewiseConfig()
        path = candidate
    return load_yaml_model(path, TunewiseConfig)  # type: ignore[return-value]


def override(config: M, /, *, clear: Iterable[str] = (), **flags: Any) -> M:
    """A validated copy of `config` with `flags` laid over it: the one way settings are overridden.

    A flag whose value is None was not given and leaves its setting alone (a CLI option left out, a
    library caller passing its own default through); `clear` names settings to set to None on purpose
    (YAML's `null`, a trial that must not reuse its parent's output_dir). A bad value is one ConfigError
    line that names the setting as its flag: `--lora-r: Input should be greater than or equal to 1`.
    Example: config = override(load_config().train, learning_rate=lr, epochs=None)
    """
    given = {key: value for key, value in flags.items() if value is not None}
    given.update(dict.fromkeys(clear))
    fields = type(config).model_fields
    unknown = sorted(key for key in given if key not in fields)
    if unknown:
        raise ConfigError("; ".join(f"{flag_name(key)}: unknown setting" for key in unknown))
    try:
        # Dumping only the set fields keeps `model_fields_set` meaning "chosen by someone", not "everything".
        return config.model_validate({**config.model_dump(exclude_unset=True), **given})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, flags=True)) from exc


def flag_name(field: str) -> str:
    """The command-line flag of a config field: `learning_rate` -> `--learning-rate`."""
    return "--" + field.replace("_", "-")


def render_yaml(config: BaseModel, *, indent: int = 0) -> str:
    """YAML for a config with each field's description as a comment above it."""
    lines: list[str] = []
    pad = "  " * indent
    for name, field in type(config).model_fields.items():
        value = getattr(config, name)
        if field.description:
            lines.append(f"{pad}# {field.description}")
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:")
            lines.append(render_yaml(value, indent=indent + 1))
        elif isinstance(value, list) and any(isinstance(item, BaseModel) for item in value):
            # A list of settings objects (alert rules): block style, one item per group of lines, readable to edit.
            items = [item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in value]
            dumped = yaml.safe_dump({name: items}, default_flow_style=False, sort_keys=False, width=10_000).rstrip()
            lines.extend(f"{pad}{line}" for line in dumped.splitlines())
        else:
            dumped = yaml.safe_dump({name: value}, default_flow_style=True, sort_keys=False, width=10_000).strip()
            if dumped.startswith("{") and dumped.endswith("}"):
                dumped = dumped[1:-1]
            lines.append(f"{pad}{dumped}")
    return "\n".join(lines)


def save_config(config: BaseModel, path: str | Path) -> Path:
    """Write a config as commented YAML (used by `tunewise init` and beside every run)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_yaml(config) + "\n", encoding="utf-8")
    return path
