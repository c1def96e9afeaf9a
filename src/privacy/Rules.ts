/**
 * The detection rules, in the order they run; each family in its own file under rules/. Families follow gitleaks' default configuration (provider
 * formats with fixed prefixes, keyword-anchored generic secrets with a shape test, private keys in every
 * armor) and Presidio's recognizers (checksummed identifiers, phone numbers, context words). The rules
 * and their data are ours.
 *
 * Each rule has a cheap `hint` so that text with nothing to redact costs a few `includes` calls.
 * A `replace` that returns the match unchanged means "looked like one, was not": it is not counted.
 */
import { ARMORED, IN_URLS_AND_HEADERS } from "./rules/Armored.js"
import { hasDigitPair, literalGate, type Rule, type RuleGroup, single } from "./rules/Hints.js"
import { email, NUMBERS } from "./rules/Identifiers.js"
import {
  contextToken,
  credentialNamedOtherwise,
  keyValue,
  proseSecret,
  proseSecretBare,
  proseSecretBefore,
  prosePasswordNear
} from "./rules/Keywords.js"
import { PROVIDER_FORMATS, providerGroups } from "./rules/Providers.js"

export { hasAlnumRun, mark, type Rule, type RuleGroup } from "./rules/Hints.js"
export { SECRET_KEY, secretValue } from "./rules/Keywords.js"

/** The rules in the order they run, in their gated groups. */
export const RULE_GROUPS: ReadonlyArray<RuleGroup> = [
  { gate: literalGate(ARMORED), rules: ARMORED },
  ...providerGroups(PROVIDER_FORMATS),
  { gate: literalGate(IN_URLS_AND_HEADERS), rules: IN_URLS_AND_HEADERS },
  single(keyValue),
  single(proseSecret),
  single(proseSecretBefore),
  single(proseSecretBare),
  single(prosePasswordNear),
  single(credentialNamedOtherwise),
  single(contextToken),
  single(email),
  { gate: hasDigitPair, rules: NUMBERS }
]

export const RULES: ReadonlyArray<Rule> = RULE_GROUPS.flatMap((g) => g.rules)
