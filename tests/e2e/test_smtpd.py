"""test_smtpd: postern-smtpd from the outside (issue 4): the three roles (25 MX, 587
submission, 465 smtps), the queue file behind every 250, and the security regressions the
issue lists (smuggling, STARTTLS injection, relay tricks, AUTH before TLS, bad command bytes,
overlong lines, 10,000 recipients, a silent client). Clients: Python smtplib, raw sockets
for what smtplib cannot say, and swaks on all three ports. Queue files are checked with
build/tests/tools/qfcheck (lib/queuefile.h's own reader), log lines with pflogsumm and
fail2ban-regex. One sandbox of its own (smtpd_timeout=3s for the silent-client test).
"""

import base64
import glob
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BINDIR, finish_sandbox, start_sandbox, tls_context

QFCHECK = os.path.join(BINDIR, "tests", "tools", "qfcheck")
DOMAIN = "example.test"
ALICE, ALICE_PW = f"alice@{DOMAIN}", "alice-secret-1"
BOB, BOB_PW = f"bob@{DOMAIN}", "bob-secret-2"
OUTSIDE = "sender@outside.example"
TIMEOUT_S = 3
QID_RE = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-F]{19})$")


@pytest.fixture(scope="module")
def sb():
    box = start_sandbox("postern-e2e-smtpd-", [f"smtpd_timeout={TIMEOUT_S}s"])
    admin = [os.path.join(BINDIR, "postern"), "admin", "-c", box.conf]
    try:
        subprocess.run(admin + ["domain", "add", DOMAIN], check=True, capture_output=True)
        for user, pw in ((ALICE, ALICE_PW), (BOB, BOB_PW)):
            subprocess.run(admin + ["user", "add", user, "--password-stdin"], input=pw + "\n",
                           text=True, check=True, capture_output=True)
        yield box
    finally:
        finish_sandbox(box)


# ---- helpers -------------------------------------------------------------------------------

def queue_file(sb, qid):
    paths = glob.glob(os.path.join(sb.spool, "queue", "incoming", "*", "*", qid))
    assert len(paths) == 1, f"queue file {qid}: {paths}"
    return paths[0]


def qfcheck(sb, qid):
    """(envelope dict with 'rcpt' a list, message bytes) of a committed queue file."""
    path = queue_file(sb, qid)
    res = subprocess.run([QFCHECK, path], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    env = {"rcpt": []}
    for line in res.stdout.splitlines()[1:]:
        key, _, value = line.partition("=")
        if key == "rcpt":
            env["rcpt"].append(value)
        else:
            env[key] = value
    msg = subprocess.run([QFCHECK, "-m", path], capture_output=True, check=True).stdout
    return env, msg


def split_received(msg):
    """Our Received: header (first in the message, folded) and the client's bytes."""
    assert msg.startswith(b"Received: from "), msg[:200]
    end = 0
    while True:
        nl = msg.index(b"\r\n", end)
        end = nl + 2
        if msg[end:end + 1] not in (b"\t", b" "):
            return msg[:end].decode(), msg[end:]


def smtp(sb, service="smtp", source=None):
    port = sb.ports[service]
    if service == "smtps":
        c = smtplib.SMTP_SSL("127.0.0.1", port, timeout=20, context=tls_context(sb.ca),
                             source_address=source)
    else:
        c = smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=source)
    c._host = "localhost"   # the certificate's name, for STARTTLS
    return c


def login(sb, service, user=ALICE, pw=ALICE_PW):
    c = smtp(sb, service)
    c.ehlo("client.example")
    if service != "smtps":
        c.starttls(context=tls_context(sb.ca))
        c.ehlo("client.example")
    c.login(user, pw)
    return c


