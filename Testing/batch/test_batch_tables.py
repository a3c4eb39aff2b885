"""Cohort rows and counts from plans (Setzer types, compartments, feeders, SINS bands), and the
batch progress display. No cluster runs here."""

from __future__ import annotations

import io

import pytest

from SpinePlannerLib.planning.batch.progress import BatchProgress
from SpinePlannerLib.planning.batch.tables import cohort_summary, key_results, sins_band


def _plan(compartment, setzer=None, feeders=None, sins=None, failed=()):
    plan = {"tumor": {"compartment": compartment, "volume_ml": 1.5, "levels_spanned": ["T10", "T11"]},
            "stages": {"segmentation": {"status": "done"}, **{s: {"status": "failed"} for s in failed}},
            "warnings": ["w"]}
    if setzer is not None:
        plan["tractography"] = {"setzer_type": setzer, "reliable": True}
    if feeders is not None:
        plan["vessels"] = {"detectable": True, "feeders": [{}] * feeders,
                           "adamkiewicz_candidate": {"present": True, "level": "T12", "side": "left"}}
    if sins is not None:
        plan["approach"] = {"sins": {"total": sins}}
    return plan


@pytest.mark.parametrize(("total", "band"), [(0, "stable"), (6, "stable"), (7, "indeterminate"),
                                             (12, "indeterminate"), (13, "unstable"), (18, "unstable"),
                                             (None, None)])
def test_sins_bands_are_the_published_ones(total, band):
    assert sins_band(total) == band


def test_key_results_read_each_section_and_leave_the_rest_empty():
    k = key_results(_plan("intramedullary", setzer=1, feeders=2, sins=9, failed=("vessels",)))
    assert k["compartment"] == "intramedullary" and k["setzer_type"] == 1 and k["levels_spanned"] == "T10;T11"
    assert k["feeders_found"] == 2 and k["adamkiewicz"] == "T12 left"
    assert k["sins_total"] == 9 and k["sins_band"] == "indeterminate"
    assert k["failed_stages"] == "vessels" and k["n_warnings"] == 1
    bare = key_results(_plan("extradural"))
    assert bare["setzer_type"] is None and bare["feeders_found"] is None and bare["sins_band"] is None


def test_cohort_counts_compartments_setzer_types_bands_and_feeders():
    plans = [("a", _plan("intramedullary", setzer=1, feeders=0)), ("b", _plan("intramedullary", setzer=3)),
             ("c", _plan("extradural", feeders=3, sins=14)), ("d", _plan("intramedullary", setzer=1, sins=4))]
    counts = cohort_summary(plans)["counts"]
    assert counts["compartment"] == {"intramedullary": 3, "extradural": 1}
    assert counts["setzer_type"] == {"1": 2, "3": 1}
    assert counts["sins_band"] == {"unstable": 1, "stable": 1}
    assert counts["cases_with_vessels_detectable"] == 2 and counts["cases_with_feeders"] == 1
    assert counts["feeders_total"] == 3


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_one_line_per_case_in_logs_and_a_redrawn_line_on_a_terminal():
    counts = {"pending": 2, "done": 1, "reused": 0, "failed": 1, "interrupted": 0}
    log = io.StringIO()
    p = BatchProgress(4, stream=log)
    p.case_finished({"case": "x", "status": "failed", "reason": "bad input: t2: file not found", "seconds": 1.0},
                    counts, 1, 2)
    assert log.getvalue() == "[batch] 2/4 x: failed in 1.0 s: bad input: t2: file not found\n"
    tty = _Tty()
    p = BatchProgress(4, stream=tty)
    p.update(counts, 1, 2)
    line = tty.getvalue()
    assert line.startswith("\r[batch] 2/4 finished: 1 done, 1 running, 1 failed, 0 reused |") and "\n" not in line
    assert "elapsed, ~" in line and "left" in line
    quiet = io.StringIO()
    BatchProgress(4, stream=quiet, enabled=False).case_finished({"case": "x", "status": "done"}, counts, 0, 1)
    assert quiet.getvalue() == ""
