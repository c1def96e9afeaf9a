/**
 * Armored keys and JWTs, and secrets inside URLs, headers, command lines and XML.
 */
import { isPlaceholder } from "../Checks.js"
import { has, lineBefore, mark, matchedIn, type Rule } from "./Hints.js"
import { personalPassword, SECRET_NAMES, secretValue } from "./Keywords.js"

/** Armored keys and JWTs: first, so that no later rule takes a piece of one. */
export const ARMORED: ReadonlyArray<Rule> = [
  {
    name: "private_key",
    hint: has("PRIVATE KEY", "PuTTY-User-Key"),
    pattern:
      /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)|PuTTY-User-Key-File-\d:[\s\S]*?(?:Private-MAC: [0-9a-f]+|$)/g,
    replace: () => mark("private_key")
  },
  {
    name: "jwt",
    hint: has("eyJ"),
    // One start per run of token characters (not at each "eyJ" inside one): linear however the run repeats.
    pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
    replace: () => mark("jwt")
  }
]

/** Secrets inside URLs, headers, command lines and XML; every hint is literal (`has`). */
export const IN_URLS_AND_HEADERS: ReadonlyArray<Rule> = [
  {
    // Webhook URLs whose path is the credential.
    name: "webhook_url",
    hint: has(
      "hooks.slack.com",
      "/api/webhooks/",
      "webhook.office.com",
      "/webhookb2/",
      "hooks.zapier.com",
      "maker.ifttt.com"
    ),
    pattern:
      /https?:\/\/(?:hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9/_-]+|(?:[a-z]+\.)?discord(?:app)?\.com\/api\/webhooks\/\d+\/[A-Za-z0-9_-]+|[A-Za-z0-9.-]*webhook\.office\.com\/webhookb2\/[^\s"'<>]+|hooks\.zapier\.com\/hooks\/catch\/[^\s"'<>]+|maker\.ifttt\.com\/trigger\/[^\s"'<>]+)/g,
    replace: () => mark("webhook_url")
  },
  {
    // Credentials inside URLs: user:password@host (database, broker and basic-auth URLs).
    name: "url_password",
    hint: has("://"),
    // A password holding an unencoded "@" runs to the last "@" before the host, as URL parsers read it (the
    // greedy run gives back to its last "@"). The scheme starts a run, not anywhere inside one.
    pattern: /(?<![a-zA-Z0-9+.-])([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)([^\s:/?#@"'<>]*):([^\s/"'<>]+)@/g,
    // FTP's anonymous login takes any password by convention (often "anonymous" or an e-mail address).
    replace: (match, scheme, user, password) =>
      isPlaceholder(password ?? "") || (password ?? "").includes("<redacted_") || /^anonymous$/i.test(user ?? "")
        ? match
        : `${scheme}${user}:${mark("password")}@`
  },
  {
    name: "url_token_param",
    hint: has("?", "&"),
    pattern:
      /([?&](?:access_token|token|api_key|apikey|key|sig|signature|secret|password|auth|code|client_secret|private_token)=)([^&#\s"'<>]{6,})/gi,
    replace: (match, prefix, value) => (isPlaceholder(value ?? "") ? match : `${prefix}${mark("token")}`)
  },
  {
    // Azure connection strings: AccountKey=..., SharedAccessKey=..., SharedAccessSignature=...
    name: "azure_connection",
    hint: has("AccountKey=", "SharedAccessKey=", "SharedAccessSignature="),
    pattern: /\b(AccountKey|SharedAccessKey|SharedAccessSignature)=[^;\s"']+/g,
    replace: (_m, name) => `${name}=${mark("secret")}`
  },
  {
    name: "auth_header",
    hint: has("earer", "asic ", "oken ", "Digest "),
    pattern: /\b(Bearer|Basic|Token|Digest)\s+([A-Za-z0-9._~+/=-]{12,})/g,
    // "Bearer authentication" is a word: a token has a digit, a capital after its first letter, or a symbol.
    replace: (match, scheme, value) =>
      (scheme === "Token" && !/\d/.test(value ?? "")) || /^[A-Za-z][a-z]+$/.test(value ?? "")
        ? match
        : `${scheme} ${mark("token")}`
  },
  {
    // curl -u user:password, and the same pair after --user.
    name: "cli_user_password",
    hint: has("-u ", "--user"),
    pattern: /((?:^|\s)(?:-u|--user)[\s=]+["']?[^\s:"'=]+:)([^\s"']{3,})/g,
    replace: (match, prefix, value) => (isPlaceholder(value ?? "") ? match : `${prefix}${mark("password")}`)
  },
  {
    // Passwords given to command-line tools: --password X, --password=X, --pass X; and the short flags that mean
    // a password only for some tools: mysql's -pX (attached), sshpass/docker login's -p X, redis-cli's -a X.
    name: "cli_password_flag",
    hint: has("-pass", "-p", "-P", "-a ", "-w "),
    pattern:
      /(?<![\w-])(--?pass(?:word|wd|phrase)?(?:=|[ \t]+)|-p(?=[^\s-])|-[paPw][ \t]+)(["']?)([^\s"'-][^\s"']{2,})/g,
    replace: (
      match: string,
      flag: string | undefined,
      quote: string | undefined,
      value: string | undefined,
      ...rest: Array<unknown>
    ) => {
      const { offset, whole } = matchedIn(rest)
      const v = value ?? ""
      if (isPlaceholder(v) || v.includes("<redacted_")) return match
      const command = lineBefore(whole, offset, 160)
      const f = (flag ?? "").trim()
      const means =
        f.startsWith("--") ||
        f.startsWith("-pass") ||
        (f === "-P" && /\b(?:zip|unzip|zipcloak)\b/.test(command)) ||
        (f === "-p" &&
          flag === "-p" &&
          /\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump|7z|7za|7zr|7zz|rar|unrar)\b/.test(command)) ||
        (f === "-p" &&
          flag !== "-p" &&
          /\b(?:sshpass|(?:docker|podman|helm|oras|skopeo)\s+(?:\S+\s+)*?login)\b/.test(command)) ||
        (f === "-a" && /\bredis-cli\b/.test(command)) ||
        (f === "-P" && /\b(?:mosquitto_(?:pub|sub|rr)|sqlcmd|bcp)\b/.test(command)) ||
        (f === "-w" && /\bldap[a-z]+\b/.test(command)) ||
        // Any other tool: a user given earlier on the line, then a short flag whose value is shaped like a password.
        (f !== "-a" && /(?:^|\s)(?:-[uUlD]|--user(?:name)?)[ \t=]/.test(command) && personalPassword(v))
      return means ? `${flag}${quote}${mark("password")}${quote}` : match
    }
  },
  {
    // Samba's tools take -U user%password (smbclient, rpcclient, net rpc).
    name: "cli_samba_user",
    hint: has("%"),
    // One start per word (after white space, a quote or "="), so the user's run is read once.
    pattern: /(?<![^\s"'=])([^\s%"'=-][^\s%"'=]*%)([^\s"']{3,})/g,
    replace: (match: string, prefix: string | undefined, value: string | undefined, ...rest: Array<unknown>) => {
      const { offset, whole } = matchedIn(rest)
      const command = lineBefore(whole, offset, 160)
      if (
        !/(?:^|\s)(?:-U[ \t]*|--user[= \t])["']?$/.test(command) ||
        !/\b(?:smbclient|rpcclient|smbcacls|smbget|net[ \t]+(?:rpc|ads))\b/.test(command) ||
        isPlaceholder(value ?? "")
      )
        return match
      return `${prefix}${mark("password")}`
    }
  },
  {
    // Windows' net use \\server\share /user:NAME PASSWORD: the word after the user is its password.
    name: "cli_net_use",
    hint: has("/user:", "/USER:"),
    pattern: /((?<![\w/])\/user:[^\s/]+[ \t]+)(["']?)([^\s"'/*][^\s"']{2,})/gi,
    replace: (
      match: string,
      prefix: string | undefined,
      quote: string | undefined,
      value: string | undefined,
      ...rest: Array<unknown>
    ) => {
      const { offset, whole } = matchedIn(rest)
      if (!/\bnet\s+use\b/i.test(lineBefore(whole, offset, 200)) || isPlaceholder(value ?? "")) return match
      return `${prefix}${quote}${mark("password")}${quote}`
    }
  },
  {
    // htpasswd -b[c] FILE USER PASSWORD: the password is the third word after the flags (-b means "on the command line").
    name: "cli_htpasswd",
    hint: has("htpasswd"),
    pattern: /((?<![\w-])htpasswd((?:[ \t]+-[A-Za-z]+)+)[ \t]+[^\s-]\S*[ \t]+[^\s-]\S*[ \t]+)(["']?)([^\s"']{3,})/g,
    replace: (match, prefix, flags, quote, value) =>
      /b/.test(flags ?? "") && !isPlaceholder(value ?? "") ? `${prefix}${quote}${mark("password")}${quote}` : match
  },
  {
    // <password>x</password> in XML configs and SOAP bodies.
    name: "xml_secret",
    hint: has("</"),
    pattern: new RegExp(`<((?:[A-Za-z0-9]+[_.-])*${SECRET_NAMES})>([^<]{3,})</\\1>`, "gi"),
    replace: (match, name, value) =>
      secretValue(name ?? "", value ?? "") ? `<${name}>${mark("secret")}</${name}>` : match
  }
]
