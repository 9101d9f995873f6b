"""tunewise: decide whether to fine-tune a language model, then do it well.

The library is the product; the `tunewise` command is a thin layer over it. Start with
`tunewise.models.load_model`, `tunewise.store.Store` and the stage packages
(`tunewise.data`, `tunewise.train`, `tunewise.evaluate`, `tunewise.advise`).
"""

__version__ = "0.1.0"
