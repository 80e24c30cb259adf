/**
 * The control plane's rules as pure functions over the stored configuration: how a request body becomes the
 * stored channel or output, and what changed between two versions. What a new or changed channel's inputs must
 * satisfy is in channel-checks.ts; the rules against outputs that feed an input of this host are in loops.ts.
 * The commands (effects/control/) take the lock, call these, persist, then apply at runtime.
 */
import * as Either from "effect/Either";
import { ControlError, type FieldIssue } from "../base/errors.ts";
import { type ChannelId, newChannelId, newOutputId, OutputId } from "../base/ids.ts";
import { sameValue } from "../base/same.ts";
import { invalid } from "../base/validate.ts";
import { maskUrl } from "../url/url.ts";
import type {
  ChannelBody,
  ChannelConfig,
  ChannelImport,
  ChannelPatch,
  OriginalChannel,
  OriginalOutput,
  OutputBody,
  OutputConfig,
} from "./channel.ts";
import type { OutputPolicy } from "./output-policy-schema.ts";
import { type SlateBody, type SlateConfig, slateFromBody } from "./slate.ts";

// The commands and the import take these rules from here too (channel-checks.ts: the input checks).

/** A masked input URL (as GET shows it) sent back means the stored one; any other masked URL is refused. */
const unmaskInput = (
  url: string | null | undefined,
  stored: string | null | undefined,
  field: string,
): Either.Either<string | null, FieldIssue> => {
  if (url == null) return Either.right(null);
  return unmask(url, stored == null ? undefined : { url: stored }, field);
};

const duplicateOutputIds = (outputs: ReadonlyArray<{ readonly id: string }>): ControlError | undefined => {
  const seen = new Set<string>();
  for (const [index, output] of outputs.entries()) {
    if (seen.has(output.id)) {
      const message = `output id '${output.id}' is used twice`;
      return new ControlError({
        reason: "conflict",
        message: `outputs[${index}].id: ${message}`,
        errors: [{ field: `outputs[${index}].id`, message }],
      });
    }
    seen.add(output.id);
  }
  return undefined;
};

const generatedName = (taken: ReadonlyArray<{ readonly name: string }>) => {
  const names = new Set(taken.map((output) => output.name));
  let n = taken.length + 1;
  while (names.has(`Output ${n}`)) n += 1;
  return `Output ${n}`;
};

/**
 * A masked URL (`****` where a key or passphrase was) is accepted only where it stands for the URL this server
 * already keeps: sent back unchanged, it means "keep the stored one".
 */
export const unmask = (
  url: string,
  existing: { readonly url: string } | undefined,
  field: string,
): Either.Either<string, FieldIssue> => {
  if (!url.includes("****")) return Either.right(url);
  if (existing !== undefined && maskUrl(existing.url) === url) return Either.right(existing.url);
  return Either.left({
    field,
    message: "is masked (****); give the full URL, or import onto the server it was exported from",
  });
};

/** The stored output a request body describes; `previous` when it replaces one. */
export const buildOutput = (
  body: OutputBody,
  siblings: ReadonlyArray<OutputConfig>,
  previous?: OutputConfig,
): OutputConfig => ({
  id: previous?.id ?? body.id ?? newOutputId(),
  name:
    body.name !== undefined && body.name.trim() !== ""
      ? body.name
      : (previous?.name ?? generatedName(siblings)),
  protocol: body.protocol,
  url: body.url,
  enabled: body.enabled ?? previous?.enabled ?? true,
  ...policyOf(body.policy, previous?.policy),
});

/** The policy a body gives (null: none), else the stored one; none is stored as no field. */
export const policyOf = (
  given: OutputPolicy | null | undefined,
  stored: OutputPolicy | null | undefined,
): { readonly policy?: OutputPolicy } => {
  const policy = given === undefined ? stored : given;
  return policy == null ? {} : { policy };
};

/** The tags field a channel keeps: none is stored as absent, as a channel from before tags is. */
const tagsOf = (tags: ReadonlyArray<string> | undefined) =>
  tags === undefined || tags.length === 0 ? {} : { tags };

