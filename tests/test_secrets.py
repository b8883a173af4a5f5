"""Keys: where they come from, and that they never show up in logs or errors."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import traceback
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from llm_servers import LLMServer, Reply, Sleeps, error_body, make_request  # noqa: E402

from cvagents import secrets  # noqa: E402
from cvagents.llm.base import ProviderError  # noqa: E402
from cvagents.llm.retry import RetryPolicy  # noqa: E402
from cvagents.secrets import KeyStore, RedactingFilter, install_log_redaction, redact, register_secret  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_registry():
    secrets.forget_secrets()
    yield
    secrets.forget_secrets()


def write_env(tmp_path: Path, text: str) -> Path:
    p = tmp_path / ".env"
    p.write_text(text)
    return p


# ------------------------------------------------------------------------------ sources


def test_environment_beats_dotenv(tmp_path):
    env_file = write_env(tmp_path, "OPENAI_API_KEY=from-dotenv-123456\nANTHROPIC_API_KEY=ant-from-dotenv-123456\n")
    ks = KeyStore(environ={"OPENAI_API_KEY": "from-environment-123456"}, dotenv_path=env_file, colab=False)
    assert ks.get("OPENAI_API_KEY") == "from-environment-123456"
    assert ks.source("OPENAI_API_KEY") == "environment"
    assert ks.get("ANTHROPIC_API_KEY") == "ant-from-dotenv-123456"
    assert ks.source("ANTHROPIC_API_KEY") == ".env"


def test_dotenv_never_touches_os_environ(tmp_path, monkeypatch):
    monkeypatch.delenv("CVAGENTS_TEST_ONLY_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "real-env-wins-123456")
    env_file = write_env(tmp_path, "OPENAI_API_KEY=dotenv-loses-123456\nCVAGENTS_TEST_ONLY_KEY=dotenv-only-123456\n")
    ks = KeyStore(dotenv_path=env_file, colab=False)  # the real os.environ
    assert ks.get("OPENAI_API_KEY") == "real-env-wins-123456"
    assert ks.get("CVAGENTS_TEST_ONLY_KEY") == "dotenv-only-123456"
    assert os.environ["OPENAI_API_KEY"] == "real-env-wins-123456"
    assert "CVAGENTS_TEST_ONLY_KEY" not in os.environ


def test_missing_dotenv_is_fine(tmp_path):
    ks = KeyStore(environ={}, dotenv_path=tmp_path / "nope.env", colab=False)
    assert ks.get("OPENAI_API_KEY") is None and ks.available() == {}


def test_empty_values_count_as_missing(tmp_path):
    env_file = write_env(tmp_path, "OPENAI_API_KEY=\n")
    ks = KeyStore(environ={"OPENAI_API_KEY": ""}, dotenv_path=env_file, colab=False)
    assert ks.get("OPENAI_API_KEY") is None


def test_colab_secrets_come_last(tmp_path):
    asked = []

    def colab(name):
        asked.append(name)
        return {"GOOGLE_API_KEY": "AIzaFromColab1234567890", "OPENAI_API_KEY": "colab-openai-123456"}.get(name)

    ks = KeyStore(environ={"OPENAI_API_KEY": "env-openai-123456"}, dotenv_path=None, colab=colab)
    assert asked == []  # Colab is asked on demand only (each lookup may prompt the user)
    assert ks.get("OPENAI_API_KEY") == "env-openai-123456"
    assert ks.get("GOOGLE_API_KEY") == "AIzaFromColab1234567890" and ks.source("GOOGLE_API_KEY") == "colab"
    assert "OPENAI_API_KEY" not in asked  # never asked when an earlier source has it


def test_colab_userdata_used_when_importable(monkeypatch):
    class SecretNotFoundError(Exception):
        pass

    def get(name):
        if name == "ANTHROPIC_API_KEY":
            return "colab-anthropic-123456"
        raise SecretNotFoundError(name)

    userdata = types.SimpleNamespace(get=get)
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", userdata)
    ks = KeyStore(environ={}, dotenv_path=None)
    assert ks.get("ANTHROPIC_API_KEY") == "colab-anthropic-123456"
    assert ks.get("OPENAI_API_KEY") is None  # SecretNotFoundError -> missing


def test_colab_secrets_to_environ_copies_only_what_is_missing_and_registers_it():
    found = {"ANTHROPIC_API_KEY": "sk-ant-colab-abcdef123456", "OPENAI_API_KEY": "sk-colab-openai-abcdef123456"}
    env = {"OPENAI_API_KEY": "sk-already-set-abcdef123456"}
    copied = secrets.colab_secrets_to_environ(environ=env, colab=found.get)
    assert copied == ["ANTHROPIC_API_KEY"]
    assert env == {"OPENAI_API_KEY": "sk-already-set-abcdef123456", "ANTHROPIC_API_KEY": "sk-ant-colab-abcdef123456"}
    assert "colab-abcdef" not in redact("key: sk-ant-colab-abcdef123456")
    assert secrets.colab_secrets_to_environ(environ={}) == []  # not in Colab: nothing


def test_no_colab_outside_colab():
    assert secrets._colab_getter() is None  # google.colab is not installed here


def test_gemini_key_names_and_custom_env():
    ks = KeyStore(
        environ={"GEMINI_API_KEY": "gemini-name-123456", "LOCAL_LLM_KEY": "local-key-123456"},
        dotenv_path=None,
        colab=False,
    )
    assert ks.key_for("gemini") == "gemini-name-123456"
    ks2 = KeyStore(
        environ={"GEMINI_API_KEY": "gemini-name-123456", "GOOGLE_API_KEY": "google-name-123456"},
        dotenv_path=None,
        colab=False,
    )
    assert ks2.key_for("gemini") == "google-name-123456"  # GOOGLE_API_KEY first
    assert ks.key_for("openai", "LOCAL_LLM_KEY") == "local-key-123456"
    assert ks.key_for("openai") is None


def test_keystore_repr_shows_no_values():
    ks = KeyStore(environ={"OPENAI_API_KEY": "very-secret-value-123456"}, dotenv_path=None, colab=False)
    assert "very-secret-value-123456" not in repr(ks) and "OPENAI_API_KEY" in repr(ks)


# ------------------------------------------------------------------------------ redact


def test_redact_known_values_and_key_shapes():
    KeyStore(environ={"ANTHROPIC_API_KEY": "plainvalue-without-shape-99"}, dotenv_path=None, colab=False)
    text = (
        "a=plainvalue-without-shape-99 b=sk-ant-api03-AbCdEf123456 c=sk-proj-AbCdEfGh12345678 "
        "d=AIzaSyD-0123456789abcdefGHIJ e=Authorization: Bearer tok_abcdefgh12345 f=https://x/y?key=abc123&alt=json"
    )
    out = redact(text)
    for secret in (
        "plainvalue-without-shape-99",
        "sk-ant-api03-AbCdEf123456",
        "sk-proj-AbCdEfGh12345678",
        "AIzaSyD-0123456789abcdefGHIJ",
        "tok_abcdefgh12345",
        "abc123",
    ):
        assert secret not in out
    assert out.count("[REDACTED]") >= 6
    assert "alt=json" in out


def test_redact_leaves_ordinary_text_alone():
    text = "desk-reservation task-force sk-learn AIza the api_key_env setting, 5 keys"
    assert redact(text) == text


def test_short_values_are_not_registered():
    register_secret("abc")
    assert redact("abc abc") == "abc abc"


def test_log_filter_redacts_messages_args_and_tracebacks():
    planted = "planted-log-secret-0042"
    register_secret(planted)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    install_log_redaction(handler)
    logger = logging.getLogger("cvagents.test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info("using key %s for %s", planted, "openai")
        logger.warning("header was Authorization: Bearer sk-abcdefghijkl0123")
        try:
            raise RuntimeError(f"server said: bad key {planted}")
        except RuntimeError:
            logger.exception("call failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert planted not in out and "sk-abcdefghijkl0123" not in out
    assert "using key [REDACTED] for openai" in out
    assert "RuntimeError: server said: bad key [REDACTED]" in out


def test_filter_on_root_handlers():
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        f = install_log_redaction()
        assert f in handler.filters or any(isinstance(x, RedactingFilter) for x in handler.filters)
    finally:
        root.removeHandler(handler)


# ---------------------------------------------- a key echoed back never reaches an error


PLANTED = "cvagents-planted-fake-key-7f3a9c"  # no key shape: only the registry can catch it


def _make(kind, srv, max_retries):
    """Anthropic and OpenAI retry inside their SDKs; Gemini under our policy."""
    policy = RetryPolicy(max_retries=max_retries, sleep=Sleeps())
    if kind == "anthropic":
        from cvagents.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(
            "claude-x", api_key=PLANTED, base_url=srv.base_url, timeout_s=5, max_retries=max_retries
        )
    if kind == "openai":
        from cvagents.llm.openai_provider import OpenAIProvider

        return OpenAIProvider("gpt-x", api_key=PLANTED, base_url=srv.base_url, timeout_s=5, max_retries=max_retries)
    from cvagents.llm.gemini_provider import GeminiProvider

    return GeminiProvider("gemini-x", api_key=PLANTED, base_url=srv.base_url, timeout_s=5, retry_policy=policy)


@pytest.mark.parametrize("kind", ["anthropic", "openai", "gemini"])
@pytest.mark.parametrize("status", [401, 500])
def test_echoed_key_never_in_provider_error(kind, status):
    echo = f"Incorrect API key provided: {PLANTED}. Authorization: Bearer {PLANTED}"
    with LLMServer(kind) as srv:
        srv.push(
            *[
                Reply(
                    status=status,
                    body=error_body(kind, status, echo),
                    headers={"X-Echo": PLANTED, "retry-after-ms": "1"},
                )
                for _ in range(2)
            ]
        )
        with pytest.raises(ProviderError) as ei:
            _make(kind, srv, max_retries=1).complete(make_request())
    e = ei.value
    rendered = "".join(traceback.format_exception(e))
    for text in (str(e), repr(e), rendered, *map(str, e.args)):
        assert PLANTED not in text
    assert f"HTTP {status}" in str(e) and "Incorrect API key provided" in str(e)


# ------------------------------------------------------- issue 12: one pass over any value


def test_redact_value_walks_dicts_lists_and_strings():
    planted = "plain-registered-value-31337"
    register_secret(planted)
    value = {
        "stdout": f"found {planted} and sk-proj-AbCdEfGh12345678",
        "nested": [{"text": "Authorization: Bearer tok_abcdefgh12345"}, ("AIzaSyD-0123456789abcdefGHIJ", 3)],
        planted: True,  # a dict key is text too
        "n": 1.5,
        "ok": None,
    }
    out = secrets.redact_value(value)
    flat = repr(out)
    for s in (planted, "sk-proj-AbCdEfGh12345678", "tok_abcdefgh12345", "AIzaSyD-0123456789abcdefGHIJ"):
        assert s not in flat
    assert out["stdout"] == "found [REDACTED] and [REDACTED]"
    assert out["nested"][1] == ("[REDACTED]", 3) and out["[REDACTED]"] is True
    assert out["n"] == 1.5 and out["ok"] is None
    assert planted in value["stdout"]  # the input is not changed in place


def test_redact_value_returns_clean_values_as_they_are():
    clean = {"result": ["deployed v0001 to shadow", {"ndcg_at_10": 0.81}], "args": ("--bootstrap", "100")}
    assert secrets.redact_value(clean) is clean
    assert secrets.redact_value("nothing here") == "nothing here"
    path = Path("/tmp/x")
    assert secrets.redact_value(path) is path  # not JSON text: left alone


def test_keys_leave_the_process_environment_but_not_the_key_store(tmp_path):
    """In a real process started with a key: inside keep_keys_in_memory the key store still finds
    it, and neither os.environ, a child's environment nor /proc/<pid>/environ holds it; after,
    os.environ holds it again (the process is left as found), /proc still does not."""
    key = "sk-proj-HELDINMEMORY0123456789abcdef"
    child = (
        "import os, sys; "
        "parent = open(f'/proc/{os.getppid()}/environ', 'rb').read(); "
        f"print({key!r}.encode() in parent, b'CVAGENTS_CANARY=seen' in parent, {key!r} in os.environ.get('OPENAI_API_KEY', ''))"
    )
    driver = f"""
