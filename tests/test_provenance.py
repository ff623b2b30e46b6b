"""benchmarks/provenance.py: what every benchmark report records of where and when it measured."""

import json
import re

from benchmarks.provenance import Sitting, versions


def test_a_sitting_records_command_machine_versions_load_and_time():
    sitting = Sitting("python benchmarks/x.py --threads 2", threads=2)
    fields = sitting.end()
    assert json.loads(json.dumps(fields)) == fields  # the report's JSON takes it as is
    assert fields["command"] == "python benchmarks/x.py --threads 2" and fields["threads"] == 2
    assert fields["wall_s"] >= 0 and len(fields["load_start"]) == len(fields["load_end"]) == 3
    assert fields["machine"]["cores"] >= 1 and fields["machine"]["cpu"]
    assert fields["machine"]["versions"]["torch"] and fields["machine"]["versions"]["python"]
    line = sitting.line()
    assert line.startswith("Command: `python benchmarks/x.py --threads 2`; 0.0 min, ")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC; load average \[.*\] -> \[.*\]; \d+ x .+, 2 torch thread\(s\); "
                     r"python [\d.]+, torch ", line)


def test_a_package_that_is_not_installed_is_none_and_left_out_of_the_line():
    assert versions(("torch", "no-such-distribution"))["no-such-distribution"] is None
    sitting = Sitting("cmd", packages=("no-such-distribution",), threads_of="server", threads=4)
    sitting.end()
    assert "no-such-distribution" not in sitting.line() and "4 server thread(s)" in sitting.line()


def test_a_resumable_benchmark_says_its_time_is_this_sittings():
    sitting = Sitting("python benchmarks/curve.py", resumable=True)
    sitting.end()
    assert "0.0 min this sitting (the stages above say what each took), " in sitting.line()
    plain = Sitting("python benchmarks/quality.py")
    plain.end()
    assert "this sitting" not in plain.line()
