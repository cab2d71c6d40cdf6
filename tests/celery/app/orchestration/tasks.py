"""A stock Celery 5 application with the task sigtrig's dispatcher sends.

Broker and result backend come from CELERY_BROKER_URL and CELERY_RESULT_BACKEND (the test stack's
redis.url); everything else is Celery's default: JSON, task protocol 2, queue `celery`.

execute_pipeline has the task's real signature, so a message whose keyword arguments do not match
fails as it would in production. It answers with what it received, and appends the same record
to the file named by SIGTRIG_CELERY_RECORD (one JSON object a line) when that is set, so a test can
check what the worker got independently of the result backend. With SIGTRIG_CELERY_TASK_SLEEP_S
set, the task sleeps that long after writing the record, as a long run would.
"""
import json
import os
import time

from celery import Celery

app = Celery(
    "app",
    broker=os.environ["CELERY_BROKER_URL"],
    backend=os.environ["CELERY_RESULT_BACKEND"],
)


@app.task(bind=True, name="app.orchestration.tasks.execute_pipeline")
def execute_pipeline(self, pipeline_id, triggered_by_signal, signal_ids, execution_id):
    request = self.request
    received = {
        "ran_by": "python-celery",
        "task": self.name,
        "task_id": request.id,
        "args": list(request.args or []),
        "kwargs": dict(request.kwargs or {}),
        "kwarg_types": {key: type(value).__name__ for key, value in (request.kwargs or {}).items()},
        "delivery_info": dict(request.delivery_info or {}),
        "redelivered": bool((request.delivery_info or {}).get("redelivered")),
        # What logs and monitoring show for the call, and what Python's own producer would have written.
        "argsrepr": getattr(request, "argsrepr", None),
        "kwargsrepr": getattr(request, "kwargsrepr", None),
        "argsrepr_of_python": repr(tuple(request.args or ())),
        "kwargsrepr_of_python": repr(dict(request.kwargs or {})),
    }
    record = os.environ.get("SIGTRIG_CELERY_RECORD")
    if record:
        with open(record, "a", encoding="utf-8") as out:
            out.write(json.dumps(received) + "\n")
    sleep_s = os.environ.get("SIGTRIG_CELERY_TASK_SLEEP_S")
    if sleep_s:
        time.sleep(float(sleep_s))
    return received


@app.task(bind=True, name="app.orchestration.tasks.notify")
def notify(self, result, *args):
    """What a Python shop links after a pipeline run: it receives the run's result first."""
    request = self.request
    return {
        "ran_by": "python-celery-notify",
        "got": result,
        "args": list(args),
        "task_id": request.id,
        "parent_id": request.parent_id,
        "root_id": request.root_id,
        "queue": (request.delivery_info or {}).get("routing_key"),
    }
