"""API keys, and keeping them out of every log line and error message.

Where a key comes from, first match wins:

1. the process environment (``ANTHROPIC_API_KEY`` ...),
2. a ``.env`` file (read with python-dotenv into memory; it never overrides the environment and
   is never copied into ``os.environ``),
3. Colab Secrets (``google.colab.userdata.get``), when ``google.colab`` is importable.

Standard names: ``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``, ``GOOGLE_API_KEY`` (or
``GEMINI_API_KEY``). An agent's ``api_key_env`` names another variable looked up the same way.

Keys live only in memory. A run holds them in ``with keep_keys_in_memory():`` — they leave the
process's environment, so no process it starts (a script, an evaluator) inherits them or reads
them from ``/proc/<pid>/environ``; ``KeyStore`` still finds them, and the providers get them from
it explicitly.

Every value this module hands out is registered with ``redact``, which also masks anything
shaped like a key (``sk-…``, ``sk-ant-…``, ``AIza…``, bearer tokens, key headers and ``key=``
query parameters). ``redact_value`` applies it to every string of a JSON-ready value (a tool
result, an agent's answer) before it is journaled, written, mirrored, logged or sent to
another agent; ``RedactingFilter`` applies it to log records.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

REDACTED = "[REDACTED]"

PROVIDER_KEY_NAMES: dict[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "openai": ("OPENAI_API_KEY",),
    "gemini": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
}
STANDARD_KEY_NAMES: tuple[str, ...] = tuple(n for names in PROVIDER_KEY_NAMES.values() for n in names)

# Values shorter than this are never registered as secrets (they would redact ordinary words).
_MIN_SECRET_LEN = 8

_KEY_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"sk-ant-[A-Za-z0-9_\-]{6,}"  # Anthropic
    r"|sk-[A-Za-z0-9][A-Za-z0-9_\-]{7,}"  # OpenAI (sk-..., sk-proj-...)
    r"|AIza[0-9A-Za-z_\-]{10,}"  # Google
    r")"
)
# Credentials that sit behind a label: "Authorization: Bearer x", "x-api-key: x", "?key=x", "api_key=x".
_LABELLED = re.compile(
    r"((?:authorization|x-api-key|x-goog-api-key|api[_-]?key|access[_-]?token|auth[_-]?token)"
    r"[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)([^\s\"',;}&]+)"
    r"|(bearer\s+)([A-Za-z0-9._~+/=\-]{8,})"
    r"|([?&]key=)([^\s&\"']+)",
    re.IGNORECASE,
)

_lock = threading.Lock()
_known: set[str] = set()
_known_sorted: tuple[str, ...] = ()


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that ``redact`` masks it wherever it appears."""
    global _known_sorted
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _lock:
        if value in _known:
            return
        _known.add(value)
        _known_sorted = tuple(sorted(_known, key=len, reverse=True))


def forget_secrets() -> None:
    """Drop every registered value (tests)."""
    global _known_sorted
    with _lock:
        _known.clear()
        _known_sorted = ()


def _labelled(m: re.Match[str]) -> str:
    if m.group(1) is not None:
        return m.group(1) + REDACTED
    if m.group(3) is not None:
        return m.group(3) + REDACTED
    return m.group(5) + REDACTED


def redact(text: Any) -> str:
    """``text`` with every known key value, and anything shaped like a key, replaced by
    ``[REDACTED]``."""
    s = text if isinstance(text, str) else str(text)
    for value in _known_sorted:
        if value in s:
            s = s.replace(value, REDACTED)
    s = _KEY_SHAPES.sub(REDACTED, s)
    s = _LABELLED.sub(_labelled, s)
    return s


_V = TypeVar("_V")


def redact_value(value: _V) -> _V:
    """``value`` — a JSON-ready value: dicts, lists, tuples, strings, numbers — with ``redact``
    applied to every string in it, dict keys included. What holds nothing to redact comes back as
    the very same object (no copy); anything else that is not a string or a container is
    returned as it is."""
    if isinstance(value, str):
        clean = redact(value)
        return value if clean == value else cast(_V, clean)
    if isinstance(value, dict):
        pairs = [(redact_value(k), redact_value(v)) for k, v in value.items()]
        if all(k2 is k and v2 is v for (k, v), (k2, v2) in zip(value.items(), pairs)):
            return value
        return cast(_V, dict(pairs))
    if isinstance(value, (list, tuple)):
        items = [redact_value(v) for v in value]
        if all(a is b for a, b in zip(value, items)):
            return value
        return cast(_V, tuple(items) if isinstance(value, tuple) else items)
    return value


