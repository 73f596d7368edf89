"""The behavioural model behind the demo portfolio: the ground truth a fitted risk model is
checked against. Pure numpy functions; :mod:`repayplan.store.demo` drives them month by month.

Income. Borrower ``b`` in calendar month ``m`` earns
``y = income_b × season_b[month of year] × exp(σ_b·z − σ_b²/2) × (shock ? shock_income_factor : 1)``
with ``z`` standard normal, so noise keeps the mean. A shock (job loss, illness, business
downturn …) starts with monthly probability ``shock_onset_<segment>`` and ends with monthly
probability ``1 / shock_mean_months`` (geometric duration, recovery).

Missed payments. At each due date, the probability that the installment is missed is

    h = logistic(α_segment + β_pti · PTI + β_shock · shock + β_arrears(k))

where ``PTI`` = installment per month (installment / months per period) ÷ that month's
income, and ``k`` the installments already unpaid (``β_arrears(0) = 0``; 1, 2, 3+ have their
own coefficients: delinquency is persistent). For small ``h`` the hazard multiplies by about
``exp(0.1 · β_pti)`` per +10 points of PTI: 1.46 with the default β_pti = 3.8, inside the
1.3–1.6 range reported for payment reductions in mortgage modifications (Haughwout, Okah &
Tracy 2016; Agarwal et al. 2017 on HAMP), and ``h`` is convex in PTI below 50 %.

When a delinquent borrower pays, all arrears and fees are paid too ("cure") with probability
``cure_probability``; otherwise the payment clears the oldest installment (first in, first
out, so ``k`` stays). A loan is charged off (defaulted) once its unpaid installments cover
``default_after_months`` months. A loan with at least ``restructure_min_arrears`` unpaid
installments is restructured with probability ``restructure_probability`` per due date (at
most ``max_restructures`` times): arrears are capitalised, fees waived, the term extended by
``restructure_extension_months`` and the installment re-computed. Current loans are repaid
early with monthly probability ``prepayment_probability``. A missed installment costs a late
fee of ``late_fee_rate`` × installment, at most ``late_fee_cap`` currency units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from repayplan.store.schema import SEGMENTS

_DESCRIPTIONS = {
    "alpha_salaried": "logit intercept of the miss hazard, salaried borrowers",
    "alpha_self_employed": "logit intercept of the miss hazard, self-employed borrowers",
    "alpha_gig": "logit intercept of the miss hazard, gig-economy borrowers",
    "alpha_seasonal": "logit intercept of the miss hazard, seasonal/agricultural borrowers",
    "beta_pti": "logit slope per unit of payment-to-income (fraction); +10 pts ≈ ×exp(0.1β)",
    "beta_shock": "logit shift while the borrower's income shock lasts",
    "beta_arrears_1": "logit shift with 1 installment unpaid",
    "beta_arrears_2": "logit shift with 2 installments unpaid",
    "beta_arrears_3plus": "logit shift with 3 or more installments unpaid",
    "shock_onset_salaried": "monthly probability an income shock starts, salaried",
    "shock_onset_self_employed": "monthly probability an income shock starts, self-employed",
    "shock_onset_gig": "monthly probability an income shock starts, gig",
    "shock_onset_seasonal": "monthly probability an income shock starts, seasonal",
    "shock_mean_months": "mean shock duration in months (geometric recovery)",
    "shock_income_factor": "income during a shock as a share of usual income",
    "cure_probability": "probability a delinquent borrower who pays also clears all arrears",
    "default_after_months": "charge-off once unpaid installments cover this many months",
    "restructure_min_arrears": "unpaid installments before a loan may be restructured",
    "restructure_probability": "probability per due date that an eligible loan is restructured",
    "restructure_extension_months": "term extension granted by a restructure, months",
    "max_restructures": "most restructures one loan receives",
    "prepayment_probability": "monthly probability a current loan is repaid early",
    "late_fee_rate": "late fee as a share of the missed installment",
    "late_fee_cap": "largest late fee per missed installment, currency units",
    "max_hazard": "upper clip of the monthly miss probability",
}


@dataclass(frozen=True)
class BehaviourParams:
    """True parameters of the behavioural model (see the module docstring for the equations)."""

    alpha_salaried: float = -4.9
    alpha_self_employed: float = -4.5
    alpha_gig: float = -4.2
    alpha_seasonal: float = -4.5
    beta_pti: float = 3.8
    beta_shock: float = 1.3
    beta_arrears_1: float = 3.4
    beta_arrears_2: float = 4.2
    beta_arrears_3plus: float = 5.0
    shock_onset_salaried: float = 0.003
    shock_onset_self_employed: float = 0.005
    shock_onset_gig: float = 0.007
    shock_onset_seasonal: float = 0.004
    shock_mean_months: float = 6.0
    shock_income_factor: float = 0.4
    cure_probability: float = 0.5
    default_after_months: float = 6.0
    restructure_min_arrears: float = 2.0
    restructure_probability: float = 0.12
    restructure_extension_months: float = 12.0
    max_restructures: float = 2.0
    prepayment_probability: float = 0.002
    late_fee_rate: float = 0.05
    late_fee_cap: float = 25.0
    max_hazard: float = 0.95

    def alpha(self) -> np.ndarray:
        """Intercepts in the order of :data:`repayplan.store.schema.SEGMENTS`."""
        return np.array([getattr(self, f"alpha_{s}") for s in SEGMENTS])

    def shock_onset(self) -> np.ndarray:
        """Monthly shock-onset probabilities in the order of ``SEGMENTS``."""
        return np.array([getattr(self, f"shock_onset_{s}") for s in SEGMENTS])

    def rows(self) -> list[tuple[str, float, str]]:
        """``(parameter, value, description)`` rows for the ``behaviour_truth`` table."""
        values = asdict(self)
        return [(f.name, float(values[f.name]), _DESCRIPTIONS[f.name]) for f in fields(self)]


def true_hazard(
    pti: np.ndarray,
    shock: np.ndarray,
    arrears_installments: np.ndarray,
    segment_code: np.ndarray,
    params: BehaviourParams | None = None,
) -> np.ndarray:
    """True probability that an installment is missed, per loan-due-date (fraction).

    ``pti``: installment per month ÷ income of the month (fraction); ``shock``: boolean;
    ``arrears_installments``: installments already unpaid; ``segment_code``: index into
    ``SEGMENTS``. Arrays broadcast together.
    """
    p = params or BehaviourParams()
    k = np.asarray(arrears_installments)
    arrears = np.select(
        [k <= 0, k == 1, k == 2], [0.0, p.beta_arrears_1, p.beta_arrears_2], p.beta_arrears_3plus
    )
    logit = (
        p.alpha()[np.asarray(segment_code)]
        + p.beta_pti * np.asarray(pti, dtype=np.float64)
        + p.beta_shock * np.asarray(shock, dtype=np.float64)
        + arrears
    )
    return np.minimum(1.0 / (1.0 + np.exp(-logit)), p.max_hazard)


def monthly_income(
    base: np.ndarray,
    season_factor: np.ndarray,
    volatility: np.ndarray,
    shock: np.ndarray,
    z: np.ndarray,
    params: BehaviourParams | None = None,
) -> np.ndarray:
    """Income of one month (same unit as ``base``) given standard-normal draws ``z``."""
    p = params or BehaviourParams()
    noise = np.exp(volatility * z - 0.5 * volatility**2)
    return base * season_factor * noise * np.where(shock, p.shock_income_factor, 1.0)


def step_shocks(
    shock: np.ndarray,
    segment_code: np.ndarray,
    u: np.ndarray,
    params: BehaviourParams | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Advance shock states one month with uniforms ``u``: returns ``(new_state, started)``."""
    p = params or BehaviourParams()
    started = ~shock & (u < p.shock_onset()[segment_code])
    recovered = shock & (u < 1.0 / p.shock_mean_months)
    return (shock | started) & ~recovered, started
