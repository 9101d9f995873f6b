"""Data preparation: read any supported format as OpenAI chat examples, validate, clean and split.

    from tunewise.data.formats import iter_records, load_examples, example_text, example_label
    from tunewise.data.validate import validate_chat_example

Importing, cleaning and splitting files live in `tunewise.data.clean` and `tunewise.data.split`;
the audit checks in their own modules (`pii`, `dedup`, ...).
"""
