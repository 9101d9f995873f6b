"""Prompt recipes as served models: a name that runs a candidate spec of `tunewise eval` over the served base.

An adapter spec is a recipe too (`--recipe tickets="adapter:run-3f2a?constrained=1" --recipe-data train.jsonl`):
the adapter answers with the evaluation's label stopping or constrained decoding, which a plain `--adapter`
does not know (it has no label list). A deployment serves its adapter variants this way, so that traffic
gets what the evaluation measured.

`--recipe tickets-knn="knn-few-shot:smollm2-135m?k=8" --recipe-data train.jsonl` serves, under
`tickets-knn`, exactly what the evaluation measured for that spec: the same system prompt (the
configured one plus the label list, or the request's own system message), the same shots (balanced
few-shot, or the k nearest training rows to the request's text), and for classification the same label
stopping or constrained label decoding. The prompt is built by `evaluate.candidates.prompts_for`, the
function the evaluation itself calls, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunewise.errors import ConfigError, TunewiseError
from tunewise.evaluate.specs import CandidateSpec
from tunewise.evaluate.tasks import Example, Task
from tunewise.serve.backend import ModelCard
from tunewise.serve.protocol import ChatCompletionRequest

PROMPT_KINDS = ("zero-shot", "few-shot", "knn-few-shot")
RECIPE_KINDS = (*PROMPT_KINDS, "adapter")


@dataclass
class Recipe:
    spec: CandidateSpec
    task: Task
    train: list[Example] | None
    config: object  # EvalConfig
    retriever: object | None = None

    @property
    def labels(self) -> tuple[str, ...] | None:
        return tuple(self.task.labels) if self.task.type == "classification" and self.task.labels else None

    @property
    def decoding(self) -> str:
        return self.spec.decoding or "free"

    def messages(self, request: ChatCompletionRequest) -> list[dict]:
        """The chat prompt the evaluation would build for this request's messages."""
        from tunewise.evaluate.candidates import prompts_for

        chat = request.chat()
        text = "\n".join(m["content"] for m in chat if m["role"] == "user")
        row = Example(0, 0, chat, text, None)
        return prompts_for(self.spec, self.task, [row], self.train, self.config, self.retriever)[0]


def parse_recipe(name: str, text: str, task: Task | None = None) -> CandidateSpec:
    """The candidate spec of `--recipe NAME=TEXT`, with the evaluation's defaults; refuses kinds a recipe cannot run."""
    from tunewise.config import load_config
    from tunewise.evaluate.run import _parse

    try:
        spec = _parse(text, load_config().eval, task)
    except TunewiseError as exc:
        raise ConfigError(f"--recipe {name}: {exc}") from exc
    if spec.kind not in RECIPE_KINDS:
        raise ConfigError(f"--recipe {name}: {spec.kind} is not a prompt recipe or an adapter: serve endpoints with --upstream")
    return spec


def build_recipes(specs: dict[str, str], data_path: str | None, model_name: str, served: dict, *, store=None) -> dict:
    """Served entries (`local._Served`) for recipe name -> candidate spec, checked before the server starts.

    An adapter recipe needs its adapter already loaded in the engine under the recipe's own name
    (`LocalBackend` does that first); it keeps the adapter and adds the evaluation's decoding.
    """
    from tunewise.config import load_config
    from tunewise.evaluate.tasks import Retriever, detect_task, load_rows
    from tunewise.serve.local import _Served

    config = load_config().eval
    train = load_rows(data_path) if data_path else None
    task = detect_task(train, train) if train else Task("text")
    base = next(entry for entry in served.values() if entry.card.kind == "base")
    retriever = None
    recipes = {}
    for name, text in specs.items():
        spec = parse_recipe(name, text, task)
        if spec.kind == "adapter":
            loaded = served.get(name)
            if loaded is None or loaded.adapter != name:
                raise ConfigError(f"--recipe {name}: the adapter {spec.target} is not loaded")
            recipes[name] = _Served(ModelCard(name, "adapter", base.card.id, source=spec.name), name,
                                    Recipe(spec, task, train, config, retriever))
            continue
        if spec.target != model_name:
            raise ConfigError(f"--recipe {name}: runs {spec.target} but this server serves {model_name} (start one server per base model)")
        if spec.needs_train and train is None:
            raise ConfigError(f"--recipe {name}: {spec.kind} needs its examples: pass --recipe-data TRAIN (the training file)")
        if spec.kind == "knn-few-shot" and retriever is None:
            retriever = Retriever(train or [])
        card = ModelCard(name, "recipe", base.card.id, source=spec.name)
        recipes[name] = _Served(card, base.adapter, Recipe(spec, task, train, config, retriever))
    return recipes


__all__ = ["Recipe", "build_recipes", "parse_recipe", "PROMPT_KINDS", "RECIPE_KINDS"]
