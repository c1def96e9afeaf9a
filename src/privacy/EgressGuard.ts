/**
 * The last check before a request leaves the machine: every outbound LLM request passes the same detector
 * that cleans traces at ingest. Traces stored with AUTOTUNE_REDACT=0, or cleaned by an older rule set,
 * therefore never reach a provider with a secret in them; what the guard finds is replaced and counted.
 */
import type { LlmRequest } from "../Domain/Llm.js"
import { emptyFindings, type Findings, redactText } from "./Redactor.js"

/** The request as it may leave, and what was found; `findings` may gather several requests' (a batch). */
export const guardRequest = (
  request: LlmRequest,
  findings: Findings = emptyFindings()
): { readonly request: LlmRequest; readonly findings: Findings } => {
  const before = findings.count
  const system = redactText(request.system, findings)
  const messages = request.messages.map((m) => ({ ...m, content: redactText(m.content, findings) }))
  return findings.count === before ? { request, findings } : { request: { ...request, system, messages }, findings }
}

/** "email 2, phone 1": what was found, never the values. */
export const describeFindings = (findings: Findings): string =>
  Object.entries(findings.byRule)
    .map(([rule, n]) => `${rule} ${n}`)
    .join(", ")
