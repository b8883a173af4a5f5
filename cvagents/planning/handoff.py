"""The action schema and the handoff file ``reports/handoff/pending_actions.json``.

The planning meeting writes the handoff whole and atomically; the executive heartbeat reads
it. Its format is the system guide's, key for key: ``timestamp, meeting_id, actions[id, action,
owner, priority, estimated_duration, success_criteria], count, source``. A synthesis that fails
this schema is refused whole, so a handoff is never half-written or half-valid.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cvagents.durability.atomic import atomic_write_json
from cvagents.errors import CVAgentsError

Priority = Literal["high", "medium", "low"]
PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2}


class HandoffError(CVAgentsError, ValueError):
    """The handoff file (or a synthesis) does not follow the action schema."""


# The bounds of one action's fields: generous for a real plan, small enough that a handoff
# within ``meeting.max_actions`` stays a few dozen KB (agents and records read it whole).
ACTION_MAX_CHARS = 1000
SHORT_FIELD_MAX_CHARS = 80
# Far larger than any handoff within the limits above (a few dozen KB): a bigger file is refused unread.
HANDOFF_MAX_BYTES = 8 << 20
# A refusal names at most this many problems (then how many more), so it stays one short line.
_PROBLEMS_SHOWN = 3


class PlannedAction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: str = Field(min_length=8, max_length=ACTION_MAX_CHARS, description="a complete description, not a fragment")
    owner: str = Field(max_length=SHORT_FIELD_MAX_CHARS)
    priority: Priority
    estimated_duration: str = Field(min_length=1, max_length=SHORT_FIELD_MAX_CHARS)
    success_criteria: str = Field(min_length=3, max_length=ACTION_MAX_CHARS)


class HandoffAction(PlannedAction):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=1)


class Decision(BaseModel):
    model_config = ConfigDict(extra="ignore")
    decision: str
    rationale: str = ""


class GoNoGo(BaseModel):
    model_config = ConfigDict(extra="ignore")
    stage: str
    decision: Literal["go", "no-go", "hold"]
    reason: str = ""


class Synthesis(BaseModel):
    """The moderator's answer: decisions and the prioritised actions."""

    model_config = ConfigDict(extra="ignore")

    decisions: list[Decision] = []
    go_no_go: GoNoGo | None = None
    risks: list[str] = []
    cross_pollination: list[str] = []
    actions: list[PlannedAction]


class Handoff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timestamp: str = Field(max_length=SHORT_FIELD_MAX_CHARS)
    meeting_id: str = Field(min_length=1, max_length=SHORT_FIELD_MAX_CHARS)  # in every action id and record
    actions: list[HandoffAction]
    count: int
    source: str = Field(max_length=SHORT_FIELD_MAX_CHARS)

    @model_validator(mode="after")
    def _consistent(self) -> Handoff:
        if self.count != len(self.actions):
            raise ValueError(f"count: expected {len(self.actions)} (the number of actions), got {self.count}")
        ids = [a.id for a in self.actions]
        if len(set(ids)) != len(ids):
            raise ValueError("actions: expected unique ids")
        return self


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)


def extract_json_object(text: str) -> str:
    """Strip markdown fences and leading/trailing prose around one JSON object."""
    m = _FENCE.search(text)
    if m:
        text = m.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise HandoffError("expected a JSON object, found none")
    return text[start : end + 1]


def _first_few(problems: list[str]) -> str:
    more = len(problems) - _PROBLEMS_SHOWN
    return "; ".join(problems[:_PROBLEMS_SHOWN]) + (f"; and {more} more" if more > 0 else "")


def _explain(e: ValidationError) -> str:
    return _first_few([f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in e.errors()])


def _too_many(raw: object, max_actions: int) -> str | None:
    """Checked before the schema, so a handoff of 10,000 actions is refused in one line, unparsed."""
    actions = raw.get("actions") if isinstance(raw, dict) else None
    if isinstance(actions, list) and len(actions) > max_actions:
        return f"actions: expected at most {max_actions}, got {len(actions)}"
    return None


