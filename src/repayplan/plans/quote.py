"""``quote``: several good plans for one borrower; ``plan``: the same for a stored loan record.

For each template the hardship reason steers to (:func:`templates_for`): build the model,
solve it on the chosen strategy (MILP templates on a MILP-capable one), round to a
cent-exact schedule, re-check every constraint on the exact schedule and re-solve with the
violated rows tightened until it holds, compute the exact metrics and explain the result.
An infeasible template is diagnosed and retried under the declared relaxations, in order;
when no template can be offered the quote asks for manual review and says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import numpy as np

from repayplan.errors import InputError
from repayplan.finance import Frequency, add_months, months_between
from repayplan.plans.alternative import Alternative, Quote
from repayplan.plans.baselines import contract_plan, waterfall_plan
from repayplan.plans.case import MAX_RECOVERY_MONTHS, LoanCase, Policy
from repayplan.plans.explain import explain
from repayplan.plans.horizon import income_falls
from repayplan.plans.lp import LPSolution
from repayplan.plans.model import PlanProgram, build_from_outline, build_program, plan_outline
from repayplan.plans.relax import diagnose, refuted_outline, relaxation_steps, solve_program
from repayplan.plans.rounding import RoundedPlan, round_plan, tighten
from repayplan.plans.strategies.base import SolverStrategy
from repayplan.plans.strategies.registry import get_strategy
from repayplan.plans.templates import get_template, templates_for
from repayplan.risk.burden import DEFAULT_BURDEN_CURVE, BurdenCurve
from repayplan.risk.metrics import DEFAULT_BASE_MONTHLY_HAZARD, money, plan_metrics

STRATEGIES = ("optimize", "waterfall", "contract")
_FREQUENCIES = {f.value for f in Frequency}

#: MILP-capable strategies tried, in order, when the chosen solver is LP-only.
MILP_FALLBACK = ("ortools-scip", "pulp-highs", "pulp-cbc")

#: Rounds of "tighten the violated rows and re-solve" before a template is given up.
REPAIR_ROUNDS = 4

#: A plan ends when it is repaid: it may not keep a balance outstanding only to collect more
#: than this many minimum payments before its settling installment. A longer run of
#: minimum payments is cut off (the term shortened to where it starts) and the model
#: re-solved, at most TERM_CUTS times.
MAX_MINIMUM_TAIL = 1
TERM_CUTS = 3

#: Solves a term cut may spend: the period where the run of minimum payments starts, then
#: one more if the borrower cannot afford the settling amount there (terms the bounds
#: refute outright cost no solve).
CUT_SOLVES = 2

#: Cents above the minimum payment that still count as "the minimum" on an integer-cents
#: strategy (CP-SAT): its balance chain rounds interest, so a run of minimum payments comes
#: back as 1,000.00, 1,000.01, 1,000.02 … (an exact LP vertex sits on the minimum itself).
INTEGER_SLACK = 2.5

#: Rates tried by a rate-searching template: the contract rate and this many more, evenly
#: spaced down to the floor and rounded down to 1/8 of a point.
RATE_GRID_POINTS = 4


def check_strategy(strategy: str) -> None:
    """Raise :class:`InputError` naming :data:`STRATEGIES` unless ``strategy`` is one."""
    if strategy not in STRATEGIES:
        raise InputError(
            f"unknown strategy {strategy!r}; use one of " + ", ".join(STRATEGIES), field="strategy"
        )


@dataclass(frozen=True)
class TemplateResult:
    """One template's outcome: the alternative (None when infeasible even after every
    relaxation), the relaxations it needed, and why the unrelaxed model had no solution."""

    template: str
    alternative: Alternative | None
    relaxed_by: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


def _strategy_for(program: PlanProgram, strategy: SolverStrategy) -> SolverStrategy:
    if strategy.supports(program.lp):
        return strategy
    for name in MILP_FALLBACK:
        candidate = get_strategy(name)
        if candidate.supports(program.lp):
            return candidate
    raise InputError("no registered strategy solves MILP templates", field="solver")


def _solve_exact(
    program: PlanProgram, strategy: SolverStrategy, solution: LPSolution | None = None
) -> tuple[PlanProgram, LPSolution, RoundedPlan | None]:
    """Solve (unless ``solution`` already solves ``program``), round, and re-solve with
    violated rows tightened until the exact schedule meets every constraint. The rounded
    plan is None when the model is infeasible or the violations cannot be repaired."""
    for _ in range(REPAIR_ROUNDS):
        if solution is None:
            solution = solve_program(program, strategy)
        if not solution.ok:
            return program, solution, None
        rounded = round_plan(program, solution.x)
        if not rounded.violations:
            return program, solution, rounded
        tightened = tighten(program, rounded.violations)
        if tightened is None:
            break
        program, solution = tightened, None
    return program, solution, None


def _rate_grid(contract: Decimal, floor: Decimal) -> list[Decimal]:
    if contract <= floor:
        return [contract]
    step = (contract - floor) / RATE_GRID_POINTS
    eighth = Decimal("0.00125")
    grid = {contract, floor}
    grid |= {
        max(floor, ((contract - k * step) / eighth).quantize(Decimal(1), ROUND_FLOOR) * eighth)
        for k in range(1, RATE_GRID_POINTS)
    }
    return sorted(grid, reverse=True)


def _stage_one(
    case: LoanCase,
    policy: Policy,
    name: str,
    curve: BurdenCurve,
    strategy: SolverStrategy,
    kwargs: dict[str, Any],
) -> tuple[PlanProgram | None, LPSolution, dict[str, Any]]:
    """Solve a template's first model; rate-searching templates keep the highest rate whose
    optimum is within 1e-6 of the best over the rate grid (cut the rate only as far as it
    helps)."""
    tpl = get_template(name)
    rates = [kwargs.get("annual_rate", case.annual_rate)]
    if tpl.rate_search and "annual_rate" not in kwargs:
        rates = _rate_grid(rates[0], min(rates[0], policy.rate_floor))
    best: tuple[PlanProgram | None, LPSolution, dict[str, Any]] | None = None
    for rate in rates:
        args = {**kwargs, "annual_rate": rate}
        program, solution = _build_and_solve(case, policy, name, curve, strategy, args)
        if best is None or (
            solution.ok
            and (not best[1].ok or solution.objective < best[1].objective * (1 - 1e-6) - 1e-12)
        ):
            best = (program, solution, args)
    assert best is not None
    return _cut_minimum_tail(case, policy, name, curve, strategy, *best)


def _build_and_solve(
    case: LoanCase,
    policy: Policy,
    name: str,
    curve: BurdenCurve,
    strategy: SolverStrategy,
    args: dict[str, Any],
) -> tuple[PlanProgram | None, LPSolution]:
    """Build template ``name``'s program with :func:`build_program` keyword arguments
    ``args`` and solve it — unless its outline is refuted (:func:`refuted_outline`): then
    the answer is "infeasible" and no program is written (None). The declared relaxations
    and the rate grid meet such plans often, at up to 480 periods, where writing the program
    costs far more than the refutation."""
    outline = plan_outline(case, policy, name, **args)
    why = refuted_outline(outline)
    if why is not None:
        return None, LPSolution("infeasible", strategy.name, message=why)
    program = build_from_outline(case, policy, outline, curve)
    return program, _strategy_for(program, strategy).solve(program.lp)


def minimum_tail(program: PlanProgram, x: np.ndarray, slack: float = 0.5) -> tuple[int, int]:
    """(number of payments at or below the minimum, 0-based period of the payoff) for the run
    of minimum payments right before the payoff (the last period that pays anything: a plan
    repaid early pays nothing after, and those periods are dropped from its schedule). A
    payment within ``slack`` cents above the minimum counts as the minimum."""
    pay = program.payments(x)
    paying = np.flatnonzero(pay > 0.5)
    end = int(paying[-1]) if paying.size else program.periods - 1
    low = (pay[:end] <= program.policy.min_payment + slack) & ~program.holiday[:end]
    run = int(np.argmin(low[::-1])) if not low.all() else int(low.size)
    return run, end


def _cut_minimum_tail(
    case: LoanCase,
    policy: Policy,
    name: str,
    curve: BurdenCurve,
    strategy: SolverStrategy,
    program: PlanProgram | None,
    solution: LPSolution,
    args: dict[str, Any],
) -> tuple[PlanProgram | None, LPSolution, dict[str, Any]]:
    """With a fixed term, a plan that can repay early would otherwise keep a small balance
    outstanding to collect a long run of minimum payments (the minimum applies in every period
    but the last). No lender offers that, so the term is cut to where the run starts — that
    period settles the balance — and the model re-solved; when the shorter term is infeasible
    (the borrower cannot afford the settling amount) one more period is tried, after any the
    bounds refute outright (:func:`_shorter_term`)."""
    for _ in range(TERM_CUTS):
        if program is None or not solution.ok or program.template.shape in ("level", "graduated"):
            break
        integer = _strategy_for(program, strategy).capabilities.integer_only
        tail, end = minimum_tail(program, solution.x, INTEGER_SLACK if integer else 0.5)
        if tail <= MAX_MINIMUM_TAIL:
            break
        start = end - tail  # 0-based first period of the run
        cut = _shorter_term(case, policy, name, curve, strategy, args, start + 1, end + 1)
        if cut is None:
            break
        program, solution, args = cut
    return program, solution, args


def _shorter_term(
    case: LoanCase,
    policy: Policy,
    name: str,
    curve: BurdenCurve,
    strategy: SolverStrategy,
    args: dict[str, Any],
    first: int,
    stop: int,
) -> tuple[PlanProgram, LPSolution, dict[str, Any]] | None:
    """The first term from ``first`` (periods, below ``stop``) whose plan is feasible, with
    at most ``CUT_SOLVES`` solves: terms the bounds refute (the borrower cannot repay that
    soon) are passed over without one — they used to count as tries, so a plan that needed
    three more periods kept a 400-month run of minimum payments."""
    solves = 0
    for term in range(first, stop):
        trial_args = {**args, "term": term}
        if refuted_outline(plan_outline(case, policy, name, **trial_args)) is not None:
            continue
        trial, trial_solution = _build_and_solve(case, policy, name, curve, strategy, trial_args)
        if trial is not None and trial_solution.ok:
            return trial, trial_solution, trial_args
        solves += 1
        if solves >= CUT_SOLVES:
            return None
    return None


def solve_template(
    case: LoanCase,
    policy: Policy,
    name: str,
    strategy: SolverStrategy,
    curve: BurdenCurve = DEFAULT_BURDEN_CURVE,
    base: dict[str, Any] | None = None,
) -> TemplateResult:
    """Plan ``case`` with template ``name``: solve, make cent-exact, and on infeasibility
    diagnose and walk the declared relaxations. ``base``: keyword arguments of
    :func:`build_program` every model gets (e.g. a lawful rate)."""
    base = dict(base or {})
    program, solution, args = _stage_one(case, policy, name, curve, strategy, base)
    if solution.status not in ("optimal", "infeasible"):
        return TemplateResult(
            name,
            None,
            reasons=(f"{name}: solver {solution.solver} stopped with {solution.status}",),
        )
    reasons: tuple[str, ...] = ()
    relaxed: list[str] = []
    attempt = _finish(case, policy, name, curve, strategy, program, solution, args)
    if attempt is None:
        if program is None:  # refuted without writing it: the diagnosis reads the program
            program = build_program(case, policy, name, curve, **args)
        used = _strategy_for(program, strategy)
        reasons = diagnose(program, used) if not solution.ok else ("cent rounding",)
        for label, step in relaxation_steps(policy, program, args):
            relaxed.append(label)
            program, solution, args = _stage_one(case, policy, name, curve, strategy, step)
            attempt = _finish(case, policy, name, curve, strategy, program, solution, args)
            if attempt is not None:
                break
    return TemplateResult(name, attempt, tuple(relaxed) if attempt else (), reasons)


def _finish(
    case: LoanCase,
    policy: Policy,
    name: str,
    curve: BurdenCurve,
    strategy: SolverStrategy,
    program: PlanProgram | None,
    solution: LPSolution,
    args: dict[str, Any],
) -> Alternative | None:
    """From a first-stage solution to the offered alternative (None if infeasible)."""
    if program is None or not solution.ok:
        return None
    objective = float(solution.objective)
    pti = None
    solved: LPSolution | None = solution
    if program.objective == "min_max_pti":
        # Second stage: hold the optimal ratio (plus a cent a period of room for rounding)
        # and pick the schedule by the balanced objective.
        pti = objective
        paying = program.incomes[~program.holiday]
        ceiling = pti + 1.0 / max(float(paying.min()), 1.0)
        program = build_program(case, policy, name, curve, pti_ceiling=ceiling, **args)
        solved = None
    used = _strategy_for(program, strategy)
    program, solution, rounded = _solve_exact(program, used, solved)
    if rounded is None:
        return None
    if pti is None:
        objective = float(solution.objective)
    return Alternative(
        name=name,
        schedule=rounded.schedule,
        annual_rate=program.annual_rate,
        metrics=_metrics(case, policy, program, rounded, curve, used.name),
        objective=objective,
        explanation=explain(program, solution, rounded, contract_rate=case.annual_rate, pti=pti),
        frequency=program.frequency.value,
    )


def _metrics(
    case: LoanCase,
    policy: Policy,
    program: PlanProgram,
    rounded: RoundedPlan,
    curve: BurdenCurve,
    solver: str,
) -> dict[str, Any]:
    n = len(rounded.schedule.installments)
    incomes = np.maximum(np.rint(program.incomes[:n]), 1).astype(np.int64).tolist()
    hazard = case.base_monthly_hazard
    metrics = plan_metrics(
        rounded.schedule,
        exposure=case.exposure,
        incomes=incomes,
        base_monthly_hazard=DEFAULT_BASE_MONTHLY_HAZARD if hazard is None else hazard,
        curve=curve,
        lgd=policy.lgd,
        hurdle_rate=policy.hurdle_rate,
        periods_per_year=program.frequency.periods_per_year,
        start=case.start,
    )
    fees = min(rounded.waiver, case.penalty_fees)
    metrics["penalty_waived"] = money(fees)
    if program.template.settlement:
        metrics["principal_forgiven"] = money(rounded.waiver - fees)
    metrics["affordability_shortfall"] = money(int(rounded.shortfall.sum()))
    metrics["solver"] = solver
    return metrics


def quote(
    case: LoanCase,
    policy: Policy = Policy(),
    strategy: str = "optimize",
    solver: str = "fast",
    preset: str | None = None,
    *,
    templates: tuple[str, ...] | None = None,
    curve: BurdenCurve = DEFAULT_BURDEN_CURVE,
) -> Quote:
    """Plans for one borrower.

    ``strategy``: ``"optimize"`` (the alternatives of :func:`templates_for`, or of
    ``templates``), ``"waterfall"`` (the rule-based modification, ``preset`` default
    ``"hamp"``) or ``"contract"`` (the loan as it stands). ``solver`` names a registered
    strategy (LP-only solvers, and strategies that decline a MILP's size, hand MILP
    templates to a MILP-capable one). A matured loan (``case.remaining_term == 0``) is
    re-amortised over ``Policy.matured_term_months`` and also offered a settlement.

    Status ``"ok"``: every template solved as stated; ``"relaxed"``: at least one needed a
    declared relaxation (``reasons`` say why and which); ``"manual_review"``: none could be
    offered (``reasons`` name the constraints that make each impossible). ``quote`` raises
    :class:`InputError` on invalid input; :func:`quote_many` turns that into
    ``"manual_review"`` and any other failure into ``"error"`` (see :class:`Quote`).
    """
    check_strategy(strategy)
    if strategy == "contract":
        return Quote((contract_plan(case, policy, curve),), "ok", "none")
    if strategy == "waterfall":
        return Quote((waterfall_plan(case, policy, preset or "hamp", curve=curve),), "ok", "none")
    if preset is not None:
        raise InputError("a preset applies to --strategy waterfall only", field="preset")
    chosen = get_strategy(solver)
    names = templates or templates_for(
        case.hardship,
        case.product,
        case.arrears > 0,
        matured=case.matured,
        income_falls=income_falls(case),
    )
    base: dict[str, Any] = {}
    reasons: list[str] = []
    if case.annual_rate > policy.rate_cap:
        base["annual_rate"] = policy.rate_cap
        reasons.append(
            f"contract rate {case.annual_rate * 100}% is above the {policy.rate_cap * 100}% cap: "
            "every plan is at the cap"
        )
    alternatives: list[Alternative] = []
    relaxed = False
    for name in names:
        result = solve_template(case, policy, name, chosen, curve, base)
        why = "; ".join(result.reasons)
        if result.alternative is None:
            reasons.append(f"{name}: not offered — {why}")
            continue
        alternatives.append(result.alternative)
        if result.relaxed_by:
            relaxed = True
            reasons.append(f"{name}: {why}; offered after " + ", then ".join(result.relaxed_by))
    status = "manual_review" if not alternatives else "relaxed" if relaxed else "ok"
    return Quote(tuple(alternatives), status, chosen.name, tuple(reasons))


def quote_many(
    cases: Iterable[LoanCase | Mapping[str, Any]],
    policy: Policy = Policy(),
    solver: str = "fast",
    templates: tuple[str, ...] | None = None,
    *,
    curve: BurdenCurve = DEFAULT_BURDEN_CURVE,
    as_of: date | None = None,
) -> list[Quote]:
    """:func:`quote` (strategy ``optimize``) for many loans, in input order — what a chunk
    worker of the nightly flow calls.

    Each item is a :class:`LoanCase` or a stored record (``store.queries.loan_for_planning``'s
    keys plus ``loan_id``). One bad loan never stops the batch: a record that is not a valid
    case, or a loan whose planning fails with an input error, gets a ``"manual_review"``
    quote, any other failure an ``"error"`` quote; either way ``reasons`` names the loan.
    The solver name is checked once, up front (a wrong name fails the whole batch).
    """
    chosen = get_strategy(solver).name
    out: list[Quote] = []
    for item in cases:
        loan = item.loan_id if isinstance(item, LoanCase) else str(item.get("loan_id", "?"))
        try:
            case = (
                item
                if isinstance(item, LoanCase)
                else case_from_record(item, loan_id=loan, as_of=as_of)
            )
            out.append(quote(case, policy, solver=solver, templates=templates, curve=curve))
        except InputError as exc:
            why = str(exc) if exc.record == f"loan {loan}" else f"loan {loan}: {exc}"
            out.append(Quote((), "manual_review", chosen, (why,)))
        except Exception as exc:  # one loan's failure is its own answer, not the batch's
            out.append(Quote((), "error", chosen, (f"loan {loan}: {type(exc).__name__}: {exc}",)))
    return out


def case_from_record(
    record: Mapping[str, Any], *, loan_id: str, as_of: date | None = None
) -> LoanCase:
    """A :class:`LoanCase` from a stored loan (``store.queries.loan_for_planning``'s keys).

    The plan starts one period of the loan's cycle before ``next_due_date`` — the last due
    date — so its first installment falls on the next one; ``as_of`` when none is stored.
    Starting there, the first period's interest is the interest accruing since the last due
    date, so the stored ``accrued_interest`` is not added again (it would be charged twice).
    ``expected_recovery_date`` becomes whole months of hardship after that start, and the
    hardship request's ``hardship_income_factor`` scales income until then.
    """
    rec = f"loan {loan_id}"
    for key in ("outstanding_principal", "annual_rate", "remaining_term", "monthly_income"):
        if record.get(key) is None:
            raise InputError("is missing", field=key, record=rec)
    start = as_of or date.today()
    accrued = int(record.get("accrued_interest") or 0)
    frequency = str(record.get("frequency") or "monthly")
    if record.get("next_due_date") is not None:
        months = Frequency(frequency).months if frequency in _FREQUENCIES else None
        start = add_months(record["next_due_date"], -(months or 1))
        accrued = 0
    recovery = record.get("expected_recovery_date")
    hardship = record.get("hardship")
    hardship = None if hardship in (None, "", "none") else str(hardship)
    factor = record.get("hardship_income_factor")
    seasonality = record.get("income_seasonality")
    return LoanCase(
        outstanding_principal=int(record["outstanding_principal"]),
        annual_rate=Decimal(str(record["annual_rate"])),
        remaining_term=int(record["remaining_term"]),
        monthly_income=int(record["monthly_income"]),
        essential_expenses=int(record.get("essential_expenses") or 0),
        other_debt=int(record.get("other_debt_payments") or 0),
        accrued_interest=accrued,
        arrears=int(record.get("arrears_amount") or 0),
        penalty_fees=int(record.get("penalty_fees") or 0),
        frequency=frequency,
        income_seasonality=tuple(float(v) for v in seasonality) if seasonality else (1.0,) * 12,
        hardship=hardship,
        recovery_months=None
        if recovery is None
        else min(MAX_RECOVERY_MONTHS, max(0, months_between(start, recovery))),
        hardship_income_factor=1.0 if hardship is None or factor is None else float(factor),
        start=start,
        base_monthly_hazard=record.get("base_monthly_hazard"),
        regular_payment=record.get("regular_payment"),
        product=str(record.get("product") or "consumer_instalment"),
        segment=record.get("segment"),
        loan_id=str(loan_id),
    )


def plan(
    record: Mapping[str, Any],
    *,
    loan_id: str,
    policy: Policy = Policy(),
    strategy: str = "optimize",
    solver: str = "fast",
    preset: str | None = None,
    as_of: date | None = None,
) -> Quote:
    """:func:`quote` for a stored loan: ``record`` as ``store.queries.loan_for_planning``
    returns it."""
    case = case_from_record(record, loan_id=loan_id, as_of=as_of)
    return quote(case, policy, strategy, solver, preset)
