/**
 * The tuning part of the families the rules got wrong on text written outside this project (issue 25): eight
 * kinds of text that are not secrets and six kinds of secrets the rules missed, written here by hand. The rules
 * were adjusted until this part passed; privacyHeldOut.ts holds other forms of the same families, committed
 * before, never tuned on. `test/privacy.test.ts` reports both.
 */
import { find, keep, type Sample } from "./privacyCorpus.js"

export const FAMILIES: ReadonlyArray<Sample> = [
  // Not secrets.
  ...keep("ssh_public_key", [
    "here is my public key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv7Xq2Lm9Rt4Wz1Nc6Yp3Hs8Kd0Fe5Ga2Ju7Io4Tk ana@laptop",
    "add this key to ~/.ssh/authorized_keys: ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDk3Xp9Lm2Qw7Rt4Zy1VbNc8Hs5Jd0Ge3Fa6Tu9Io2Pk7Lx4Mn1Bv8Cq5Wz2Ey7Rr0Td3Ug6Ih9Js4Ko1Lp8Mq5Na2Ob9Pc6Qd3Re0Sf7Tg4Uh1Vi8Wj5Xk2Yl9Zm6An3Bo0Cp7Dq4Er1Fs8Gt5Hu2Iv9Jw6Kx3Ly0Mz7 deploy@ci",
    "the server's host key is ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBKx3Lm8Qw2Rt9Zy4VbNc1Hs6Jd5Ge0Fa7Tu2Io9Pk4Lx1Mn6Bv3Cq8Wz5Ey0Rr7Td2Ug9Ih4Js1Ko8=",
    "pubkey = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFm2Ld8Rt5Wq1Zx4Vc7Nb0Hs3Kp6Je9Gu2Ai5Ty8Or1 backup",
    "ssh-keygen printed the public part: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKp4Rt7Wz0Nc3Yx6Ld9Mq2Hs5Jf8Ge1Ba4Tu7Io0Uk marta@desk"
  ]),
  ...keep("package_integrity", [
    '"integrity": "sha512-Wd9Lk2Qx7Rt4Zy1VbNc8Hs5Jd0Ge3Fa6Tu9Io2Pk7Lx4Mn1Bv8Cq5Wz2Ey7Rr0Td3Ug6Ih9Js4Ko1Lp8Mq5Na2Ob9Pc6Qd3Re0Sf7Tg4Uh1=="',
    'integrity="sha256-3Xk9Lm2Qw7Rt4Zy1VbNc8Hs5Jd0Ge3Fa6Tu9Io2P="',
    "package-lock says integrity sha512-Zq1Wx2Ec3Rv4Tb5Yn6Um7Ik8Ol9Pa0Sd1Fg2Hj3Kl4Zx5Cv6Bn7Mq8We9Rt0Yu1Io2Pa3Sd4Fg5Hj6Kl7Zx8Cv9Bn0Mq1We2Rt3Yu4Io5Pa6==",
    "go.sum: golang.org/x/text v0.14.0 h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=",
    "the tarball's sha256sum is 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
  ]),
  ...keep("bearer_in_prose", [
    "The API expects a Bearer token in the Authorization header.",
    "Use Bearer authentication for every request to /v2.",
    "is Bearer authorization the same as OAuth?",
    "set the scheme to Bearer and paste the token below",
    "Bearer or Basic: which one does the webhook accept?"
  ]),
  ...keep("password_as_identifier", [
    "const hash = await bcrypt.hash(password, 10)",
    "self.password = password",
    "password: string;",
    "if user.check_password(password): login(user)",
    "the field is called password in the form, and confirm_password below it",
    "UPDATE users SET password = crypt(password, gen_salt('bf'))"
  ]),
  ...keep("password_file_reference", [
    "password_file: /run/secrets/db_password",
    "DB_PASSWORD_FILE=/run/secrets/pg_pass",
    "password: !secret wifi_password",
    '"passwordFile": "./secrets/smtp.txt"',
    'password = ${file("/etc/app/db.pass")}',
    "set password: file:/var/lib/app/secret"
  ]),
  ...keep("placeholder_url_credentials", [
    "postgres://user:password@localhost:5432/app",
    "mysql://root:changeme@127.0.0.1:3306/test",
    "amqp://user:pass@rabbit:5672",
    "mongodb://<user>:<password>@localhost:27017",
    "redis://:yourpassword@localhost:6379",
    "https://username:token@github.com/org/repo.git"
  ]),
  ...keep("ssh_remote_in_command", [
    "ssh ana@server.example.com",
    "git clone git@github.com:ana/dotfiles.git",
    "scp notes.txt joao@files.example.org:~/inbox/",
    "ssh -i ~/.ssh/id_ed25519 -p 2222 deploy@app.example.com",
    "rsync -a backup/ marta@nas.example.net:/srv/backup/"
  ]),
  ...keep("ui_password_path", [
    "Go to Settings > Security > Password and click Change.",
    "Open Preferences → Accounts → Passwords to see saved logins.",
    "Settings › Wi-Fi › Password shows it after Face ID",
    "Account / Security / Password: there is a Reset button",
    "under Profile > Password & security, enable 2FA"
  ]),
  // Secrets.
  ...find("cli_password_flag", [
    ["mysql -u root -pS3cr3tPass42 shop", "S3cr3tPass42"],
    ["psql --password=Tr0ub4dor99 -h db", "Tr0ub4dor99"],
    ["mongo admin --username root --password 'Kx8!pQ2wL'", "Kx8!pQ2wL"],
    ["redis-cli -a Zx9kLm2Qw7 ping", "Zx9kLm2Qw7"],
    ["sshpass -p Blue-River-22 scp x host:", "Blue-River-22"],
    ["openssl pkcs12 -in cert.p12 -passin pass:Harbor552!", "Harbor552!"]
  ]),
  ...find("env_password_before_command", [
    ["PGPASSWORD=Xy7k2LmQ9p psql -h db -U app", "Xy7k2LmQ9p"],
    ["MYSQL_PWD=Rt5yU8iO2p mysql -u root", "Rt5yU8iO2p"],
    ["DB_PASS=hunter2234 npm start", "hunter2234"],
    ["REDIS_PASSWORD='Qw3eR5tY7u' node worker.js", "Qw3eR5tY7u"],
    ["export PGPASSWORD=Lk9jH7gF5d && psql", "Lk9jH7gF5d"]
  ]),
  ...find("json_short_password_key", [
    ['{"pw": "Maple9921!"}', "Maple9921!"],
    ['{"pass": "coffee-lamp-81"}', "coffee-lamp-81"],
    ['{"userPassword": "Orbit7734#"}', "Orbit7734#"],
    ['{"dbPass": "Zq8wX2cV4b"}', "Zq8wX2cV4b"],
    ['{"mqtt_pw":"Tango5518?"}', "Tango5518?"],
    ['{"passwd": "Lk2jH4gF6d"}', "Lk2jH4gF6d"]
  ]),
  ...find("password_in_prose_other_verbs", [
    ["my password's Sunset4417!", "Sunset4417!"],
    ["I set the password to Porto2210#", "Porto2210#"],
    ["use Harbor8835$ as the password", "Harbor8835$"],
    ["the password I picked is Falcon6627%", "Falcon6627%"],
    ["the wifi password became Lisbon5503&", "Lisbon5503&"],
    ["my PIN changed to 8253", "8253"]
  ]),
  ...find("bot_token_in_url", [
    [
      "https://api.telegram.org/bot123456789:AAHk3Lm9QwErTy7uIoPzXcVbNm2AsDfGhJk/sendMessage",
      "123456789:AAHk3Lm9QwErTy7uIoPzXcVbNm2AsDfGhJk"
    ],
    [
      "POST https://api.telegram.org/bot987654321:AAEz1Xc2Vb3Nm4Qw5Er6Ty7Ui8Op9As0Df1G/sendPhoto",
      "987654321:AAEz1Xc2Vb3Nm4Qw5Er6Ty7Ui8Op9As0Df1G"
    ],
    [
      'url = f"https://api.telegram.org/bot5550001112:AAGq2We3Rt4Yu5Io6Pa7Sd8Fg9Hj0Kl1Zx2C/getUpdates"',
      "5550001112:AAGq2We3Rt4Yu5Io6Pa7Sd8Fg9Hj0Kl1Zx2C"
    ],
    [
      "https://api.telegram.org/file/bot4443332221:AAFm9Nb8Vc7Xz6Lk5Jh4Gf3Ds2Aq1Wq0Ep9R/documents/a.pdf",
      "4443332221:AAFm9Nb8Vc7Xz6Lk5Jh4Gf3Ds2Aq1Wq0Ep9R"
    ]
  ]),
  ...find("provider_token_positional", [
    [
      'client = OpenAI("sk-proj-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3Ab4Cd5Ef6Gh7")',
      "sk-proj-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3Ab4Cd5Ef6Gh7"
    ],
    [
      'WebClient("xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx")',
      "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
    ],
    ['login("hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")', "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"],
    [
      'client.run("ODc2NTQzMjEwOTg3NjU0MzIx.Gk8Lm2.Ab3Cd4Ef5Gh6Ij7Kl8Mn9Op0Qr1St2Uv3Wx4Y")',
      "ODc2NTQzMjEwOTg3NjU0MzIx.Gk8Lm2.Ab3Cd4Ef5Gh6Ij7Kl8Mn9Op0Qr1St2Uv3Wx4Y"
    ],
    [
      "Client('ACa1b2c3d4e5f60718293a4b5c6d7e8f90', 'f0e1d2c3b4a5968778695a4b3c2d1e0f')",
      "f0e1d2c3b4a5968778695a4b3c2d1e0f"
    ]
  ]),
  ...find("phone_in_contact_list", [
    ["- Ana: 612 345 678\n- Pedro: 655 432 109", "612 345 678"],
    ["Mum 07911 123456", "07911 123456"],
    ["João — 912 345 678", "912 345 678"],
    ["plumber Klaus, 0151 23456789", "0151 23456789"],
    ["Claire: 06 45 67 89 01", "06 45 67 89 01"]
  ]),
  // Second round of tuning examples (2026-12-06), written fresh, not from either held-out set.
  ...keep("ssh_public_key", ["ssh-keygen -y -f ~/.ssh/id_ed25519 > id_ed25519.pub"]),
  ...keep("package_integrity", ["sha1sum: 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12  release.tar.gz"]),
  ...keep("password_as_identifier", [
    "the password field must not be empty",
    "PASSWORD_MIN_LENGTH=12",
    "password reset link expires in 24 hours"
  ]),
  ...keep("placeholder_url_credentials", [
    "curl -u $USER:$TOKEN https://api.example.com",
    "postgres://app:${DB_PASSWORD}@db:5432/app"
  ]),
  ...keep("ssh_remote_in_command", ["git push git@github.com:owner/repo.git main"]),
  ...keep("ui_password_path", ["Settings > Passwords > AutoFill Passwords"]),
  ...find("cli_password_flag", [
    ["mysql --user=app --password=Saturn4412 shop", "Saturn4412"],
    ["curl --user bob:Marble7739 https://api.example.com", "Marble7739"],
    ["wget --password=Anchor6621 ftp://files.example.com/x.zip", "Anchor6621"],
    ["docker login --password Raven4451 -u ci registry.io", "Raven4451"],
    ["htpasswd -bc /etc/nginx/.htpasswd admin Pluto8834", "Pluto8834"]
  ]),
  ...find("env_password_before_command", [
    ["SPRING_DATASOURCE_PASSWORD=Comet2291 java -jar app.jar", "Comet2291"],
    ["env DB_PASSWORD=Velvet6653 node server.js", "Velvet6653"],
    ['POSTGRES_PASSWORD="Ivory5548" docker compose up', "Ivory5548"]
  ]),
  ...find("json_short_password_key", [
    ['{"pwd":"Harvest3317"}', "Harvest3317"],
    ["{'admin_pass': 'Beacon7723'}", "Beacon7723"],
    ['{"rootPassword": "Summit4465"}', "Summit4465"]
  ]),
  ...find("password_in_prose_other_verbs", [
    ["the password is going to be Copper9913", "Copper9913"],
    ["I'll use Granite4478 as my password", "Granite4478"],
    ["new wifi password: Orchid2256", "Orchid2256"],
    ["the passcode, by the way, is Lagoon3346", "Lagoon3346"]
  ]),
  ...find("bot_token_in_url", [
    [
      "https://api.telegram.org/bot8123456780:AAFq1Wv2Eb3Rn4Tm5Yk6Ul7Ij8Oh9Pg0Fd1S/getChat",
      "8123456780:AAFq1Wv2Eb3Rn4Tm5Yk6Ul7Ij8Oh9Pg0Fd1S"
    ]
  ]),
  ...find("phone_in_contact_list", [
    ["Plumber – 0161 496 0753", "0161 496 0753"],
    ["* Rosa 622 118 904", "622 118 904"],
    ["Zahnarzt: 089 2345 6789", "089 2345 6789"]
  ]),
  // Rule set 5 (session 14): other forms of what the first four held-out sets showed, written fresh.
  ...keep("password_as_identifier", [
    "def change_password(self, old_password: str, new_password: str) -> bool:",
    "function hash(password: string, rounds: number): Promise<string>",
    "migrate: rename password to password_hash and backfill"
  ]),
  ...keep("ui_password_path", [
    "Router → Wi-Fi → Password: keep it the same for now",
    "Settings > Account > Password: change it every year"
  ]),
  ...keep("placeholder_url_credentials", ["wget ftp://anonymous:anonymous@mirror.example.net/debian/README"]),
  ...keep("password_near_usernames", [
    "please reset the password for user42, she is locked out",
    "the password of admin2 expired yesterday"
  ]),
  ...keep("numbers_in_prose", [
    "parcel 1Z 4E7 W91 03 4417 2096 is out for delivery",
    "shipment JD0 14 600 0012 3456 7890 arrives Monday"
  ]),
  ...find("cli_password_flag", [
    ["7za x -pSpruce4480 backup.7z", "Spruce4480"],
    ["unrar x -pHollow2217 photos.rar", "Hollow2217"],
    ["net use \\\\fileserver\\docs /user:OFFICE\\ana Tulip5539 /persistent:yes", "Tulip5539"]
  ]),
  ...find("json_short_password_key", [
    ['network={\n  ssid="Attic"\n  psk="Aurora6612"\n}', "Aurora6612"],
    ["wpa_psk: Clover9915", "Clover9915"]
  ]),
  ...find("password_in_prose_other_verbs", [
    ["we settled on Ridge4403 as the vault passphrase", "Ridge4403"],
    ["the passphrase we came up with was Harbor1172", "Harbor1172"],
    ["keep the passcode handy, it's Lantern8846", "Lantern8846"],
    ["she set the router password as Fjord3318 yesterday", "Fjord3318"],
    ["I changed my email password to Cascade7751 last night", "Cascade7751"],
    ["the guest password Prism4427 works on both floors", "Prism4427"],
    ["Das WLAN-Passwort ist nun Birke5526", "Birke5526"],
    ["das Kennwort für die Fritzbox lautet jetzt Ahorn7734", "Ahorn7734"]
  ]),
  ...find("phone_in_contact_list", [
    ["contacts — cousin Irene: 633 410 872", "633 410 872"],
    ["gardener (Mrs. Okafor) 415 555 0163", "415 555 0163"],
    ["handyman - Tomasz 698 221 540", "698 221 540"]
  ]),
  // Rule set 7 (session 15): the sixth held-out part's misses (spent) and fresh forms of them: a credential named
  // by another word than "password" (login, creds, wifi, router, admin, pw), a user and a password as a pair, and
  // the short flags of tools that take one. Look-alikes beside the same words: models, versions, hosts, users.
  ...keep("credential_words_beside_names", [
    "the Jellyfin login page hangs on Firefox121",
    "my wifi is slow since the Fritz7590 update",
    "the router is a Netgear RAX120, admin page on 192.168.1.1",
    "log in as ana42 on pve01 and check the disk",
    "creds live in Vaultwarden, not in chat",
    "admin panel runs on port 8443, login with your SSO account",
    "wifi 6E router: AXE5400 from Netgear",
    "login shell is zsh 5.9 on both hosts",
    "the wlan card is an AX210, driver iwlwifi",
    "pin the version to node20 in the workflow",
    "account ana-test2 was created by the migration",
    "ssh -p 2222 ana@host and grep -P 'user\\d+' auth.log",
    "ping -w 5 gateway; tar -P -czf etc.tgz /etc",
    "docker buildx build -o type=local,dest=out --platform linux/arm64 ."
  ]),
  ...find("credential_named_otherwise", [
    ["btw the Plex login is jonas / Quill4428", "Quill4428"],
    ["the Jellyfin login: marco / Basil7731", "Basil7731"],
    ["creds for the camera: admin Heron5518", "Heron5518"],
    ["router admin pass is Cypress4402", "Cypress4402"],
    ["tell dad the new wifi is Ember2255 (network name Attic)", "Ember2255"],
    ["our home wifi: Clover8874, the 5 GHz one", "Clover8874"],
    ["sign in with ana.m and Lilac5582", "Lilac5582"],
    ["the pw for the shared account is now Juniper6673", "Juniper6673"],
    ["unraid login root, pass Tamarind3306", "Tamarind3306"]
  ]),
  ...find("short_flag_password", [
    ["mosquitto_pub -h broker.lan -u sensor -P Wren4471 -t home/temp -m 21.5", "Wren4471"],
    ["ldapsearch -x -D cn=admin,dc=home -w Aster9902 -b dc=home", "Aster9902"],
    ["mosquitto_sub -u cam -P Acorn3318 -t cams/#", "Acorn3318"],
    ["ldapwhoami -x -D cn=ro,dc=lan -w Thyme4490", "Thyme4490"],
    ["sqlcmd -S db -U sa -P Fjord9921 -i init.sql", "Fjord9921"]
  ])
]
