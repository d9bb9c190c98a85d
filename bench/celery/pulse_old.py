"""The old stack's delivery worker, for bench/: a Celery task doing per notification what the
Django + Celery system did (load the row, POST the webhook to its sink, UPDATE the status),
against the same PostgreSQL table and the same webhook sink as Pulse's deliver function.

It is deliberately lean, which favours Celery: raw psycopg2 with one autocommit connection
per worker process instead of the Django ORM, one requests.Session (keep-alive) per process,
no result backend. Webhooks are signed per Standard Webhooks, as Pulse signs them, because the
sink verifies every signature.

Configuration (environment):
  BENCH_CELERY_BROKER   redis://127.0.0.1:6379/0
  BENCH_CELERY_QUEUE    the Redis list the tasks are in (also used to name kombu's keys)
  BENCH_PG_DSN          libpq connection string, search_path included via options
  BENCH_WEBHOOK_SECRET  whsec_... secret the sink verifies
Run with /usr/bin/python3 -m celery -A pulse_old worker (see bench/drain.go).
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import time

import psycopg2
import requests
from celery import Celery
from celery.signals import worker_process_init

QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "high_priority")

app = Celery("pulse_old", broker=os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_ignore_result=True,
    task_default_queue=QUEUE,
    worker_hijack_root_logger=False,
    worker_enable_remote_control=False,
    worker_send_task_events=False,
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        # kombu keeps delivered, unacknowledged messages under these keys; name them after the
        # queue so that the bench can delete every key it made.
        "unacked_key": QUEUE + ":unacked",
        "unacked_index_key": QUEUE + ":unacked_index",
        "unacked_mutex_key": QUEUE + ":unacked_mutex",
    },
)

_KEY = base64.b64decode(os.environ.get("BENCH_WEBHOOK_SECRET", "whsec_").removeprefix("whsec_"))
_conn = None
_session = None


@worker_process_init.connect
def _open(**_):
    global _conn, _session
    _conn = psycopg2.connect(os.environ["BENCH_PG_DSN"])
    _conn.autocommit = True
    _session = requests.Session()


def _connection():
    # The solo and threads pools do not send worker_process_init.
    if _conn is None:
        _open()
    return _conn


@app.task(name="pulse.deliver")
def deliver(notification_id):
    cur = _connection().cursor()
    cur.execute(
        "select recipient, subject, body, data::text, metadata::text from notifications where id = %s",
        (notification_id,),
    )
    row = cur.fetchone()
    if row is None:
        return
    recipient, subject, body, data, metadata = row
    payload = {
        "type": "dev.pulse.notification",
        "id": notification_id,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "data": json.loads(data) if data else None,
        "subject": subject,
        "body": body,
        "metadata": json.loads(metadata) if metadata else None,
    }
    raw = json.dumps(payload).encode()
    ts = str(int(time.time()))
    mac = hmac.new(_KEY, notification_id.encode() + b"." + ts.encode() + b"." + raw, hashlib.sha256)
    headers = {
        "content-type": "application/json",
        "webhook-id": notification_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
    }
    try:
        resp = _session.post(recipient, data=raw, headers=headers, timeout=10)
        ok, error = 200 <= resp.status_code < 300, "" if resp.ok else "status %d" % resp.status_code
    except requests.RequestException as e:
        ok, error = False, str(e)
    cur.execute(
        "update notifications set status = %s, attempts = attempts + 1, last_error = %s,"
        " delivered_at = case when %s then clock_timestamp() end,"
        " failed_at = case when %s then null else clock_timestamp() end,"
        " finished_at = clock_timestamp(), updated_at = clock_timestamp() where id = %s",
        ("delivered" if ok else "failed", error, ok, ok, notification_id),
    )
