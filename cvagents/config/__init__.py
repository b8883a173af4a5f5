"""Typed configuration from ``configs/meeting.yaml`` and ``configs/autonomous_coordination.yaml``,
and the checks on what a run is asked to do.

Every mistake in a config file ends in one ``ConfigError`` that names the file, the key and what
was expected, e.g. ``configs/meeting.yaml: agents.critic.provider: expected one of 'anthropic',
'openai', 'gemini', 'offline', got 'gpt'``. The schemas live in ``config.meeting`` and
``config.coordination`` (their shared base in ``config.base``); this module reads the files (a
key given twice is an error naming both lines), reports what fails, and re-exports the schemas.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from cvagents.config.base import KeyedValueError, Strict, workspace_relative
from cvagents.config.coordination import (
    DEFAULT_GATES,
    DEFAULT_PLAN,
    STAGES,
    AdaptiveTiming,
    CoordinationConfig,
    Evaluation,
    GateDef,
    GateOp,
    Incidents,
    JournalSettings,
    Mirror,
    Replay,
    Rollout,
    Schedule,
    ScriptLimits,
    Serving,
    Slo,
    StagePlan,
    Tools,
    WorkspaceLayout,
)
from cvagents.config.meeting import (
    EXECUTIVE_ROLES,
    PLANNING_ROLES,
    AgentConfig,
    Budgets,
    CallDefaults,
    LocalModel,
    MeetingConfig,
    MeetingProtocol,
    Price,
    ProviderName,
    server_url,
)
from cvagents.config.prices import has_budget, unpriced_agents
from cvagents.config.project import default_project_root, packaged_defaults
from cvagents.errors import CVAgentsError

__all__ = [
    "DEFAULT_GATES",
    "DEFAULT_PLAN",
    "EXECUTIVE_ROLES",
    "PLANNING_ROLES",
    "STAGES",
    "AdaptiveTiming",
    "AgentConfig",
    "Budgets",
    "CallDefaults",
    "ConfigError",
    "CoordinationConfig",
    "Evaluation",
    "GateDef",
    "GateOp",
    "Incidents",
    "JournalSettings",
    "KeyedValueError",
    "LocalModel",
    "MeetingConfig",
    "MeetingProtocol",
    "Mirror",
    "Price",
    "ProviderName",
    "Replay",
    "Rollout",
    "Schedule",
    "ScriptLimits",
    "Serving",
    "Settings",
    "Slo",
    "StagePlan",
    "Strict",
    "Tools",
    "WorkspaceLayout",
    "check_local_model",
    "check_run_options",
    "check_session_id",
    "default_project_root",
    "load_coordination_config",
    "load_meeting_config",
    "packaged_defaults",
    "valid_session_id",
    "workspace_relative",
]


class ConfigError(CVAgentsError, ValueError):
    """A configuration file, or an option of a run, is missing, unreadable or holds a value of the
    wrong kind. (Also a ``ValueError``, which callers caught before the package had its base.)"""


# --------------------------------------------------------------------------- reading a file

_Model = TypeVar("_Model", bound=BaseModel)


def _describe(err: Any, model: type[BaseModel]) -> str:
    """One pydantic error as ``key: what was expected``; an unknown key names the near match
    among the keys allowed there, and lists them."""
    keyed = (err.get("ctx") or {}).get("error")
    if isinstance(keyed, KeyedValueError):
        return f"{keyed.key}: {keyed.message}"
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _keys_at(model, err["loc"][:-1])
        if not allowed:
            return f"{loc}: unknown key (expected one of the documented keys)"
        near = _near_key(str(err["loc"][-1]), allowed)
        hint = f"; did you mean {near!r}?" if near else ""
        return f"{loc}: unknown key{hint} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return f"{loc}: missing (expected a value)"
    got = err.get("input")
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    shown = json.dumps(got, default=str) if not isinstance(got, (dict, list)) else type(got).__name__
    return f"{loc}: {msg[0].lower() + msg[1:]}, got {shown}"


def _describe_all(errors: list[Any], model: type[BaseModel]) -> list[str]:
    """Every error described, except a missing key that an unknown key beside it was surely
    meant to be (``provder`` given, ``provider`` missing): the typo says it once."""
    meant = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            near = _near_key(str(err["loc"][-1]), _keys_at(model, err["loc"][:-1]))
            if near:
                meant.add((*err["loc"][:-1], near))
    return [_describe(err, model) for err in errors if not (err["type"] == "missing" and tuple(err["loc"]) in meant)]


def _near_key(key: str, allowed: list[str]) -> str | None:
    """The allowed key ``key`` was likely meant to be: the closest spelling, else the one key it
    begins (``cpu`` for ``cpu_seconds``)."""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return close[0]
    starts = [a for a in allowed if a.startswith(key)] if len(key) >= 3 else []
    return starts[0] if len(starts) == 1 else None


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the schema allows in the mapping at ``loc`` (a pydantic error location: field
    names, and keys or indexes into dicts, lists and tuples); [] when it cannot be told."""
    node: Any = model
    steps = list(loc)
    while True:
        node = _unwrap(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            if not steps:
                return list(node.model_fields)
            field = node.model_fields.get(str(steps.pop(0)))
            if field is None:
                return []
            node = field.annotation
        elif get_origin(node) in (dict, list, tuple) and steps:
            steps.pop(0)  # a key of a dict, an index of a list or tuple
            node = get_args(node)[-1]
        else:
            return []


def _unwrap(tp: Any) -> Any:
    """``X | None`` → ``X``; other unions and plain types as they are."""
    if get_origin(tp) in (Union, UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _key_given_twice(node: yaml.Node | None, at: str = "") -> str | None:
    """The first key that a mapping holds twice, as ``key: ... (lines a and b)``; None if none.
    (PyYAML keeps the last value without a word.)"""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for k, v in node.value:
            name = str(k.value) if isinstance(k, yaml.ScalarNode) else "?"
            key = f"{at}.{name}" if at else name
            line = k.start_mark.line + 1
            if isinstance(k, yaml.ScalarNode) and name != "<<":
                if name in seen:
                    return f"{key}: given twice (lines {seen[name]} and {line}); expected each key once"
                seen[name] = line
            if found := _key_given_twice(v, key):
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            if found := _key_given_twice(item, f"{at}[{i}]"):
                return found
    return None


def _read_yaml(path: Path) -> Any:
    """The YAML document in ``path``; a ``ConfigError`` naming the file for anything that stops it."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found (expected a YAML file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); expected a YAML file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it: {e.strerror or e}") from None
    try:
        twice = _key_given_twice(yaml.compose(text, Loader=yaml.SafeLoader))
        if twice:
            raise ConfigError(f"{path}: {twice}")
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        where = f"line {e.problem_mark.line + 1}: " if e.problem_mark else ""
        raise ConfigError(f"{path}: {where}not valid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None


def _load(path: Path, model: type[_Model]) -> _Model:
    path = Path(path)
    raw = _read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        lines = _describe_all(e.errors(), model)
        raise ConfigError(f"{path}: " + "; ".join(lines)) from None


def load_meeting_config(path: Path) -> MeetingConfig:
    """``meeting.yaml``; with a budget, every model an agent may call must have a price (the
    ``pricing`` override or the maintained list), or the budget could not hold it back."""
    cfg = _load(path, MeetingConfig)
    if has_budget(cfg):
        missing = unpriced_agents(cfg)
        if missing:
            which = "; ".join(f"agents.{a}: model {m!r}" for a, m in missing)
            raise ConfigError(
                f"{path}: {which}: no price in pricing nor in the genai-prices list, so the budgets "
                f"cannot hold it back; give it a price under pricing (a local model: {{input: 0, output: 0}})"
            )
    return cfg


def load_coordination_config(path: Path) -> CoordinationConfig:
    return _load(path, CoordinationConfig)


# --------------------------------------------------------------------------- a run's options

#: a session id as the coordinator makes it: the start time's stamp and 6 random hex digits
_SESSION_ID = re.compile(r"\d{8}_\d{6}_[0-9a-f]{6}")


def valid_session_id(value: object) -> bool:
    """Whether ``value`` is a session id as the coordinator makes them (``20250101_000000_1a2b3c``).
    Nothing else may name a session: the id becomes a folder name under the workspace."""
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


def check_session_id(value: object, where: str = "--session-id") -> str:
    """``value`` if it is a valid session id, else a ``ConfigError`` naming ``where`` it came from
    (an option, or a file and its key)."""
    if not valid_session_id(value):
        raise ConfigError(
            f"{where}: expected a session id as cvagents makes them (YYYYMMDD_HHMMSS_ and 6 hex digits, "
            f"e.g. 20250101_000000_1a2b3c), got {value!r}"
        )
    return str(value)


def check_run_options(*, meetings: int | None = None, time_scale: float = 1.0) -> None:
    """The numbers a run is given (``--meetings``, ``--time-scale``), checked before anything is
    created."""
    if meetings is not None and (isinstance(meetings, bool) or not isinstance(meetings, int) or meetings < 1):
        raise ConfigError(f"--meetings: expected a whole number of meetings, at least 1, got {meetings!r}")
    ok = isinstance(time_scale, (int, float)) and not isinstance(time_scale, bool)
    if not (ok and math.isfinite(time_scale) and time_scale > 0):
        raise ConfigError(
            f"--time-scale: expected a number above 0 (simulated minutes per real minute), got {time_scale!r}"
        )


def check_local_model(url: str | None, model: str | None) -> tuple[str, str] | None:
    """``--local-model URL --model NAME``, checked: both or neither (None); the URL an http(s)
    base URL, the name not empty. A ``ConfigError`` naming the option otherwise."""
    if url is None and model is None:
        return None
    if url is None or model is None:
        given, missing = ("--model", "--local-model URL") if url is None else ("--local-model", "--model NAME")
        raise ConfigError(
            f"{given}: needs {missing} too (every agent on one local server: --local-model URL --model NAME)"
        )
    try:
        url = server_url(str(url))
    except ValueError as e:
        raise ConfigError(f"--local-model: {e}, got {url!r}") from None
    if not str(model).strip():
        raise ConfigError(f"--model: expected the name of the model the server serves, got {model!r}")
    return url, str(model).strip()


# --------------------------------------------------------------------------- both files


class Settings:
    """Both configs, the project root they came from (``None``: ``default_project_root()``, the
    current folder's project, else the checkout's, else the packaged defaults), and a hash of
    their contents.

    ``meeting`` is the config the run uses: with a local model (``local_model``, the
    ``--local-model`` switch, else ``defaults.local_model`` in meeting.yaml) every agent is on it
    (``MeetingConfig.on_local_model``). The switch keeps the yaml block's preset values and
    replaces its server and model."""

    def __init__(
        self,
        project_root: Path | str | None = None,
        meeting_path: Path | str | None = None,
        coordination_path: Path | str | None = None,
        local_model: tuple[str, str] | None = None,
    ):
        self.project_root = Path(project_root or default_project_root()).resolve()
        self.meeting_path = Path(meeting_path or self.project_root / "configs" / "meeting.yaml")
        self.coordination_path = Path(
            coordination_path or self.project_root / "configs" / "autonomous_coordination.yaml"
        )
        self.meeting = load_meeting_config(self.meeting_path)
        # (base_url, model) from --local-model: over the yaml's; in config_hash
        self.local_switch = check_local_model(*local_model) if local_model is not None else None
        local = self.meeting.defaults.local_model
        if self.local_switch is not None:
            url, model = self.local_switch
            kept = local.model_dump() if local else {}
            local = LocalModel(**{**kept, "base_url": url, "model": model})
        self.meeting = self.meeting.on_local_model(local)
        self.coordination = load_coordination_config(self.coordination_path)
        for name, agent in self.meeting.agents.items():
            if not self.prompt_path(name).is_file():
                raise ConfigError(
                    f"{self.meeting_path}: agents.{name}.prompt: expected an existing prompt file, got {agent.prompt!r}"
                )

    def prompt_path(self, agent: str) -> Path:
        p = Path(self.meeting.agents[agent].prompt)
        return p if p.is_absolute() else self.project_root / p

    @property
    def dotenv_path(self) -> Path:
        """The ``.env`` file with API keys: the project's, or the current folder's when the run uses
        the packaged defaults (never a file inside the installed package)."""
        packaged = self.project_root == packaged_defaults().resolve()
        return (Path.cwd() if packaged else self.project_root) / ".env"

    def config_hash(self) -> str:
        h = hashlib.sha256()
        for p in (self.meeting_path, self.coordination_path):
            h.update(p.read_bytes())
        if self.local_switch is not None:  # the agents' server and model, given beside the files
            h.update("\0".join(("local_model", *self.local_switch)).encode())
        return h.hexdigest()[:16]
