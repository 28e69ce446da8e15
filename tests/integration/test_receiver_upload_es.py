"""The receiver's upload suite again, on the Elasticsearch session store (each receiver gets its own
Elasticsearch fake, tests/fakes/es_fake.py): storing, duplicates and conflicts, the status and blob
routes, export, key rotation, hostile inputs with nothing stored, slow uploads, the queue routes and
failure injection behave as on the filesystem store."""
import os
import sys

os.environ["LF_TEST_STORE_BACKEND"] = "elasticsearch"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import lfharness as H  # noqa: E402
import test_receiver_upload as T  # noqa: E402

if __name__ == "__main__":
    H.run_tests([
        T.test_store_duplicate_conflict_status_blob_export,
        T.test_key_rotation_old_sessions_still_export,
        T.test_hostile_inputs_rejected_and_nothing_stored,
        T.test_slow_uploads_do_not_block_others,
        T.test_queue_routes,
        T.test_fsync_and_disk_full_failures,
    ])
