/**
 * One run at a time: a lock file beside the store, held for a run and taken over when its holder is gone.
 */
import { Duration, Effect, Schedule } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { FileError, LockBusy } from "../Domain/Errors.js"
import { describeFsError } from "./Files.js"
import { makeDirs, MODES } from "./FileModes.js"

/**
 * Who holds a lock, as written in its file: the pid, and on Linux the process's start time (clock ticks since
 * boot, /proc/<pid>/stat) and the boot id. A pid alone can be fooled: after a reboot, or once pids wrap, the pid
 * of a run killed with SIGKILL names some other live process, and the lock would be held by it for good. The
 * three together name one process of one boot; a lock whose holder is not that process is taken over.
 */
export interface Holder {
  readonly pid: number
  readonly start?: string
  readonly boot?: string
}

const readOr = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch {
    return undefined
  }
}

/** This boot's id (Linux); undefined elsewhere. */
export const bootId = (): string | undefined => readOr("/proc/sys/kernel/random/boot_id")?.trim() || undefined

/** A process's start time in clock ticks since boot (Linux); undefined when unknown or gone. */
export const startTime = (pid: number): string | undefined => {
  const stat = readOr(`/proc/${pid}/stat`)
  if (stat === undefined) return undefined
  // The command name (field 2) is in parentheses and may hold spaces or ')': the fields after the last ')' start
  // with field 3, so the start time (field 22) is the 20th of them.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return fields[19]
}

// A holder known by its pid alone (no /proc) is written as the pid alone, as autotune 1.1 and 2.0 wrote it.
export const describeHolder = (h: Holder): string =>
  h.start === undefined ? String(h.pid) : `${h.pid} ${h.start} ${h.boot ?? "-"}`

/** The lock file's text for this process. */
const myHolder = (): string => {
  const [start, boot] = [startTime(process.pid), bootId()]
  return describeHolder({
    pid: process.pid,
    ...(start === undefined ? {} : { start }),
    ...(boot === undefined ? {} : { boot })
  })
}

export const parseHolder = (text: string): Holder | undefined => {
  const [pidText, start, boot] = text.trim().split(/\s+/)
  const pid = Number(pidText)
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  return { pid, ...(start ? { start } : {}), ...(boot && boot !== "-" ? { boot } : {}) }
}

const exists = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as { code?: string }).code === "EPERM"
  }
}

/**
 * Whether the process a lock names still runs. A lock of an older autotune holds the pid alone: then the process
 * must at least be a Node program (what autotune runs as), which a reused pid after a reboot rarely is.
 */
export const holderAlive = (
  h: Holder,
  now: { readonly boot?: string | undefined; readonly startOf?: (pid: number) => string | undefined } = {
    boot: bootId(),
    startOf: startTime
  }
): boolean => {
  if (h.boot !== undefined && now.boot !== undefined && h.boot !== now.boot) return false
  if (!exists(h.pid)) return false
  const start = now.startOf?.(h.pid)
  if (h.start !== undefined) return start === undefined || start === h.start
  const cmdline = readOr(`/proc/${h.pid}/cmdline`)
  return cmdline === undefined || /node|autotune/.test(cmdline)
}

/** Who the lock file names; "gone" when there is no file, undefined when it names no one. */
const holder = (file: string): Holder | "gone" | undefined => {
  try {
    return parseHolder(fs.readFileSync(file, "utf8"))
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
  fs.writeFileSync(mine, myHolder(), { mode: MODES.private.file })
  try {
    try {
      fs.linkSync(mine, file)
    } catch (error) {
      // A file system without hard links: create it exclusively and write (the narrow window above).
      if (!["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"].includes((error as { code?: string }).code ?? "")) throw error
      const fd = fs.openSync(file, "wx", MODES.private.file)
      fs.writeSync(fd, myHolder())
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

/** One attempt: create the lock file naming us; take it over when its holder is gone. */
const tryAcquire = (file: string) =>
  Effect.try({
    try: () => {
      makeDirs(path.dirname(file), MODES.private.dir)
      const mine = `${file}.${process.pid}`
      for (let attempt = 0; attempt < 3; attempt++) {
        if (create(file, mine)) return undefined
        const h = holder(file)
        // Released between our try and our look: try again at once, never take over a lock just made.
        if (h === "gone") continue
        if (h !== undefined && h.pid !== process.pid && holderAlive(h)) return h.pid
        // A lock left by a killed process, a process of an earlier boot, or one holding no pid: take it over. The
        // rename is atomic, so two processes taking over at once cannot both win; the loser sees the winner next.
        if (h !== undefined && h.pid !== process.pid) takenOver.push(describeHolder(h))
        fs.writeFileSync(mine, myHolder(), { mode: MODES.private.file })
        fs.renameSync(mine, file)
        const now = holder(file)
        return typeof now === "object" && now.pid === process.pid ? undefined : typeof now === "object" ? now.pid : -1
      }
      return -1
    },
    catch: (cause) => new FileError({ path: file, operation: "take the run lock", detail: describeFsError(cause) })
  }).pipe(
    Effect.flatMap((pid) =>
      pid === undefined ? Effect.void : Effect.fail(new LockBusy({ path: file, holderPid: pid }))
    )
  )

const release = (file: string) =>
  Effect.sync(() => {
    const h = holder(file)
    if (typeof h === "object" && h.pid === process.pid) fs.rmSync(file, { force: true })
  })

// Stale holders taken over by this process, said once by withRunLock.
const takenOver: Array<string> = []

/**
 * One run at a time across processes: the lock is a file naming its holder (Holder above). A second run waits up
 * to `wait` for it, then fails with LockBusy; a lock whose process is gone is taken over, with one line saying
 * so. Released when the scope closes, interruption included.
 */
export const withRunLock = <A, E, R>(
  file: string,
  effect: Effect.Effect<A, E, R>,
  wait: Duration.DurationInput = "10 seconds"
) =>
  // The wait is interruptible (SIGTERM ends a run waiting for the lock at once); once the lock is ours, it is
  // released however the effect ends, interruption included (acquireUseRelease would make the whole wait
  // uninterruptible).
  Effect.uninterruptibleMask((restore) =>
    restore(
      tryAcquire(file).pipe(
        Effect.retry({
          schedule: Schedule.spaced("250 millis").pipe(Schedule.upTo(wait)),
          while: (e) => e._tag === "LockBusy"
        })
      )
    ).pipe(
      // Interrupted in the instant the lock was taken: it is given back (release removes only a lock naming us).
      Effect.onInterrupt(() => release(file)),
      Effect.zipRight(
        Effect.suspend(() => {
          const stale = takenOver.splice(0)
          return stale.length === 0
            ? Effect.void
            : Effect.logWarning(`took over ${file}: its holder (${stale[0]}) is no longer running`)
        })
      ),
      Effect.zipRight(restore(effect).pipe(Effect.ensuring(release(file))))
    )
  )

export const lockPath = (dbPath: string) => path.join(path.dirname(dbPath), "autotune.lock")
