"""A training run outside a terminal (stderr captured, as in CI or `> log`) prints plain progress lines."""

from __future__ import annotations

import re

from .conftest import tiny_config


def test_training_without_a_tty_prints_plain_progress_lines(tiny_model_dir, chat_files, store, capsys):
    from tunewise.train import train

    train_path, eval_path = chat_files
    run = train(tiny_config(tiny_model_dir, train_path, eval_path, max_steps=20), store=store, progress=True)

    assert run.status == "completed"
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("train  ")]
    assert "\x1b[" not in err  # plain text, not a live bar's escape codes
    assert 15 <= len(lines) <= 22, err
    percents = [int(re.search(r"\((\d+)%\)", line).group(1)) for line in lines]
    assert percents == sorted(percents) and percents[-1] == 100
    assert re.match(r"train  \d+/20 \(\d+%\)  loss \d+\.\d{4}  .*tok/s  elapsed \d+:\d\d  ETA \d+:\d\d$", lines[len(lines) // 2])
    assert lines[-1].startswith("train  20/20 (100%)"), err
