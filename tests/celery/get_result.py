"""Waits for a task's result with AsyncResult(id).get(), as a Python caller would.

usage: get_result.py TASK_ID TIMEOUT_S

Prints one JSON object: {"state", "task_id", "date_done", and "result" (what get() returned) or
"exception": {"type", "module", "message"} (what get() raised)}. Exits 0 when get() returned or
raised the task's exception, 3 when it timed out ({"state", "timeout": true}).
"""
import json
import sys

from celery.exceptions import TimeoutError as CeleryTimeoutError

from app.orchestration.tasks import app


def main():
    task_id, timeout = sys.argv[1], float(sys.argv[2])
    result = app.AsyncResult(task_id)
    report = {"task_id": task_id}
    status = 0
    try:
        report["result"] = result.get(timeout=timeout)
    except CeleryTimeoutError:
        report["timeout"] = True
        status = 3
    except Exception as error:  # the task's own exception, re-raised by get()
        report["exception"] = {
            "type": type(error).__name__,
            "module": type(error).__module__,
            "message": str(error),
        }
    report["state"] = result.state
    # date_done is parsed from the stored text: a malformed one raises here.
    done = result.date_done
    report["date_done"] = done.isoformat() if done is not None else None
    print(json.dumps(report), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