import os, subprocess, sys
from cvagents.secrets import KeyStore, keep_keys_in_memory
assert open('/proc/self/environ', 'rb').read().count({key!r}.encode()) == 1
with keep_keys_in_memory() as moved:
    store = KeyStore(dotenv_path=None, colab=False)
    print(moved, store.key_for('openai') == {key!r}, store.source('OPENAI_API_KEY'), 'OPENAI_API_KEY' in os.environ)
    print({key!r}.encode() in open('/proc/self/environ', 'rb').read())
    print(subprocess.run([sys.executable, '-c', {child!r}], capture_output=True, text=True).stdout.strip())
print(os.environ.get('OPENAI_API_KEY') == {key!r}, {key!r}.encode() in open('/proc/self/environ', 'rb').read())
"""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(OPENAI_API_KEY=key, CVAGENTS_CANARY="seen")
    p = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "['OPENAI_API_KEY'] True environment False",
        "False",  # wiped from the block /proc reads
        "False True False",  # the child read its parent's environment (the canary), found no key
        "True False",  # after the run: back in os.environ, not in the block /proc reads
    ]


def test_keys_come_back_when_the_last_run_in_the_process_ends(monkeypatch):
    """Two runs in one process (a notebook kernel): the keys stay out until both have ended."""
    monkeypatch.setenv("CVAGENTS_TEST_API_KEY", "test-key-value-0123456789")
    with secrets.keep_keys_in_memory(["CVAGENTS_TEST_API_KEY"]) as moved:
        assert moved == ["CVAGENTS_TEST_API_KEY"] and "CVAGENTS_TEST_API_KEY" not in os.environ
        with secrets.keep_keys_in_memory(["CVAGENTS_TEST_API_KEY"]) as again:
            assert again == [] and KeyStore(dotenv_path=None, colab=False).get("CVAGENTS_TEST_API_KEY")
        assert "CVAGENTS_TEST_API_KEY" not in os.environ
        assert KeyStore(dotenv_path=None, colab=False).get("CVAGENTS_TEST_API_KEY") == "test-key-value-0123456789"
    assert os.environ["CVAGENTS_TEST_API_KEY"] == "test-key-value-0123456789"
    assert KeyStore(environ={}, dotenv_path=None, colab=False).get("CVAGENTS_TEST_API_KEY") is None
