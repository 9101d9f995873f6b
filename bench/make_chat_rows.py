"""Write N synthetic OpenAI chat examples for the audit benchmark (seeded, about 15 s per million rows).

    .venv/bin/python bench/make_chat_rows.py 1000000 /tmp/chat-1m.jsonl [--seed 0] [--eval 2000 /tmp/chat-eval.jsonl]

Each row is a support conversation: a shared system prompt, a user message of 2-6 sentences built from
a few hundred templates with random slot words and numbers (so that rows are varied, yet share
phrases the way real tickets do), and a free-text assistant reply. Planted, by share of rows:
- 3% near duplicates: an earlier row with a few words changed, dropped or added;
- 1% exact duplicates: an earlier row re-cased and with extra spaces;
- 2% PII: an email, a phone number, a Luhn-valid card number, an IBAN or an SSN.
The eval set (`--eval`) is made of fresh rows, 1% of which are near copies of training rows.
"""

from __future__ import annotations

import argparse
import random
import re
import string
from pathlib import Path

import orjson

SYSTEM = "You are the support assistant of Acme Cloud. Answer briefly and politely; escalate billing disputes."


def _vocab(rng: random.Random, size: int) -> list[str]:
    """The English words of the bundled sample task (realistic tokenization), padded with random words."""
    from tunewise.sample import sample_paths

    paths = sample_paths()
    words = set()
    for key in ("train", "eval", "annotations"):
        words |= set(re.findall(r"[a-z]{2,}", paths[key].read_text(encoding="utf-8").lower()))
    while len(words) < size:
        words.add("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9))))
    return sorted(words)


def _templates(rng: random.Random, vocab: list[str], count: int) -> list[str]:
    """Sentence templates: fixed words with {} slots (filled per row)."""
    out = []
    for _ in range(count):
        words = [rng.choice(vocab) for _ in range(rng.randint(5, 12))]
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randrange(len(words) + 1), "{}")
        out.append(" ".join(words).capitalize() + rng.choice([".", "?", "!", "."]))
    return out


def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    digits.append((10 - total % 10) % 10)
    s = "".join(map(str, digits))
    return " ".join(s[i : i + 4] for i in range(0, 16, 4))


def _iban(rng: random.Random) -> str:
    bban = "".join(str(rng.randrange(10)) for _ in range(18))  # DE: 8-digit bank code + 10-digit account
    numeric = int(bban + "131400")  # D=13 E=14, then 00
    check = 98 - numeric % 97
    return f"DE{check:02d}{bban}"


def _pii(rng: random.Random, vocab: list[str]) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return f"Write to me at {rng.choice(vocab)}.{rng.choice(vocab)}@{rng.choice(vocab)}.com please."
    if kind == 1:
        return f"Call me on +1 (555) {rng.randint(200, 999)}-{rng.randint(1000, 9999)} after five."
    if kind == 2:
        return f"My card is {_luhn_card(rng)} and it was charged twice."
    if kind == 3:
        return f"Please refund to IBAN {_iban(rng)} today."
    return f"My SSN is {rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)} for the tax form."


def _edit(rng: random.Random, text: str, vocab: list[str]) -> str:
    words = text.split()
    for _ in range(max(1, len(words) // 15)):
        op = rng.randrange(3)
        i = rng.randrange(len(words))
        if op == 0:
            words[i] = rng.choice(vocab)
        elif op == 1 and len(words) > 5:
            del words[i]
        else:
            words.insert(i, rng.choice(vocab))
    return " ".join(words)


def generate(n: int, seed: int = 0, *, vocab_size: int = 1_400, templates: int = 400):
    """Yield (user text, reply) pairs; near and exact duplicates copy from a window of recent rows."""
    rng = random.Random(seed)
    vocab = _vocab(rng, vocab_size)
    sentences = _templates(rng, vocab, templates)
    replies = _templates(rng, vocab, 60)
    recent: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if recent and roll < 0.03:
            text = _edit(rng, rng.choice(recent), vocab)
        elif recent and roll < 0.04:
            text = "  ".join(rng.choice(recent).upper().split(" "))
        else:
            parts = []
            for _ in range(rng.randint(2, 6)):
                template = rng.choice(sentences)
                parts.append(template.format(*(rng.choice(vocab) if rng.random() < 0.8 else str(rng.randint(2, 99_999))
                                               for _ in range(template.count("{}")))))
            if rng.random() < 0.02:
                parts.insert(rng.randrange(len(parts) + 1), _pii(rng, vocab))
            text = " ".join(parts)
        if len(recent) < 5_000:
            recent.append(text)
        else:
            recent[rng.randrange(5_000)] = text
        reply_template = rng.choice(replies)
        reply = reply_template.format(*(rng.choice(vocab) for _ in range(reply_template.count("{}"))))
        yield text, reply


def row(text: str, reply: str) -> bytes:
    return orjson.dumps({"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text},
                                      {"role": "assistant", "content": reply}]}) + b"\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval", nargs=2, metavar=("N", "EVAL_OUT"), help="also write an eval set of N rows")
    args = parser.parse_args()
    kept: list[str] = []
    rng = random.Random(args.seed + 1)
    with open(args.out, "wb") as handle:
        for i, (text, reply) in enumerate(generate(args.n, args.seed)):
            handle.write(row(text, reply))
            if args.eval and rng.random() < 0.002 and len(kept) < 10_000:
                kept.append(text)
    if args.eval:
        n_eval, eval_out = int(args.eval[0]), Path(args.eval[1])
        vocab = _vocab(random.Random(args.seed), 1_400)
        with open(eval_out, "wb") as handle:
            for i, (text, reply) in enumerate(generate(n_eval, args.seed + 1_000)):
                if kept and i % 100 == 0:  # 1% contamination: near copies of training rows
                    text = _edit(rng, rng.choice(kept), vocab)
                handle.write(row(text, reply))
    print(f"wrote {args.n:,} rows to {args.out}" + (f" and {args.eval[0]} eval rows to {args.eval[1]}" if args.eval else ""))


if __name__ == "__main__":
    main()
