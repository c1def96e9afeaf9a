/**
 * Writes a file so that a reader never sees half of it: a temp file in the same directory, fsync, rename,
 * then fsync of the directory so the rename survives a power cut. DotClaw re-reads packs per request; a
 * half-written pack would silently drop the behavior's instructions. The file and any directory made for it get
 * the modes of `mode` (store/FileModes.ts), whatever the umask.
 */
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { FileError } from "../Domain/Errors.js"
import { type FileMode, makeDirs } from "./FileModes.js"

export const writeFileAtomic = (file: string, content: string, mode: FileMode) =>
  Effect.try({
    try: () => {
      const dir = path.dirname(file)
      makeDirs(dir, mode.dir)
      const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`)
      let fd: number | undefined
      try {
        fd = fs.openSync(tmp, "wx", mode.file)
        fs.writeFileSync(fd, content)
        fs.fsyncSync(fd)
        fs.closeSync(fd)
        fd = undefined
        fs.chmodSync(tmp, mode.file)
        fs.renameSync(tmp, file)
      } catch (error) {
        if (fd !== undefined) fs.closeSync(fd)
        fs.rmSync(tmp, { force: true })
        throw error
      }
      syncDir(dir)
    },
    catch: (cause) => new FileError({ path: file, operation: "write", detail: describeFsError(cause) })
  })

const syncDir = (dir: string) => {
  try {
    const fd = fs.openSync(dir, "r")
    try {
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic there.
  }
}

/** Turns ENOSPC and friends into words a person acts on. */
export const describeFsError = (cause: unknown): string => {
  const code = (cause as { code?: string } | undefined)?.code
  const message = cause instanceof Error ? cause.message : String(cause)
  switch (code) {
    case "ENOSPC":
      return "the disk is full (nothing was changed)"
    case "EACCES":
    case "EPERM":
      return `permission denied (${message})`
    case "EROFS":
      return "the filesystem is read-only"
    default:
      return message
  }
}

export const ensureDir = (dir: string, mode: FileMode) =>
  Effect.try({
    try: () => makeDirs(dir, mode.dir),
    catch: (cause) => new FileError({ path: dir, operation: "create directory", detail: describeFsError(cause) })
  })