# ---------------------------------------------------------------- plans a person could act on
# A synthesis is held to these (a handoff written by hand is the person's own plan, and is not):
# each ``action`` is a sentence of at least ``MIN_ACTION_WORDS`` words that starts with a plain
# word (a verb, not an identifier), so ``re_evaluate_model`` or ``runEvaluation(shadow)`` is sent
# back while "Deploy research/v1_production.pth to 50_percent." passes; each ``success_criteria``
# names what to measure: a number, a comparison, or one of
# ``MEASURABLE_TERMS`` (metrics, gates, stages, artifact checks). The terms live here only; the
# synthesis ask and the repair message quote them from here.
MIN_ACTION_WORDS = 3  # words (paths and stage names count) ...
MIN_PLAIN_WORDS = 2  # ... of which plain words, the first one among them
ACTION_EXAMPLE = "Re-evaluate the candidate on the validation set"
MEASURABLE_TERMS = (  # the first TERMS_QUOTED are named when a criterion is refused
    "NDCG", "latency", "P95", "error rate", "recall", "MRR", "SLO", "gate", "stage", "threshold",
    # more metrics
    "precision", "accuracy", "AUC", "F1", "P50", "P90", "P99", "throughput", "QPS", "SLA", "error",
    "incident", "P0", "requests", "metric",
    # gates and their evidence
    "CI", "confidence", "rollback", "drill", "approval", "minutes",
    # stages
    "shadow", "percent", "production",
    # artifacts a tool can check
    "sha256", "checksum", "manifest",
)  # fmt: skip
TERMS_QUOTED = 10
_PLAIN_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")
_CAMEL = re.compile(r"[a-z][A-Z]")
_PUNCT = "\"'`.,;:!?()[]{}*"
_TERMS = re.compile(
    r"(?<![a-z])(?:" + "|".join(re.escape(t.lower()) for t in MEASURABLE_TERMS) + r")(?:s|es)?(?![a-z])"
)
_NUMBER = re.compile(r"(?<![A-Za-z_./])\d+(?:\.\d+)?")
_COMPARISON = re.compile(r"[<>=≥≤%]")


def _plain(token: str) -> bool:
    """A word of a sentence: letters (with inner hyphens or apostrophes), not an identifier."""
    return bool(_PLAIN_WORD.fullmatch(token)) and not _CAMEL.search(token)


def is_action_sentence(text: str) -> bool:
    """``text`` reads as an instruction a person could act on, not a tool or function name."""
    tokens = [t.strip(_PUNCT) for t in text.split()]
    tokens = [t for t in tokens if t]
    return len(tokens) >= MIN_ACTION_WORDS and _plain(tokens[0]) and sum(map(_plain, tokens)) >= MIN_PLAIN_WORDS


def is_measurable(text: str) -> bool:
    """``text`` names something a tool result can show: a number, a comparison or a measurable term."""
    return bool(_NUMBER.search(text) or _COMPARISON.search(text) or _TERMS.search(text.lower()))


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


NOT_A_SENTENCE = "is not an action sentence"
NOTHING_TO_MEASURE = "names nothing to measure"


def plan_problems(syn: Synthesis, owners: set[str]) -> list[str]:
    """What makes the synthesis's actions something no one could act on: an owner who is not an
    executive agent, an action that is not a sentence, a success criterion that names nothing to
    measure. Each problem names the action; ``expected`` says once what each kind should be."""
    problems = []
    for i, a in enumerate(syn.actions):
        if a.owner not in owners:
            problems.append(f"actions.{i}.owner: expected one of {sorted(owners)}, got {a.owner!r}")
        if not is_action_sentence(a.action):
            problems.append(f"actions.{i}.action: {_clip(a.action)!r} {NOT_A_SENTENCE}")
        if not is_measurable(a.success_criteria):
            problems.append(
                f"actions.{i}.success_criteria of {_clip(a.action, 40)!r}: {_clip(a.success_criteria)!r} "
                f"{NOTHING_TO_MEASURE}"
            )
    return problems


def expected(problems: list[str]) -> str:
    """The rule behind each kind of problem in ``problems``, said once (empty when none applies)."""
    rules = []
    if any(NOT_A_SENTENCE in p for p in problems):
        rules.append(
            f"an action is an instruction a person could act on, starting with a verb, of at least "
            f"{MIN_ACTION_WORDS} words (e.g. {ACTION_EXAMPLE!r}), not a tool or function name"
        )
    if any(NOTHING_TO_MEASURE in p for p in problems):
        rules.append(
            "a success_criteria names a metric or observable with its threshold: a number, or one of "
            + ", ".join(MEASURABLE_TERMS[:TERMS_QUOTED])
            + ", …"
        )
    return " — expected: " + "; ".join(rules) if rules else ""


