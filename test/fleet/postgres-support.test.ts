import pg from "pg";
import { expect, test } from "vitest";
import { startPostgres } from "../support/postgres.ts";

test("a throwaway PostgreSQL answers a password-authenticated query over TCP and leaves nothing behind", async () => {
  const db = await startPostgres({ port: 18700 });
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const { rows } = await client.query<{ answer: number }>("select 6 * 7 as answer");
  await client.end();
  expect(rows[0]?.answer).toBe(42);
  await db.close();
  await expect(new pg.Client({ connectionString: db.url }).connect()).rejects.toThrow(/ECONNREFUSED/);
});
