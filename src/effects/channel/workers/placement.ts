/**
 * Where channels go among the forwarding workers, decided from plain figures (pure: the pool gives it the
 * workers as they are and carries out what it answers). A worker is a seat here: its index, whether its thread
 * has started, the share of a core it used over its last whole window, and how many channels it holds.
 */

export interface Seat {
  readonly index: number;
  readonly started: boolean;
  /** Its share of a core over its last whole window (null before the first). */
  readonly share: number | null;
  /** The channels placed on it. */
  readonly channels: number;
}

/** Of `among`, the seat with the least of `measure` (the first of equals). */
const least = <S extends Seat>(among: ReadonlyArray<S>, measure: (seat: S) => number): S | undefined =>
  among.reduce<S | undefined>(
    (best, seat) => (best === undefined || measure(seat) < measure(best) ? seat : best),
    undefined,
  );

/**
 * Where a new channel goes. With the busy line at 0: the seat with the fewest channels, started or not. Else
 * the started seat with the fewest channels among those under the line; with none, the first seat not started
 * yet; with every one started and busy, the least busy.
 */
export const placeChannel = <S extends Seat>(seats: ReadonlyArray<S>, busyLine: number): S | undefined => {
  const fewest = (seat: S) => seat.channels;
  if (busyLine === 0) return least(seats, fewest);
  const started = seats.filter((seat) => seat.started);
  return (
    least(
      started.filter((seat) => (seat.share ?? 0) < busyLine),
      fewest,
    ) ??
    seats.find((seat) => !seat.started) ??
    least(started, (seat) => seat.share ?? 0)
  );
};

interface Rebalance<S extends Seat> {
  readonly from: S;
  readonly to: S;
  /** The from seat's share of a core. */
  readonly share: number;
  /** How many of its running channels move: the last placed first. */
  readonly count: number;
}

/**
 * A seat over the move line hands channels to the least busy other started seat, if that one is clearly less
 * busy (a quarter of the line below it), else to the first seat not started yet: as many channels as would
 * even the two out, at least one. Nothing moves while the busy line is 0 (channels are spread by count), or
 * when the busy seat runs fewer than two channels (moving its one would only move the load).
 */
export const planRebalance = <S extends Seat>(
  seats: ReadonlyArray<S>,
  lines: { readonly busy: number; readonly move: number },
  running: (seat: S) => number,
): Rebalance<S> | null => {
  if (lines.busy === 0) return null;
  const started = seats.filter((seat) => seat.started);
  const busy = least(
    started.filter((seat) => (seat.share ?? 0) >= lines.move),
    (seat) => -(seat.share ?? 0),
  );
  if (busy === undefined) return null;
  const share = busy.share ?? 0;
  const calmest = least(
    started.filter((seat) => seat !== busy && seat.share !== null),
    (seat) => seat.share ?? 0,
  );
  const calm = calmest !== undefined && (calmest.share ?? 0) <= share - lines.move / 4;
  const to = calm ? calmest : seats.find((seat) => !seat.started);
  if (to === undefined) return null;
  const channels = running(busy);
  if (channels < 2) return null;
  const toShare = to.started ? (to.share ?? 0) : 0;
  const count = Math.max(1, Math.round((channels * (share - toShare)) / (2 * share)));
  return { from: busy, to, share, count };
};
