"""Work that several pytest-xdist workers need, done once per test run."""

import json

from filelock import FileLock

from course_harness.paths import BUILD

SHARED = BUILD / "shared"


def once_per_test_run(name, run_uid, produce):
    """``produce()`` once per test run, whichever pytest-xdist worker asks first; the others wait and read it.

    The value (JSON) is kept in build/shared/<name>.json with the run's id, under a file lock.
    """
    SHARED.mkdir(parents=True, exist_ok=True)
    stored = SHARED / f"{name}.json"
    with FileLock(SHARED / f"{name}.lock"):
        if stored.exists() and (kept := json.loads(stored.read_text()))["run"] == run_uid:
            return kept["value"]
        value = produce()
        stored.write_text(json.dumps({"run": run_uid, "value": value}))
        return value