class Raw:
    """A raw SMTP client: bytes out, reply lines in."""

    def __init__(self, sb, service="smtp", source=None, timeout=15):
        self.sock = socket.create_connection(("127.0.0.1", sb.ports[service]), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        if service == "smtps":
            self.sock = tls_context(sb.ca).wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def reply(self):
        """A whole (multi-line) reply as a list of lines; [] at EOF."""
        lines = []
        while True:
            ln = self.line()
            if ln is None:
                return lines
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return lines

    def cmd(self, text):
        self.send(text + "\r\n")
        r = self.reply()
        return r[-1] if r else None

    def at_eof(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        except (socket.timeout, TimeoutError):
            return False

    def close(self):
        self.sock.close()


def send_ok(c, sender, rcpts, body):
    c.mail(sender)
    for r in rcpts:
        code, text = c.rcpt(r)
        assert code == 250, (r, code, text)
    code, text = c.data(body)
    assert code == 250, (code, text)
    m = re.match(rb"2\.0\.0 Ok: queued as ([0-9A-F]{19})$", text)
    assert m, text
    return m.group(1).decode()


BODY = (b"From: <sender@outside.example>\r\nTo: <alice@example.test>\r\n"
        b"Message-ID: <t1.abc@outside.example>\r\nSubject: hello\r\n\r\n"
        b"line one\r\n.dot line\r\n..two dots\r\n\r\nlast\r\n")


# ---- greeting and EHLO ---------------------------------------------------------------------

def ehlo_keywords(c):
    code, text = c.ehlo("client.example")
    assert code == 250
    return [ln.split()[0].upper() if ln.split() else "" for ln in text.decode().splitlines()[1:]], \
        text.decode()


@pytest.mark.parametrize("service", ["smtp", "submission", "smtps"])
def test_greeting_and_ehlo(sb, service):
    c = smtp(sb, service)
    try:
        words, text = ehlo_keywords(c)
        for w in ("PIPELINING", "SIZE", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8",
                  "CHUNKING"):
            assert w in words, (service, text)
        assert "SIZE 10240000" in text
        assert "VRFY" not in words and "ETRN" not in words
        if service == "smtps":
            assert "STARTTLS" not in words and "AUTH PLAIN LOGIN" in text
        else:
            assert "STARTTLS" in words and "AUTH" not in words, text
            c.starttls(context=tls_context(sb.ca))
            words, text = ehlo_keywords(c)
            assert "STARTTLS" not in words and "AUTH PLAIN LOGIN" in text
        assert c.noop() == (250, b"2.0.0 Ok")
        assert c.rset() == (250, b"2.0.0 Ok")
        assert c.docmd("VRFY", ALICE) == (502, b"5.5.1 VRFY command is disabled")
        assert c.docmd("HELP")[0] == 214
    finally:
        assert c.quit() == (221, b"2.0.0 Bye")


def test_helo_has_no_extensions(sb):
    r = Raw(sb)
    assert r.greeting == "220 mail.sandbox.test ESMTP Postern"
    r.send("HELO client.example\r\n")
    assert r.reply() == ["250 mail.sandbox.test"]
    assert r.cmd("QUIT") == "221 2.0.0 Bye"


# ---- delivery into the queue ---------------------------------------------------------------

def test_mx_delivery_lands_in_the_queue(sb):
    c = smtp(sb)
    c.ehlo("client.example")
    qid = send_ok(c, OUTSIDE, [ALICE], BODY)
    c.quit()
    env, msg = qfcheck(sb, qid)
    assert env["qid"] == qid and env["sender"] == OUTSIDE
    assert env["client"] == "unknown[127.0.0.1]" and env["helo"] == "client.example"
    assert env["rcpt"] == [f"pending {ALICE}"] and env["auth"] == ""
    received, rest = split_received(msg)
    assert re.match(r"Received: from client\.example \(unknown \[127\.0\.0\.1\]\)\r\n"
                    rf"\tby mail\.sandbox\.test \(Postern\) with ESMTP id {qid}\r\n"
                    rf"\tfor <{ALICE}>; \w{{3}}, \d\d \w{{3}} \d{{4}} ", received), received
    # dot-unstuffing: the client's bytes exactly, leading dots undone
    assert rest == BODY
    log = sb.log_text()
    assert f"{qid}: client=unknown[127.0.0.1]" in log
    assert f"{qid}: message-id=<t1.abc@outside.example>" in log


def test_null_sender_dsn_and_8bit_body(sb):
    body = "Subject: 8-bit\r\n\r\nGrüße, ça va? Ünïcödé\r\n".encode()
    c = smtp(sb)
    c.ehlo("client.example")
    c.mail("", ["BODY=8BITMIME", "RET=HDRS", "ENVID=abc+2Bdef"])
    assert c.rcpt(ALICE, ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;alice@example.test"])[0] == 250
    code, text = c.data(body)
    assert code == 250, text
    qid = text.decode().split()[-1]
    c.quit()
    env, msg = qfcheck(sb, qid)
    assert env["sender"] == "" and env["body"] == "1"
    assert split_received(msg)[1] == body


def test_nine_megabyte_message(sb):
    line = b"x" * 76 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (9 * 1024 * 1024 // len(line))
    c = smtp(sb)
    c.ehlo("client.example")
    c.mail(OUTSIDE, [f"SIZE={len(body)}"])
    assert c.rcpt(ALICE)[0] == 250
    code, text = c.data(body)
    assert code == 250, text
    c.quit()
    env, msg = qfcheck(sb, text.decode().split()[-1])
    assert split_received(msg)[1] == body


def test_size_limits(sb):
    c = smtp(sb)
    c.ehlo("client.example")
    code, text = c.mail(OUTSIDE, ["SIZE=20000000"])
    assert (code, text) == (552, b"5.3.4 Message size exceeds fixed limit")
    assert "NOQUEUE: reject: MAIL from unknown[127.0.0.1]: 552 5.3.4 Message size exceeds " \
        "fixed limit; from=<sender@outside.example> proto=ESMTP helo=<client.example>" \
        in sb.log_text()
    # without SIZE: read to the end, then refused; the session goes on
    c.mail(OUTSIDE)
    c.rcpt(ALICE)
    code, text = c.data(b"Subject: huge\r\n\r\n" + (b"y" * 998 + b"\r\n") * 10300)
    assert (code, text) == (552, b"5.3.4 Message size exceeds fixed limit")
    assert c.noop()[0] == 250
    # a line over 998 octets is refused after the data, the session goes on
    c.mail(OUTSIDE)
    c.rcpt(ALICE)
    code, _ = c.data(b"Subject: long\r\n\r\n" + b"z" * 1200 + b"\r\n")
    assert code == 500
    assert send_ok(c, OUTSIDE, [ALICE], BODY)
    c.quit()


def test_bdat_chunks(sb):
    r = Raw(sb)
    r.send("EHLO client.example\r\n")
    r.reply()
    part1, part2 = b"Subject: chunks\r\n\r\nfirst part\r\n.", b"\r\n.\r\nsecond\r\n"
    r.send(f"MAIL FROM:<{OUTSIDE}>\r\nRCPT TO:<{ALICE}>\r\nBDAT {len(part1)}\r\n".encode()
           + part1 + f"BDAT {len(part2)} LAST\r\n".encode() + part2)
    assert r.reply() == ["250 2.1.0 Ok"]
    assert r.reply() == ["250 2.1.5 Ok"]
    assert r.reply() == [f"250 2.0.0 Ok: {len(part1)} bytes"]
    last = r.reply()[0]
    qid = QID_RE.match(last).group(1)
    assert split_received(qfcheck(sb, qid)[1])[1] == part1 + part2   # no dot handling
    # DATA after BDAT is refused; BDAT without MAIL is read and refused
    r.send(b"BDAT 5 LAST\r\nhello")
    assert r.reply()[0].startswith("503 5.5.1")
    assert r.cmd("QUIT") == "221 2.0.0 Bye"


def test_hundred_pipelined_messages(sb):
    r = Raw(sb, timeout=60)
    batch = [b"EHLO client.example\r\n"]
    for i in range(100):
        batch.append(f"MAIL FROM:<{OUTSIDE}>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n".encode())
        batch.append(f"Subject: pipelined {i}\r\n\r\nbody {i}\r\n.\r\n".encode())
    batch.append(b"QUIT\r\n")
    r.send(b"".join(batch))
    r.reply()
    qids = []
    for i in range(100):
        assert r.reply() == ["250 2.1.0 Ok"]
        assert r.reply() == ["250 2.1.5 Ok"]
        assert r.reply()[0].startswith("354 ")
        m = QID_RE.match(r.reply()[0])
        assert m, i
        qids.append(m.group(1))
    assert r.reply() == ["221 2.0.0 Bye"]
    assert len(set(qids)) == 100
    for i in (0, 57, 99):
        assert split_received(qfcheck(sb, qids[i])[1])[1] == \
            f"Subject: pipelined {i}\r\n\r\nbody {i}\r\n".encode()


# ---- recipients and relaying ---------------------------------------------------------------

def test_unknown_user_and_relay_denied_are_logged_like_postfix(sb):
    c = smtp(sb)
    c.ehlo("client.example")
    c.mail(OUTSIDE)
    nobody = f"nobody@{DOMAIN}"
    assert c.rcpt(nobody) == (550, f"5.1.1 <{nobody}>: Recipient address rejected: User "
                              "unknown in virtual mailbox table".encode())
    assert c.rcpt("victim@elsewhere.example") == \
        (554, b"5.7.1 <victim@elsewhere.example>: Relay access denied")
    c.quit()
    log = sb.log_text()
    assert (f"NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 <{nobody}>: Recipient "
            f"address rejected: User unknown in virtual mailbox table; from=<{OUTSIDE}> "
            f"to=<{nobody}> proto=ESMTP helo=<client.example>") in log
    assert ("NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 "
            "<victim@elsewhere.example>: Relay access denied; from=<sender@outside.example> "
            "to=<victim@elsewhere.example> proto=ESMTP helo=<client.example>") in log


RELAY_TRICKS = [
    f"victim%elsewhere.example@{DOMAIN}",         # %-hack
    f"@{DOMAIN}:victim@elsewhere.example",        # source route
    f"\"victim@elsewhere.example\"@{DOMAIN}",      # quoted local part with @
    f"victim@elsewhere.example@{DOMAIN}",         # user@ours@theirs
    f"elsewhere.example!victim@{DOMAIN}",         # bang path
    "victim@[192.0.2.1]",                         # address literal
]


@pytest.mark.parametrize("rcpt", RELAY_TRICKS)
def test_relay_tricks_refused(sb, rcpt):
    r = Raw(sb)
    r.cmd("EHLO client.example")
    assert r.cmd(f"MAIL FROM:<{OUTSIDE}>") == "250 2.1.0 Ok"
    reply = r.cmd(f"RCPT TO:<{rcpt}>")
    assert reply[0] == "5", (rcpt, reply)
    assert r.cmd("DATA").startswith("554 5.5.1"), "a refused recipient was kept"
    r.cmd("QUIT")


def test_mynetworks_client_may_relay(sb):
    c = smtp(sb, source=("127.0.0.2", 0))
    c.ehlo("inside.example")
    qid = send_ok(c, "app@inside.example", ["friend@elsewhere.example"], BODY)
    c.quit()
    assert qfcheck(sb, qid)[0]["rcpt"] == ["pending friend@elsewhere.example"]


def test_ten_thousand_recipients(sb):
    r = Raw(sb, timeout=60)
    r.cmd("EHLO client.example")
    r.cmd(f"MAIL FROM:<{OUTSIDE}>")
    r.send("".join(f"RCPT TO:<{ALICE}>\r\n" for _ in range(10000)))
    replies = [r.reply()[0] for _ in range(10000)]
    assert replies.count("250 2.1.5 Ok") == 1000
    assert replies.count("452 4.5.3 Error: too many recipients") == 9000
    assert r.cmd("RSET") == "250 2.0.0 Ok"
    assert r.cmd("QUIT") == "221 2.0.0 Bye"


# ---- AUTH and submission -------------------------------------------------------------------

def test_auth_refused_before_tls(sb):
    r = Raw(sb)
    r.cmd("EHLO client.example")
    assert r.cmd("AUTH PLAIN " + base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode()) \
        .startswith("503 5.5.1")
    r.close()
    r = Raw(sb, "submission")
    r.cmd("EHLO client.example")
    assert r.cmd("AUTH LOGIN") == "530 5.7.0 Must issue a STARTTLS command first"
    assert r.cmd(f"MAIL FROM:<{ALICE}>") == "530 5.7.0 Must issue a STARTTLS command first"
    r.close()


@pytest.mark.parametrize("service", ["submission", "smtps"])
def test_submission_needs_auth_and_owned_sender(sb, service):
    c = smtp(sb, service)
    c.ehlo("client.example")
    if service == "submission":
        c.starttls(context=tls_context(sb.ca))
        c.ehlo("client.example")
    assert c.mail(ALICE) == (530, b"5.7.0 Authentication required")
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        c.login(ALICE, "wrong password")
    assert e.value.smtp_code == 535
    c.login(ALICE, ALICE_PW)
    assert c.docmd("AUTH", "PLAIN")[0] == 503
    code, text = c.mail(BOB)
    assert (code, text) == (553, f"5.7.1 <{BOB}>: Sender address rejected: not owned by user "
                                 f"{ALICE}".encode())
    qid = send_ok(c, ALICE, ["friend@elsewhere.example", BOB], BODY)
    c.quit()
    env, msg = qfcheck(sb, qid)
    assert env["auth"] == ALICE and env["sender"] == ALICE
    received, _ = split_received(msg)
    assert "with ESMTPSA id" in received and "(using TLSv1.3 with cipher " in received
    assert "for <" not in received and ALICE not in received     # no login name leaked
    assert f"{qid}: client=unknown[127.0.0.1], sasl_method=" in sb.log_text()


def test_auth_exchanges(sb):
    r = Raw(sb, "smtps")
    r.cmd("EHLO client.example")
    assert r.cmd("AUTH PLAIN") == "334 "
    assert r.cmd("*") == "501 5.7.0 Authentication aborted"
    assert r.cmd("AUTH PLAIN !!!!").startswith("501 5.5.")    # the parser refuses it
    assert r.cmd("AUTH PLAIN") == "334 "
    assert r.cmd("!!!!") == "501 5.5.2 Cannot decode response"
    assert r.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert r.cmd(base64.b64encode(BOB.encode()).decode()) == "334 UGFzc3dvcmQ6"
    assert r.cmd(base64.b64encode(BOB_PW.encode()).decode()) == \
        "235 2.7.0 Authentication successful"
    assert r.cmd("AUTH LOGIN") == "503 5.5.1 Error: already authenticated"
    r.close()


def test_sasl_failures_are_read_by_fail2ban(sb, tmp_path):
    c = smtp(sb, "smtps")
    c.ehlo("client.example")
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        c.login(BOB, "not the password")       # smtplib tries PLAIN, then LOGIN
    assert e.value.smtp_code == 535
    c.close()
    lines = [ln for ln in sb.log_text().splitlines() if "authentication failed" in ln]
    for mech in ("PLAIN", "LOGIN"):
        assert any(f"SASL {mech} authentication failed: (reason unavailable), sasl_username="
                   f"{BOB}" in ln for ln in lines), lines
    assert any("SASL LOGIN authentication failed: (reason unavailable), sasl_username="
               f"{BOB}" in ln for ln in lines), lines
    log = tmp_path / "log"
    log.write_text("\n".join(lines) + "\n")
    res = subprocess.run(["fail2ban-regex", str(log),
                          "/etc/fail2ban/filter.d/postfix.conf[mode=auth]"],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"Lines: (\d+) lines, \d+ ignored, (\d+) matched, (\d+) missed", res.stdout)
    assert m and int(m.group(2)) >= 2 and int(m.group(3)) == 0, res.stdout[-2000:]


# ---- security regressions ------------------------------------------------------------------

SMUGGLING = {
    "bare LF dot bare LF": b"\n.\n",
    "bare CR dot bare CR": b"\r.\r",
    "bare LF dot CRLF": b"\n.\r\n",
    "CRLF dot bare LF": b"\r\n.\n",
    "bare CR dot CRLF": b"\r.\r\n",
    "CRLF dot bare CR": b"\r\n.\r",
    "bare LF in a line": b"\r\nsome\ntext\r\n",
}


@pytest.mark.parametrize("what", list(SMUGGLING))
def test_smuggling_never_ends_data(sb, what):
    r = Raw(sb)
    r.cmd("EHLO client.example")
    r.cmd(f"MAIL FROM:<{OUTSIDE}>")
    r.cmd(f"RCPT TO:<{ALICE}>")
    assert r.cmd("DATA").startswith("354 ")
    smuggled = f"MAIL FROM:<{OUTSIDE}>\r\nRCPT TO:<{BOB}>\r\nDATA\r\nSubject: smuggled\r\n\r\n" \
               "evil\r\n.\r\n"
    r.send(b"Subject: carrier\r\n\r\nhello" + SMUGGLING[what] + smuggled.encode() +
           b"\r\n.\r\n")
    reply = r.reply()
    assert reply and reply[0].startswith("521 5.5.2 "), (what, reply)
    assert "bare <LF> received" in reply[0]
    assert r.at_eof(), "the session went on after a bare newline"
    assert "Subject: smuggled" not in open_all_queue(sb)


def open_all_queue(sb):
    text = ""
    for p in glob.glob(os.path.join(sb.spool, "queue", "*", "*", "*", "*")):
        with open(p, "rb") as f:
            text += f.read().decode(errors="replace")
    return text


def test_starttls_injection(sb):
    r = Raw(sb)
    r.cmd("EHLO client.example")
    r.send("STARTTLS\r\nMAIL FROM:<injected@outside.example>\r\n")
    assert r.reply() == ["220 2.0.0 Ready to start TLS"]
    r.sock = tls_context(sb.ca).wrap_socket(r.sock, server_hostname="localhost")
    assert r.cmd("MAIL FROM:<x@outside.example>") == "503 5.5.1 Error: send HELO/EHLO first"
    r.send("EHLO client.example\r\n")
    assert r.reply()[-1] == "250 CHUNKING"
    assert r.cmd(f"MAIL FROM:<{OUTSIDE}>") == "250 2.1.0 Ok", "the injected MAIL was executed"
    assert r.cmd("STARTTLS").startswith("554 5.5.1")
    r.close()


@pytest.mark.parametrize("line", [b"NOOP a\0b", b"MAIL FROM:<a\0b@outside.example>",
                                  "EHLO h\u00e9llo.example".encode(), b"HELO \xff\xfe",
                                  b"XYZZY", b"MAIL FROM:<a@b> junk"])
def test_bad_bytes_in_commands(sb, line):
    r = Raw(sb)
    r.send(line + b"\r\n")
    assert re.match(r"^5\d\d 5\.\d\.\d ", r.reply()[0])
    assert r.cmd("NOOP") == "250 2.0.0 Ok"
    r.close()


def test_overlong_line_and_bare_lf_command(sb):
    r = Raw(sb)
    r.send("NOOP " + "x" * 20000 + "\r\nNOOP\r\n")
    assert r.reply() == ["500 5.5.2 Error: line too long"]
    assert r.reply() == ["250 2.0.0 Ok"]
    r.send("NOOP\n")
    assert r.reply()[0].startswith("500 5.5.2")
    assert r.cmd("QUIT") == "221 2.0.0 Bye"


def test_too_many_errors_disconnects(sb):
    r = Raw(sb)
    got = []
    for _ in range(25):
        r.send("XYZZY\r\n")
        reply = r.reply()
        if not reply:
            break
        got.append(reply[0])
        if got[-1].startswith("421"):
            break
    assert got[-1] == "421 4.7.0 mail.sandbox.test Error: too many errors", got[-3:]
    assert r.at_eof()


def test_silent_client_times_out(sb):
    r = Raw(sb)
    t0 = time.monotonic()
    assert r.reply() == ["421 4.4.2 mail.sandbox.test Error: timeout exceeded"]
    assert TIMEOUT_S - 0.5 < time.monotonic() - t0 < TIMEOUT_S + 5
    assert r.at_eof()
    assert re.search(r"timeout after CONNECT from unknown\[127\.0\.0\.1\]", sb.log_text())


def test_lost_connection_is_logged(sb):
    r = Raw(sb)
    r.cmd("EHLO client.example")
    r.cmd(f"MAIL FROM:<{OUTSIDE}>")
    r.cmd(f"RCPT TO:<{ALICE}>")
    r.cmd("DATA")
    r.send("Subject: cut\r\n\r\nhalf a mess")
    r.close()
    pat = re.compile(r"postern/smtpd\[\d+\]: lost connection after DATA \(\d+ bytes\) from "
                     r"unknown\[127\.0\.0\.1\]")
    deadline = time.monotonic() + 5
    while not pat.search(sb.log_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pat.search(sb.log_text())


# ---- swaks, pflogsumm ----------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
@pytest.mark.parametrize("service", ["smtp", "submission", "smtps"])
def test_swaks(sb, service):
    cmd = ["swaks", "--server", f"127.0.0.1:{sb.ports[service]}", "--helo", "swaks.example",
           "--timeout", "20", "--header", "Subject: via swaks"]
    if service == "smtp":
        cmd += ["--from", OUTSIDE, "--to", ALICE]
    else:
        cmd += ["--tlsc" if service == "smtps" else "--tls", "--auth", "LOGIN", "--auth-user",
                BOB, "--auth-password", BOB_PW, "--from", BOB, "--to", "x@elsewhere.example"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    m = re.search(r"250 2\.0\.0 Ok: queued as ([0-9A-F]{19})", res.stdout)
    assert m, res.stdout[-2000:]
    env, msg = qfcheck(sb, m.group(1))
    assert b"Subject: via swaks" in msg


@pytest.mark.skipif(shutil.which("pflogsumm") is None, reason="pflogsumm not installed")
def test_pflogsumm_reads_the_log(sb):
    c = smtp(sb)
    c.ehlo("client.example")
    send_ok(c, OUTSIDE, [ALICE], BODY)
    c.mail(OUTSIDE)
    c.rcpt("victim@elsewhere.example")
    c.quit()
    res = subprocess.run(["pflogsumm", "--syslog-name=postern", sb.log], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    rejected = re.search(r"^\s*(\d+)\s+rejected", res.stdout, re.M)
    assert rejected and int(rejected.group(1)) >= 1, res.stdout[:3000]
    assert "Relay access denied" in res.stdout, res.stdout[:5000]
