"""Candidate specs: the strings users pass to `tunewise eval --candidate`.

    zero-shot:MODEL            the task's system prompt only
    few-shot:MODEL?k=8         k training examples in the prompt, balanced across labels
    knn-few-shot:MODEL?k=8     the k training examples most similar to each input (TF-IDF retrieval)
    adapter:RUN                a LoRA or full fine-tune from the store (run id or folder)
    endpoint:URL#MODEL         any OpenAI-compatible /v1/chat/completions endpoint
    classic:tfidf              TF-IDF + logistic regression trained on the training set

A local candidate (zero-shot, few-shot, knn-few-shot, adapter) of a classification task also takes
`constrained=1` (or `decoding=constrained`): the model may only spell a label. `constrained=0`
(`decoding=free`) generates greedily and stops when a label is complete. Without either, `eval.decoding`
decides. The decoding is part of the candidate's name (`adapter:run-1?constrained=1`), so the free
and the constrained decoding of one model are two candidates, side by side in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from tunewise.errors import EvaluationError

KINDS = ("zero-shot", "few-shot", "knn-few-shot", "adapter", "endpoint", "classic")
LOCAL_KINDS = ("zero-shot", "few-shot", "knn-few-shot", "adapter")
DECODINGS = ("free", "constrained")
_INT_PARAMS = {"k"}
_DECODING_PARAMS = {"constrained", "decoding"}
_KNOWN = _INT_PARAMS | _DECODING_PARAMS
_YES, _NO = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class CandidateSpec:
    """A parsed candidate: `kind`, its `target` (model, run, URL or classifier) and `params` (`k`, `model`, `decoding`)."""

    spec: str
    kind: str
    target: str
    params: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The canonical spelling shown in reports (`few-shot:smollm2-135m?k=8` even when k was defaulted)."""
        if self.kind == "endpoint":
            return f"endpoint:{self.target}#{self.params['model']}"
        options = [f"k={self.params['k']}"] if self.kind in ("few-shot", "knn-few-shot") else []
        if self.decoding == "constrained":
            options.append("constrained=1")
        return f"{self.kind}:{self.target}" + (f"?{'&'.join(options)}" if options else "")

    @property
    def decoding(self) -> str | None:
        """'free' or 'constrained' for a local candidate (classification decoding), None for endpoints and classic."""
        return self.params.get("decoding", "free") if self.kind in LOCAL_KINDS else None

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


def parse_spec(spec: str, *, default_k: int = 8, default_decoding: str = "free") -> CandidateSpec:
    """Parse one candidate spec; raises `EvaluationError` naming the bad part.

    `default_decoding` is the decoding of a local candidate that names none (`eval.decoding`).
    Example: parse_spec("few-shot:smollm2-135m?k=4&constrained=1")
             -> CandidateSpec(kind="few-shot", target="smollm2-135m", params={"k": 4, "decoding": "constrained"})
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
        if _DECODING_PARAMS & {key for key, _ in parse_qsl(model.partition("?")[2])}:
            raise EvaluationError(f"candidate {spec!r}: constrained= and decoding= apply to local models only; an endpoint decodes as its server does")
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
        elif key in _DECODING_PARAMS:
            decoding = _decoding(spec, key, value)
            if params.get("decoding", decoding) != decoding:
                raise EvaluationError(f"candidate {spec!r}: the decoding is given twice, differently")
            params["decoding"] = decoding
        else:
            raise EvaluationError(f"candidate {spec!r}: unknown option {key!r} (known: {', '.join(sorted(_KNOWN))})")
    if kind == "classic" and target.lower() != "tfidf":
        raise EvaluationError(f"candidate {spec!r}: the only classic classifier is classic:tfidf")
    if kind in ("few-shot", "knn-few-shot"):
        params.setdefault("k", default_k)
    elif "k" in params:
        raise EvaluationError(f"candidate {spec!r}: k= only applies to few-shot and knn-few-shot candidates")
    if kind in LOCAL_KINDS:
        if default_decoding not in DECODINGS:
            raise EvaluationError(f"eval.decoding {default_decoding!r}: use one of {', '.join(DECODINGS)}")
        params.setdefault("decoding", default_decoding)
    elif "decoding" in params:
        raise EvaluationError(f"candidate {spec!r}: constrained= and decoding= apply to local models only; classic:tfidf predicts a label directly")
    return CandidateSpec(text, kind, target, params)


def _decoding(spec: str, key: str, value: str) -> str:
    value = value.strip().lower()
    if key == "decoding":
        if value not in DECODINGS:
            raise EvaluationError(f"candidate {spec!r}: decoding={value!r}: use decoding=free or decoding=constrained")
        return value
    if value in _YES:
        return "constrained"
    if value in _NO:
        return "free"
    raise EvaluationError(f"candidate {spec!r}: constrained={value!r}: use constrained=1 or constrained=0")


__all__ = ["CandidateSpec", "parse_spec", "KINDS", "LOCAL_KINDS", "DECODINGS"]
