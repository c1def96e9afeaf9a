import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { FileError } from "../Domain/Errors.js"

/**
 * Writes a file so that a reader never sees half of it: a temp file in the same directory, fsync, rename,
 * then fsync of the directory so the rename survives a power cut. DotClaw re-reads packs per request; a
 * half-written pack would silently drop the behavior's instructions.
 */
export const writeFileAtomic = (file: string, content: string, mode = 0o644) =>
  Effect.try({
    try: () => {
      const dir = path.dirname(file)
      fs.mkdirSync(dir, { recursive: true })
      const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`)
      let fd: number | undefined
      try {
        fd = fs.openSync(tmp, "wx", mode)
        fs.writeFileSync(fd, content)
        fs.fsyncSync(fd)
        fs.closeSync(fd)
        fd = undefined
        fs.chmodSync(tmp, mode)
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

export const ensureDir = (dir: string) =>
  Effect.try({
    try: () => void fs.mkdirSync(dir, { recursive: true }),
    catch: (cause) => new FileError({ path: dir, operation: "create directory", detail: describeFsError(cause) })
  })
