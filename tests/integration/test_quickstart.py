"""The README's first command, end to end at a smaller size: scripts/quickstart.py generates
sessions for two sites, ships them with logferry-uploader to logferry-receiver, parses them with
logferry-parser into a private MariaDB, watches it with logferry-monitor, runs the analytics loaders,
and checks every session in the database against the generator's ground truth (site, product,
version, user, host, events, crash, warning and error counts). Any mismatch makes it exit non-zero;
the monitor must not have alerted."""
import os
import subprocess
import sys

import lfharness as H


def test_quickstart_pipeline_matches_ground_truth():
    d = H.scratch_dir("lfquickstart-")
    p = subprocess.run([sys.executable, os.path.join(H.SOURCE_DIR, "scripts", "quickstart.py"), "--build",
                        H.BUILD_DIR, "--dir", os.path.join(d, "qs"), "--sessions", "80", "--seed", "3"],
                       capture_output=True, text=True, timeout=600)
    print(p.stdout[-4000:])
    H.check(p.returncode == 0, f"quickstart exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    H.check("all 80 sessions match" in p.stdout, "the ground-truth check did not run")
    H.check("Monitor: 0 Slack messages" in p.stdout, "the monitor alerted on a healthy run (or did not run)")


if __name__ == "__main__":
    H.run_tests([test_quickstart_pipeline_matches_ground_truth])
