# The Python side of sigtrig's Celery interoperability tests (tests/test_celery_interop.c):
# a stand-in for the project that owns app.orchestration.tasks.execute_pipeline.
