/**
 * HELD OUT, sixth set (issue 25 item 5): written 2026-12-06 (session 14) after rule set 5 was measured on the fifth
 * set, and committed before any rule changed for the fifth set's misses and before it was measured at all. Same
 * scope as the fourth and fifth, with more look-alikes that sit next to the word "password" without being one
 * (error messages, tickets, policies), since a rule that looks near that word is the next thing to try.
 * test/privacy.test.ts reports it; it is never tuned on.
 */
import { find, keep, type Sample } from "./privacyCorpus.js"

export const HELD_OUT_6: ReadonlyArray<Sample> = [
  // Not secrets: next to the word, not a password.
  ...keep("password_near_ids", [
    "ERROR 1045 (28000): Access denied for user 'root'@'localhost' (using password: YES)",
    "the password reset link expires after 24h, then request a new one",
    "JIRA-4411: password reset emails land in spam for outlook.com users",
    "our password policy needs 12+ characters and one digit since v2.3",
    "Windows event 4723: an attempt was made to change an account's password",
    "Failed password for invalid user admin from 203.0.113.9 port 52144 ssh2",
    "the WPA2 password field is greyed out on firmware 7.57",
    "column PasswordHash nvarchar(256) in table Users2024"
  ]),
  ...keep("password_as_identifier", [
    "func CheckPassword(hash, password string) bool {",
    '<input type="password" name="password" autocomplete="new-password">',
    "validates :password, length: { minimum: 12 }"
  ]),
  ...keep("placeholder_url_credentials", [
    "CONNECTION=postgres://app:${DB_PASSWORD}@db:5432/app",
    "see https://user:pass@example.com in RFC 3986 examples, never do that"
  ]),
  ...keep("ssh_and_keys_public", [
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7Wm2Xq9Lr4Tz8Np1Kc6Vb3Hd5Jf0Gs7Ae2Ui9Oy4Pq1 backup@nas",
    "gpg --recv-keys 3AA5C34371567BD2",
    "age recipient: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
  ]),
  ...keep("ids_and_numbers", [
    "trace-0c7f5e2a-91b4-4d3e-8a6f-3b2c1d0e9f87 failed at step 3",
    "build 2026.12.06-4471 is on the staging ring",
    "PR #8812 bumps effect to 3.22.1",
    "room 4.17, call extension 2291 from the lobby phone",
    "sha256sum: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  empty.txt"
  ]),
  ...keep("auth_words_in_prose", [
    "Should I keep my passwords in the browser or in KeePassXC?",
    "The bot said my API key was invalid, but I pasted the right one.",
    "How long should a passphrase be for a backup disk?",
    "reset my password please, I'm locked out of the Nextcloud"
  ]),
  // Secrets.
  ...find("cli_password_flag", [
    ["mosquitto_pub -h broker.lan -u sensor -P Wren4471 -t home/temp -m 21.5", "Wren4471"],
    ["ldapsearch -x -D cn=admin,dc=home -w Aster9902 -b dc=home", "Aster9902"],
    [
      "rclone config create b2 b2 account 0025a8f key K0025Xq9Lm2Wv7Rt5Zc8Nb1Kd3Fh6Jg",
      "K0025Xq9Lm2Wv7Rt5Zc8Nb1Kd3Fh6Jg"
    ],
    ["sqlcmd -S localhost -U sa -P 'Falcon#2291' -Q 'SELECT 1'", "Falcon#2291"],
    ["vncpasswd -f <<< 'Lotus7718' > ~/.vnc/passwd", "Lotus7718"]
  ]),
  ...find("env_password_before_command", [
    ["DOCKER_PASSWORD=Cedar4412 ./push.sh", "Cedar4412"],
    ["sudo -E ADMIN_PASSWORD=Heath6630 ./install.sh", "Heath6630"]
  ]),
  ...find("config_keys", [
    ["[smtp]\nserver = smtp.example.net\nlogin = ana\nsecret = Umber3381", "Umber3381"],
    ["nextcloud:\n  admin_user: ana\n  admin_pass: Sparrow5527", "Sparrow5527"],
    ['{"mail": {"user": "jonas", "app_password": "abcd efgh ijkl mnop"}}', "abcd efgh ijkl mnop"],
    ["wpa_passphrase=Mistral8816", "Mistral8816"]
  ]),
  ...find("password_in_prose", [
    ["btw the Plex login is jonas / Quill4428", "Quill4428"],
    ["for the Synology I used Marigold7719, same as the router", "Marigold7719"],
    ["admin password on the printer: still Oakleaf3306?", "Oakleaf3306"],
    ["tell dad the new wifi is Ember2255 (network name Attic)", "Ember2255"],
    ["Kennwort: Lindenblatt8", "Lindenblatt8"],
    ["la contraseña del wifi es Olivo4471", "Olivo4471"]
  ]),
  ...find("tokens", [
    [
      "HA_TOKEN=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJlN2YifQ.Kp4Wq8Zx2Lm6Nv0Rt3Ys7Ub1Oc5Ie9Ga4Hd8Jf2",
      "Kp4Wq8Zx2Lm6Nv0Rt3Ys7Ub1Oc5Ie9Ga4Hd8Jf2"
    ],
    [
      'client = Anthropic(api_key="sk-ant-api03-Yq2Wm9Lr5Tz1Np8Kc4Vb7Hd3Jf6Gs0Ae2Ui9Oy5Pq1Rt8Wv4Zc7Nb0Kd3Fh6Jg2Sy5Ae8Ui1Oo-4PqAA")',
      "sk-ant-api03-Yq2Wm9Lr5Tz1Np8Kc4Vb7Hd3Jf6Gs0Ae2Ui9Oy5Pq1Rt8Wv4Zc7Nb0Kd3Fh6Jg2Sy5Ae8Ui1Oo-4PqAA"
    ],
    [
      "Telegram bot token 7311223344:AAG5Ty8Ui2Op6As0Df4Gh8Jk2Lz6Xc0Vb4Nm",
      "7311223344:AAG5Ty8Ui2Op6As0Df4Gh8Jk2Lz6Xc0Vb4Nm"
    ],
    ["export CLOUDFLARE_API_TOKEN=Xw3Qz8Lp1Rm6Tn9Vk2Bs5Hd7Jf0Gc4Ya8Ue2Io", "Xw3Qz8Lp1Rm6Tn9Vk2Bs5Hd7Jf0Gc4Ya8Ue2Io"]
  ]),
  ...find("personal_data", [
    ["my number is 0176 4455 2211 if the bot breaks again", "0176 4455 2211"],
    ["Kontakt: lea.schmitt@gmx.net", "lea.schmitt@gmx.net"],
    ["neighbour — Mr. Haddad 0161 555 0134", "0161 555 0134"]
  ])
]
