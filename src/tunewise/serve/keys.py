"""API keys of `tunewise serve`, kept as SHA-256 hashes so that the key file leaks nothing usable.

The file holds one key per line, `sha256:<64 hex digits>` optionally followed by whitespace and a label;
blank lines and `#` comments are ignored. The plaintext is shown once, when `add_key` makes it.
A plain hash (no salt, no stretching) is enough here: keys are 256 random bits, not passwords.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from tunewise.errors import ConfigError

KEY_PREFIX = "tw-"
_LINE = re.compile(r"^(sha256:[0-9a-f]{64})(?:\s+(.*))?$")


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def add_key(path: str | Path, label: str | None = None) -> str:
    """Make a key, append its hash (and label) to `path`, created 0600 if missing; return the plaintext."""
    path = Path(path)
    if label is not None and ("\n" in label or "\r" in label):
        raise ConfigError(f"{path}: a key label must be one line")
    key = new_key()
    line = hash_key(key) + (f"  {label.strip()}" if label and label.strip() else "") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        line = "\n" + line  # a file edited by hand may lack its last newline
    # os.open with a mode: the file never exists readable by others, not even for an instant.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(line)
    return key


class KeyRing:
    """The accepted key hashes, with their labels."""

    def __init__(self, hashes: dict[str, str | None] | None = None):
        self.hashes: dict[str, str | None] = dict(hashes or {})

    @classmethod
    def load(cls, path: str | Path) -> KeyRing:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: API key file not found (make one with `tunewise serve add-key`)") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the API key file ({exc})") from exc
        hashes: dict[str, str | None] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            match = _LINE.match(line)
            if match is None:
                # Never echo the line: it may be a plaintext key pasted by mistake.
                reason = ("looks like a plaintext key: store hash_key(key), not the key" if line.startswith(KEY_PREFIX)
                          else "expected 'sha256:<64 lowercase hex digits> [label]'")
                raise ConfigError(f"{path}:{number}: {reason}")
            hashes[match.group(1)] = match.group(2) or None
        if not hashes:
            raise ConfigError(f"{path}: the API key file holds no key, so no request could be accepted")
        return cls(hashes)

    def __len__(self) -> int:
        return len(self.hashes)

    def check(self, presented: str) -> bool:
        """Whether `presented` is one of the keys; compares against every hash so timing tells nothing."""
        digest = hash_key(presented)
        found = False
        for known in self.hashes:
            found |= hmac.compare_digest(digest, known)
        return found


__all__ = ["KeyRing", "add_key", "hash_key", "new_key"]
