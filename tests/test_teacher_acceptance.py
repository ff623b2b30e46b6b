"""The counting benchmarks/teacher_acceptance.py reports (recipe/synth/acceptance.py), on a folder
the loopback teacher filled with known faults: every answer lands in its group's row, accepted or
under the parser's reason."""

from recipe.synth.acceptance import table, tally
from recipe.synth.run import synthesize
from tests.test_synth_engine import cfg_for


def test_tally_counts_each_answer_under_its_group_and_reason(teacher, tmp_path):
    teacher.faults += ["python_list"]  # the one brainstorm: a Python literal, which the parser accepts
    teacher.generation_faults += ["malformed", "truncated", None, "missing_key"]
    synthesize(cfg_for(tmp_path, "--num-examples", "3", "--concurrency", "1", "--group-mix", "{short-long: 1}"))
    gen = tally(tmp_path, "generate")
    assert gen == {"short-long": {"answers": 6, "accepted": 3,
                                  "reasons": {"not_json": 1, "truncated": 1, "missing_key:user_query": 1}}}
    assert tally(tmp_path, "brainstorm") == {"short-long": {"answers": 1, "accepted": 1, "reasons": {},
                                                                  "tasks": [20]}}
    results = {m: {"brainstorm": tally(tmp_path, "brainstorm"), "generate": gen,
                   "speed": {"wall_s": 2.0, "completion_tokens": 10, "client_tok_s": 5.0, "server_busy_s": 1.9,
                             "server_tok_s": 5.26, "server_decode_tok_s": 6.0, "client_share": 0.95}}
               for m in ("off", "on")}
    md = table(results)
    assert "| generate | short-long | 3 / 6 | missing_key:user_query 1, not_json 1, truncated 1 |" in md
    assert "| generate | **all** | **3 / 6 (50%)** |" in md and "| on | 2.0 | 10 | 5.0 | 1.9 | 5.26 | 6.0 | 95.0% |" in md
