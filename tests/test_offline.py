"""tunewise never downloads, without changing the hub settings of the program that imports it."""

from __future__ import annotations

import os
import subprocess
import sys


def test_importing_the_library_leaves_the_host_process_hub_settings_alone():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "TOKENIZERS_"))}
    code = ("import os, tunewise, tunewise.models, tunewise.train, tunewise.evaluate, tunewise.data, tunewise.advise;"
            "print([k for k in os.environ if k.startswith(('HF_', 'TRANSFORMERS_', 'TOKENIZERS_'))])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]"


def test_the_command_runs_offline(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["TUNEWISE_HOME"] = str(tmp_path)
    code = "import os, tunewise.cli; print(os.environ['HF_HUB_OFFLINE'], os.environ['TRANSFORMERS_OFFLINE'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["1", "1"]


def test_every_hugging_face_load_in_the_library_is_local_only(tiny_model_dir, monkeypatch):
    import transformers

    from tunewise.models import load_model

    seen: list[dict] = []
    original = transformers.AutoModelForCausalLM.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(kwargs)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", classmethod(spy))
    load_model(str(tiny_model_dir))
    assert seen and all(kwargs.get("local_files_only") for kwargs in seen)
