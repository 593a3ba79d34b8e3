"""Multi-step journeys whose true per-contact effect is known: what each attribution rule
credits to each step, against the truth.

A journey is an abandoned cart followed by up to three contacts in a fixed order (an
e-mail on day 0, a push on day 1, an SMS on day 2); each is sent with its own probability,
so journeys differ in which steps they hold. The customer buys with probability
``base + Σ lift[a]`` over the contacts received, at a time uniform over the two days after
the last one, for a lognormal order value. The lifts are the truth: a step's true
incremental value per contact is ``lift[a] · E[value]``, its true share of the journey's
incremental value ``lift[a] · n[a] / Σ lift · n``.

Every conversion is attributed to the journey's contacts by
:meth:`policies.attribution.Attribution.shares`, as serving attributes a ``purchase``
(every contact within the window). A rule's share for a step is the credit it gives that
step over all the credit it gives; the figure is how far that is from the true share.
Last touch gives the closing step everything whenever it is present, however little it
adds; the other rules spread credit over the steps that were there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from policies.attribution import RULES, Attribution

DAY = 86_400.0


@dataclass(frozen=True)
class JourneySpec:
    """The journeys simulated.

    Parameters
    ----------
    steps: tuple of (action id, day sent, probability sent, true lift)
        In journey order.
    base: float
        Purchase probability with no contact.
    mean_value: float
        Mean order value (lognormal, sigma 0.5).
    half_life_days: float
        ``time_decay``'s half-life.
    """

    steps: tuple[tuple[str, float, float, float], ...] = (
        ("email_reminder", 0.0, 0.8, 0.10),
        ("push_reminder", 1.0, 0.6, 0.03),
        ("sms_discount", 2.0, 0.5, 0.02),
    )
    base: float = 0.05
    mean_value: float = 80.0
    half_life_days: float = 1.0
    rules: tuple[str, ...] = field(default=RULES)


@dataclass(frozen=True)
class AttributionFigure:
    """Per step: its contacts, its true share of the incremental value and each rule's
    share of the credit (rule → shares aligned with ``actions``)."""

    actions: tuple[str, ...]
    contacts: tuple[int, ...]
    conversions: int
    true_share: tuple[float, ...]
    credit_share: dict[str, tuple[float, ...]]

    def error(self, rule: str) -> float:
        """Total variation distance between ``rule``'s credit shares and the truth."""
        return 0.5 * sum(abs(a - b) for a, b in
                         zip(self.credit_share[rule], self.true_share, strict=True))


def simulate(n_journeys: int = 20_000, seed: int = 0,
             spec: JourneySpec | None = None) -> AttributionFigure:
    """Simulate ``n_journeys`` journeys (seeded) and attribute every conversion by each
    rule of ``spec``."""
    spec = spec or JourneySpec()
    rng = np.random.default_rng(seed)
    k = len(spec.steps)
    days = np.array([s[1] for s in spec.steps])
    sent = rng.random((n_journeys, k)) < np.array([s[2] for s in spec.steps])
    lifts = np.array([s[3] for s in spec.steps])
    p_buy = spec.base + sent.astype(float) @ lifts
    bought = (rng.random(n_journeys) < p_buy) & sent.any(axis=1)
    sigma = 0.5
    values = rng.lognormal(np.log(spec.mean_value) - sigma**2 / 2, sigma, n_journeys)
    credit = {rule: np.zeros(k) for rule in spec.rules}
    rules = {rule: Attribution(rule, spec.half_life_days * DAY) for rule in spec.rules}
    for j in np.flatnonzero(bought):
        idx = np.flatnonzero(sent[j])
        times = (days[idx] * DAY).tolist()
        at = times[-1] + rng.uniform(0.0, 2.0) * DAY
        for rule, attribution in rules.items():
            credit[rule][idx] += np.asarray(attribution.shares(times, at)) * values[j]
    contacts = sent.sum(axis=0)
    true = lifts * contacts
    return AttributionFigure(
        actions=tuple(s[0] for s in spec.steps),
        contacts=tuple(int(c) for c in contacts),
        conversions=int(bought.sum()),
        true_share=tuple(float(x) for x in true / true.sum()),
        credit_share={r: tuple(float(x) for x in c / c.sum()) for r, c in credit.items()},
    )


def figure_table(fig: AttributionFigure) -> str:
    """The figure as a Markdown table (one row per step, then each rule's error)."""
    rules = list(fig.credit_share)
    lines = ["| step | contacts | true share | " + " | ".join(rules) + " |",
             "|---|---:|---:|" + "---:|" * len(rules)]
    for i, action in enumerate(fig.actions):
        shares = " | ".join(f"{fig.credit_share[r][i]:.3f}" for r in rules)
        lines.append(f"| {action} | {fig.contacts[i]} | {fig.true_share[i]:.3f} | {shares} |")
    errors = " | ".join(f"{fig.error(r):.3f}" for r in rules)
    lines.append(f"| distance to the truth (TV) | | | {errors} |")
    return "\n".join(lines)
