"""The registry of plan templates: what each alternative optimises and which shape it imposes.

A template is data, not code: :func:`repayplan.plans.model.build_program` reads its fields
to decide the objective, the shape rows and the calendar. Adding an alternative means adding
one :class:`Template` here.

Objectives (all in cents, minimised):

- ``"balanced"``: expected default cost through the burden curve + ``Policy.cost_weight`` ×
  total paid;
- ``"min_max_pti"``: the largest payment-to-income ratio (a fraction), then — as a second
  stage with that ratio held — the balanced objective, so the schedule is well defined;
- ``"min_total_paid"``: total paid by the borrower.
"""

from __future__ import annotations

from dataclasses import dataclass

from repayplan.errors import InputError

OBJECTIVES = ("balanced", "min_max_pti", "min_total_paid")
SHAPES = ("free", "level", "graduated", "falling", "seasonal", "stepped", "chosen_holiday")
ARREARS_MODES = ("capitalise", "spread")


@dataclass(frozen=True)
class Template:
    """One kind of alternative.

    ``shape``: ``free`` (any payments), ``level`` (equal payments outside holidays),
    ``graduated`` (non-decreasing payments), ``falling`` (non-increasing: front-loaded),
    ``seasonal`` (payment = one ratio × income in every non-off-season period), ``stepped``
    (MILP: at most ``levels`` payment levels, as consecutive steps), ``chosen_holiday``
    (MILP: the model picks up to ``Policy.max_holiday_months`` holiday periods in the first
    ``holiday_window`` periods).
    ``holiday``: a fixed payment holiday at the start (length from the case and policy).
    ``frequency``: the plan cycle (``None`` = the loan's own). ``rate_search``: try a small
    grid of rates from the contract rate down to ``Policy.rate_floor`` and keep the best.
    ``extend_term``: the plan may run past the remaining term (up to the policy maximum) by
    ``extend_term`` periods. ``arrears``: how arrears and accrued interest are handled —
    capitalised into the interest-bearing balance, or spread without interest over the next
    ``spread_periods`` periods on top of the regular installment. ``settlement``: a
    discounted payoff — the plan runs ``Policy.settlement_months`` (whatever the remaining
    term) and may forgive up to ``Policy.settlement_discount`` of the exposure.
    """

    name: str
    objective: str = "balanced"
    shape: str = "free"
    holiday: bool = False
    frequency: str | None = None
    rate_search: bool = False
    extend_term: int = 0
    arrears: str = "capitalise"
    spread_periods: int = 6
    levels: int = 3
    holiday_window: int = 12
    settlement: bool = False
    description: str = ""

    @property
    def is_mip(self) -> bool:
        """True when the template's model has integer variables."""
        return self.shape in ("stepped", "chosen_holiday")


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            "lowest_installment",
            objective="min_max_pti",
            shape="level",
            rate_search=True,
            extend_term=120,
            description="smallest possible share of income, level payments over a longer term",
        ),
        Template("balanced", description="least expected default cost plus borrower cost"),
        Template(
            "lowest_cost",
            objective="min_total_paid",
            description="pays the loan off as fast as income allows: least total paid",
        ),
        Template(
            "seasonal",
            shape="seasonal",
            description="payments follow seasonal income (one share of income every month)",
        ),
        Template(
            "graduated",
            shape="graduated",
            extend_term=24,
            description="rising payments as income recovers or grows",
        ),
        Template(
            "falling",
            shape="falling",
            description="falling payments: more now, less once income is expected to fall "
            "(a contract ending, retirement, a seasonal income past its season)",
        ),
        Template(
            "holiday",
            holiday=True,
            extend_term=12,
            description="a short payment holiday, then catch-up payments",
        ),
        Template(
            "spread_arrears",
            shape="level",
            arrears="spread",
            description="arrears spread without interest over the next months on top of the "
            "regular installment",
        ),
        Template(
            "reamortise",
            shape="level",
            extend_term=60,
            description="arrears capitalised and the balance re-amortised in level payments",
        ),
        Template(
            "quarterly",
            frequency="quarterly",
            description="one payment per quarter",
        ),
        Template("yearly", frequency="yearly", description="one payment per year"),
        Template(
            "stepped",
            shape="stepped",
            levels=3,
            description="at most three payment levels (MILP)",
        ),
        Template(
            "settlement",
            settlement=True,
            description="a discounted payoff over a short term: part of the debt forgiven for "
            "paying the rest quickly (offered when the loan has matured)",
        ),
        Template(
            "chosen_holiday",
            shape="chosen_holiday",
            extend_term=12,
            description="holiday months chosen by the model where they help most (MILP)",
        ),
    )
}

#: Which templates a hardship reason steers towards (``None`` = no hardship).
HARDSHIP_TEMPLATES: dict[str | None, tuple[str, ...]] = {
    None: ("lowest_installment", "balanced", "lowest_cost"),
    "job_loss": ("holiday", "graduated", "lowest_installment", "balanced"),
    "illness": ("holiday", "graduated", "lowest_installment", "balanced"),
    "business_downturn": ("graduated", "lowest_installment", "balanced"),
    "seasonal": ("seasonal", "lowest_installment", "balanced"),
    "other": ("lowest_installment", "balanced", "lowest_cost"),
}

#: Plan cycles other than monthly that a product allows (substring of the product name).
PRODUCT_CYCLES: dict[str, tuple[str, ...]] = {
    "agri": ("quarterly", "yearly"),
    "farm": ("quarterly", "yearly"),
    "business": ("quarterly",),
    "sme": ("quarterly",),
}


def get_template(name: str) -> Template:
    """The template called ``name``; an unknown name raises InputError listing the known ones."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise InputError(
            f"unknown template {name!r}; use one of " + ", ".join(TEMPLATES), field="template"
        ) from None


def template_names() -> tuple[str, ...]:
    """Names of every registered template."""
    return tuple(TEMPLATES)


def templates_for(
    hardship: str | None,
    product: str,
    has_arrears: bool,
    matured: bool = False,
    income_falls: bool = False,
) -> tuple[str, ...]:
    """Templates offered for a borrower: steered by the hardship reason, plus the arrears
    treatments when something is past due, a re-amortisation and a settlement when the loan
    has matured (no contract period left), falling payments when income is expected to
    fall, plus the longer cycles the product allows."""
    names = list(HARDSHIP_TEMPLATES.get(hardship, HARDSHIP_TEMPLATES[None]))
    if income_falls:
        names.append("falling")
    if has_arrears:
        names += ["spread_arrears", "reamortise"]
    if matured:
        names += ["reamortise", "settlement"]
    for key, cycles in PRODUCT_CYCLES.items():
        if key in product.lower():
            names += [c for c in cycles if c not in names]
    return tuple(dict.fromkeys(names))
