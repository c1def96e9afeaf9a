import { Duration, Effect, Schedule } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { FileError, LockBusy } from "../Domain/Errors.js"
import { describeFsError } from "./Files.js"

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as { code?: string }).code === "EPERM"
  }
}

/** The pid in the lock file; "gone" when there is no file, undefined when it holds no pid. */
const holder = (file: string): number | "gone" | undefined => {
  try {
    const pid = Number(fs.readFileSync(file, "utf8").trim())
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch (error) {
    return (error as { code?: string }).code === "ENOENT" ? "gone" : undefined
  }
}

/**
 * Creates the lock file with our pid already in it (a hard link of a file written first): created empty and
 * written after, a second process could read it empty in between, take it for a dead holder's, and take it
 * over while we hold it (seen under load: two first runs migrating at once). False when it exists.
 */
const create = (file: string, mine: string): boolean => {
  fs.writeFileSync(mine, String(process.pid), { mode: 0o600 })
  try {
    try {
      fs.linkSync(mine, file)
    } catch (error) {
      // A file system without hard links: create it exclusively and write (the narrow window above).
      if (!["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"].includes((error as { code?: string }).code ?? "")) throw error
      const fd = fs.openSync(file, "wx", 0o600)
      fs.writeSync(fd, String(process.pid))
      fs.closeSync(fd)
    }
    return true
  } catch (error) {
    if ((error as { code?: string }).code !== "EEXIST") throw error
    return false
  } finally {
    fs.rmSync(mine, { force: true })
  }
}

/** One attempt: create the lock file with our pid; take it over when its holder is gone. */
const tryAcquire = (file: string) =>
  Effect.try({
    try: () => {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
      const mine = `${file}.${process.pid}`
      for (let attempt = 0; attempt < 3; attempt++) {
        if (create(file, mine)) return undefined
        const pid = holder(file)
        // Released between our try and our look: try again at once, never take over a lock just made.
        if (pid === "gone") continue
        if (pid !== undefined && pid !== process.pid && alive(pid)) return pid
        // A lock left by a killed process (or one holding no pid): take it over. The rename is atomic, so two
        // processes taking over at once cannot both win; the loser sees the winner's pid on the next try.
        fs.writeFileSync(mine, String(process.pid), { mode: 0o600 })
        fs.renameSync(mine, file)
        const now = holder(file)
        return now === process.pid ? undefined : typeof now === "number" ? now : -1
      }
      return -1
    },
    catch: (cause) => new FileError({ path: file, operation: "take the run lock", detail: describeFsError(cause) })
  }).pipe(Effect.flatMap((pid) => (pid === undefined ? Effect.void : Effect.fail(new LockBusy({ path: file, holderPid: pid })))))

const release = (file: string) =>
  Effect.sync(() => {
    if (holder(file) === process.pid) fs.rmSync(file, { force: true })
  })

/**
 * One run at a time across processes: the lock is a file holding the holder's pid. A second run waits up to
 * `wait` for it, then fails with LockBusy; a lock whose process is gone is taken over. Released when the
 * scope closes, interruption included.
 */
export const withRunLock = <A, E, R>(file: string, effect: Effect.Effect<A, E, R>, wait: Duration.DurationInput = "10 seconds") =>
  Effect.acquireUseRelease(
    tryAcquire(file).pipe(
      Effect.retry({
        schedule: Schedule.spaced("250 millis").pipe(Schedule.upTo(wait)),
        while: (e) => e._tag === "LockBusy"
      })
    ),
    () => effect,
    () => release(file)
  )

export const lockPath = (dbPath: string) => path.join(path.dirname(dbPath), "autotune.lock")
