/**
 * HELD OUT, seventh set (issue 25 item 5): written 2026-12-07 (session 15), before any rule changed after rule set
 * 6, and committed unmeasured. The sixth set's misses are named in docs/privacy.md, so it no longer stands for
 * unseen text; this one does. Wider look-alikes than before: words that mix letters and digits the way a password
 * does (product models, hosts, gamertags, Wi-Fi names, plates), since a rule on a password's shape alone is the
 * next thing to try. test/privacy.test.ts reports it; it is never tuned on.
 */
import { find, keep, type Sample } from "./privacyCorpus.js"

export const HELD_OUT_7: ReadonlyArray<Sample> = [
  // Not secrets: letters and digits together, not a credential.
  ...keep("shaped_like_a_password", [
    "is the RTX4090 worth it over a 4080 Super?",
    "my iPhone15 won't charge past 80%",
    "set the model to gpt4o-mini in the config",
    "ssh into web02 and restart nginx",
    "the SSID is Attic5G and it's on channel 36",
    "flight LH1234 lands at 18:05",
    "take B12 and D3 with breakfast",
    "the Windows11 update KB5032190 broke audio",
    "branch feature/login-2291 is merged",
    "add me on Steam, I'm NightOwl2291",
    "meet in room B214 at 3pm",
    "the plate AB12 CDE got a parking ticket",
    "COVID19 booster at the pharmacy, appointment 10:40",
    "sensor temp_living2 reads 21.4°C"
  ]),
  ...keep("credential_words_without_a_credential", [
    "the password must not contain your username",
    "password manager: Bitwarden, vault timeout 15 min",
    "forgot password flow returns 500 on /api/v2/auth/reset",
    "PASSWORD_MIN_LENGTH=12",
    "the Wi-Fi password is on the sticker under the router",
    "I typed the wrong password three times and now it's locked",
    "the API key goes in ~/.config/dotclaw/.env, not in the repo",
    "rotate the secret every 90 days per SOC2",
    "use bcrypt cost 12 for password hashes",
    "the token field in the webhook payload is optional",
    "Kennwort vergessen? Link in der Mail",
    "la contraseña debe tener 8 caracteres",
    "the login page at /auth/login shows a captcha after 5 tries",
    "grafana's admin user is admin by default, change it at first login",
    "error E1102: password too short (min 10)",
    "ticket SEC-2291: leaked password rotated, new one in Vaultwarden"
  ]),
  ...keep("ids_and_numbers", [
    "pip install pydantic==2.5.3",
    "docker run -p 8080:80 nginx:1.25-alpine",
    "commit 9f2c4e1 fixed the token refresh",
    "invoice INV-2026-0113 for 49.90 EUR",
    "token count: 18,442 prompt, 1,203 completion",
    "postcode SW1A 1AA",
    "MAC 3c:22:fb:91:0a:7e keeps dropping off the wifi",
    "ISBN 978-3-16-148410-0",
    "crontab: 0 3 * * * /usr/local/bin/backup.sh",
    "order #A77120 is out for delivery"
  ]),
  // Secrets.
  ...find("cli_password", [
    ["mysqldump -u backup --password=Thistle5580 shop > shop.sql", "Thistle5580"],
    ["smbclient //nas/share -U ana%Birch2290", "Birch2290"],
    ["wget --user=ana --password 'Kestrel#77' https://files.lan/x.iso", "Kestrel#77"],
    ["openssl pkcs12 -export -in c.pem -passout pass:Harbor6613 -out c.p12", "Harbor6613"],
    ["influx -username admin -password Quartz8841 -execute 'SHOW DATABASES'", "Quartz8841"],
    ["curl -u deploy:Nimbus4417 https://ci.lan/api/json", "Nimbus4417"],
    ["echo 'Pebble3361' | sudo -S apt upgrade", "Pebble3361"],
    ["htpasswd -b /etc/nginx/.htpasswd ana Willow8842", "Willow8842"]
  ]),
  ...find("urls_and_config", [
    ["ftp://ana:Juniper5523@files.home.lan/backup/", "Juniper5523"],
    ["psql 'host=db user=app password=Saffron9924 dbname=app'", "Saffron9924"],
    ["MQTT_PASS=Cobalt7730", "Cobalt7730"],
    ["REDIS_AUTH=Vp9Lq2Xz7Kt4Wm1R", "Vp9Lq2Xz7Kt4Wm1R"],
    ["  db_pwd: 'Magnolia2219'", "Magnolia2219"],
    ['{"username":"ana","pass":"Hazel6604"}', "Hazel6604"],
    ['<add key="SmtpPassword" value="Tundra3318" />', "Tundra3318"],
    ["spring.datasource.password=Orchid4456", "Orchid4456"],
    ['WIFI_PSK="Lantern9907"', "Lantern9907"],
    ["db.lan:5432:app:app:Sorrel2281", "Sorrel2281"]
  ]),
  ...find("said_in_words", [
    ["the keypad at the garage takes 5519", "5519"],
    ["my bank PIN's 7731, don't save it", "7731"],
    ["login for the school portal: lena.k / Tulip2024!", "Tulip2024!"],
    ["I changed the router admin to Granite5512 yesterday", "Granite5512"],
    ["guest network: Attic-Guest, pass Meadow3390", "Meadow3390"],
    ["the passphrase for the backup disk is 'correct horse battery staple'", "correct horse battery staple"],
    ["use Falcon8827 to get into the NAS web UI", "Falcon8827"],
    ["pwd for grafana = Ripple4418", "Ripple4418"],
    ["Mot de passe : Cerise2290", "Cerise2290"],
    ["o PIN do cartão é 6652", "6652"],
    ["Zugangsdaten fürs WLAN: FritzBox7590 / Kiefer8813", "Kiefer8813"],
    ["here are the creds — user: admin, pw Ocelot5547", "Ocelot5547"]
  ]),
  ...find("tokens", [
    ["export GITHUB_TOKEN=ghp_Zr8Wq2Lm5Xt1Kv9Np3Hd7Jf4Gs6Ae0Ui2Oy8", "ghp_Zr8Wq2Lm5Xt1Kv9Np3Hd7Jf4Gs6Ae0Ui2Oy8"],
    ["headers = {'X-Api-Key': 'a8Kq2Wz7Lm4Xt9Rv1Np6Hd3Jf0Gs5Ae'}", "a8Kq2Wz7Lm4Xt9Rv1Np6Hd3Jf0Gs5Ae"],
    [
      "https://api.telegram.org/bot6622334455:AAF3Rt7Yu1Io5Pa9Sd3Fg7Hj1Kl5Zx9Cv3B/getUpdates",
      "6622334455:AAF3Rt7Yu1Io5Pa9Sd3Fg7Hj1Kl5Zx9Cv3B"
    ],
    [
      "openai.api_key = 'sk-proj-Rq4Wm8Lz2Xt6Kv0Np4Hd8Jf2Gs6Ae0Ui4Oy8Pq2Rt6Wv0Zc4Nb8'",
      "sk-proj-Rq4Wm8Lz2Xt6Kv0Np4Hd8Jf2Gs6Ae0Ui4Oy8Pq2Rt6Wv0Zc4Nb8"
    ],
    ["aws_secret_access_key = 9xQ2pL7mZ4tW1vK8rN3hD6jF0gS5aE2uI9oY4pQ1", "9xQ2pL7mZ4tW1vK8rN3hD6jF0gS5aE2uI9oY4pQ1"]
  ]),
  ...find("personal_data", [
    ["text me on 07700 900 118 when you land", "07700 900 118"],
    ["send the invoice to marta.ribeiro@sapo.pt", "marta.ribeiro@sapo.pt"],
    ["my visa 4539 1488 0343 6467 exp 09/28", "4539 1488 0343 6467"],
    ["pay into DE89 3704 0044 0532 0130 00 please", "DE89 3704 0044 0532 0130 00"]
  ])
]