class RedactingFilter(logging.Filter):
    """Redacts a log record's message (with its arguments merged in) and its exception text.

    Attach it to handlers (a filter on a logger does not see records from child loggers):
    ``install_log_redaction()`` does that for the root logger's handlers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the formatter to complain
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg = clean
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, redacted, so the handler never formats the raw one.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction(target: logging.Logger | logging.Handler | None = None) -> RedactingFilter:
    """Add a ``RedactingFilter`` to ``target`` (a handler, or every handler of a logger; the
    root logger by default). Returns the filter."""
    f = RedactingFilter()
    if isinstance(target, logging.Handler):
        handlers: Iterable[logging.Handler] = [target]
    else:
        handlers = (target or logging.getLogger()).handlers
    for h in handlers:
        if not any(isinstance(x, RedactingFilter) for x in h.filters):
            h.addFilter(f)
    return f


# --------------------------------------------------------------------------- keys in memory only

#: keys moved out of this process's environment by ``keep_keys_in_memory`` (name -> value)
_held: dict[str, str] = {}
_holders = 0  # blocks inside keep_keys_in_memory (runs in this process)
_held_lock = threading.Lock()


@contextmanager
def keep_keys_in_memory(names: Iterable[str] = STANDARD_KEY_NAMES) -> Iterator[list[str]]:
    """For the duration of the block (a run), the keys ``names`` live in memory only: they leave
    this process's environment, ``KeyStore`` (over ``os.environ``) still finds them. Yields the
    names moved. When the last such block ends, they go back into ``os.environ``, so the process
    (a notebook kernel, a test) is left as it was found.

    Removing a variable from ``os.environ`` only drops it from the environment that children
    inherit: the ``NAME=value`` bytes the process started with stay where
    ``/proc/<pid>/environ`` shows them to any process of the same user — a script the run
    starts, reading its parent's. So the string is overwritten there too (Linux, through libc's
    ``environ``; elsewhere only ``os.environ`` is cleared), and is not put back there."""
    global _holders
    moved = []
    with _held_lock:
        _holders += 1
        for name in dict.fromkeys(names):
            value = os.environ.get(name)
            if not value:
                continue
            register_secret(value)
            _held[name] = value
            _wipe_from_environment(name)
            moved.append(name)
    try:
        yield moved
    finally:
        with _held_lock:
            _holders -= 1
            if _holders == 0:
                for name, value in _held.items():
                    os.environ.setdefault(name, value)
                _held.clear()


def _environment_entries(name: str) -> list[tuple[int, int]]:
    """(address, length) of each ``NAME=...`` string in libc's ``environ``; [] where it cannot
    be read."""
    try:
        environ = ctypes.POINTER(ctypes.c_void_p).in_dll(ctypes.CDLL(None), "environ")
    except (OSError, ValueError, AttributeError):
        return []
    prefix = name.encode() + b"="
    found = []
    i = 0
    while environ[i]:
        addr = cast(int, environ[i])
        entry = ctypes.string_at(addr)
        if entry.startswith(prefix):
            found.append((addr, len(entry)))
        i += 1
    return found


def _wipe_from_environment(name: str) -> None:
    entries = _environment_entries(name)
    os.environ.pop(name, None)  # unsetenv: the entry leaves the array children inherit ...
    for addr, length in entries:
        ctypes.memset(addr, 0, length)  # ... and its bytes leave the block /proc reads


def _colab_getter() -> Callable[[str], str | None] | None:
    """``google.colab.userdata.get`` wrapped to return None for a missing or denied secret, or
    None when not running in Colab."""
    try:
        from google.colab import userdata
    except Exception:  # ImportError outside Colab
        return None

    def get(name: str) -> str | None:
        try:
            value = userdata.get(name)
        except Exception:  # SecretNotFoundError, NotebookAccessError, TimeoutException ...
            return None
        return value or None

    return get


class KeyStore:
    """Looks keys up in the environment, then a ``.env`` file, then Colab Secrets.

    ``environ`` defaults to ``os.environ`` (read at each lookup, never written) and the keys
    ``keep_keys_in_memory`` moved out of it;
    ``dotenv_path`` defaults to ``./.env`` (``None`` disables it; a missing file is fine);
    ``colab`` is a ``name -> value | None`` function, by default Colab's ``userdata.get`` when
    ``google.colab`` is importable (``False`` disables it).
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        dotenv_path: str | os.PathLike[str] | None | bool = True,
        colab: Callable[[str], str | None] | None | bool = True,
    ):
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._held = _held if environ is None else {}
        if dotenv_path is True:
            dotenv_path = Path.cwd() / ".env"
        self._dotenv: dict[str, str] = {}
        self.dotenv_path: Path | None = None
        if dotenv_path:
            p = Path(dotenv_path)
            if p.is_file():
                from dotenv import dotenv_values

                self.dotenv_path = p
                # interpolate=False: a "$" inside a key must stay a "$".
                self._dotenv = {k: v for k, v in dotenv_values(p, interpolate=False).items() if v}
        if colab is True:
            colab = _colab_getter()
        self._colab: Callable[[str], str | None] | None = colab or None
        self._colab_cache: dict[str, str | None] = {}
        # Register what the environment and .env hold now, so redact() knows them from the start.
        # Colab is only asked on demand: each lookup there may prompt the user for access.
        for name in STANDARD_KEY_NAMES:
            register_secret(self._environ.get(name))
            register_secret(self._dotenv.get(name))

    def get(self, name: str, default: str | None = None) -> str | None:
        value, _ = self._lookup(name)
        return value if value is not None else default

    def source(self, name: str) -> str | None:
        """Where ``name`` was found: ``"environment"``, ``".env"``, ``"colab"`` or None."""
        return self._lookup(name)[1]

    def _lookup(self, name: str) -> tuple[str | None, str | None]:
        value = self._environ.get(name) or self._held.get(name)
        if value:
            register_secret(value)
            return value, "environment"
        value = self._dotenv.get(name)
        if value:
            register_secret(value)
            return value, ".env"
        if self._colab is not None:
            if name not in self._colab_cache:
                self._colab_cache[name] = self._colab(name)
            value = self._colab_cache[name]
            if value:
                register_secret(value)
                return value, "colab"
        return None, None

    def key_for(self, provider: str, api_key_env: str | None = None) -> str | None:
        """The API key for ``provider`` ("anthropic" | "openai" | "gemini"): ``api_key_env`` if
        given, else the standard names in order."""
        names = (api_key_env,) if api_key_env else PROVIDER_KEY_NAMES.get(provider, ())
        for n in names:
            v = self.get(n)
            if v:
                return v
        return None

    def key_names(self, provider: str, api_key_env: str | None = None) -> tuple[str, ...]:
        return (api_key_env,) if api_key_env else PROVIDER_KEY_NAMES.get(provider, ())

    def available(self) -> dict[str, str]:
        """Standard key name -> source, for the keys present (never the values). Asks Colab."""
        return {n: s for n in STANDARD_KEY_NAMES if (s := self.source(n))}

    def __repr__(self) -> str:  # never show values; never prompts Colab
        local = [n for n in STANDARD_KEY_NAMES if self._environ.get(n) or self._held.get(n) or self._dotenv.get(n)]
        return f"KeyStore(keys={local})"


def colab_secrets_to_environ(
    names: Iterable[str] = STANDARD_KEY_NAMES,
    environ: os._Environ[str] | dict[str, str] | None = None,
    colab: Callable[[str], str | None] | None | bool = True,
) -> list[str]:
    """Copy the keys found in Colab Secrets into this kernel's environment (a variable already
    set is left alone) and return the names copied. The notebooks call this in the interactive
    kernel, because Colab only answers ``userdata.get`` there, not from the run's threads or from
    papermill parameters (which are saved in the output notebook). Off Colab it copies nothing."""
    env = os.environ if environ is None else environ
    get = _colab_getter() if colab is True else (colab or None)
    copied: list[str] = []
    if get is None:
        return copied
    for name in names:
        if env.get(name) or (environ is None and name in _held):
            continue
        value = get(name)
        if value:
            register_secret(value)
            env[name] = value
            copied.append(name)
    return copied
