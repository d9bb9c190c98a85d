-- Maintained counts of notifications by state, so that a scrape reads a few hundred rows
-- instead of counting ten million.
--
-- Counting a state through its partial index (001) still reads a heap page per row to tell the
-- states apart and check visibility: fine for a few hundred rows, half a second for fifteen
-- thousand scheduled or retrying ones spread over a large table, and a scheduled campaign can
-- hold a million. So every state is counted here, per channel, and the finished states also
-- per minute they finished in, which gives the failure rate over a recent window.
--
-- Writers never update a shared counter row. Statement-level triggers append what a statement
-- changed, one row per (status, channel, minute), to notification_count_changes: an insert-only
-- table without indexes, so concurrent inserts and updates of notifications never wait on each
-- other here, and a batch of a thousand rows adds a row or two, not a thousand. The metrics
-- function rolls the changes up into notification_counts and folds minutes older than its
-- failure window into one row per status and channel (finished = '-infinity'). A reader adds
-- both tables in one statement, so a roll-up running at the same time changes nothing it sees.

create table notification_counts (
    status   text not null,
    channel  text not null,
    -- for finished notifications (delivered, failed, cancelled, expired) the minute they
    -- finished in (finished_at binned to the whole UTC minute); '-infinity' for every minute
    -- folded away and for the states not finished
    finished timestamptz not null,
    count    bigint not null,
    primary key (status, channel, finished)
);

create table notification_count_changes (
    status   text not null,
    channel  text not null,
    finished timestamptz not null,
    delta    bigint not null
);

-- The minute a notification in state status that finished at finished_at is counted in.
create function notification_counts_minute(status text, finished_at timestamptz) returns timestamptz
language sql immutable parallel safe as $$
    select case when status in ('delivered', 'failed', 'cancelled', 'expired')
        then coalesce(date_bin('1 minute', finished_at, timestamptz 'epoch'), '-infinity')
        else '-infinity' end
$$;

-- Records a statement's changes to the counts from its transition tables: new_rows (INSERT,
-- UPDATE) counted up, old_rows (UPDATE, DELETE) counted down; an UPDATE that moves no row to
-- another state, channel or minute records nothing.
create function notification_counts_record() returns trigger
language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into notification_count_changes (status, channel, finished, delta)
        select status, channel, notification_counts_minute(status, finished_at), count(*)
        from new_rows
        group by 1, 2, 3;
    elsif tg_op = 'UPDATE' then
        insert into notification_count_changes (status, channel, finished, delta)
        select status, channel, notification_counts_minute(status, finished_at), sum(delta)
        from (
            select status, channel, finished_at, 1 as delta from new_rows
            union all
            select status, channel, finished_at, -1 from old_rows
        ) changed
        group by 1, 2, 3
        having sum(delta) <> 0;
    elsif tg_op = 'DELETE' then
        insert into notification_count_changes (status, channel, finished, delta)
        select status, channel, notification_counts_minute(status, finished_at), -count(*)
        from old_rows
        group by 1, 2, 3;
    end if;
    return null;
end;
$$;

-- Empties the counts when notifications is truncated, which fires no row or transition triggers.
create function notification_counts_reset() returns trigger
language plpgsql as $$
begin
    delete from notification_counts;
    delete from notification_count_changes;
    return null;
end;
$$;

-- Writers wait until the counts below include every row they could have changed.
lock table notifications in share row exclusive mode;

create trigger notifications_count_insert after insert on notifications
    referencing new table as new_rows
    for each statement execute function notification_counts_record();
create trigger notifications_count_update after update on notifications
    referencing old table as old_rows new table as new_rows
    for each statement execute function notification_counts_record();
create trigger notifications_count_delete after delete on notifications
    referencing old table as old_rows
    for each statement execute function notification_counts_record();
create trigger notifications_count_truncate after truncate on notifications
    for each statement execute function notification_counts_reset();

-- Count the rows already there: the last day by minute, older ones folded.
insert into notification_counts (status, channel, finished, count)
select status, channel,
    case when finished_at >= now() - interval '1 day' then notification_counts_minute(status, finished_at)
        else '-infinity' end,
    count(*)
from notifications
group by 1, 2, 3;
