#!/bin/sh
# demo.sh: start a whole Postern on loopback in /var/tmp/postern-demo (through tests/sandbox,
# the one way anything starts a system), add a demo domain and user, and say how to connect.
# `make demo` runs it after installing the dependencies and building. Run it again to restart
# the demo from a clean state; stop it with: tests/sandbox stop /var/tmp/postern-demo
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
SANDBOX="$REPO/tests/sandbox"
DIR=/var/tmp/postern-demo
DOMAIN=demo.test
LOGIN=demo@demo.test
PASSWORD=demo

# An old demo is stopped first, so the new one gets a fresh master and fresh ports.
"$SANDBOX" stop "$DIR" >/dev/null
"$SANDBOX" start "$DIR"
. "$DIR/env"

# SHA512-CRYPT, stored as the bare crypt(3) string: "$6$" names the scheme, and the guide's
# varchar(106) password column cannot hold it with Dovecot's "{SHA512-CRYPT}" prefix as well
# (120 characters). Postern accepts both forms (DESIGN.md §6).
HASH=$(/usr/bin/python3 -W ignore -c '
import crypt, sys
print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_SHA512)))' "$PASSWORD" 2>/dev/null) ||
	HASH=$(openssl passwd -6 "$PASSWORD")
case "$HASH" in
'$6$'*) ;;
*) echo "demo.sh: could not hash the demo password" >&2; exit 1 ;;
esac

# Plain SQL against the default schema, exactly as an administrator would do it.
"$SANDBOX" sql "$DIR" <<SQL
INSERT INTO virtual_domains (name)
  SELECT '$DOMAIN' FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM virtual_domains WHERE name = '$DOMAIN');
INSERT INTO virtual_users (domain_id, password, email)
  SELECT id, '$HASH', '$LOGIN' FROM virtual_domains WHERE name = '$DOMAIN'
  ON DUPLICATE KEY UPDATE password = VALUES(password);
SQL

# Which program answers the IMAP port? Until the smtpd/imapd issues land it is the built-in
# test service, and a mail client cannot log in yet; say so instead of pretending.
BANNER=$(/usr/bin/python3 -c '
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
    print(s.recv(200).decode(errors="replace").strip())' "$POSTERN_IMAP_PORT" 2>/dev/null) ||
	BANNER=""

cat <<EOF

Postern demo is running in $DIR (master pid $POSTERN_MASTER_PID).

  Login:        $LOGIN   password: $PASSWORD
  IMAP:         127.0.0.1 port $POSTERN_IMAP_PORT (STARTTLS)   IMAPS: port $POSTERN_IMAPS_PORT (TLS)
  POP3:         127.0.0.1 port $POSTERN_POP3_PORT (STARTTLS)   POP3S: port $POSTERN_POP3S_PORT (TLS)
  Submission:   127.0.0.1 port $POSTERN_SUBMISSION_PORT (STARTTLS)   SMTPS: port $POSTERN_SMTPS_PORT (TLS)
  SMTP (MX):    127.0.0.1 port $POSTERN_SMTP_PORT
  Certificate:  self-signed for localhost and 127.0.0.1; the CA to trust is $POSTERN_CA
  Log:          $POSTERN_LOG
  Database:     $REPO/tests/sandbox sql $DIR
  Stop:         $REPO/tests/sandbox stop $DIR
EOF

case "$BANNER" in
postern-testd*)
	cat <<EOF

Note: Postern's SMTP and IMAP/POP3 daemons are not written yet (their issues are still open).
Until they land, every listener is served by the built-in test service (banner: "$BANNER"),
so a mail client cannot log in or fetch mail yet. Poke at a TLS listener by hand instead:

  openssl s_client -connect 127.0.0.1:$POSTERN_IMAPS_PORT -CAfile $POSTERN_CA -quiet

and type PING, ECHO some text, TLS or QUIT (on the clear-text ports STARTTLS works too).
EOF
	;;
esac
