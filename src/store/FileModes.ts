/**
 * The one table of the modes autotune gives what it creates, whatever the umask: what is private (the store and
 * its WAL and shared-memory files, the run lock, reports, the config file, grades, the store's identity record)
 * is 0600 in 0700 directories; what DotClaw reads (prompt packs, behavior.json) is 0644 in 0755 directories,
 * because DotClaw may read them as another user (its container mounts prompts/). A looser mode found on an
 * existing private file is tightened, with one warning; a directory that exists is never changed.
 */
import * as fs from "node:fs"
import * as path from "node:path"

export interface FileMode {
  readonly file: number
  readonly dir: number
}

export const MODES = {
  /** People's chats (redacted, but still theirs), reports about them, keys: the owner alone. */
  private: { file: 0o600, dir: 0o700 },
  /** What DotClaw reads: prompt packs and behavior.json. */
  shared: { file: 0o644, dir: 0o755 }
} as const satisfies Record<string, FileMode>

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, "0")

/**
 * Creates `dir` and its missing parents with `mode`, whatever the umask: mkdir's mode is masked by it (under
 * umask 000 the default would be 0777, writable by every local user). Directories that already exist are left
 * as they are: autotune never changes the mode of a directory it did not create.
 */
export const makeDirs = (dir: string, mode: number): void => {
  const first = fs.mkdirSync(dir, { recursive: true, mode })
  if (first === undefined) return
  const created: Array<string> = []
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    created.push(d)
    if (d === path.resolve(first) || path.dirname(d) === d) break
  }
  for (const d of created) fs.chmodSync(d, mode)
}

/** Tightens `target` to `mode` when group or others have any access; returns the warning to log. */
const tighten = (target: string, mode: number): string | undefined => {
  let stat: fs.Stats
  try {
    stat = fs.statSync(target)
  } catch {
    return undefined
  }
  if ((stat.mode & 0o077) === 0) return undefined
  fs.chmodSync(target, mode)
  return `tightened ${target} from ${octal(stat.mode)} to ${octal(mode)}: it holds private data`
}

/** The directories and files of the store, created private; returns the warnings for loose modes found. */
export const secureStore = (dbPath: string, home?: string): ReadonlyArray<string> => {
  // Directories are created private and never changed once they exist: the home may be DotClaw's own (it mounts
  // prompts/ into its container, whose user may differ), a directory the database was pointed into may be a mount
  // point. autotune's own files in them are what it keeps private.
  if (home !== undefined && home !== "") makeDirs(home, MODES.private.dir)
  makeDirs(path.dirname(dbPath), MODES.private.dir)
  // SQLite creates the WAL and shared-memory files with the database file's mode: create it 0600 first.
  if (!fs.existsSync(dbPath)) {
    fs.closeSync(fs.openSync(dbPath, "a", MODES.private.file))
    fs.chmodSync(dbPath, MODES.private.file)
  }
  return [tighten(dbPath, MODES.private.file), ...secureSidecars(dbPath)].filter((w): w is string => w !== undefined)
}

/** After the store is open: the WAL and shared-memory files exist now and must match. */
export const secureSidecars = (dbPath: string): ReadonlyArray<string> =>
  [`${dbPath}-wal`, `${dbPath}-shm`].flatMap((file) => tighten(file, MODES.private.file) ?? [])
