"""Managed fine-tuning providers: plugins behind one interface (`Provider`), found by name.

    from tunewise.train.providers import train_with_provider
    run = train_with_provider("together", model="meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
                              dataset="train.jsonl", eval_dataset=None, hyperparameters={"n_epochs": 3},
                              yes=True, store=store)

Providers register under the entry-point group `tunewise.providers` (name = a `Provider` subclass).
The built-ins (`openai`, `together`) are declared there in tunewise's own pyproject, exactly as a
third-party package would declare its own:

    [project.entry-points."tunewise.providers"]
    acme = "acme_tunewise:AcmeProvider"

`register_provider()` does the same at run time (tests, notebooks).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from tunewise.errors import ConfigError
from tunewise.train.providers.base import Provider, ProviderEvent, ProviderJob, UploadedFile

ENTRY_POINT_GROUP = "tunewise.providers"

# The built-ins' entry points, used as well when the installed package metadata predates them
# (an editable install made before they were declared).
_BUILTIN = {
    "openai": "tunewise.train.providers.openai:OpenAIProvider",
    "together": "tunewise.train.providers.together:TogetherProvider",
}
_registered: dict[str, type[Provider]] = {}


def register_provider(name: str, cls: type[Provider]) -> None:
    """Make `cls` available as `--provider NAME` in this process."""
    _registered[name] = cls


def _entry_points() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    for name, target in _BUILTIN.items():
        found.setdefault(name, metadata.EntryPoint(name=name, value=target, group=ENTRY_POINT_GROUP))
    return found


def available_providers() -> list[str]:
    return sorted({*_entry_points(), *_registered})


def provider_class(name: str) -> type[Provider]:
    if name in _registered:
        return _registered[name]
    entry = _entry_points().get(name)
    if entry is None:
        raise ConfigError(f"unknown provider {name!r} (available: {', '.join(available_providers())})")
    try:
        cls = entry.load()
    except Exception as exc:  # a broken third-party plugin must not take the CLI down with a traceback
        raise ConfigError(f"provider {name!r}: cannot load {entry.value} ({type(exc).__name__}: {exc})") from exc
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ConfigError(f"provider {name!r}: {entry.value} is not a tunewise Provider subclass")
    return cls


def get_provider(name: str, **options: Any) -> Provider:
    """A provider configured from the environment (its base URL and API key variables)."""
    return provider_class(name).from_env(**options)


from tunewise.train.providers.jobs import (  # noqa: E402  (jobs imports the registry above)
    PollSettings,
    cancel_provider_run,
    follow_provider_run,
    train_with_provider,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PollSettings",
    "Provider",
    "ProviderEvent",
    "ProviderJob",
    "UploadedFile",
    "available_providers",
    "cancel_provider_run",
    "follow_provider_run",
    "get_provider",
    "provider_class",
    "register_provider",
    "train_with_provider",
]
