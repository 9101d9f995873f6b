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


from .test_providers import OPENAI_SUCCESS, TODAY, data, fake_openai, openai, openai_server, poll, waits  # noqa: E402,F401


def test_a_provider_job_followed_without_a_tty_prints_plain_progress_lines(fake_openai, data, store, poll, waits, capsys):  # noqa: F811
    from tunewise.train.providers import train_with_provider

    train_path, valid = data
    fake_openai.script = [dict(s) for s in OPENAI_SUCCESS]
    run = train_with_provider(openai(fake_openai, waits), model="gpt-4o-mini-2024-07-18", dataset=str(train_path),
                              eval_dataset=str(valid), hyperparameters={"n_epochs": 3}, yes=True, store=store, poll=poll, today=TODAY)

    assert run.status == "completed"
    err = capsys.readouterr().err
    assert "\x1b[" not in err
    lines = [line for line in err.splitlines() if line.startswith("OpenAI ftjob-0003: ")]
    assert lines and " 2/2 steps (100%)" in lines[-1] and "elapsed " in lines[-1]
