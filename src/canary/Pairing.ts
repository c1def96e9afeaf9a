/**
 * How canary turns meet active turns: the health gates' names, and the pairing of each canary turn with the
 * most recent active turns of the last six hours, fixed once made. Pure.
 */
import { type Gate, PAIR_WINDOW_MS, type Sample } from "./Wealth.js"

/** Reactions are sparse: a reacted canary turn is compared with reacted active turns of the last day. */
export const REACTION_WINDOW_MS = 24 * 3_600_000

/** One bet's contribution to each health gate's log-wealth, made once when its sample or pair arrives. */
export interface HealthBet {
  readonly at: number
  readonly gate: Gate
  readonly terms: ReadonlyArray<number>
  readonly error: number
  readonly toolFailure: number | null
}

/**
 * Active turns waiting to be paired and canary turns waiting for partners. A canary turn takes the
 * k = max(1, min(9, floor(active seen / canary seen))) most recent unused active turns of the last six hours,
 * or waits for the next ones when there are none. A pair, once made, never changes.
 */
export class Pairing {
  private readonly pool: Array<Sample> = []
  private head = 0
  private readonly pending: Array<{ readonly sample: Sample; readonly k: number }> = []
  /** Active and canary turns since the share last changed: k follows the split being served now. */
  private seen = 0
  private canaries = 0
  private share: number | undefined

  constructor(private readonly onPair: (canary: Sample, block: ReadonlyArray<Sample>) => void) {}

  private atShare(sample: Sample) {
    if (sample.share === this.share) return
    this.share = sample.share
    this.seen = this.canaries = 0
  }

  addActive(sample: Sample) {
    this.atShare(sample)
    this.seen++
    this.pool.push(sample)
    this.flush(sample.at)
  }

  addCanary(sample: Sample) {
    this.atShare(sample)
    this.canaries++
    const k = Math.max(1, Math.min(9, Math.floor(this.seen / this.canaries)))
    this.prune(sample.at)
    if (this.pool.length - this.head > 0) this.take(sample, k)
    else this.pending.push({ sample, k })
  }

  private prune(now: number) {
    while (this.head < this.pool.length && this.pool[this.head]!.at < now - PAIR_WINDOW_MS) this.head++
    if (this.head > 1024) {
      this.pool.splice(0, this.head)
      this.head = 0
    }
  }

  private flush(now: number) {
    while (this.pending.length > 0) {
      const next = this.pending[0]!
      if (next.sample.at < now - PAIR_WINDOW_MS) {
        this.pending.shift()
        continue
      }
      if (this.pool.length - this.head < next.k) return
      this.pending.shift()
      this.take(next.sample, next.k)
    }
  }

  private take(sample: Sample, k: number) {
    const n = Math.min(k, this.pool.length - this.head)
    this.onPair(sample, this.pool.splice(this.pool.length - n, n))
  }
}
