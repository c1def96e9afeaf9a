/**
 * HELD OUT, fifth set (issue 25 item 5): written 2026-12-06 (session 14) and committed before any rule changed for
 * the fourth set's misses, and before it was measured at all. The fourth set was measured first (rule set 4) and
 * its misses read, so rules tuned after that are claimed on this set alone, measured once, with the rules before and
 * after the tuning. Same scope as the fourth: the families, the common secrets, and look-alikes.
 * Spent: measured once (rule set 4 0.775 / 0.054, rule set 5 0.800 / 0.027), then tuned on in rule set 6; the sixth
 * set stands for unseen text now. test/privacy.test.ts keeps it as a regression test.
 */
import { find, keep, type Sample } from "./privacyCorpus.js"

export const HELD_OUT_5: ReadonlyArray<Sample> = [
  // Not secrets: the families.
  ...keep("ssh_public_key", [
    "ssh-copy-id printed the key it added: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq4Lr8Tw2Pm6Zs1Kd9Vb3Nc7Jf5Gh0Xa2Ye4Ui8Oo6 jonas@thinkpad",
    "Paste your public key (it starts with ssh-rsa or ssh-ed25519) into the box, never the private one.",
    "ECDSA key fingerprint is SHA256:Ft4oZ9pX1vKqWm3Lr7Ts2Yb8Nc5Hd0Jg6Ea1Ui9Oo3."
  ]),
  ...keep("package_integrity", [
    "yarn.lock: integrity sha1-Lm2Qx9Wr4Tb7Yc1Nh5Jd8Kf3Gs6Ae0=",
    "requirements.txt: requests==2.32.3 --hash=sha256:70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6",
    'flake.lock: "narHash": "sha256-Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc8Vb7Nm6Qw5="'
  ]),
  ...keep("bearer_in_prose", [
    "It says 'Bearer realm=api' in the WWW-Authenticate header, what does realm mean?",
    "Is it safe to log the word Bearer? I redact the token after it anyway.",
    "Postman: Auth tab > Type: Bearer Token, then paste it in the field."
  ]),
  ...keep("password_as_identifier", [
    "user.set_password(form.cleaned_data['password1'])",
    "interface LoginForm { email: string; password: string; remember: boolean }",
    "if len(password) < 8: raise ValueError('password too short')",
    "SELECT id, password_hash FROM accounts WHERE email = $1"
  ]),
  ...keep("password_file_reference", [
    "borg: export BORG_PASSCOMMAND='cat /root/.borg-pass'",
    "rabbitmq: default_pass_file = /etc/rabbitmq/pass",
    "keyfile: ${CREDENTIALS_DIRECTORY}/db-password"
  ]),
  ...keep("placeholder_url_credentials", [
    "template: postgres://{user}:{password}@{host}/{db}",
    "ftp://anonymous:anonymous@ftp.example.org/pub/",
    "Use https://USERNAME:TOKEN@git.example.com/repo.git only in CI, never locally."
  ]),
  ...keep("ssh_remote_in_command", [
    "scp -P 2200 notes.md ana@198.51.100.17:~/inbox/",
    "git push git@codeberg.org:jonas/garden.git main",
    "ssh-keyscan -H server.example.net >> ~/.ssh/known_hosts && ssh ops@server.example.net"
  ]),
  ...keep("ui_password_path", [
    "Bitwarden: Tools > Generator > Password, length 20",
    "macOS: System Settings › Users & Groups › Change Password…",
    "In Home Assistant go to Profile → Security → Change password."
  ]),
  // Not secrets: what a chat agent's traces are full of.
  ...keep("ids_and_hashes", [
    "the failing run was trace-8e21d4c9-5b7a-4f03-9c6e-2a1b0d3f7e58",
    "blob 5d41402abc4b2a76b9719d911017c592 differs from the cached copy",
    "Stripe event evt_1PQx8LKr2Wm5Tz9Yb3Nc7Jd4 arrived twice",
    "Docker says: Digest: sha256:9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"
  ]),
  ...keep("numbers_in_prose", [
    "Invoice 2026-0417 for 1.249,00 EUR is due on 15.12.",
    "flight LH 2044 boards at gate B 38, seat 21C",
    "Serial number: C02ZK1AALVDQ, bought 2023",
    "the lottery numbers were 4 11 19 27 33 45"
  ]),
  ...keep("auth_words_in_prose", [
    "Which is better for a family, a password manager or a notebook in a drawer?",
    "The API secret rotated and the bot stopped posting; what logs should I check?",
    "my token count on the last answer was 3,400, is that normal?",
    "She told me the secret ingredient is cardamom."
  ]),
  // Secrets: the families.
  ...find("cli_password_flag", [
    ["influx -username admin -password 'Granite5528' -execute 'SHOW DATABASES'", "Granite5528"],
    ["docker run -e POSTGRES_PASSWORD=Hazel7406 -d postgres:16", "Hazel7406"],
    ["wget --user=ana --password=Basil3319 https://files.example.net/report.pdf", "Basil3319"],
    ["unzip -P Clover8861 photos.zip", "Clover8861"],
    ["smbclient //nas/media -U jonas%Maple4470", "Maple4470"]
  ]),
  ...find("env_password_before_command", [
    ["SMTP_PASSWORD=Poppy2259 python send_report.py", "Poppy2259"],
    ["set MYSQL_PASSWORD=Coral6614 && node seed.js", "Coral6614"],
    ["BORG_PASSPHRASE='Indigo9043' borg create ::today /home", "Indigo9043"]
  ]),
  ...find("json_short_password_key", [
    ['{"host":"mail.example.net","user":"ana","pw":"Tansy4182"}', "Tansy4182"],
    ["[database]\nuser = app\npass = Fennel7735", "Fennel7735"],
    ['{"wifi": {"ssid": "Home", "key": "Nutmeg3348"}}', "Nutmeg3348"],
    ['{"nasPwd": "Lichen2207"}', "Lichen2207"]
  ]),
  ...find("password_in_prose_other_verbs", [
    ["fyi I've made the guest wifi password Starling6605", "Starling6605"],
    ["the code for the garage door app, password-wise, is now Pine4471", "Pine4471"],
    ["new password for the printer admin page: Gorse8813 (please don't change it)", "Gorse8813"],
    ["I went with Thyme5126 for the Jellyfin password", "Thyme5126"],
    ["le mot de passe du wifi c'est Sorbier2290", "Sorbier2290"]
  ]),
  ...find("bot_token_in_url", [
    [
      "https://api.telegram.org/bot7755331100:AAHk3Lm8Np2Qr6St0Uv4Wx9Yz1Ab5Cd7Ef3G/setWebhook?url=https://me.example",
      "7755331100:AAHk3Lm8Np2Qr6St0Uv4Wx9Yz1Ab5Cd7Ef3G"
    ],
    [
      "the discord hook: https://discordapp.com/api/webhooks/1200000000000000001/Lp0Ok9Ij8Uh7Yg6Tf5Rd4Es3Wa2Qz1Xc0Vb9Nm8Ml7Kj6Hg5Fd4Sa3Dq2Wr1Et0Yu9Io8Pp7",
      "Lp0Ok9Ij8Uh7Yg6Tf5Rd4Es3Wa2Qz1Xc0Vb9Nm8Ml7Kj6Hg5Fd4Sa3Dq2Wr1Et0Yu9Io8Pp7"
    ],
    [
      "ntfy: curl -d 'done' 'https://ntfy.example.net/backups?auth=tk_Az8Xc2Vb6Nm0Qw4Er8Ty2Ui6Op0As'",
      "tk_Az8Xc2Vb6Nm0Qw4Er8Ty2Ui6Op0As"
    ]
  ]),
  ...find("provider_token_positional", [
    ['genai.configure(api_key="AIzaSyD4xQ9Lm2Wv7Rt5Zc8Nb1Kd3Fh6Jg0Sy4Ae")', "AIzaSyD4xQ9Lm2Wv7Rt5Zc8Nb1Kd3Fh6Jg0Sy4Ae"],
    [
      "Groq('gsk_Tz3Xw8Qv1Lr6Ms9Kp2Nb5Yc7Hd0Jf4Ge1Ua8Vi3Ow6Pe9Rt2')",
      "gsk_Tz3Xw8Qv1Lr6Ms9Kp2Nb5Yc7Hd0Jf4Ge1Ua8Vi3Ow6Pe9Rt2"
    ],
    [
      "new Telegraf('6234567890:AAFw2Er3Ty4Ui5Op6As7Df8Gh9Jk0Lz1Xc2V')",
      "6234567890:AAFw2Er3Ty4Ui5Op6As7Df8Gh9Jk0Lz1Xc2V"
    ],
    ['hf_hub.login("hf_Qp7Wo6Ei5Ru4Ty3Ui2Op1As0Df9Gh8Jk7Lz")', "hf_Qp7Wo6Ei5Ru4Ty3Ui2Op1As0Df9Gh8Jk7Lz"]
  ]),
  ...find("phone_in_contact_list", [
    ["Babysitters:\nLena 0151 2345 6789\nMaja 0160 9876 5432", "0151 2345 6789"],
    ["electrician (Kowalski) +48 601 234 567", "+48 601 234 567"],
    ["landlord: 0117 496 0812 (evenings)", "0117 496 0812"],
    ["pediatrician 06 12 34 56 78", "06 12 34 56 78"]
  ]),
  // Secrets: the common kinds.
  ...find("cloud_keys", [
    [
      "[default]\naws_access_key_id = AKIA5R2T8W4Y6U1I3O9P\naws_secret_access_key = Zx8Cv7Bn6Mq5Wf4Eg3Rh2Tj1Yk0Ul9Io8Pa7Sd6F",
      "Zx8Cv7Bn6Mq5Wf4Eg3Rh2Tj1Yk0Ul9Io8Pa7Sd6F"
    ],
    ["AZURE_CLIENT_SECRET=Qm8~Tw2Xe4Rv6Ybn8Uk0Ip2Oa4Sd6Fg8Hj0Kl2", "Qm8~Tw2Xe4Rv6Ybn8Uk0Ip2Oa4Sd6Fg8Hj0Kl2"],
    [
      "DO token: dop_v1_4f7a2c9e1b3d5f8a0c2e4b6d8f1a3c5e7b9d0f2a4c6e8b1d3f5a7c9e2b4d6f8a",
      "dop_v1_4f7a2c9e1b3d5f8a0c2e4b6d8f1a3c5e7b9d0f2a4c6e8b1d3f5a7c9e2b4d6f8a"
    ]
  ]),
  ...find("connection_strings", [
    ["postgresql://ledger:Rosehip5581@db.internal:5432/ledger?sslmode=require", "Rosehip5581"],
    ["amqps://worker:Sedge4406@mq.example.net/vhost", "Sedge4406"],
    [
      "DefaultEndpointsProtocol=https;AccountName=photos;AccountKey=Tq9Wm2Xr7Lp4Zs1Nc8Vb3Kd6Fh0Jg5Sy2Ae7Ui9Oo4Pq1Rt8Wv3Zc6Nb0Kd5Fh==;EndpointSuffix=core.windows.net",
      "Tq9Wm2Xr7Lp4Zs1Nc8Vb3Kd6Fh0Jg5Sy2Ae7Ui9Oo4Pq1Rt8Wv3Zc6Nb0Kd5Fh=="
    ]
  ]),
  ...find("tokens_in_text", [
    [
      "curl -H 'Authorization: token ghp_Xc4Vb8Nm2Qw6Er0Ty4Ui8Op2As6Df0Gh4Jk8L' https://api.github.com/user",
      "ghp_Xc4Vb8Nm2Qw6Er0Ty4Ui8Op2As6Df0Gh4Jk8L"
    ],
    [
      "the long-lived access token: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiI0ZjJhIn0.Zx1Cv2Bn3Mq4Wf5Eg6Rh7Tj8Yk9Ul0Io1Pa2Sd3Fg4",
      "Zx1Cv2Bn3Mq4Wf5Eg6Rh7Tj8Yk9Ul0Io1Pa2Sd3Fg4"
    ],
    ["OPENAI_API_KEY=sk-Lr5Tw8Qx2Zm6Np9Vb3Kc7Hd1Jf4Gs0Ae2Ui5Oy8", "sk-Lr5Tw8Qx2Zm6Np9Vb3Kc7Hd1Jf4Gs0Ae2Ui5Oy8"]
  ]),
  ...find("personal_data", [
    ["reach Jonas on jonas.brandt@mailbox.org", "jonas.brandt@mailbox.org"],
    ["IBAN GB33 BUKB 2020 1555 5555 55 for the deposit", "GB33 BUKB 2020 1555 5555 55"],
    ["paid with 5425 2334 3010 9903, please refund there", "5425 2334 3010 9903"]
  ])
]
