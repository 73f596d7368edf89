"""Drawing the demo population: borrowers (income, seasonality, expenses, debts) and their loans
(product, size, rate, term, frequency, origination), as numpy arrays. Money in integer cents.

Sizes and rates are set to look like a mixed retail book: unsecured instalment loans of a few
thousand at 7–36 % (a tenth of them priced just under a 36 % cap), card balances on 36-month
payoff plans at 16–30 %, car loans over 3–7 years at 4–14 %, mortgages over 15–30 years at
2.5–7.5 %. Origination is underwritten to a payment-to-income ceiling drawn per loan, so the
book starts affordable and delinquency comes from income volatility, seasonality and shocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from repayplan.store.contract import annuity_payment, day_in_month, month_index
from repayplan.store.schema import FREQUENCY_MONTHS, SEGMENTS

SEGMENT_SHARES = np.array([0.55, 0.18, 0.15, 0.12])
# Monthly income: median (currency units) and log-sd across borrowers, per segment.
_INCOME_MEDIAN = np.array([3200.0, 3800.0, 2100.0, 2400.0])
_INCOME_SIGMA = np.array([0.45, 0.60, 0.40, 0.45])
# Month-to-month income volatility (sd of log income), per segment.
_VOLATILITY = np.array([0.05, 0.22, 0.28, 0.12])
# Jan..Dec income shape per segment: a year-end bonus, mild business cycles, gig peaks around
# holidays, and harvest-driven income for seasonal/agricultural borrowers.
_SEASON = np.array(
    [
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.15],
        [0.9, 0.9, 1.0, 1.0, 1.05, 1.05, 1.0, 0.95, 1.0, 1.05, 1.05, 1.05],
        [0.9, 0.9, 0.95, 1.0, 1.0, 1.05, 1.05, 1.0, 1.0, 1.0, 1.05, 1.15],
        [0.5, 0.5, 0.6, 0.8, 1.0, 1.1, 1.2, 1.5, 1.7, 1.5, 1.0, 0.6],
    ]
)
# Product mix per segment (consumer_instalment, credit_card, car, mortgage).
_PRODUCT_MIX = np.array(
    [
        [0.38, 0.27, 0.20, 0.15],
        [0.40, 0.20, 0.20, 0.20],
        [0.50, 0.35, 0.12, 0.03],
        [0.50, 0.15, 0.25, 0.10],
    ]
)
# Principal: median, log-sd, min, max (currency units), per product.
_PRINCIPAL = np.array(
    [
        [7000.0, 0.7, 500.0, 50000.0],
        [3000.0, 0.8, 200.0, 25000.0],
        [22000.0, 0.5, 4000.0, 90000.0],
        [220000.0, 0.5, 40000.0, 1500000.0],
    ]
)
_TERMS = {
    0: ([12, 24, 36, 48, 60], [0.15, 0.25, 0.30, 0.15, 0.15]),
    1: ([36], [1.0]),
    2: ([36, 48, 60, 72, 84], [0.15, 0.20, 0.35, 0.20, 0.10]),
    3: ([180, 240, 300, 360], [0.15, 0.20, 0.25, 0.40]),
}
# Underwriting ceiling on installment per month / income: low, high of a uniform draw.
_MAX_PTI = np.array([[0.12, 0.40], [0.03, 0.12], [0.10, 0.30], [0.20, 0.45]])
_FREQ_NAMES = np.array(list(FREQUENCY_MONTHS))
_FREQ_MONTHS = np.array(list(FREQUENCY_MONTHS.values()))
_FIRST = np.array(
    [
        "Ana",
        "Ben",
        "Chen",
        "Dara",
        "Eli",
        "Fatima",
        "Goran",
        "Hana",
        "Ivan",
        "Jia",
        "Karim",
        "Lea",
        "Mateo",
        "Nia",
        "Omar",
        "Priya",
        "Quinn",
        "Rosa",
        "Sami",
        "Tara",
        "Uma",
        "Viktor",
        "Wen",
        "Ximena",
        "Yusuf",
        "Zoe",
    ]
)
_LAST = np.array(
    [
        "Garcia",
        "Smith",
        "Wang",
        "Kowalski",
        "Okafor",
        "Nguyen",
        "Müller",
        "Rossi",
        "Silva",
        "Haddad",
        "Kim",
        "Novak",
        "Petrov",
        "Larsen",
        "Dubois",
        "Tanaka",
        "Mensah",
        "Costa",
        "Ivanova",
        "Singh",
    ]
)


@dataclass
class Borrowers:
    """A chunk of borrowers; money in cents per month, ``season`` shape (n, 12)."""

    number: np.ndarray
    segment: np.ndarray
    income: np.ndarray
    essential: np.ndarray
    other_debt: np.ndarray
    season: np.ndarray
    volatility: np.ndarray
    full_name: list[str]
    national_id: list[str]
    phone: list[str]


@dataclass
class Loans:
    """A chunk of loans: ``borrower`` indexes the chunk's :class:`Borrowers`; ``rate_e4`` is
    the annual percent × 10⁴; ``months`` per period; ``periods`` installments."""

    number: np.ndarray
    borrower: np.ndarray
    product: np.ndarray
    principal: np.ndarray
    rate_e4: np.ndarray
    term_months: np.ndarray
    months: np.ndarray
    periods: np.ndarray
    frequency: np.ndarray
    origination: np.ndarray
    anchor_day: np.ndarray


def loans_per_borrower(rng: np.random.Generator, loans: int) -> np.ndarray:
    """How many loans each borrower holds (1–3, mean 1.25), summing exactly to ``loans``."""
    counts = rng.choice([1, 2, 3], size=loans, p=[0.80, 0.15, 0.05])
    cut = int(np.searchsorted(np.cumsum(counts), loans))
    counts = counts[: cut + 1].copy()
    counts[-1] -= int(counts.sum()) - loans
    return counts


def draw_borrowers(rng: np.random.Generator, numbers: np.ndarray) -> Borrowers:
    """Borrowers with global ``numbers``: segment, income, expenses, debts, seasonality."""
    n = numbers.size
    seg = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARES)
    income = _INCOME_MEDIAN[seg] * np.exp(_INCOME_SIGMA[seg] * rng.standard_normal(n))
    income = np.clip(income, 600.0, 60000.0)
    essential = income * rng.uniform(0.30, 0.55, n)
    has_debt = rng.random(n) < 0.55
    other = np.where(has_debt, income * rng.uniform(0.03, 0.20, n), 0.0)
    # Each borrower's own shape: the segment's profile, sharper or flatter, plus small noise.
    season = _SEASON[seg] ** rng.uniform(0.7, 1.3, (n, 1)) * np.exp(
        0.03 * rng.standard_normal((n, 12))
    )
    season /= season.mean(axis=1, keepdims=True)
    first = _FIRST[rng.integers(0, _FIRST.size, n)]
    last = _LAST[rng.integers(0, _LAST.size, n)]
    nid = rng.integers(100_000_000, 999_999_999, n)
    phone = rng.integers(2_000_000, 9_999_999, n)
    return Borrowers(
        number=numbers,
        segment=seg,
        income=np.rint(income * 100).astype(np.int64),
        essential=np.rint(essential * 100).astype(np.int64),
        other_debt=np.rint(other * 100).astype(np.int64),
        season=season,
        volatility=_VOLATILITY[seg] * rng.uniform(0.7, 1.3, n),
        full_name=[f"{a} {b}" for a, b in zip(first.tolist(), last.tolist(), strict=True)],
        national_id=[f"ID-{v}" for v in nid.tolist()],
        phone=[f"+1 555 {v:07d}" for v in phone.tolist()],
    )


def draw_loans(
    rng: np.random.Generator,
    borrowers: Borrowers,
    counts: np.ndarray,
    first_number: int,
    as_of: date,
) -> Loans:
    """Loans of ``borrowers`` (``counts[i]`` each), numbered from ``first_number``."""
    b = np.repeat(np.arange(counts.size), counts)
    n = b.size
    seg = borrowers.segment[b]
    u = rng.random(n)[:, None]
    product = (u > np.cumsum(_PRODUCT_MIX[seg], axis=1)).sum(axis=1)
    spec = _PRINCIPAL[product]
    principal = np.clip(
        spec[:, 0] * np.exp(spec[:, 1] * rng.standard_normal(n)), spec[:, 2], spec[:, 3]
    )

    pct = np.empty(n)
    for p, (lo, hi) in enumerate([(7.0, 30.0), (16.0, 29.99), (3.9, 14.0), (2.5, 7.5)]):
        pct[product == p] = rng.uniform(lo, hi, int((product == p).sum()))
    # Unsecured lending clusters just below the usury cap.
    near_cap = (product <= 1) & (rng.random(n) < 0.10)
    pct[near_cap] = rng.uniform(33.0, 35.99, int(near_cap.sum()))
    rate_e4 = np.rint(pct * 100).astype(np.int64) * 100

    term = np.empty(n, dtype=np.int64)
    for p, (choices, probs) in _TERMS.items():
        mask = product == p
        term[mask] = rng.choice(choices, size=int(mask.sum()), p=probs)
    # Seasonal and some self-employed borrowers repay instalment and car loans with the harvest
    # or business cycle: quarterly or yearly.
    cyc = rng.random(n)
    freq = np.zeros(n, dtype=np.int64)  # index into FREQUENCY_MONTHS: monthly
    seasonal_ok = (seg == 3) & ((product == 0) | (product == 2))
    freq[seasonal_ok & (cyc < 0.25)] = 2
    freq[seasonal_ok & (cyc >= 0.25) & (cyc < 0.40)] = 4
    freq[(seg == 1) & (product == 0) & (cyc < 0.10)] = 2
    months = _FREQ_MONTHS[freq]
    periods = term // months

    # Underwrite: shrink the loan until its installment per month fits the ceiling.
    income = borrowers.income[b].astype(np.float64) / 100
    pti_cap = rng.uniform(_MAX_PTI[product, 0], _MAX_PTI[product, 1])
    unit = annuity_payment(np.full(n, 100_000), rate_e4, months, periods) / 100_000.0
    monthly = principal * unit / months
    principal = np.where(monthly > pti_cap * income, pti_cap * income * months / unit, principal)
    principal = np.maximum(np.round(principal, -1), 100.0)

    as_of_m = month_index(np.array([as_of], dtype="datetime64[D]"))[0]
    age = rng.integers(0, np.minimum(term + 6, 120) + 1)
    orig_m = as_of_m - age
    day = rng.integers(1, 32, n)
    day = np.where(age == 0, np.minimum(day, as_of.day), day)
    origination = day_in_month(orig_m, day)
    return Loans(
        number=first_number + np.arange(n, dtype=np.int64),
        borrower=b,
        product=product,
        principal=np.rint(principal * 100).astype(np.int64),
        rate_e4=rate_e4,
        term_months=term,
        months=months,
        periods=periods,
        frequency=_FREQ_NAMES[freq],
        origination=origination,
        anchor_day=(
            origination - origination.astype("datetime64[M]").astype("datetime64[D]")
        ).astype(np.int64)
        + 1,
    )
