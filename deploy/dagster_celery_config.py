"""Celery settings of the run workers, read by ``celery -A dagster_celery.app worker``.

dagster_celery's app imports a module named ``dagster_celery_config`` when one is on the
path: start workers with ``PYTHONPATH=deploy`` (from the repository root). The broker and
backend must be the ones ``deploy/dagster.yaml`` gives the run launcher.
"""

import os

broker_url = os.environ["ROBOSF_CELERY_BROKER"]
result_backend = os.environ["ROBOSF_CELERY_BACKEND"]

# a running task reads STARTED with the worker's hostname: run monitoring asks that worker
task_track_started = True
result_extended = True
# one run per worker process, and no run reserved by a busy worker while another one is idle
worker_prefetch_multiplier = 1
worker_disable_prefetch = True
# a run is not redelivered when its worker dies: Dagster marks it failed and retries it itself
task_acks_late = False
