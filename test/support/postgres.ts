/**
 * A throwaway PostgreSQL 15 for tests: `initdb` in a temporary directory, the server run as the `postgres`
 * user in the foreground (a child of the test process, so it dies with it), a password-authenticated
 * superuser over TCP, and the database `distributary`. Inside the network lab, `wrap` puts the server in a
 * namespace (`ip netns exec dl-… …`) and `listen` gives it the namespace's address.
 *
 * The helper itself always reaches the server through its Unix socket in the data directory, which works
 * whatever namespace the server listens in and whatever the lab does to its links.
 *
 * `initdb` runs once per machine (about 4 s on a loaded CI machine, and two dozen test files start a server):
 * its cluster is kept as a template in the temporary directory and each server starts on a copy of it (under
 * a second), its superuser's password set afresh once it is up.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redacted } from "effect";
import pg from "pg";
import { DATABASE_START_WAIT_MS, layerPostgres } from "../../src/effects/config/postgres/layer.ts";

const binDir = "/usr/lib/postgresql/15/bin";
const user = "distributary";
const database = "distributary";

export type Wrap = (command: string, args: ReadonlyArray<string>) => [string, ReadonlyArray<string>];

export interface PostgresOptions {
  readonly port: number;
  /** The address the server listens on (default 127.0.0.1). */
  readonly listen?: string;
  /** Wraps the server's command, e.g. in `ip netns exec <ns>`. */
  readonly wrap?: Wrap;
  /** The server's max_connections (default 60). */
  readonly maxConnections?: number;
}

export interface Postgres {
  /** postgres://distributary:<password>@<listen>:<port>/distributary */
  readonly url: string;
  readonly port: number;
  readonly password: string;
  /** Stops the server, keeping its data: `fast` lets sessions end cleanly, `immediate` is a crash. */
  readonly stop: (options?: { readonly mode?: "fast" | "immediate" }) => Promise<void>;
  /** Starts the server again on the same data, port and address. */
  readonly start: () => Promise<void>;
  /**
   * Stops (SIGSTOP) or resumes (SIGCONT) the server and its sessions: connections are accepted by the kernel
   * but nothing answers, as when the network to the database is cut.
   */
  readonly freeze: (frozen: boolean) => void;
  /** Drops the database `distributary` (ending its sessions) and creates it empty. */
  readonly dropAndCreate: () => Promise<void>;
  /** A query as the superuser through the Unix socket (setup and checks in tests). */
  readonly admin: <R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    values?: ReadonlyArray<unknown>,
  ) => Promise<ReadonlyArray<R>>;
  /**
   * A session of its own as the superuser (through the Unix socket), kept open until `end`: a transaction
   * begun there holds its locks until then.
   */
  readonly session: () => Promise<pg.Client>;
  /** Stops the server and removes its directory. */
  readonly close: () => Promise<void>;
}

const postgresIds = (): { uid: number; gid: number } => ({
  uid: Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" })),
  gid: Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" })),
});

/** Runs a command as the `postgres` user (PostgreSQL refuses to run as root). */
const asPostgres = (command: string, args: ReadonlyArray<string>): [string, ReadonlyArray<string>] => [
  "/usr/bin/setpriv",
  ["--reuid=postgres", "--regid=postgres", "--clear-groups", "--pdeathsig", "KILL", command, ...args],
];

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The test process that made a directory (none while another process is still making it). */
const ownerOf = (dir: string): number => {
  try {
    return Number.parseInt(readFileSync(join(dir, "owner"), "utf8"), 10);
  } catch {
    return Number.NaN;
  }
};

/** Directories left by test processes that were killed before their exit handler could run. */
const removeOrphans = (): void => {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith("dl-pg-")) continue;
    const owner = ownerOf(join(tmpdir(), name));
    if (Number.isInteger(owner) && !alive(owner))
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
};

/**
 * The cluster every server starts from: made by `initdb` the first time (in a directory of its own, renamed
 * into place, so that test processes making it at once do not see one half made), kept for the next.
 */
const template = (): string => {
  const path = join(tmpdir(), "distributary-pg15-template");
  if (existsSync(path)) return path;
  const { uid, gid } = postgresIds();
  const making = mkdtempSync(join(tmpdir(), "distributary-pg15-making-"));
  chownSync(making, uid, gid);
  const [initdb, initArgs] = asPostgres(join(binDir, "initdb"), [
    `--pgdata=${join(making, "data")}`,
    `--username=${user}`,
    // Its pg_hba.conf is each copy's own (below): password authentication over TCP.
    "--auth=trust",
    "--encoding=UTF8",
    "--locale=C",
    "--no-sync",
  ]);
  try {
    execFileSync(initdb, initArgs, { cwd: making, stdio: "pipe", env: { PATH: process.env.PATH ?? "" } });
    renameSync(join(making, "data"), path);
  } catch (error) {
    // Another test process put its template in place first: that one serves.
    if (!existsSync(path)) throw error;
  } finally {
    rmSync(making, { recursive: true, force: true });
  }
  return path;
};