def parse_synthesis(text: str, owners: set[str], max_actions: int) -> Synthesis:
    """Parse and check the moderator's synthesis; ``HandoffError`` says exactly what is wrong."""
    try:
        raw = json.loads(extract_json_object(text))
    except json.JSONDecodeError as e:
        raise HandoffError(f"not valid JSON: {e}") from None
    too_many = _too_many(raw, max_actions)
    if too_many:
        raise HandoffError(too_many)
    try:
        syn = Synthesis.model_validate(raw)
    except ValidationError as e:
        raise HandoffError(_explain(e)) from None
    problems = plan_problems(syn, owners)
    if problems:
        raise HandoffError(_first_few(problems) + expected(problems))
    return syn


def build_handoff(syn: Synthesis, meeting_id: str, timestamp: str, meeting_number: int) -> Handoff:
    actions = [HandoffAction(id=i, **a.model_dump()) for i, a in enumerate(syn.actions, start=1)]
    return Handoff(
        timestamp=timestamp,
        meeting_id=meeting_id,
        actions=actions,
        count=len(actions),
        source=f"planning_meeting_{meeting_number}",
    )


def handoff_dict(h: Handoff) -> dict:
    """The guide's key order exactly."""
    return {
        "timestamp": h.timestamp,
        "meeting_id": h.meeting_id,
        "actions": [
            {
                "id": a.id,
                "action": a.action,
                "owner": a.owner,
                "priority": a.priority,
                "estimated_duration": a.estimated_duration,
                "success_criteria": a.success_criteria,
            }
            for a in h.actions
        ],
        "count": h.count,
        "source": h.source,
    }


def write_handoff(path: Path, h: Handoff) -> None:
    atomic_write_json(path, handoff_dict(h))


def handoff_or_reason(path: Path, owners: set[str], max_actions: int) -> tuple[Handoff | None, str | None]:
    """``read_handoff`` for a run that must go on: the handoff, or None and why it was refused."""
    try:
        return read_handoff(path, owners, max_actions), None
    except HandoffError as e:
        return None, str(e)


def read_handoff(path: Path, owners: set[str] | None = None, max_actions: int | None = None) -> Handoff | None:
    """The current handoff, or None when there is none. A file written by hand is held to the
    limits of a synthesised one: a file that cannot be read, is not UTF-8 or not JSON, breaks
    the schema, holds more than ``max_actions`` actions or names an owner that does not exist
    raises ``HandoffError``: one line naming the file."""
    path = Path(path)
    try:
        if path.stat().st_size > HANDOFF_MAX_BYTES:
            raise HandoffError(f"{path}: expected at most {HANDOFF_MAX_BYTES} bytes, got {path.stat().st_size}")
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise HandoffError(f"{path}: cannot be read: {e.strerror or e}") from None
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise HandoffError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise HandoffError(f"{path}: not valid JSON: {e}") from None
    too_many = _too_many(raw, max_actions) if max_actions is not None else None
    if too_many:
        raise HandoffError(f"{path}: {too_many}")
    try:
        h = Handoff.model_validate(raw)
    except ValidationError as e:
        raise HandoffError(f"{path}: {_explain(e)}") from None
    if owners is not None:
        bad = [
            f"actions.{a.id}.owner: expected one of {sorted(owners)}, got {a.owner!r}"
            for a in h.actions
            if a.owner not in owners
        ]
        if bad:
            raise HandoffError(f"{path}: " + _first_few(bad))
    return h


def action_key(meeting_id: str, action_id: int) -> str:
    """The stable id of one action across the whole run (tools are idempotent on it)."""
    return f"{meeting_id}#{action_id}"


def by_priority(actions: list[HandoffAction]) -> list[HandoffAction]:
    """HIGH → MEDIUM → LOW; within a priority, the meeting's order."""
    return sorted(actions, key=lambda a: (PRIORITY_RANK[a.priority], a.id))
