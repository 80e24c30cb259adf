/**
 * What a declarative document makes of the stored configuration, for config-code.ts's plan: each channel it
 * declares built and checked as the API would build and check it (a new schedule's outputs held outside its
 * windows, as a saved schedule leaves them), and each notifier made with what the store keeps where the
 * document masks or leaves out a secret. What is wrong is refused by the document's own field path
 * (`channels.<id>.outputs.<key>.…`), its message showing references, never values.
 */
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Schema from "effect/Schema";
import type { FieldIssue } from "../../domain/base/errors.ts";
import { sameValue } from "../../domain/base/same.ts";
import { toFieldIssues } from "../../domain/base/validate.ts";
import { type ChannelConfig, ChannelConfig as ChannelConfigSchema } from "../../domain/channel/channel.ts";
import { checkChannel } from "../../domain/channel/channel-checks.ts";
import { buildChannel } from "../../domain/channel/rules.ts";
import { channelImportOf, type DeclarativeDocument } from "../../domain/control/config-code.ts";
import { MASK, type NotifierRecord, notifierProblems } from "../../domain/events/notifiers.ts";
import { holdOutputs, windowsOnAir } from "../../domain/schedule/schedule-outputs.ts";
import { checkChannelSchedule } from "../../domain/schedule/schedule-rules.ts";
import type { ChannelProgress } from "../config/schedule-progress.ts";
import { localAddresses } from "../runtime/sockets/own-ports.ts";

type DeclaredChannels = NonNullable<DeclarativeDocument["channels"]>;
type Declared = DeclaredChannels[keyof DeclaredChannels];

/** A message as the document may show it: each secret's value replaced by its reference. */
type Unresolve = (message: string) => string;

/** A field of a built channel by the document's path: its outputs by their keys there, not by index. */
const documentField = (id: string, declared: Declared, field: string) => {
  const keys = Object.keys(declared.outputs ?? {});
  return `channels.${id}.${field.replace(/^outputs\[(\d+)\]/, (_, i) => `outputs.${keys[Number(i)]}`)}`;
};

/** A channel the document declares, built on the stored one of its id: the channel, or what is wrong. */
const buildDeclared = (
  id: string,
  declared: Declared,
  existing: ChannelConfig | undefined,
  now: number,
  unresolve: Unresolve,
): Either.Either<ChannelConfig, ReadonlyArray<FieldIssue>> => {
  const refusal = (issues: ReadonlyArray<FieldIssue>) =>
    Either.left(
      issues.map((issue) => ({
        field: documentField(id, declared, issue.field),
        message: unresolve(issue.message),
      })),
    );
  const made = buildChannel(
    channelImportOf(id, declared),
    {
      desired: declared.desired ?? existing?.desired ?? "stopped",
      created_at: existing?.created_at ?? new Date(now).toISOString(),
    },
    existing,
  );
  if (Either.isLeft(made))
    return refusal(made.left.errors ?? [{ field: "(channel)", message: made.left.message }]);
  const whole = Schema.decodeUnknownEither(ChannelConfigSchema, { errors: "all" })(made.right);
  if (Either.isLeft(whole)) return refusal(toFieldIssues(whole.left));
  return Either.right(made.right);
};

/**
 * The channels after the document: those it declares (`next`), checked against each other and against what
 * stays (`staying`: the stored ones it does not name, none when it prunes).
 */
export const declaredChannels = (input: {
  readonly document: DeclarativeDocument;
  readonly current: ReadonlyArray<ChannelConfig>;
  readonly byId: ReadonlyMap<string, ChannelConfig>;
  readonly prune: boolean;
  readonly now: number;
  readonly unresolve: Unresolve;
  /** The schedule's progress stored for a channel; null when none is. */
  readonly storedSchedule: (channel: string) => Effect.Effect<ChannelProgress | null>;
}) =>
  Effect.gen(function* () {
    const { byId, now, unresolve } = input;
    const built: ChannelConfig[] = [];
    const refused: FieldIssue[] = [];
    for (const [id, declared] of Object.entries(input.document.channels ?? {})) {
      const made = buildDeclared(id, declared, byId.get(id), now, unresolve);
      if (Either.isLeft(made)) refused.push(...made.left);
      else built.push(made.right);
    }
    const declaredIds = new Set(built.map((channel) => channel.id));
    const staying = input.prune ? [] : input.current.filter((channel) => !declaredIds.has(channel.id));
    const next: ChannelConfig[] = [];
    for (const channel of built) {
      const others = [...staying, ...built.filter((other) => other.id !== channel.id)];
      const wrong = checkChannel(channel, others, localAddresses()) ?? checkChannelSchedule(channel, now);
      if (wrong !== undefined) {
        for (const issue of wrong.errors ?? [{ field: "(channel)", message: wrong.message }])
          refused.push({
            field: `channels.${channel.id}.${issue.field}`,
            message: unresolve(issue.message),
          });
        continue;
      }
      const existing = byId.get(channel.id);
      // The outputs a new schedule names are off outside its windows, as a saved schedule leaves them.
      if (channel.schedule != null && !sameValue(existing?.schedule, channel.schedule)) {
        const stored = yield* input.storedSchedule(channel.id);
        next.push(
          holdOutputs(
            channel,
            stored === null ? new Set() : windowsOnAir(channel, stored.occurrences.values(), now),
          ),
        );
      } else next.push(channel);
    }
    return { staying, next, refused } as const;
  });

/** The notifiers the document declares, each on the stored one of its id, and what is wrong with them. */
export const declaredNotifiers = (input: {
  readonly document: DeclarativeDocument;
  readonly stored: ReadonlyArray<NotifierRecord>;
  readonly now: number;
  readonly unresolve: Unresolve;
}) => {
  const records: NotifierRecord[] = [];
  const refused: FieldIssue[] = [];
  for (const [id, declared] of Object.entries(input.document.notifiers ?? {})) {
    const before = input.stored.find((record) => record.id === id);
    // A secret left out or shown masked keeps the stored one.
    const keep = (given: string | undefined, stored: string | null | undefined) =>
      given === undefined || given.includes(MASK) ? (stored ?? null) : given;
    const record: NotifierRecord = {
      id,
      name: declared.name,
      kind: declared.kind,
      url: keep(declared.url, before?.url),
      secret: keep(declared.secret, before?.secret),
      routing_key: keep(declared.routing_key, before?.routing_key),
      events: declared.events,
      channels: declared.channels ?? "*",
      enabled: declared.enabled ?? true,
      disabled_reason: declared.enabled === true ? null : (before?.disabled_reason ?? null),
      created_at: before?.created_at ?? new Date(input.now).toISOString(),
    };
    for (const issue of notifierProblems(record))
      refused.push({ field: `notifiers.${id}.${issue.field}`, message: input.unresolve(issue.message) });
    records.push(record);
  }
  return { records, refused } as const;
};
