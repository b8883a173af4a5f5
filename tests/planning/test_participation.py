"""What counts as an agent taking part: not an empty answer, not the prompt said back, not an
answer cut at its output limit (each provider's word for that)."""

import pytest

from cvagents.llm.factory import CUT
from cvagents.planning.participation import ECHO_SHARE, Participation, echo_share, judge, was_cut

PROMPT = (
    "# Planning meeting meeting_20250301_080000\n\n## Agenda (from the moderator)\n"
    "1. Review the current stage: shadow, verdict inconclusive. The gates ndcg_at_10 and "
    "rollback_test have no evidence yet; latency P95 is 2.1 ms against a threshold of 50 ms.\n"
    "2. Open actions: evaluate the version live in shadow on the validation set, run the rollback "
    "drill, replay ten minutes of mirrored traffic and record SLO compliance.\n"
    "Answer as the Critic in at most about 250 words of markdown, in your role's voice, and end "
    "with a section 'Recommended actions:' of 1-5 bullets, each a complete imperative sentence."
)
OWN_WORDS = (
    "The shadow stage still lacks its two decisive pieces of evidence, so promoting now would be "
    "reckless. Latency looks healthy at 2.1 ms, far under the 50 ms gate, but a fast wrong model "
    "is still wrong.\n\nRecommended actions:\n- Evaluate the shadow version on the validation set "
    "before anything else.\n- Run the rollback drill on shadow and keep its log."
)


@pytest.mark.parametrize("text", ["", "   \n\t", "```\n```", "..."])
def test_an_answer_with_no_word_is_empty(text):
    assert judge(text, PROMPT, "end_turn").participation == Participation.EMPTY


def test_the_prompt_said_back_is_an_echo_even_re_wrapped_and_re_cased():
    echoed = PROMPT.upper().replace("\n", "  ").replace(": ", " - ")
    v = judge(echoed, PROMPT, "end_turn")
    assert v.participation == Participation.ECHOED and not v.counts
    assert "repeated the prompt back" in v.why and "% of its words copy the request" in v.why


def test_an_echo_that_ran_into_the_limit_is_an_echo():
    assert judge(PROMPT[:600], PROMPT, "max_tokens").participation == Participation.ECHOED


def test_an_answer_in_its_own_words_that_quotes_the_agenda_takes_part():
    assert echo_share(OWN_WORDS, PROMPT) < ECHO_SHARE / 2
    v = judge(OWN_WORDS, PROMPT, "end_turn")
    assert v.participation == Participation.TOOK_PART and v.counts and v.why == ""


def test_half_own_words_half_copied_is_below_the_echo_share():
    mixed = OWN_WORDS + "\n\n" + PROMPT[:250]
    assert 0 < echo_share(mixed, PROMPT) < ECHO_SHARE
    assert judge(mixed, PROMPT, "end_turn").counts


@pytest.mark.parametrize("stop", ["max_tokens", "length", "MAX_TOKENS", "max_output_tokens", CUT])
def test_every_provider_s_word_for_the_output_limit_is_a_cut(stop):
    assert was_cut(stop)
    v = judge(OWN_WORDS[:200], PROMPT, stop)
    assert v.participation == Participation.CUT and not v.counts and repr(stop) in v.why


@pytest.mark.parametrize("stop", ["end_turn", "stop", "tool_use", "refusal", "", None])
def test_a_normal_end_is_not_a_cut(stop):
    assert not was_cut(stop)


def test_a_synthesis_may_quote_its_request():
    """The moderator's JSON reuses the state's words; only contributions are checked for echo."""
    assert judge(PROMPT, PROMPT, "end_turn", check_echo=False).counts
