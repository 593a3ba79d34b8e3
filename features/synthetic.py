"""A seeded synthetic customer base with plausible, correlated features.

The one generator used by ``maestro init`` (what Feast serves) and by the simulator
(what the simulated customers are), so the two agree. Observable features follow
:mod:`features.schema`; latent preferences (what the simulator knows and a policy
must learn) are returned separately and never served.

Correlations: tier and tenure drive lifetime value; segment drives churn risk;
latent channel affinities drive the historical open/click rates a policy can see;
low CSAT and open complaints raise churn risk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from features.agent_roster import DEFAULT_AGENTS, agent_id
from features.schema import CHANNELS

if TYPE_CHECKING:
    import pandas as pd

SEGMENTS = ("new", "casual", "loyal", "at_risk", "bargain_hunter")
SEGMENT_P = (0.18, 0.32, 0.22, 0.13, 0.15)
TIERS = ("standard", "silver", "gold", "vip")
TIMEZONES = (
    "Europe/London",
    "Europe/Paris",
    "Europe/Madrid",
    "America/New_York",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "UTC",
)
TIMEZONE_P = (0.2, 0.18, 0.12, 0.18, 0.1, 0.1, 0.07, 0.05)
LANGUAGES = {
    "Europe/London": "en",
    "Europe/Paris": "fr",
    "Europe/Madrid": "es",
    "America/New_York": "en",
    "America/Sao_Paulo": "pt",
    "Asia/Kolkata": "en",
    "Asia/Tokyo": "ja",
    "UTC": "en",
}
OFFERS = ("discount", "reminder", "loyalty", "content", "recommendation", "free_shipping")
PAGES = ("home", "product", "cart", "checkout", "account", "help")


def customer_id(index: int) -> str:
    """The contract's customer ids: ``c-000000`` …"""
    return f"c-{index:06d}"


@dataclass(frozen=True)
class CustomerBase:
    """``features``: one row per customer, ``customer_id`` + every observable feature +
    ``event_timestamp``; ``latent``: ``customer_id`` + ``affinity_<channel>`` (0–1) +
    ``offer_<offer>`` (0–1) + ``fatigue_sensitivity`` + ``purchase_value``."""

    features: pd.DataFrame
    latent: pd.DataFrame


def generate_customers(
    n: int, seed: int = 7, now: float | None = None, agents: int = DEFAULT_AGENTS
) -> CustomerBase:
    """Generate ``n`` customers, deterministically from ``seed``.

    ``now`` (epoch seconds) anchors timestamps; by default a fixed date so that the
    same seed gives byte-identical data. ``agents``: the size of the synthetic agent
    roster ``last_agent_id`` draws from (:func:`features.agent_roster.generate_agents`).
    The parts below draw from one generator in a fixed order (the agent features from
    a stream of their own): reordering them would change every customer of a seed.
    """
    import pandas as pd

    if n < 1:
        raise ValueError("n must be >= 1")
    rng = np.random.default_rng(seed)
    now = 1_767_225_600.0 if now is None else float(now)  # 2026-01-01T00:00:00Z

    data: dict[str, Any] = {"customer_id": [customer_id(i) for i in range(n)]}
    data.update(_profile(rng, n))
    segment = data["segment"]
    affinity, offer_taste = _tastes(rng, n, segment)
    data.update(_contact_history(rng, n, affinity, now))
    data.update(_service_history(rng, n, segment, data["tier"]))
    data.update(_consents(rng, n, affinity))
    data.update(_session(rng, n, now))
    data["last_agent_id"] = _last_agents(n, seed, agents)
    features = pd.DataFrame(data)
    features["event_timestamp"] = pd.Timestamp(now, unit="s", tz="UTC")

    latent = pd.DataFrame({"customer_id": features["customer_id"]})
    for c, channel in enumerate(CHANNELS):
        latent[f"affinity_{channel}"] = affinity[:, c]
    for o, offer in enumerate(OFFERS):
        latent[f"offer_{offer}"] = offer_taste[:, o]
    latent["fatigue_sensitivity"] = rng.beta(2, 4, n) + (segment == "at_risk") * 0.2
    tenure = data["tenure_days"]
    latent["purchase_value"] = np.round(
        data["lifetime_value"] / np.maximum(tenure / 30.0, 1.0) + rng.lognormal(3.0, 0.4, n), 2
    )
    return CustomerBase(features=features, latent=latent)


