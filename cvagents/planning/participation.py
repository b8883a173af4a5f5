"""Whether a contribution is the agent taking part: not empty, not the prompt said back, not
cut off at its output limit.

Small models answer a long prompt by repeating it until ``max_tokens``, or stop mid-sentence;
such an answer is recorded for what it is and does not count as the agent taking part.

- **empty**: no word in it.
- **echoed**: at least ``ECHO_SHARE`` of its words sit in a run of ``ECHO_NGRAM`` or more
  consecutive words that also occurs in the request (system prompt and messages), compared
  case-insensitively on words only, so re-wrapped or re-formatted copies count too. An answer
  that quotes a few numbers or the agenda's headings stays far below the share.
- **cut**: the provider stopped it at the output limit; every provider's word for that is
  normalised here (``CUT_STOP_REASONS``). A cut answer does not count as taking part (its end,
  where the recommendations go, is missing), but its words are still passed on, marked as cut.

Precedence: empty, then echoed, then cut (an echo that ran into the limit is an echo).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cvagents.llm.factory import CUT

__all__ = [
    "CUT_STOP_REASONS",
    "ECHO_NGRAM",
    "ECHO_SHARE",
    "Participation",
    "Verdict",
    "echo_share",
    "judge",
    "was_cut",
]

# Stop reasons that mean "stopped at the output limit": ours and the SDKs' (anthropic
# "max_tokens", openai "length", gemini "MAX_TOKENS", openai responses "max_output_tokens"),
# and the cut ``llm.factory.bounded_answer`` makes.
CUT_STOP_REASONS = frozenset({"max_tokens", "length", "max_output_tokens", CUT})
ECHO_NGRAM = 8  # words in a run shared with the prompt before it counts as copied
ECHO_SHARE = 0.6  # share of an answer's words in such runs that makes it an echo
_WORD = re.compile(r"\w+")


class Participation(StrEnum):
    TOOK_PART = "took_part"
    EMPTY = "empty"
    ECHOED = "echoed"
    CUT = "cut"
    ABSENT = "absent"  # the provider failed: no answer at all (``MeetingOutcome.absent`` says why)


# What the transcript, the summary and the monitors say of an answer that did not count.
NOT_COUNTED = {
    Participation.EMPTY: "answered nothing",
    Participation.ECHOED: "repeated the prompt back",
    Participation.CUT: "was cut at its output limit",
}


@dataclass(frozen=True)
class Verdict:
    participation: Participation
    why: str = ""  # one short clause for a contribution that did not count

    @property
    def counts(self) -> bool:
        return self.participation == Participation.TOOK_PART


def was_cut(stop_reason: str | None) -> bool:
    """The answer stopped at its output limit, whichever provider said so."""
    return (stop_reason or "").strip().lower() in CUT_STOP_REASONS


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def echo_share(answer: str, prompt: str, n: int = ECHO_NGRAM) -> float:
    """The share of ``answer``'s words that lie in a run of ``n`` consecutive words also found in
    ``prompt`` (0.0 for an answer shorter than ``n`` words)."""
    words = _words(answer)
    if len(words) < n:
        return 0.0
    p = _words(prompt)
    grams = {tuple(p[i : i + n]) for i in range(len(p) - n + 1)}
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if tuple(words[i : i + n]) in grams:
            covered[i : i + n] = [True] * n
    return sum(covered) / len(words)


def judge(answer: str, prompt: str, stop_reason: str | None, *, check_echo: bool = True) -> Verdict:
    """How an answer to ``prompt`` counts. ``check_echo`` off for answers that are meant to quote
    the request (the moderator's synthesis reuses the state's words)."""
    if not _WORD.search(answer):
        return Verdict(Participation.EMPTY, NOT_COUNTED[Participation.EMPTY])
    if check_echo:
        share = echo_share(answer, prompt)
        if share >= ECHO_SHARE:
            return Verdict(
                Participation.ECHOED, f"{NOT_COUNTED[Participation.ECHOED]} ({share:.0%} of its words copy the request)"
            )
    if was_cut(stop_reason):
        return Verdict(Participation.CUT, f"{NOT_COUNTED[Participation.CUT]} (stop reason {stop_reason!r})")
    return Verdict(Participation.TOOK_PART)
