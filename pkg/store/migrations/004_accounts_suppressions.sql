-- Provider accounts and undeliverable addresses.
--
-- Each attempt names the provider account that handled it (empty for a channel with one
-- unnamed provider, such as webhook) and the provider's own error code ("5.1.1", "21211",
-- "UNREGISTERED"). Both columns have constant defaults, so adding them rewrites nothing.
alter table delivery_attempts
    add column account    text not null default '',
    add column error_code text not null default '';

-- Addresses a provider said do not exist or have opted out. A notification to one of them
-- fails with "suppressed" instead of paying for another send. The notification that caused a
-- row is kept by id only: notifications are purged, suppressions stay until an operator
-- removes them.
create table suppressions (
    channel         text not null,
    address         text not null,
    reason          text not null,
    error_code      text not null default '',
    notification_id uuid,
    created_at      timestamptz not null,
    primary key (channel, address)
);