/** The stored channel a request body (or an imported channel) describes. */
export const buildChannel = (
  body: ChannelBody,
  base: { readonly desired: "running" | "stopped"; readonly created_at: string },
  existing?: ChannelConfig,
): Either.Either<ChannelConfig, ControlError> => {
  const outputs: OutputConfig[] = [];
  const issues: FieldIssue[] = [];
  for (const [index, outputBody] of (body.outputs ?? []).entries()) {
    const previous = existing?.outputs.find((output) => output.id === outputBody.id);
    const url = unmask(outputBody.url, previous, `outputs[${index}].url`);
    if (Either.isLeft(url)) issues.push(url.left);
    else outputs.push(buildOutput({ ...outputBody, url: url.right }, outputs));
  }
  const inputUrl = unmaskInput(body.input_url, existing?.input_url, "input_url");
  const backupInputUrl = unmaskInput(body.backup_input_url, existing?.backup_input_url, "backup_input_url");
  if (Either.isLeft(inputUrl)) issues.push(inputUrl.left);
  if (Either.isLeft(backupInputUrl)) issues.push(backupInputUrl.left);
  if (issues.length > 0 || Either.isLeft(inputUrl) || Either.isLeft(backupInputUrl))
    return Either.left(invalid(issues));
  const duplicate = duplicateOutputIds(outputs);
  if (duplicate !== undefined) return Either.left(duplicate);
  const backupIp = body.backup_rtp_ip ?? null;
  const backupPort = body.backup_rtp_port ?? null;
  return Either.right({
    id: body.id ?? newChannelId(),
    name: body.name,
    ...tagsOf(body.tags),
    rtp_ip: body.rtp_ip,
    rtp_port: body.rtp_port,
    // A backup port alone means the same address as the primary, as MediaLive's two pipelines often use.
    backup_rtp_ip: backupIp ?? (backupPort === null ? null : body.rtp_ip),
    backup_rtp_port: backupPort,
    ...(body.rtp_allowed_sources == null ? {} : { rtp_allowed_sources: body.rtp_allowed_sources }),
    ...(body.backup_rtp_allowed_sources == null
      ? {}
      : { backup_rtp_allowed_sources: body.backup_rtp_allowed_sources }),
    ...(inputUrl.right === null ? {} : { input_url: inputUrl.right }),
    ...(backupInputUrl.right === null ? {} : { backup_input_url: backupInputUrl.right }),
    redundancy: body.redundancy ?? {},
    ...(body.expect_cues_within_s == null ? {} : { expect_cues_within_s: body.expect_cues_within_s }),
    ...(body.nodes == null || body.nodes.length === 0 ? {} : { nodes: body.nodes }),
    ...(body.medialive == null ? {} : { medialive: body.medialive }),
    ...slateOf(body.slate, existing?.slate),
    ...(body.schedule == null ? {} : { schedule: body.schedule }),
    desired: base.desired,
    created_at: base.created_at,
    outputs,
  });
};

/** A channel with a PATCH applied: given fields replace, the rest stays; null removes an input URL. */
export const patchChannel = (channel: ChannelConfig, changes: ChannelPatch): ChannelConfig => {
  const inputUrl = (given: string | null | undefined, stored: string | null | undefined) =>
    given === undefined ? (stored ?? null) : given?.includes("****") ? (stored ?? null) : given;
  const rtpIp = changes.rtp_ip ?? channel.rtp_ip;
  // Clearing either half of the backup removes it; a backup port alone shares the primary's address.
  const dropBackup = changes.backup_rtp_ip === null || changes.backup_rtp_port === null;
  const backupPort = dropBackup ? null : (changes.backup_rtp_port ?? channel.backup_rtp_port);
  const backupIp = dropBackup
    ? null
    : (changes.backup_rtp_ip ?? channel.backup_rtp_ip ?? (backupPort === null ? null : rtpIp));
  const { tags: _tags, ...untagged } = channel;
  const patched: ChannelConfig = {
    ...untagged,
    name: changes.name ?? channel.name,
    ...tagsOf(changes.tags ?? channel.tags),
    rtp_ip: rtpIp,
    rtp_port: changes.rtp_port ?? channel.rtp_port,
    backup_rtp_ip: backupIp,
    backup_rtp_port: backupPort,
    rtp_allowed_sources:
      changes.rtp_allowed_sources === undefined ? channel.rtp_allowed_sources : changes.rtp_allowed_sources,
    // Removing the backup removes its allow-list.
    backup_rtp_allowed_sources:
      changes.backup_rtp_allowed_sources !== undefined
        ? changes.backup_rtp_allowed_sources
        : backupPort === null
          ? null
          : channel.backup_rtp_allowed_sources,
    input_url: inputUrl(changes.input_url, channel.input_url),
    backup_input_url: inputUrl(changes.backup_input_url, channel.backup_input_url),
    redundancy: { ...channel.redundancy, ...changes.redundancy },
    expect_cues_within_s:
      changes.expect_cues_within_s === undefined
        ? channel.expect_cues_within_s
        : changes.expect_cues_within_s,
    nodes: changes.nodes ?? channel.nodes,
    // null unlinks the MediaLive channel.
    medialive: changes.medialive === undefined ? channel.medialive : changes.medialive,
    // null removes the schedule.
    schedule: changes.schedule === undefined ? channel.schedule : changes.schedule,
  };
  const slate = slateFromBody(changes.slate, channel.slate);
  if (slate === null) {
    const { slate: _removed, ...rest } = patched;
    return rest;
  }
  return { ...patched, slate };
};

