/**
 * A canary's share of requests: a fraction in (0, 1] everywhere in autotune. DotClaw's pack file says it in
 * percent (`metadata.canaryPercent`), and so do the deployments autotune records and the numbers people read;
 * the conversions between the two are here and nowhere else.
 */

/** A share of requests, as a fraction: 0.1 is one request in ten. */
export type Share = number

/** The share in DotClaw's percent, to two decimals (what a pack file carries and a person reads). */
export const toPercent = (share: Share): number => Math.round(share * 10_000) / 100

export const fromPercent = (percent: number): Share => percent / 100

/** "12.5%" */
export const formatShare = (share: Share): string => `${toPercent(share)}%`

/** The share a pack's metadata says it serves, if it says one. */
export const packShare = (metadata: Readonly<Record<string, unknown>> | undefined): Share | undefined => {
  const percent = metadata?.["canaryPercent"]
  return typeof percent === "number" && Number.isFinite(percent) ? fromPercent(percent) : undefined
}

/** The share a canary pack serves: its own when its file says one, else the configured one. */
export const canaryShare = (metadata: Readonly<Record<string, unknown>> | undefined, fallback: Share): Share =>
  packShare(metadata) ?? fallback

/** Whether a pack's file says it serves `share` (to DotClaw's two decimals). */
export const servesShare = (metadata: Readonly<Record<string, unknown>> | undefined, share: Share): boolean =>
  metadata?.["canaryPercent"] === toPercent(share)

/** A pack's metadata saying it serves `share` (as DotClaw reads it). */
export const withShare = (
  metadata: Readonly<Record<string, unknown>> | undefined,
  share: Share
): Record<string, unknown> => ({
  ...metadata,
  canaryPercent: toPercent(share)
})

/** A pack's metadata without a share: an active pack serves everything else. */
export const withoutShare = (metadata: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> => {
  const { canaryPercent: _dropped, ...rest } = metadata ?? {}
  return rest
}

/** A history as people read it: each change's share in percent. */
export const inPercent = <C extends ShareChange>(
  changes: ReadonlyArray<C>
): Array<Omit<C, "share"> & { readonly percent: number }> =>
  changes.map(({ share, ...rest }) => ({ ...rest, percent: toPercent(share) }))

/** One share of a canary from a time on (ms epoch); a canary's history starts with the share it went out at. */
export interface ShareChange {
  readonly at: number
  readonly share: Share
}

/** The canary's share when a turn at `at` was served (before its first change: the share it went out at). */
export const shareAt = (history: ReadonlyArray<ShareChange>, at: number): Share | undefined => {
  let share = history[0]?.share
  for (const change of history) if (change.at <= at) share = change.share
  return share
}

/**
 * A canary's history of shares from the deployments on record (store/Deployments.ts), or, for a canary placed
 * by hand, the one share its file (else the configuration) says.
 */
export const shareHistory = (
  recorded: ReadonlyArray<ShareChange>,
  metadata: Readonly<Record<string, unknown>> | undefined,
  fallback: Share
): ReadonlyArray<ShareChange> => (recorded.length > 0 ? recorded : [{ at: 0, share: canaryShare(metadata, fallback) }])
