"""Sends an execute_pipeline call with a callback, as a Python shop builds it with Celery's canvas.

usage: send_canvas.py chain|link|errback QUEUE KWARGS_JSON

chain:   chain(execute_pipeline(**kwargs), notify("from-chain") on QUEUE)
link:    execute_pipeline(**kwargs) with link=notify("from-link") on QUEUE
errback: a task of a name no worker has, with link_error=notify() on QUEUE

Prints two lines: the id of the first task, then the id of the callback's result (the chain's
own result id, or the frozen signature's id), so a test can wait on either with get_result.py.
"""
import json
import sys

from celery import chain

from app.orchestration.tasks import app

EXECUTE = "app.orchestration.tasks.execute_pipeline"
NOTIFY = "app.orchestration.tasks.notify"


def main():
    mode, queue, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if mode == "chain":
        first = app.signature(EXECUTE, kwargs=kwargs)
        last = app.signature(NOTIFY, args=("from-chain",), queue=queue)
        result = chain(first, last).apply_async()
        print(result.parent.id)
        print(result.id)
    elif mode == "link":
        callback = app.signature(NOTIFY, args=("from-link",), queue=queue)
        callback_id = callback.freeze().id
        result = app.signature(EXECUTE, kwargs=kwargs).apply_async(link=callback)
        print(result.id)
        print(callback_id)
    elif mode == "errback":
        errback = app.signature(NOTIFY, queue=queue)
        errback_id = errback.freeze().id
        result = app.signature("no.such.task", kwargs=kwargs).apply_async(link_error=errback)
        print(result.id)
        print(errback_id)
    else:
        print("unknown mode " + mode, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
