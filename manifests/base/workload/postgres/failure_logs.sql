-- The failure_logs schema of the reference workload, run once by the postgres image
-- (docker-entrypoint-initdb.d, as the postgres superuser, with POSTGRES_PASSWORD in the
-- environment) on an empty data directory. The failure agent migrates the database itself at
-- start (table schema_migrations); this script applies the same migration 1 and records it, so
-- the agent finds the schema in place and applies only later migrations. The migration text
-- below is examples/failure-agent/db.cc's Migrations()[0], verbatim (a test compares them).
-- Every step is guarded, so running the script again changes nothing.
SELECT 'CREATE ROLE failure_agent LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'failure_agent')\gexec
\getenv agent_password POSTGRES_PASSWORD
ALTER ROLE failure_agent PASSWORD :'agent_password';
SELECT 'CREATE DATABASE failures OWNER failure_agent'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'failures')\gexec
\connect failures
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SET ROLE failure_agent;
CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
SELECT NOT EXISTS (SELECT FROM schema_migrations WHERE version = 1) AS need_migration_1 \gset
\if :need_migration_1
BEGIN;
-- migration 1 (verbatim)
CREATE TABLE failure_logs (
  id            bigint GENERATED ALWAYS AS IDENTITY,
  service_name  text        NOT NULL,
  status        text        NOT NULL CHECK (status IN ('open', 'investigating', 'resolved')),
  pipeline      text,
  job           text,
  error_message text        NOT NULL,
  details       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE failure_logs_2024 PARTITION OF failure_logs
  FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2025-01-01 00:00:00+00');
CREATE TABLE failure_logs_2025 PARTITION OF failure_logs
  FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2026-01-01 00:00:00+00');
CREATE TABLE failure_logs_2026 PARTITION OF failure_logs
  FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2027-01-01 00:00:00+00');
CREATE TABLE failure_logs_default PARTITION OF failure_logs DEFAULT;
CREATE INDEX idx_failure_logs_created_at ON failure_logs (created_at DESC);
CREATE INDEX idx_failure_logs_status_created_at ON failure_logs (status, created_at DESC);
CREATE INDEX idx_failure_logs_service_created_at ON failure_logs (service_name, created_at DESC);
CREATE INDEX idx_failure_logs_service_status_created_at
  ON failure_logs (service_name, status, created_at DESC);
-- end of migration 1
INSERT INTO schema_migrations (version) VALUES (1);
COMMIT;
\endif
