"""The run's candidates on disk: the same rows back, filtered by plan id, and no leftovers."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from repayplan.portfolio.candidates import generate_candidates
from repayplan.portfolio.spill import (
    SCHEDULE_SCHEMA,
    CandidateSpill,
    clear_stale_scratch,
    compact_installments,
    expand_schedules,
    run_scratch,
    scratch_root,
)

from .conftest import AS_OF
from .test_candidates import _frame


def test_spill_gives_back_what_the_chunks_made(demo_db):
    frame, policy = _frame(demo_db, n=6)
    parts = [
        generate_candidates(frame.iloc[:3], AS_OF, policy, "RUN"),
        generate_candidates(frame.iloc[3:], AS_OF, policy, "RUN"),
    ]
    with run_scratch(demo_db, "RUN") as folder:
        spill = CandidateSpill(folder)
        for part in parts:
            spill.add(part)
        assert spill.loans == 6 and len(spill.plan_files) == 2
        whole = pa.concat_tables([p.candidates for p in parts])
        assert spill.candidates.equals(whole)
        some = whole["plan_id"].to_pylist()[::3]
        plans = spill.plans(some)
        assert sorted(plans["plan_id"].to_pylist()) == sorted(some)
        inst = spill.installments(some)
        expected = sum(
            p.installments.filter(
                pa.compute.is_in(p.installments["plan_id"], pa.array(some))
            ).num_rows
            for p in parts
        )
        assert inst.num_rows == expected > 0
        assert spill.plans([]).num_rows == 0
        # Only the chosen plans' installments reach the writer, row for row as generated.
        path = spill.write_chosen_installments(some)
        written = pq.read_table(path)
        made = pa.concat_tables([p.installments for p in parts])
        made = made.filter(pc.is_in(made["plan_id"], pa.array(some)))
        assert written.sort_by([("plan_id", "ascending"), ("number", "ascending")]).equals(
            made.sort_by([("plan_id", "ascending"), ("number", "ascending")])
        )
        assert spill.write_chosen_installments([]) is None
    assert not scratch_root(demo_db).exists()  # removed with the run


def test_stale_scratch_of_a_killed_run_is_cleared(demo_db):
    stale = scratch_root(demo_db) / "killed-run"
    stale.mkdir(parents=True)
    (stale / "plans-000000.parquet").write_bytes(b"x")
    assert clear_stale_scratch(demo_db, keep="this-run") == 1
    assert not stale.exists()


def test_schedules_are_spilled_one_row_per_plan_and_expand_back(demo_db):
    frame, policy = _frame(demo_db, n=3)
    inst = generate_candidates(frame, AS_OF, policy, "RUN").installments
    compact = compact_installments(inst)
    assert compact.schema == SCHEDULE_SCHEMA
    assert compact.num_rows == len(set(inst["plan_id"].to_pylist())) < inst.num_rows
    assert expand_schedules(compact).equals(inst)
    assert expand_schedules(compact_installments(inst.slice(0, 0))).num_rows == 0