def _profile(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Segment, tier, tenure, lifetime value, time zone and language; shape (n,) each."""
    seg_idx = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_P)
    segment = np.array(SEGMENTS)[seg_idx]
    tenure = np.where(segment == "new", rng.integers(0, 60, n), rng.gamma(2.0, 300.0, n)).astype(
        int
    )
    tier_score = 0.002 * tenure + rng.normal(0, 1, n) + (segment == "loyal") * 1.0
    tier_idx = np.digitize(tier_score, [0.8, 2.0, 3.2])
    tier = np.array(TIERS)[tier_idx]
    ltv = np.round(np.exp(3.5 + 0.6 * tier_idx + 0.0008 * tenure + rng.normal(0, 0.6, n)), 2)
    tz_idx = rng.choice(len(TIMEZONES), size=n, p=TIMEZONE_P)
    timezone = np.array(TIMEZONES)[tz_idx]
    language = np.array([LANGUAGES[t] for t in TIMEZONES])[tz_idx]
    return {
        "segment": segment,
        "tier": tier,
        "tenure_days": tenure.astype(np.int64),
        "lifetime_value": ltv,
        "timezone": timezone,
        "language": language,
    }


def _tastes(rng: np.random.Generator, n: int, segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latent channel affinities, shape (n, n_channels), and offer tastes, shape
    (n, n_offers), all in [0, 1]."""
    # Latent channel affinities: a customer-level responsiveness times channel taste.
    responsiveness = rng.beta(2, 5, n) + (segment == "loyal") * 0.15
    channel_taste = rng.dirichlet(np.ones(len(CHANNELS)) * 1.5, n)
    age_like = rng.normal(0, 1, n)  # hidden: younger-like customers prefer push/whatsapp
    tilt = np.stack(
        [
            -0.3 * age_like,
            0.4 * age_like,
            0.1 * age_like,
            0.3 * age_like,
            0.4 * age_like,
            -0.5 * age_like,
        ],
        axis=1,
    )
    affinity = np.clip(
        responsiveness[:, None] * channel_taste * len(CHANNELS) * np.exp(tilt) / 3.0, 0, 1
    )
    offer_taste = rng.beta(2, 3, (n, len(OFFERS)))
    offer_taste[:, 0] += (segment == "bargain_hunter") * 0.35
    offer_taste[:, 2] += (segment == "loyal") * 0.3
    offer_taste = np.clip(offer_taste, 0, 1)
    return affinity, offer_taste


def _contact_history(
    rng: np.random.Generator, n: int, affinity: np.ndarray, now: float
) -> dict[str, np.ndarray]:
    """Per channel: sends, opens and clicks over 7 and 30 days (driven by the affinity)
    and the time of the last contact (0 when none in 30 days)."""
    data: dict[str, np.ndarray] = {}
    for c, channel in enumerate(CHANNELS):
        sends30 = rng.poisson({"in_app": 6.0, "call_center": 0.4}.get(channel, 2.5), n)
        sends7 = rng.binomial(sends30, 0.3)
        opens30 = rng.binomial(sends30, np.clip(affinity[:, c] * 0.9 + 0.05, 0, 1))
        opens7 = rng.binomial(opens30, np.where(sends30 > 0, sends7 / np.maximum(sends30, 1), 0))
        clicks30 = rng.binomial(opens30, np.clip(affinity[:, c] * 0.6, 0, 1))
        clicks7 = rng.binomial(clicks30, np.where(opens30 > 0, opens7 / np.maximum(opens30, 1), 0))
        data[f"sends_{channel}_7d"] = sends7.astype(np.int64)
        data[f"opens_{channel}_7d"] = opens7.astype(np.int64)
        data[f"clicks_{channel}_7d"] = clicks7.astype(np.int64)
        data[f"sends_{channel}_30d"] = sends30.astype(np.int64)
        data[f"opens_{channel}_30d"] = opens30.astype(np.int64)
        data[f"clicks_{channel}_30d"] = clicks30.astype(np.int64)
        days_ago = rng.exponential(10.0, n)
        data[f"last_contact_{channel}_ts"] = np.where(sends30 > 0, now - days_ago * 86400.0, 0.0)
    return data


def _service_history(
    rng: np.random.Generator, n: int, segment: np.ndarray, tier: np.ndarray
) -> dict[str, np.ndarray]:
    """Tickets, complaints, CSAT, overdue invoices and the churn risk they raise."""
    open_tickets = rng.poisson(0.3, n).astype(np.int64)
    open_complaint = rng.random(n) < (0.03 + 0.05 * (open_tickets > 0))
    last_csat = np.round(np.clip(rng.normal(4.0, 0.8, n) - open_complaint * 1.5, 1, 5), 1)
    churn = 1 / (
        1
        + np.exp(
            -(
                -1.8
                + 1.6 * (segment == "at_risk")
                - 0.9 * (segment == "loyal")
                + 0.8 * open_complaint
                - 0.5 * (last_csat - 4)
                + rng.normal(0, 0.5, n)
            )
        )
    )
    overdue = rng.random(n) < np.where(tier == "standard", 0.08, 0.03)
    days_overdue = np.where(overdue, rng.integers(1, 90, n), 0).astype(np.int64)
    return {
        "churn_risk": np.round(churn, 4),
        "open_tickets": open_tickets,
        "open_complaint": open_complaint,
        "last_csat": last_csat,
        "overdue_invoice": overdue,
        "days_overdue": days_overdue,
    }


_CONSENT_BASE = {
    "email": 0.85,
    "push": 0.6,
    "sms": 0.45,
    "in_app": 0.97,
    "whatsapp": 0.35,
    "call_center": 0.55,
}


def _consents(rng: np.random.Generator, n: int, affinity: np.ndarray) -> dict[str, np.ndarray]:
    """Per channel consent flags, likelier for channels the customer has an affinity for."""
    data: dict[str, np.ndarray] = {}
    for c, channel in enumerate(CHANNELS):
        p = np.clip(_CONSENT_BASE[channel] + 0.2 * (affinity[:, c] - 0.3), 0.02, 0.99)
        data[f"consent_{channel}"] = rng.random(n) < p
    return data


def _session(rng: np.random.Generator, n: int, now: float) -> dict[str, np.ndarray]:
    """The current web session of a quarter of the customers (empty values for the rest)."""
    in_session = rng.random(n) < 0.25
    return {
        "last_page": np.where(in_session, np.array(PAGES)[rng.integers(0, len(PAGES), n)], ""),
        "session_pages": np.where(in_session, rng.integers(1, 15, n), 0).astype(np.int64),
        "cart_value": np.where(
            in_session & (rng.random(n) < 0.5), np.round(rng.lognormal(4.0, 0.7, n), 2), 0.0
        ),
        "rapid_clicks": np.where(in_session, rng.poisson(0.3, n), 0).astype(np.int64),
        "last_event_ts": np.where(in_session, now - rng.exponential(600.0, n), 0.0),
    }


def _last_agents(n: int, seed: int, agents: int) -> list[str]:
    """The agent a third of the customers last spoke to (``""`` for the others)."""
    # drawn from a separate stream, so adding the agent features left every other
    # feature and latent of a seed unchanged
    agent_rng = np.random.default_rng([seed, 9])
    spoke = agent_rng.random(n) < 0.35
    last_agent = agent_rng.integers(0, max(agents, 1), n)
    return [agent_id(int(a)) if s else "" for s, a in zip(spoke, last_agent, strict=True)]
