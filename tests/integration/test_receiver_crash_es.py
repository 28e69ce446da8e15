"""kill -9 during concurrent uploads, on the Elasticsearch session store: every upload that got a 2xx
exports byte for byte and is queued exactly once after restart, as on the filesystem store."""
import os
import sys

os.environ["LF_TEST_STORE_BACKEND"] = "elasticsearch"
os.environ.setdefault("ROUNDS", "20")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import lfharness as H  # noqa: E402
import test_receiver_crash as T  # noqa: E402

if __name__ == "__main__":
    H.run_tests([T.test_kill_during_uploads])
