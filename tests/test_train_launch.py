"""Bad input under `accelerate launch`: every process finds the same fault, the main one says it
once, through the one error path, and the processes exit 2 at once (no barrier waits for them)."""

from __future__ import annotations

import subprocess
import sys

from tests.test_train_run import ENV, free_port
from tests.train_helpers import ROOT, SMOKE


def test_bad_input_on_two_processes_is_one_line_said_once(tmp_path):
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "accelerate_config.yaml"),
           "--num_processes", "2", "--main_process_port", free_port(), "train.py", "--config", str(SMOKE),
           "--output-dir", str(tmp_path / "run"), "--global-batch-size", "1"]
    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    ours = [line for line in done.stderr.splitlines() if "global_batch_size 1" in line]
    assert ours == ["error: global_batch_size 1 gives no query to some of the 2 processes"], done.stderr[-3000:]
    # a process exited 2 (the launcher may stop the other before it does); the launcher's own
    # summary (torch elastic's ChildFailedError) follows
    assert "exitcode  : 2" in done.stderr and "[process 1]" not in done.stderr
