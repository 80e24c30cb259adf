/**
 * The health expression's bounds through the API: an `unhealthy_when` nested deeper than 32 parentheses, with
 * more than 256 terms or longer than 4 KiB, and more than 32 rules, are each a 400 that says the limit — never
 * a 500 — and what is within them is taken.
 */
import { describe, expect, it } from "vitest";
import { json, useTestApp } from "../support/app.ts";

const app = useTestApp();
let port = 6830;

const create = (health: unknown) =>
  app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      name: "Limits",
      rtp_ip: "127.0.0.1",
      rtp_port: port++,
      backup_rtp_port: port++,
      redundancy: { health },
    }),
  });

const refusal = async (response: Response) => {
  const text = await response.text();
  expect(response.status, text).toBe(400);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  return String((JSON.parse(text) as Record<string, unknown>).detail);
};

const low = { bitrate_below_bps: 800000, for_ms: 3000 };

describe("health expression limits", () => {
  it("5,000 nested parentheses: 400 naming the length limit; 2,000 (within it): 400 naming the depth limit", async () => {
    const long = await refusal(
      await create({ rules: { low }, unhealthy_when: `${"(".repeat(5000)}low${")".repeat(5000)}` }),
    );
    expect(long).toContain("unhealthy_when");
    expect(long).toContain("4096 characters");
    const detail = await refusal(
      await create({ rules: { low }, unhealthy_when: `${"(".repeat(2000)}low${")".repeat(2000)}` }),
    );
    expect(detail).toContain("unhealthy_when");
    expect(detail).toContain("nested more than 32 levels");
    const nots = await refusal(await create({ rules: { low }, unhealthy_when: `${"!".repeat(3000)}low` }));
    expect(nots).toContain("nested more than 32 levels");
  });

  it("140,000 terms: 400 naming the length limit; 300 short terms: 400 naming the term limit", async () => {
    const long = await refusal(
      await create({
        rules: { a: low },
        unhealthy_when: Array.from({ length: 140_000 }, () => "a").join("||"),
      }),
    );
    expect(long).toContain("4096 characters");
    const many = await refusal(
      await create({ rules: { low }, unhealthy_when: Array.from({ length: 300 }, () => "low").join("||") }),
    );
    expect(many).toContain("256");
    expect(many).toContain("terms");
  });

  it("33 rules: 400 naming the rule limit; 32 rules, 32 levels and 256 terms are taken", async () => {
    const rules = (count: number) =>
      Object.fromEntries(Array.from({ length: count }, (_, index) => [`r${index}`, low]));
    const detail = await refusal(await create({ rules: rules(33), unhealthy_when: "r0" }));
    expect(detail).toContain("at most 32 rules");
    expect(detail).toContain("33");
    const deep = `${"(".repeat(31)}!r0${")".repeat(31)}`;
    const taken = await create({ rules: rules(32), unhealthy_when: deep });
    expect(taken.status, await taken.clone().text()).toBe(201);
    const wide = Array.from({ length: 256 }, (_, index) => `r${index % 32}`).join("||");
    const alsoTaken = await create({ rules: rules(32), unhealthy_when: wide });
    expect(alsoTaken.status, await alsoTaken.clone().text()).toBe(201);
    expect((await json(alsoTaken)).redundancy).toMatchObject({ health: { unhealthy_when: wide } });
  });
});
