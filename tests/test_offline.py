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


def test_no_load_in_the_package_can_reach_the_hub():
    # A new from_pretrained without local_files_only would try the network for a name that is not on
    # disk; PEFT adapters load from a run's own folder, which PeftModel resolves locally.
    import re
    from pathlib import Path

    import tunewise

    package = Path(tunewise.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(r"\b(Auto\w+)\.from_pretrained\(", line) and "LOCAL_ONLY" not in line and "local_files_only" not in line:
                offenders.append(f"{path.relative_to(package)}:{number}")
    assert offenders == []
