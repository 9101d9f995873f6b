"""A run killed with SIGKILL after a checkpoint resumes to the same adapter as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .conftest import tiny_config

# Trains in a child process; after the checkpoint at step 4 is on disk it writes a marker and waits to be killed.
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from transformers import TrainerCallback
    from tunewise.train import TrainConfig, train

    class WaitAfterCheckpoint(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 4:
                Path(sys.argv[2]).write_text("saved")
                time.sleep(600)

    train(TrainConfig.model_validate_json(Path(sys.argv[1]).read_text()), progress=False, callbacks=[WaitAfterCheckpoint()])
    """
)


def _adapter_tensors(run):
    from safetensors.torch import load_file

    return load_file(str(Path(run.artifacts["adapter"]) / "adapter_model.safetensors"))


def test_resume_after_kill_matches_an_uninterrupted_run(tiny_model_dir, chat_files, store, tmp_path, isolated_workspace):
    import torch

    from tunewise.train import resume, train

    train_path, eval_path = chat_files
    settings = dict(max_steps=8, save_steps=2, lora_dropout=0.1, learning_rate=1e-2, warmup_ratio=0.1)
    reference = train(tiny_config(tiny_model_dir, train_path, **settings, output_dir=str(tmp_path / "ref")), store=store, progress=False)

    config_file = tmp_path / "config.json"
    config_file.write_text(tiny_config(tiny_model_dir, train_path, **settings).model_dump_json())
    marker = tmp_path / "saved.marker"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(config_file), str(marker)],
        env={**os.environ, "TUNEWISE_HOME": str(isolated_workspace)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if child.poll() is not None:
            pytest.fail(f"training child exited early: {child.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail("no checkpoint within 120 s")
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    killed = [r for r in store.list_runs() if r.id != reference.id][0]
    assert killed.status == "running"  # SIGKILL leaves no chance to record anything: the checkpoint is what survives
    resumed = resume(killed.id, store=store, progress=False)
    assert resumed.id == killed.id and resumed.status == "completed"
    assert resumed.metrics["steps"] == 8

    expected, got = _adapter_tensors(reference), _adapter_tensors(resumed)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.allclose(expected[name], got[name], atol=1e-6), name
    steps = [s.step for s in store.run_steps(resumed.id) if "loss" in s.values]
    assert steps[-1] == 8