export const startPostgres = async (options: PostgresOptions): Promise<Postgres> => {
  removeOrphans();
  const listen = options.listen ?? "127.0.0.1";
  const wrap: Wrap = options.wrap ?? ((command, args) => [command, args]);
  const dir = mkdtempSync(join(tmpdir(), "dl-pg-"));
  const data = join(dir, "data");
  const password = randomBytes(12).toString("hex");
  const { uid, gid } = postgresIds();
  chownSync(dir, uid, gid);
  chmodSync(dir, 0o700);
  writeFileSync(join(dir, "owner"), String(process.pid));
  // A test process that ends without close() still leaves no directory behind.
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once("exit", removeDir);

  execFileSync("cp", ["-a", template(), data]);
  // The template trusts every connection; a copy asks TCP clients for the password, from any address (a lab
  // node connects from its namespace's).
  writeFileSync(
    join(data, "pg_hba.conf"),
    "local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n",
  );

  let server: { child: ChildProcess; exited: Promise<void> } | undefined;
  const launch = async (): Promise<void> => {
    const [command, args] = wrap(
      ...asPostgres(join(binDir, "postgres"), [
        "-D",
        data,
        "-p",
        String(options.port),
        "-c",
        `listen_addresses=${listen}`,
        "-c",
        `unix_socket_directories=${dir}`,
        // Throwaway data: nothing needs to survive a power cut, and tests should not wait on disks. A commit
        // still reaches the WAL before it is acknowledged (synchronous_commit stays on), so a crash of the
        // server (stop immediate) keeps every acknowledged change, as it would in production.
        "-c",
        "fsync=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "shared_buffers=16MB",
        "-c",
        `max_connections=${options.maxConnections ?? 60}`,
      ]),
    );
    const child = spawn(command, [...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const keep = (chunk: unknown) => {
        output += String(chunk);
        if (output.includes("ready to accept connections")) resolve();
      };
      child.stdout?.on("data", keep);
      child.stderr?.on("data", keep);
      exited.then(() => reject(new Error(`postgres exited before it was ready:\n${output}`)));
      child.once("error", reject);
    });
    server = { child, exited };
  };

  const freeze = (frozen: boolean): void => {
    const pid = server?.child.pid;
    if (pid === undefined) return;
    const children = execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .split(/\s+/)
      .filter(Boolean);
    for (const target of [pid, ...children.map(Number)]) {
      try {
        process.kill(target, frozen ? "SIGSTOP" : "SIGCONT");
      } catch (error) {
        // A backend whose session ended between the listing and the signal (stop() thaws a running server).
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
    }
  };

  const stop = async (stopOptions?: { readonly mode?: "fast" | "immediate" }): Promise<void> => {
    freeze(false);
    const running = server;
    server = undefined;
    if (running === undefined || running.child.exitCode !== null) return;
    // The postmaster's own shutdown signals: SIGINT is a fast shutdown, SIGQUIT an immediate one.
    running.child.kill(stopOptions?.mode === "immediate" ? "SIGQUIT" : "SIGINT");
    await running.exited;
  };

  const admin = async <R extends pg.QueryResultRow>(
    sql: string,
    values?: ReadonlyArray<unknown>,
    db = database,
  ): Promise<ReadonlyArray<R>> => {
    const client = new pg.Client({ host: dir, port: options.port, user, database: db });
    // A server that stops mid-query fails the query; the client's own 'error' event would be unhandled.
    client.on("error", () => undefined);
    await client.connect();
    try {
      return (await client.query<R>(sql, values === undefined ? undefined : [...values])).rows;
    } finally {
      await client.end();
    }
  };

  await launch();
  // The template's superuser has no password: each server's own, for its TCP clients.
  await admin(`alter role ${user} password '${password}'`, undefined, "postgres");
  await admin(`create database ${database}`, undefined, "postgres");
  return {
    url: `postgres://${user}:${password}@${listen.includes(":") ? `[${listen}]` : listen}:${options.port}/${database}`,
    port: options.port,
    password,
    stop,
    start: launch,
    admin: (sql, values) => admin(sql, values),
    session: async () => {
      const client = new pg.Client({ host: dir, port: options.port, user, database });
      await client.connect();
      return client;
    },
    freeze,
    dropAndCreate: async () => {
      await admin(`drop database if exists ${database} with (force)`, undefined, "postgres");
      await admin(`create database ${database}`, undefined, "postgres");
    },
    close: async () => {
      await stop({ mode: "immediate" });
      removeDir();
      process.off("exit", removeDir);
    },
  };
};

/**
 * A node's store on the test's database (`url`), started as the service starts it (src/http/server.ts): a first
 * connection that times out on a loaded machine is tried again, for up to DATABASE_START_WAIT_MS, not a failed
 * start.
 */
export const nodeStore = (url: string, options: { readonly node?: string | null } = {}) =>
  layerPostgres(Redacted.make(url), { ...options, waitMs: DATABASE_START_WAIT_MS });
