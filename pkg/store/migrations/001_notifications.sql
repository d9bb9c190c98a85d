-- The notifications Pulse has accepted, one row each, and every attempt to deliver them.
-- Indexes on the hot table are few on purpose: every insert and state change pays for each.
-- The partial indexes hold only the rows a cron job or a scrape looks for, so they stay small.

create table notifications (
    id                  uuid primary key,
    source              text not null,
    event_id            text not null,
    channel             text not null,
    priority            text not null,
    status              text not null,
    recipient           text not null,
    subject             text not null default '',
    body                text not null default '',
    html                text not null default '',
    data                jsonb,
    metadata            jsonb,
    attempts            integer not null default 0,
    max_attempts        integer not null,
    send_at             timestamptz,
    expires_at          timestamptz,
    next_attempt_at     timestamptz,
    lease_until         timestamptz,
    last_error          text not null default '',
    provider_message_id text not null default '',
    created_at          timestamptz not null,
    queued_at           timestamptz,
    sending_at          timestamptz,
    delivered_at        timestamptz,
    failed_at           timestamptz,
    cancelled_at        timestamptz,
    expired_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz not null,
    constraint notifications_status_check check (status in
        ('scheduled', 'queued', 'sending', 'retrying', 'delivered', 'failed', 'cancelled', 'expired')),
    constraint notifications_source_event_id_key unique (source, event_id)
);

-- release: scheduled rows whose send_at has come, retrying rows whose next attempt is due.
create index notifications_due_idx on notifications (coalesce(next_attempt_at, send_at))
    where status in ('scheduled', 'retrying');
-- recover: queued rows waiting too long; sending rows whose lease ran out.
create index notifications_queued_idx on notifications (queued_at) where status = 'queued';
create index notifications_lease_idx on notifications (lease_until) where status = 'sending';
-- expire: unfinished rows with an expiry.
create index notifications_expires_idx on notifications (expires_at)
    where expires_at is not null and status in ('scheduled', 'queued', 'retrying');
-- purge and failure rate: finished rows by the time they finished.
create index notifications_finished_idx on notifications (finished_at) where finished_at is not null;

create table delivery_attempts (
    id                  bigint generated always as identity primary key,
    notification_id     uuid not null references notifications (id) on delete cascade,
    attempt             integer not null,
    outcome             text not null,
    status_code         integer not null default 0,
    error               text not null default '',
    provider_message_id text not null default '',
    started_at          timestamptz not null,
    duration_ms         double precision not null
);

create index delivery_attempts_notification_idx on delivery_attempts (notification_id);
