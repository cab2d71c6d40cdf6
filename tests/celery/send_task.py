"""Sends tasks with Celery's own send_task(), as a Python producer would.

usage: send_task.py [--id TASK_ID]... [--priority P] [--countdown S] [--expires=S]
                    NAME KWARGS_JSON [NAME KWARGS_JSON ...]

Prints each task's id, one a line, in the order sent. The n-th --id is the n-th task's id
(Celery makes one when there is none). --priority, --countdown and --expires (seconds from now,
negative for the past) are send_task()'s own options, applied to every task. All tasks go out
from one process, one right after another.
"""
import argparse
import json
import sys

from app.orchestration.tasks import app


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", action="append", default=[])
    parser.add_argument("--priority", type=int)
    parser.add_argument("--countdown", type=float)
    parser.add_argument("--expires", type=float)
    parser.add_argument("calls", nargs="+")
    options = parser.parse_args()
    if len(options.calls) % 2 != 0:
        parser.error("NAME KWARGS_JSON pairs expected")
    calls = list(zip(options.calls[0::2], options.calls[1::2]))
    for index, (name, kwargs_text) in enumerate(calls):
        extra = {}
        if index < len(options.id):
            extra["task_id"] = options.id[index]
        for option in ("priority", "countdown", "expires"):
            if getattr(options, option) is not None:
                extra[option] = getattr(options, option)
        result = app.send_task(name, kwargs=json.loads(kwargs_text), **extra)
        print(result.id, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
