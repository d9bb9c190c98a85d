-- Indexes for the operator's list, replay and cancel (GET /v1/notifications, POST
-- /v1/notifications:retry and :cancel). Every page is ordered newest first by (created_at, id)
-- and continues from a cursor, so each index ends in (created_at, id): the planner walks one
-- backwards from the cursor and stops after a page, however many rows match.
--
--   since, until, or no filter; channel, priority (a few values each, so an index
--   of their own would rarely beat walking this one)      notifications_created_idx
--   status (and retry's failed/expired, cancel's
--   scheduled/queued/retrying)                             notifications_status_created_idx
--   source (exact)                                         notifications_source_created_idx
--   error (substring of last_error)                        notifications_last_error_trgm_idx
--
-- Three more indexes on the hot table cost every insert a little; they are what makes a
-- search over ten million rows answer in milliseconds.

create index notifications_created_idx on notifications (created_at, id);
create index notifications_status_created_idx on notifications (status, created_at, id);
create index notifications_source_created_idx on notifications (source, created_at, id);

-- error= is a case-insensitive substring match (ILIKE '%...%'), which a b-tree cannot serve;
-- pg_trgm's GIN operator class can. pg_trgm ships with Debian's and the official images'
-- PostgreSQL and is a trusted extension (any role that may create in the database may install
-- it). Where it is already installed, in whichever schema, that one is used; where it cannot be
-- installed the index is left out and error= is served by the other filters' indexes
-- (docs/events.md). Only rows with an error are indexed.
do $$
declare
    ext_schema name;
begin
    for try in 1..2 loop
        select n.nspname into ext_schema
        from pg_extension e join pg_namespace n on n.oid = e.extnamespace
        where e.extname = 'pg_trgm';
        exit when ext_schema is not null;
        begin
            -- In public when there is one, so that dropping Pulse's own schema never drops an
            -- extension other schemas' indexes use.
            if exists (select from pg_namespace where nspname = 'public') then
                create extension if not exists pg_trgm with schema public;
            else
                create extension if not exists pg_trgm;
            end if;
        exception when others then
            -- Another migration may have installed it at the same moment: look again once.
            raise notice 'create extension pg_trgm: %', sqlerrm;
        end;
    end loop;
    if ext_schema is null then
        raise notice 'pg_trgm is not available: error= filters are not indexed';
        return;
    end if;
    execute format('create index notifications_last_error_trgm_idx on notifications using gin (last_error %I.gin_trgm_ops) where last_error <> %L',
        ext_schema, '');
end;
$$;
