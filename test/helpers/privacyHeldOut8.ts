/**
 * HELD OUT, eighth set (issue 25 item 5): written 2026-12-07 (session 15) after the seventh set was measured, and
 * committed before it was measured. Every earlier set was written by the people who wrote the rules, and their
 * passwords share a habit: a capitalised word and four digits ("Quill4428"). People's passwords are not like that,
 * so here they are the shapes leaked lists are full of (hunter2, monkey123, P@ssw0rd!, ilovemydog, 1q2w3e4r),
 * short PINs and codes, an answer to a security question; the look-alikes are what sits beside the same words in
 * a chat. test/privacy.test.ts reports it; it is never tuned on.
 */
import { find, keep, type Sample } from "./privacyCorpus.js"

export const HELD_OUT_8: ReadonlyArray<Sample> = [
  // Not secrets.
  ...keep("beside_credential_words", [
    "password123 is still the most common password, says the report",
    "hunter2 is an old IRC joke about passwords",
    "use the --password-stdin flag with docker login",
    "the field is called pwd in the legacy API and pass in the new one",
    "wifi 7 routers like the BE9300 are still expensive",
    "router firmware 1.0.3.142 fixes the admin page bug",
    "admin2 and admin3 are the staging accounts",
    "creds rotate on the 1st of every month",
    "login streak: 42 days",
    "the login button is blue on v2.4 and green on v2.5",
    "Wi-Fi: connected, signal -61 dBm",
    "Wi-Fi: HomeNet5G (WPA3)",
    "router: OpenWrt 23.05 on a Linksys E8450",
    "admin: Maria, she owns the group chat",
    "sign in with Google or Apple",
    "login: Monday at 9, the trainer meets you at the desk",
    "the PIN pad beeps twice when the battery is low",
    "pw-play is PipeWire's player, pw-cli its shell",
    "ticket INC0012345: login loop after the SSO change",
    "pin 7 on the GPIO header is ground"
  ]),
  ...keep("ordinary_chat", [
    "I passed the exam with 87%",
    "the Raspberry Pi 5 ships with 8GB",
    "my GitHub handle is anak1990",
    "order ABC12345 for the router arrived",
    "the Pixel 8a and the iPhone 15 both take an eSIM",
    "the VPN config is wg0.conf, peer laptop2",
    "door opens at 8:30, the code is on the invite",
    "remind me to change the wifi password on Friday"
  ]),
  // Secrets, in the shapes people pick.
  ...find("said_in_words", [
    ["my netflix password is monkey123 lol", "monkey123"],
    ["login: ana / hunter2", "hunter2"],
    ["I always use ilovemydog for throwaway accounts", "ilovemydog"],
    ["the wifi at grandma's is sunshine1", "sunshine1"],
    ["pass: letmein!", "letmein!"],
    ["my new PIN is 4096", "4096"],
    ["set ADMIN_PASS to dragon1987 in the compose file", "dragon1987"],
    ["the vault unlock phrase: blue-tiger-42", "blue-tiger-42"],
    ["router login admin/1q2w3e4r", "1q2w3e4r"],
    ["her Instagram pw was Welcome1! until yesterday", "Welcome1!"],
    ["keychain says the entry for wifi-attic is s3cr3t!", "s3cr3t!"],
    ["the code to the bike lock is 0612", "0612"],
    ["can you remember that my bank app PIN is 2580?", "2580"],
    ["WLAN-Schlüssel: tiger4ever", "tiger4ever"],
    ["the alarm disarm code is 7391", "7391"],
    ["if it asks, the answer to the security question is Fluffy", "Fluffy"],
    ["2FA backup code 8842-1190, keep it somewhere safe", "8842-1190"]
  ]),
  ...find("commands_and_config", [
    ["mysql -u root -pP@ssw0rd! mydb", "P@ssw0rd!"],
    ["psql postgresql://app:Tr0ub4dor&3@localhost/app", "Tr0ub4dor&3"],
    ["docker run -e POSTGRES_PASSWORD=zaq12wsx postgres:16", "zaq12wsx"],
    ["smtp_pass = matrix99", "matrix99"],
    ['{"user":"ana","pwd":"summer-rain-7"}', "summer-rain-7"],
    ["kubectl create secret generic db --from-literal=password=Nala2019", "Nala2019"],
    ["mongosh 'mongodb://root:abc123xyz@mongo:27017'", "abc123xyz"]
  ]),
  ...find("tokens_and_personal_data", [
    [
      "OPENROUTER_API_KEY=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",
      "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"
    ],
    ["here's the gitea runner token: 7hK2mP9qL4wX8vR3nT6yB1cZ5", "7hK2mP9qL4wX8vR3nT6yB1cZ5"],
    ["call me at +49 151 23456789", "+49 151 23456789"],
    ["my social is 536-22-8120, for the tax form", "536-22-8120"]
  ])
]
