/**
 * What autotune keeps is private: the store holds people's chats (redacted, but still theirs). The home
 * directory is 0700 and the database, its WAL and shared-memory files, the run lock and reports are 0600,
 * whatever the umask; a looser mode found on an existing file is tightened, with one warning.
 */
import * as fs from "node:fs"
import * as path from "node:path"

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, "0")

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
  // The home is autotune's own: tightened. A directory the database was pointed into (a mount point, a
  // shared folder) is someone else's: created private when missing, never changed when it exists.
  let homeWarning: string | undefined
  if (home !== undefined && home !== "") {
    fs.mkdirSync(home, { recursive: true, mode: 0o700 })
    homeWarning = tighten(home, 0o700)
  }
  fs.mkdirSync(path.dirname(dbPath), { recursive: true, mode: 0o700 })
  // SQLite creates the WAL and shared-memory files with the database file's mode: create it 0600 first.
  if (!fs.existsSync(dbPath)) fs.closeSync(fs.openSync(dbPath, "a", 0o600))
  return [homeWarning, tighten(dbPath, 0o600), ...secureSidecars(dbPath)].filter((w): w is string => w !== undefined)
}

/** After the store is open: the WAL and shared-memory files exist now and must match. */
export const secureSidecars = (dbPath: string): ReadonlyArray<string> =>
  [`${dbPath}-wal`, `${dbPath}-shm`].flatMap((file) => tighten(file, 0o600) ?? [])
