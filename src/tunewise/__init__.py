"""tunewise: decide whether to fine-tune a language model, then do it well.

The library is the product; the `tunewise` command is a thin layer over it. Start with
`tunewise.models.load_model`, `tunewise.store.Store` and the stage packages
(`tunewise.data`, `tunewise.train`, `tunewise.evaluate`, `tunewise.advise`).
"""

__version__ = "0.1.0"

import os as _os

# tunewise never downloads weights or data: make the Hugging Face libraries fail fast instead of
# trying the network when a name is not found locally.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
