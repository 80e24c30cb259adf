/**
 * The event bus: one `PubSub` of typed channel events (domain/events/events.ts) that logs, the WebSocket, the pages'
 * event log and the metrics counters subscribe to, and bounded rings of recent events behind
 * `GET /api/events`: one per channel, and one for the events of no channel (nodes, sign-ins, node-wide changes),
 * so that a flood of one kind (refused sign-ins from anyone, one channel's reconnects) pushes out only its own
 * kind's history, never a channel's. Readers see the rings merged in `seq` order.
 * Sources hand events over synchronously (`emit`), from socket callbacks and tick fibers
 * alike: the bus numbers and dates them and adds the channel's and output's names, and a slow subscriber loses
 * its oldest unread events rather than slowing a source. A subscriber's failure is its own: nothing it does reaches the source.
 */
import * as Effect from "effect/Effect";
import * as PubSub from "effect/PubSub";
import * as Stream from "effect/Stream";
import type { ChannelEvent, ChannelEventType, NewEvent } from "../../domain/events/events.ts";
import { CurrentActor } from "../config/actor.ts";

export interface EventFilter {
  readonly channel?: string | undefined;
  readonly types?: ReadonlyArray<ChannelEventType> | undefined;
  /** Newest `limit` events (default 100). */
  readonly limit?: number | undefined;
  /** Only events with a greater `seq`. */
  readonly after?: number | undefined;
  /** Only the events the caller may see (its channels'), counted before the limit. */
  readonly visible?: ((event: ChannelEvent) => boolean) | undefined;
}

/** The names of a channel and an output (either may be null) as they are now, for the events that name them. */
type EventNamer = (
  channel: string | null,
  output: string | null,
) => { readonly channel_name: string | null; readonly output_name: string | null };

const noNames: EventNamer = () => ({ channel_name: null, output_name: null });

/** How many recent events `recent` can return; each ring (a channel's, the node's) keeps this many. */
export const EVENT_RING_SIZE = 2000;
/** Channels whose events are kept: past this, the ring written to longest ago is forgotten. */
const MAX_CHANNEL_RINGS = 4096;
/** Events a subscriber may have unread before its oldest are dropped. */
const SUBSCRIBER_BACKLOG = 4096;

export class EventBus extends Effect.Service<EventBus>()("distributary/EventBus", {
  scoped: Effect.gen(function* () {
    const hub = yield* Effect.acquireRelease(
      PubSub.sliding<ChannelEvent>(SUBSCRIBER_BACKLOG),
      PubSub.shutdown,
    );
    /** The events of no channel, then each channel's: oldest first, each at most EVENT_RING_SIZE. */
    const nodeRing: ChannelEvent[] = [];
    const channelRings = new Map<string, ChannelEvent[]>();
    const keep = (event: ChannelEvent) => {
      let ring = nodeRing;
      if (event.channel !== null) {
        ring = channelRings.get(event.channel) ?? [];
        // A Map keeps insertion order: the ring written to is moved last, so the first is the stalest.
        channelRings.delete(event.channel);
        channelRings.set(event.channel, ring);
        if (channelRings.size > MAX_CHANNEL_RINGS) {
          const stalest = channelRings.keys().next().value;
          if (stalest !== undefined) channelRings.delete(stalest);
        }
      }
      ring.push(event);
      if (ring.length > EVENT_RING_SIZE) ring.splice(0, ring.length - EVENT_RING_SIZE);
    };
    let seq = 0;
    let names = noNames;

    const emit = (event: NewEvent): ChannelEvent => {
      seq += 1;
      const channel = event.channel ?? null;
      const output = event.output ?? null;
      const full = {
        ...event,
        seq,
        at: event.at ?? new Date().toISOString(),
        channel,
        output,
        ...names(channel, output),
      } as ChannelEvent;
      keep(full);
      hub.unsafeOffer(full);
      return full;
    };

    const recent = (filter: EventFilter = {}): ReadonlyArray<ChannelEvent> => {
      const limit = filter.limit ?? 100;
      const rings =
        filter.channel !== undefined
          ? [channelRings.get(filter.channel) ?? []]
          : [nodeRing, ...channelRings.values()];
      // Each ring's newest `limit` matches, then the newest `limit` of them all in `seq` order.
      const matches: ChannelEvent[] = [];
      for (const ring of rings) {
        let found = 0;
        for (let i = ring.length - 1; i >= 0 && found < limit; i--) {
          const event = ring[i] as ChannelEvent;
          if (filter.after !== undefined && event.seq <= filter.after) break;
          if (filter.types !== undefined && !filter.types.includes(event.type)) continue;
          if (filter.visible !== undefined && !filter.visible(event)) continue;
          matches.push(event);
          found += 1;
        }
      }
      if (rings.length > 1) matches.sort((a, b) => b.seq - a.seq);
      return matches.slice(0, limit).reverse();
    };

    return {
      emit,
      /** Who knows the configuration names the channels and outputs of the events from now on. */
      nameWith: (namer: EventNamer): void => {
        names = namer;
      },
      publish: (event: NewEvent) => Effect.sync(() => emit(event)),
      /** Every event from the moment the stream is run. */
      stream: Stream.fromPubSub(hub),
      /** A subscription in the current scope: events from now on, read at the subscriber's pace. */
      subscribe: PubSub.subscribe(hub),
      /** Oldest first. */
      recent,
      /** The `seq` of the newest event, 0 before any. */
      lastSeq: () => seq,
    } as const;
  }),
}) {}

/** The audit event of a change made through the API, in the name of the current request's caller (and how). */
export const audit = (
  bus: EventBus,
  action: string,
  detail: string,
  ids: { readonly channel?: string; readonly output?: string } = {},
) =>
  Effect.flatMap(CurrentActor, (actor) =>
    bus.publish({
      type: "api_change",
      actor: actor.name,
      ...(actor.via === undefined ? {} : { actor_via: actor.via }),
      ...(actor.subject === undefined ? {} : { actor_subject: actor.subject }),
      ...(actor.issuer === undefined ? {} : { actor_issuer: actor.issuer }),
      action,
      detail,
      channel: ids.channel ?? null,
      output: ids.output ?? null,
    }),
  );
