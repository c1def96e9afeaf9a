/** Seeded randomness for simulations and resampling: the same seed gives the same figures on every machine. */
export type Rng = () => number

/** mulberry32: small, fast, seedable. */
export const rng =
  (seed: number): Rng =>
  () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
