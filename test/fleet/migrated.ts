import type { Postgres } from "../support/postgres.ts";

/** Stand-in for the migrations until src/effects/config/postgres/migrations.ts lands (fleet-overview DDL). */
export const createSchema = async (db: Postgres): Promise<void> => {
  await db.admin(`
    create table channels(id text primary key, position integer not null, body jsonb not null,
      revision bigint not null, updated_at timestamptz not null default now());
    create sequence config_revision;
    create table nodes(id text primary key, url text not null, boot_id text not null, version text not null,
      started_at timestamptz not null, heartbeat_at timestamptz not null,
      draining boolean not null default false, load jsonb not null default '{}');
    create table leases(channel text primary key references channels(id) on delete cascade, holder text,
      holder_boot text, term bigint not null default 0, expires_at timestamptz not null default '-infinity');`);
};
