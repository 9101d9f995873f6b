"""Candidate specs: the strings users pass to `tunewise eval --candidate`.

    zero-shot:MODEL            the task's system prompt only
    few-shot:MODEL?k=8         k training examples in the prompt, balanced across labels
    knn-few-shot:MODEL?k=8     the k training examples most similar to each input (TF-IDF retrieval)
    adapter:RUN                a LoRA or full fine-tune from the store (run id or folder)
    endpoint:URL#MODEL         any OpenAI-compatible /v1/chat/completions endpoint
    classic:tfidf              TF-IDF + logistic regression trained on the training set
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from tunewise.errors import EvaluationError

KINDS = ("zero-shot", "few-shot", "knn-few-shot", "adapter", "endpoint", "classic")
_INT_PARAMS = {"k"}


@dataclass(frozen=True)
class CandidateSpec:
    """A parsed candidate: `kind`, its `target` (model, run, URL or classifier) and `params` (`k`, `model`)."""

    spec: str
    kind: str
    target: str
    params: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The canonical spelling shown in reports (`few-shot:smollm2-135m?k=8` even when k was defaulted)."""
        if self.kind in ("few-shot", "knn-few-shot"):
            return f"{self.kind}:{self.target}?k={self.params['k']}"
        if self.kind == "endpoint":
            return f"endpoint:{self.target}#{self.params['model']}"
        return f"{self.kind}:{self.target}"

    @property
    def model(self) -> str | None:
        """The model a prompt candidate runs, or the endpoint's model name."""
        if self.kind in ("zero-shot", "few-shot", "knn-few-shot"):
            return self.target
        return self.params.get("model")

    @property
    def needs_train(self) -> bool:
        return self.kind in ("few-shot", "knn-few-shot", "classic")

    @property
    def is_fine_tune(self) -> bool:
        return self.kind == "adapter"


def parse_spec(spec: str, *, default_k: int = 8) -> CandidateSpec:
    """Parse one candidate spec; raises `EvaluationError` naming the bad part.

    Example: parse_spec("few-shot:smollm2-135m?k=4") -> CandidateSpec(kind="few-shot", target="smollm2-135m", params={"k": 4})
    """
    text = spec.strip()
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise EvaluationError(
            f"candidate {spec!r}: expected KIND:TARGET with KIND one of {', '.join(KINDS)} "
            "(e.g. few-shot:smollm2-135m?k=8, adapter:run-1a2b, endpoint:http://localhost:8000/v1#my-model, classic:tfidf)"
        )
    rest = rest.strip()
    if not rest:
        raise EvaluationError(f"candidate {spec!r}: nothing after '{kind}:'")
    params: dict = {}
    if kind == "endpoint":
        url, hash_, model = rest.rpartition("#") if "#" in rest else (rest, "", "")
        if not hash_ or not model.strip():
            raise EvaluationError(f"candidate {spec!r}: an endpoint needs URL#MODEL, e.g. endpoint:http://localhost:8000/v1#gpt-4o-mini")
        if not url.startswith(("http://", "https://")):
            raise EvaluationError(f"candidate {spec!r}: the endpoint URL must start with http:// or https://")
        params["model"] = model.strip()
        return CandidateSpec(text, kind, url.rstrip("/"), params)
    target, _, query = rest.partition("?")
    target = target.strip()
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in _INT_PARAMS:
            try:
                params[key] = int(value)
            except ValueError:
                raise EvaluationError(f"candidate {spec!r}: {key}={value!r} is not a whole number") from None
            if params[key] < 0:
                raise EvaluationError(f"candidate {spec!r}: {key} must be 0 or more")
        else:
            raise EvaluationError(f"candidate {spec!r}: unknown option {key!r} (known: {', '.join(sorted(_INT_PARAMS))})")
    if kind == "classic" and target.lower() != "tfidf":
        raise EvaluationError(f"candidate {spec!r}: the only classic classifier is classic:tfidf")
    if kind in ("few-shot", "knn-few-shot"):
        params.setdefault("k", default_k)
    elif "k" in params:
        raise EvaluationError(f"candidate {spec!r}: k= only applies to few-shot and knn-few-shot candidates")
    return CandidateSpec(text, kind, target, params)


__all__ = ["CandidateSpec", "parse_spec", "KINDS"]
