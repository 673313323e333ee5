#!/usr/bin/python3
"""The PostgreSQL init script shipped in ConfigMap production/postgres-init, run on a real
PostgreSQL 15 the way the postgres image runs docker-entrypoint-initdb.d (psql as the superuser,
ON_ERROR_STOP, POSTGRES_PASSWORD in the environment), twice, to prove it creates the
failure_logs schema and is idempotent. Its migration must be the failure agent's migration 1
verbatim; when the failure-agent target is built (KPISCALE_FAILURE_AGENT_BIN), the real agent is
also started on the initialized database and must find its schema in place and serve requests.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import artifacts_paths as paths
import check_manifests
import strict_yaml

PG_BIN = "/usr/lib/postgresql/15/bin"
PASSWORD = "s3cret-for-test"
AGENT_BIN = os.environ.get("KPISCALE_FAILURE_AGENT_BIN", "")
AGENT_DB = os.path.join(paths.SOURCE_DIR, "examples", "failure-agent", "db.cc")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(*cmd, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True,
                          text=True, timeout=120, **kw)


class PostgresSchema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        text = check_manifests.render(os.path.join(paths.MANIFESTS, "overlays", "local"))
        docs = strict_yaml.load_all(text, "local")
        cm = [d for d in docs
              if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "postgres-init"]
        assert len(cm) == 1, "ConfigMap production/postgres-init not rendered"
        cls.scripts = cm[0]["data"]
        cls.agent_args = [c for d in docs if d["kind"] == "Deployment"
                          for c in d["spec"]["template"]["spec"]["containers"]
                          if c["name"] == "failure-agent"][0]["args"]
        cls.work = tempfile.mkdtemp(prefix="kpiscale-pg-")
        os.chmod(cls.work, 0o755)
        cls.data = os.path.join(cls.work, "pg")
        os.makedirs(cls.data)
        shutil.chown(cls.data, "postgres", "postgres")
        os.chmod(cls.data, 0o700)
        pwfile = os.path.join(cls.work, "pw")
        with open(pwfile, "w", encoding="utf-8") as f:
            f.write(PASSWORD)
        shutil.chown(pwfile, "postgres", "postgres")
        proc = as_postgres(f"{PG_BIN}/initdb", "-D", cls.data, "-U", "postgres", "--no-sync",
                           "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust",
                           "--auth-host=scram-sha-256", f"--pwfile={pwfile}")
        assert proc.returncode == 0, proc.stderr
        cls.port = free_port()
        with open(os.path.join(cls.data, "postgresql.conf"), "a", encoding="utf-8") as f:
            f.write(f"listen_addresses='127.0.0.1'\nport={cls.port}\n"
                    f"unix_socket_directories='{cls.data}'\nfsync=off\n"
                    "shared_preload_libraries='pg_stat_statements'\n")
        proc = as_postgres(f"{PG_BIN}/pg_ctl", "-D", cls.data, "-l",
                           os.path.join(cls.data, "log"), "-w", "-t", "30", "start")
        assert proc.returncode == 0, proc.stdout + proc.stderr

    @classmethod
    def tearDownClass(cls):
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", cls.data, "-m", "fast", "-w", "stop")
        shutil.rmtree(cls.work, ignore_errors=True)

    def run_init(self):
        results = []
        for name in sorted(self.scripts):
            path = os.path.join(self.work, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.scripts[name])
            os.chmod(path, 0o644)
            results.append(as_postgres(
                "psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "--no-password",
                "-h", self.data, "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                "-f", path, env={**os.environ, "POSTGRES_PASSWORD": PASSWORD}))
        return results

    def sql(self, query, user="postgres", password=None, host=None):
        env = {**os.environ}
        if password is not None:
            env["PGPASSWORD"] = password
        return as_postgres("psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-h", host or self.data, "-p", str(self.port), "-U", user,
                           "-d", "failures", "-c", query, env=env)

    def test_migration_is_the_failure_agents_migration_1(self):
        with open(AGENT_DB, encoding="utf-8") as f:
            agent = re.findall(r'R"sql\((.*?)\)sql"', f.read(), re.S)
        self.assertGreaterEqual(len(agent), 1, "no migration found in db.cc")
        script = "".join(self.scripts.values())
        m = re.search(r"-- migration 1 \(verbatim\)\n(.*?)-- end of migration 1", script, re.S)
        self.assertIsNotNone(m)
        self.assertEqual(m.group(1).strip(), agent[0].strip())

    def test_schema_is_created_idempotently_and_usable(self):
        for attempt in (1, 2):
            for proc in self.run_init():
                self.assertEqual(proc.returncode, 0, f"run {attempt}: {proc.stderr}")

        parts = self.sql("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = "
                         "i.inhrelid WHERE i.inhparent = 'failure_logs'::regclass ORDER BY 1")
        self.assertEqual(parts.stdout.split(), ["failure_logs_2024", "failure_logs_2025",
                                                "failure_logs_2026", "failure_logs_default"])
        idx = self.sql("SELECT indexdef FROM pg_indexes WHERE tablename = 'failure_logs' "
                       "AND indexname <> 'failure_logs_pkey' ORDER BY indexname")
        defs = [line.split(" USING btree ")[1] for line in idx.stdout.strip().splitlines()]
        self.assertEqual(sorted(defs), sorted([
            "(created_at DESC)", "(service_name, created_at DESC)",
            "(service_name, status, created_at DESC)", "(status, created_at DESC)"]))
        owner = self.sql("SELECT tableowner FROM pg_tables WHERE tablename = 'failure_logs'")
        self.assertEqual(owner.stdout.strip(), "failure_agent")
        versions = self.sql("SELECT version FROM schema_migrations ORDER BY 1")
        self.assertEqual(versions.stdout.split(), ["1"])

        # The application's login works over TCP with the Secret's password, not without it.
        ok = self.sql("INSERT INTO failure_logs (service_name, status, error_message, created_at) "
                      "VALUES ('build', 'open', 'exit 1', '2025-06-01'), "
                      "('deploy', 'resolved', 'timeout', '2031-01-01') "
                      "RETURNING tableoid::regclass", user="failure_agent", password=PASSWORD,
                      host="127.0.0.1")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertEqual(ok.stdout.split()[:2], ["failure_logs_2025", "failure_logs_default"])
        bad = self.sql("SELECT 1", user="failure_agent", password="wrong", host="127.0.0.1")
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("password authentication failed", bad.stderr)
        ext = self.sql("SELECT extname FROM pg_extension WHERE extname = 'pg_stat_statements'")
        self.assertEqual(ext.stdout.strip(), "pg_stat_statements")

        if AGENT_BIN:
            self.check_agent_on_initialized_database()

    def check_agent_on_initialized_database(self):
        """The real failure agent, with the manifest's arguments (addresses moved to loopback
        ports of this test, the password from PGPASSWORD as the Secret provides it), migrates
        nothing and serves. Nothing listens on its Redis address: it must degrade, not fail."""
        port = free_port()
        args = []
        for a in self.agent_args:
            flag, _, value = a.partition("=")
            if flag == "--listen":
                value = f"127.0.0.1:{port}"
            elif flag == "--redis":
                value = f"127.0.0.1:{free_port()}"
            elif flag == "--database-dsn":
                self.assertIn("host=127.0.0.1 port=5433", value)
                value = value.replace("port=5433", f"port={self.port}")
            args.append(f"{flag}={value}")
        log_path = os.path.join(self.work, "agent.log")
        with open(log_path, "wb") as log:
            agent = subprocess.Popen([AGENT_BIN, *args, "--pool-min=1"], stdout=log,
                                     stderr=subprocess.STDOUT,
                                     env={**os.environ, "PGPASSWORD": PASSWORD})
            try:
                deadline = time.monotonic() + 30
                body = None
                while body is None:
                    self.assertIsNone(agent.poll(), "failure agent exited")
                    try:
                        with urllib.request.urlopen(
                                f"http://127.0.0.1:{port}/api/v1/failures?service=build",
                                timeout=5) as r:
                            self.assertEqual(r.status, 200)
                            body = r.read().decode()
                    except OSError:
                        self.assertLess(time.monotonic(), deadline, "agent never answered")
                        time.sleep(0.1)  # poll interval; the answer decides
                self.assertIn("exit 1", body)
            finally:
                agent.terminate()
                agent.wait(timeout=30)
        with open(log_path, encoding="utf-8", errors="replace") as f:
            self.assertNotIn("migration_applied", f.read())

if __name__ == "__main__":
    unittest.main(verbosity=2)
