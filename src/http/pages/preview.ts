/**
 * What an import would do, shown before it is applied: the channels it would create, change and delete,
 * judged against the current configuration — or why it cannot be imported at all. The import replaces the
 * whole configuration, so every channel it does not name would be deleted.
 */
import { Effect, Either } from "effect";
import type { ImportPreview } from "../../../views/settings.ts";
import { ConfigImport, OriginalConfigFile } from "../../domain/channel.ts";
import { fromOriginal } from "../../domain/rules.ts";
import { decodeBody } from "../../domain/validate.ts";
import type { ChannelView } from "../../domain/views.ts";

export const previewImport = (text: string, current: ReadonlyArray<ChannelView>): ImportPreview => {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { create: [], change: [], remove: [], problems: [`not valid JSON: ${(error as Error).message}`] };
  }
  const ours = typeof json === "object" && json !== null && "version" in json;
  const decoded = Effect.runSync(
    Effect.either(
      ours
        ? decodeBody(ConfigImport)(json)
        : decodeBody(OriginalConfigFile)(json).pipe(
            Effect.map(fromOriginal),
            Effect.flatMap(decodeBody(ConfigImport)),
          ),
    ),
  );
  if (Either.isLeft(decoded)) {
    const problems = decoded.left.errors?.map((issue) => `${issue.field}: ${issue.message}`) ?? [
      decoded.left.message,
    ];
    return { create: [], change: [], remove: [], problems };
  }
  const incoming = decoded.right.channels;
  const byId = new Map(current.map((channel) => [channel.id, channel]));
  const label = (id: string | undefined, name: string) => (id === undefined ? name : `${name} (${id})`);
  const create: string[] = [];
  const change: string[] = [];
  for (const channel of incoming) {
    const existing = channel.id === undefined ? undefined : byId.get(channel.id);
    if (existing === undefined) create.push(label(channel.id, channel.name));
    else if (
      existing.name !== channel.name ||
      existing.rtp_ip !== channel.rtp_ip ||
      existing.rtp_port !== channel.rtp_port ||
      (existing.backup_rtp_port ?? null) !== (channel.backup_rtp_port ?? null) ||
      existing.outputs.length !== (channel.outputs ?? []).length ||
      existing.outputs.some((output, index) => (channel.outputs?.[index]?.url ?? "") !== output.url)
    )
      change.push(label(channel.id, channel.name));
  }
  const kept = new Set(incoming.map((channel) => channel.id));
  const remove = current
    .filter((channel) => !kept.has(channel.id as never))
    .map((channel) => label(channel.id, channel.name));
  return { create, change, remove, problems: [] };
};
