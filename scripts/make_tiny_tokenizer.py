"""Build the tiny byte-level BPE tokenizer with a ChatML template that unit tests use (no download).

    .venv/bin/python scripts/make_tiny_tokenizer.py   # writes tests/assets/tiny-tokenizer/

Byte-level, so any text (emoji, broken encodings) tokenizes; 512 entries so tiny models stay tiny.
"""

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from tunewise.models import CHATML_TEMPLATE_WITH_GENERATION

OUT = Path(__file__).resolve().parents[1] / "tests" / "assets" / "tiny-tokenizer"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "I was charged twice for my subscription this month, please refund the duplicate payment.",
    "The app crashes when I upload a file larger than 10 MB. Steps to reproduce below.",
    "Could you add dark mode and an export to CSV? It would help our team a lot.",
    "How do I invite my colleagues to the workspace? The onboarding guide is unclear.",
    "I cannot log in, the password reset email never arrives.",
    "Please cancel my account at the end of the billing period.",
    "billing bug-report feature-request onboarding account-access refund cancellation integration",
    "performance security data-export how-to system user assistant positive negative neutral",
    '{"name": "Ada", "amount": 12.5, "items": ["a", "b"]} classify the ticket into one of the categories',
] * 20


def main() -> None:
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE_WITH_GENERATION
    OUT.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(OUT)
    print(f"wrote {OUT} ({len(fast)} tokens)")


if __name__ == "__main__":
    main()