/** The slate field a body leads to: absent stays absent, so a channel without one is stored as before. */
const slateOf = (
  body: SlateBody | SlateConfig | null | undefined,
  stored: SlateConfig | null | undefined,
) => {
  const slate = slateFromBody(body, stored);
  return slate === null ? {} : { slate };
};

/** The running channel must apply this change to its inputs or its slate (live: its outputs go on). */
export const inputChanged = (before: ChannelConfig, after: ChannelConfig): boolean => {
  return (
    before.rtp_ip !== after.rtp_ip ||
    before.rtp_port !== after.rtp_port ||
    before.backup_rtp_ip !== after.backup_rtp_ip ||
    before.backup_rtp_port !== after.backup_rtp_port ||
    (before.input_url ?? null) !== (after.input_url ?? null) ||
    (before.backup_input_url ?? null) !== (after.backup_input_url ?? null) ||
    !sameValue(before.rtp_allowed_sources, after.rtp_allowed_sources) ||
    !sameValue(before.backup_rtp_allowed_sources, after.backup_rtp_allowed_sources) ||
    !sameValue(before.redundancy, after.redundancy) ||
    !sameValue(before.slate, after.slate)
  );
};

/** The channel with `output` added, or put in place of the one with its id. */
export const withOutput = (channel: ChannelConfig, output: OutputConfig): ChannelConfig => {
  const exists = channel.outputs.some((candidate) => candidate.id === output.id);
  return {
    ...channel,
    outputs: exists
      ? channel.outputs.map((candidate) => (candidate.id === output.id ? output : candidate))
      : [...channel.outputs, output],
  };
};

/** One channel of the original project's `channels.json` in our import format: its key is the channel id. */
export const fromOriginal = (
  id: ChannelId,
  entry: OriginalChannel,
  outputs: ReadonlyArray<OriginalOutput>,
): ChannelImport => ({
  id,
  name: entry.config.name,
  rtp_ip: entry.config.rtp_ip,
  rtp_port: entry.config.rtp_port,
  backup_rtp_ip: entry.config.backup_rtp_ip ?? null,
  backup_rtp_port: entry.config.backup_rtp_port ?? null,
  outputs: outputs.map((output) => ({
    ...(output.id === undefined ? {} : { id: OutputId.make(output.id) }),
    name: output.name ?? "",
    protocol: output.protocol,
    url: output.url,
  })),
  ...(entry.created_at === undefined ? {} : { created_at: entry.created_at }),
});

/** The same error with every field name under `prefix`, e.g. `channels[2].`. */
export const prefixed = (error: ControlError, prefix: string): ControlError =>
  new ControlError({
    reason: error.reason,
    message:
      error.errors === undefined
        ? error.message
        : error.errors.map((i) => `${prefix}${i.field}: ${i.message}`).join("; "),
    errors: error.errors?.map((issue) => ({ field: `${prefix}${issue.field}`, message: issue.message })),
  });
