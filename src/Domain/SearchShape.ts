/**
 * The sizes of the optimizer's search, shared by the optimizer (which splits scored turns by them) and the
 * judge (which, on a new install, scores at once what the optimizer needs to start).
 */

/** Turns of the feedback set each round's children are first scored on. */
export const MINIBATCH = 5

/** Validation turns the Pareto front is kept over: half the held-out size, at least 2. */
export const paretoSize = (sampleSize: number) => Math.max(2, Math.ceil(sampleSize / 2))

/** Scored turns a run needs: the held-out turns, the validation turns and one minibatch. */
export const turnsNeeded = (sampleSize: number) => sampleSize + paretoSize(sampleSize) + MINIBATCH
