"""The compiled per-agent loops (``policies._routing``) give what their pure-Python twins
(``policies.routing.case_reason_py`` / ``sent_agents_py``) give."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import routing
from policies.routing import case_reason_py, sent_agents_py
from policies.types import Action


def test_the_compiled_extension_is_installed_and_used() -> None:
    from policies import _routing

    assert routing.case_reason is _routing.case_reason
    assert routing.sent_agents is _routing.sent_agents


names = st.lists(st.sampled_from(["billing", "Technical", " retention", "sales", "", "en", "ES"]))
value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.sampled_from(["2", "1.5", "x", "nan", "", "1e3"]),
    names.map(",".join),
)
features = st.dictionaries(
    st.sampled_from(["skills", "languages", "level", "load", "capacity", "other"]), value
)


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from([None, "billing", "technical", "retention"]),
    st.floats(-1, 3, allow_nan=False),
    st.sampled_from([None, "en", "es"]),
    st.booleans(),
    features,
)
def test_case_reason_matches_its_twin(
    skill: str | None, level: float, language: str | None, retention: bool, feats: dict
) -> None:
    from policies._routing import case_reason

    assert case_reason(skill, level, language, retention, feats) == case_reason_py(
        skill, level, language, retention, feats
    )


@dataclasses.dataclass
class Sent:
    id: str
    channel: str
    features: dict[str, Any]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.builds(
            Sent,
            st.sampled_from(["a1", "a2", "a3", "offer"]),
            st.sampled_from(["agent", "email", "call_center"]),
            st.dictionaries(st.sampled_from(["load", "continuity", "x"]), st.integers(0, 3)),
        ),
        max_size=5,
    ),
    st.sampled_from([None, "a1", "a2", "zz"]),
)
def test_sent_agents_matches_its_twin(sent: list[Sent], last: str | None) -> None:
    from policies._routing import sent_agents

    fast, slow = sent_agents(sent, last), sent_agents_py(sent, last)
    assert fast == slow
    assert all(type(a) is Action for a in fast)
    for action, src in zip(fast, sent, strict=True):
        assert action.features is not src.features  # a copy: the request is not changed
        if src.channel == "agent":
            assert action.features["continuity"] == (1 if src.id == last else 0)
        else:
            assert action.features == src.features
