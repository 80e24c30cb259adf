/**
 * The forwarding threads' two lines as the service reads them from its environment: the busy line is 90 % of
 * a core unless set; the move line, unless set, is the busy line (None here, resolved by the supervisor); a
 * value out of range is refused with the variable's name.
 */
import { ConfigProvider, Effect, Either, Option } from "effect";
import { describe, expect, it } from "vitest";
import { workerBusyPercent, workerMovePercent } from "../../src/effects/config/settings.ts";

const read = <A, E>(config: Effect.Effect<A, E>, env: Record<string, string>) =>
  Effect.runSync(
    Effect.either(Effect.withConfigProvider(config, ConfigProvider.fromMap(new Map(Object.entries(env))))),
  );

describe("the forwarding threads' lines", () => {
  it("busy at 90 % unless set; the move line follows it unless set", () => {
    expect(read(workerBusyPercent, {})).toEqual(Either.right(90));
    expect(read(workerBusyPercent, { DISTRIBUTARY_WORKER_BUSY_PERCENT: "60" })).toEqual(Either.right(60));
    expect(read(workerMovePercent, { DISTRIBUTARY_WORKER_BUSY_PERCENT: "60" })).toEqual(
      Either.right(Option.none()),
    );
    expect(read(workerMovePercent, { DISTRIBUTARY_WORKER_MOVE_PERCENT: "75" })).toEqual(
      Either.right(Option.some(75)),
    );
  });

  it("refuses a value out of range, naming the variable", () => {
    const refused = read(workerMovePercent, { DISTRIBUTARY_WORKER_MOVE_PERCENT: "0" });
    expect(Either.isLeft(refused) && String(refused.left)).toContain(
      "DISTRIBUTARY_WORKER_MOVE_PERCENT must be a whole number from 1 to 100",
    );
    const busy = read(workerBusyPercent, { DISTRIBUTARY_WORKER_BUSY_PERCENT: "101" });
    expect(Either.isLeft(busy) && String(busy.left)).toContain(
      "DISTRIBUTARY_WORKER_BUSY_PERCENT must be a whole number from 0 to 100",
    );
  });
});
