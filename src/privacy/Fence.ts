/**
 * The nonce that fences conversation text in a prompt (`<<<TRACE nonce>>> … <<<END nonce>>>`): fresh for each
 * request, so text inside cannot close the fence it does not know. Every outbound request passes the egress guard
 * (EgressGuard.ts), which rewrites whatever looks like a secret or personal data; a hex nonce that happened to be
 * all digits was once rewritten as a phone number, leaving a fixed fence a user's text could forge. These nonces
 * are lowercase consonants only: no digit, so no number, card, phone or date rule can match, and no vowel, so no
 * word a keyword rule reads. 16 letters of 20: about 69 bits.
 */
import { randomBytes } from "node:crypto"

const LETTERS = "bcdfghjklmnpqrstvwxz"
export const NONCE_LENGTH = 16

export const fenceNonce = (): string => {
  // 240 is the largest multiple of 20 below 256: bytes above it are drawn again, so every letter is equally likely.
  let out = ""
  while (out.length < NONCE_LENGTH) {
    for (const byte of randomBytes(NONCE_LENGTH * 2)) {
      if (byte < 240 && out.length < NONCE_LENGTH) out += LETTERS[byte % 20]
    }
  }
  return out
}
