"""The input of per-loan planning: one loan, its borrower's circumstances, and the policy.

Money in integer cents, rates as fractions, income per month. A :class:`LoanCase` is what
``repayplan quote`` builds from its options and what ``store.queries.loan_for_planning``
returns for a stored loan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from repayplan.errors import InputError
from repayplan.finance.seasonality import seasonality_problem

#: Longest hardship before income recovers, months (``LoanCase.recovery_months``).
MAX_RECOVERY_MONTHS = 120

HARDSHIP_REASONS = ("job_loss", "illness", "business_downturn", "seasonal", "other")


@dataclass(frozen=True)
class LoanCase:
    """One loan to plan.

    ``outstanding_principal``, ``accrued_interest``, ``arrears`` (past-due principal and
    interest not yet in the principal), ``penalty_fees`` and the borrower's monthly
    ``monthly_income`` / ``essential_expenses`` / ``other_debt`` / ``fixed_costs``
    (housing costs, for the HAMP ratio) are integer cents. ``annual_rate`` is a fraction.
    ``income_seasonality`` holds 12 multiplicative factors, January first, averaging 1.
    During a hardship, income is ``hardship_income_factor × income`` until
    ``recovery_months`` have passed. A known change of income (a fixed-term contract ending,
    retirement) multiplies income by ``income_change_factor`` after ``income_change_months``
    months. ``remaining_term`` counts the contract's periods still
    to come; 0 means the loan is *matured* — past its maturity date with a balance still
    owed, or charged off — and is planned over a new term (``Policy.matured_term_months``)
    with a settlement offered beside it.
    """

    outstanding_principal: int
    annual_rate: Decimal
    remaining_term: int
    monthly_income: int
    essential_expenses: int
    other_debt: int = 0
    fixed_costs: int = 0
    accrued_interest: int = 0
    arrears: int = 0
    penalty_fees: int = 0
    frequency: str = "monthly"
    income_seasonality: tuple[float, ...] = (1.0,) * 12
    hardship: str | None = None
    recovery_months: int | None = None
    hardship_income_factor: float = 1.0
    income_change_months: int | None = None
    income_change_factor: float = 1.0
    start: date = field(default_factory=date.today)
    base_monthly_hazard: float | None = None
    regular_payment: int | None = None
    product: str = "consumer_instalment"
    segment: str | None = None
    loan_id: str = "quote"

    def __post_init__(self) -> None:
        rec = f"loan {self.loan_id}"
        for name in (
            "outstanding_principal",
            "monthly_income",
            "essential_expenses",
            "other_debt",
            "fixed_costs",
            "accrued_interest",
            "arrears",
            "penalty_fees",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise InputError(
                    f"must be a non-negative amount in cents, got {value!r}", field=name, record=rec
                )
        if self.exposure <= 0:
            raise InputError(
                "nothing to repay (balance, interest and arrears are all 0)",
                field="outstanding_principal",
                record=rec,
            )
        rate = self.annual_rate
        if (isinstance(rate, Decimal) and not rate.is_finite()) or not (
            Decimal(0) <= rate < Decimal(10)
        ):
            raise InputError(
                f"annual rate {self.annual_rate} is not a fraction in [0, 10)",
                field="annual_rate",
                record=rec,
            )
        if self.remaining_term < 0:
            raise InputError(
                "must be 0 (matured or charged off) or more periods",
                field="remaining_term",
                record=rec,
            )
        problem = seasonality_problem(self.income_seasonality)
        if problem:
            raise InputError(problem, field="income_seasonality", record=rec)
        factor = self.hardship_income_factor
        if not isinstance(factor, int | float) or not 0 <= factor <= 1:
            raise InputError(
                f"must be a share of normal income between 0 and 1, got {factor!r}",
                field="hardship_income_factor",
                record=rec,
            )
        months = self.recovery_months
        if months is not None and (
            not isinstance(months, int) or not 0 <= months <= MAX_RECOVERY_MONTHS
        ):
            raise InputError(
                f"must be between 0 and {MAX_RECOVERY_MONTHS} months, got {months!r}",
                field="recovery_months",
                record=rec,
            )
        if self.hardship is not None and self.hardship not in HARDSHIP_REASONS:
            raise InputError(
                f"unknown reason {self.hardship!r}; use one of " + ", ".join(HARDSHIP_REASONS),
                field="hardship",
                record=rec,
            )
        if self.income_change_months is not None and self.income_change_months < 0:
            raise InputError("must be 0 or more months", field="income_change_months", record=rec)
        if not (0.0 <= self.income_change_factor <= 10.0):
            raise InputError(
                f"must be a share of income in [0, 10], got {self.income_change_factor!r}",
                field="income_change_factor",
                record=rec,
            )
        if self.monthly_income == 0:
            raise InputError(
                "must be positive to plan affordability", field="monthly_income", record=rec
            )

    @property
    def matured(self) -> bool:
        """True when no contract period is left (past maturity with a balance, or charged
        off)."""
        return self.remaining_term == 0

    @property
    def exposure(self) -> int:
        """Principal + accrued interest + arrears + penalty fees, in cents (before waivers)."""
        return self.outstanding_principal + self.accrued_interest + self.arrears + self.penalty_fees


@dataclass(frozen=True)
class Policy:
    """The lender's rules for planning (fractions per year unless stated).

    ``hurdle_rate``: lender's required annual yield (the NPV floor discounts at it);
    ``max_concession``: largest share of exposure the lender may give up in NPV terms;
    ``rate_floor``: lowest annual rate a cut may reach; ``pti_cap`` (α): largest payment
    share of income; ``rate_cap``: regulatory cap on the annualised rate (IRR method);
    ``max_term_months``: longest plan; ``min_payment``: smallest installment in cents;
    ``max_penalty_waiver``: share of penalty fees that may be waived; ``lgd``: loss given
    default; ``cost_weight``: weight of borrower cost against expected default cost;
    ``max_holiday_months``: longest payment holiday; ``affordability_penalty``: price per
    cent of affordability shortfall when affordability is soft (None = hard constraint).
    A matured loan (``LoanCase.remaining_term == 0``) is re-amortised over
    ``matured_term_months`` (plus a template's extension, within ``max_term_months``). The
    settlement template repays within ``settlement_months`` and may forgive up to
    ``settlement_discount`` of the exposure (penalty fees first, then principal; a counted
    concession: its yield floor is ``1 − settlement_discount`` of the exposure).
    """

    hurdle_rate: Decimal = Decimal("0.05")
    max_concession: Decimal = Decimal("0.10")
    rate_floor: Decimal = Decimal("0.02")
    pti_cap: Decimal = Decimal("0.40")
    rate_cap: Decimal = Decimal("0.36")
    max_term_months: int = 480
    min_payment: int = 1000
    max_penalty_waiver: Decimal = Decimal("1.0")
    lgd: Decimal = Decimal("0.45")
    cost_weight: Decimal = Decimal("0.10")
    max_holiday_months: int = 3
    affordability_penalty: Decimal | None = None
    matured_term_months: int = 60
    settlement_months: int = 12
    settlement_discount: Decimal = Decimal("0.30")
