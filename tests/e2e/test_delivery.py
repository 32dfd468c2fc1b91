"""test_delivery: the whole path of issue 5, from an SMTP client to a Maildir, a remote sink or a
bounce, through smtpd, the queue, qmgr and the delivery agents.

The module runs one sandbox with qmgr and every agent enabled and the retry times cut to
seconds. The "outside world" is an SMTP sink in this process: smtp_host_override points
sink.test at it and dead.test at a port nobody listens on. Mail is sent with smtplib as a
client would; what a user would see is checked where they would see it: a Maildir's new/,
the sink's inbox, a bounce in the sender's Maildir, `postern mailq`.
"""

import email
import email.policy
import os
import re
import smtplib
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import finish_sandbox, start_sandbox, wait_until

DOMAIN = "deliv.test"
NAME = re.compile(r"^(\d+)\.M(\d+)P(\d+)Q(\d+)\.([^,/:]+),S=(\d+),W=(\d+)$")


# ---- the outside world: a small ESMTP sink -------------------------------------------------

class Sink:
    def __init__(self):
        self.lock = threading.Lock()
        self.rcpt_replies = {}          # address -> reply line
        self.messages = []              # (sender, [rcpts], data)


SINK = Sink()


class SinkHandler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.reply("220 sink.test ESMTP")
        sender, rcpts = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-sink.test")
                self.reply("250-8BITMIME")
                self.reply("250 ENHANCEDSTATUSCODES")
            elif verb == "MAIL":
                sender, rcpts = re.search(r"<([^>]*)>", cmd).group(1), []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                addr = re.search(r"<([^>]*)>", cmd).group(1)
                r = SINK.rcpt_replies.get(addr, "250 2.1.5 Ok")
                if r.startswith("250"):
                    rcpts.append(addr)
                self.reply(r)
            elif verb == "DATA":
                self.reply("354 go ahead")
                data = b""
                while True:
                    dl = self.rfile.readline()
                    if not dl or dl == b".\r\n":
                        break
                    data += dl[1:] if dl.startswith(b".") else dl
                with SINK.lock:
                    SINK.messages.append((sender, rcpts, data))
                self.reply("250 2.0.0 Ok: queued as SINK")
            elif verb == "RSET" or verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")


class SinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the sandbox ---------------------------------------------------------------------------

def admin(sb, *args, password=None):
    cmd = [os.path.join(sb.bindir, "postern"), "admin", "-c", sb.conf, *args]
    res = subprocess.run(cmd, input=password, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{args}: {res.stdout}{res.stderr}"
    return res


def postern(sb, *args):
    cmd = [os.path.join(sb.bindir, "postern"), *args[:1], "-c", sb.conf, *args[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


USERS = ("alice", "bob", "carol", "quota")


@pytest.fixture(scope="module")
def dsb():
    server = SinkServer(("127.0.0.1", 0), SinkHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port, dead = server.server_address[1], free_port()
    aliases_dir = tempfile.mkdtemp(prefix="postern-aliases-")
    os.chmod(aliases_dir, 0o755)
    aliases = os.path.join(aliases_dir, "aliases")
    with open(aliases, "w") as f:
        f.write(f"# test aliases\npostmaster: root\nroot: alice@{DOMAIN}\n")
    sb = start_sandbox("postern-deliv-", [
        "qmgr_enable=yes", "virtual_enable=yes", "local_enable=yes", "smtp_agent_enable=yes",
        "minimal_backoff_time=1s", "maximal_backoff_time=2s", "queue_run_delay=1s",
        "maximal_queue_lifetime=8s", "bounce_queue_lifetime=8s",
        f"aliases_file={aliases}",
        f"smtp_host_override=sink.test=127.0.0.1:{port} dead.test=127.0.0.1:{dead}"])
    try:
        admin(sb, "domain", "add", DOMAIN)
        for u in USERS:
            admin(sb, "user", "add", f"{u}@{DOMAIN}", "--password-stdin", password="pw\n")
        admin(sb, "alias", "add", f"team@{DOMAIN}", f"alice@{DOMAIN}")
        admin(sb, "alias", "add", f"team@{DOMAIN}", f"bob@{DOMAIN}")
        admin(sb, "alias", "add", f"team@{DOMAIN}", "partner@sink.test")
        admin(sb, "alias", "add", f"ping@{DOMAIN}", f"pong@{DOMAIN}")
        admin(sb, "alias", "add", f"pong@{DOMAIN}", f"ping@{DOMAIN}")
    except BaseException:
        finish_sandbox(sb)
        server.shutdown()
        shutil.rmtree(aliases_dir, ignore_errors=True)
        raise
    yield sb
    finish_sandbox(sb)
    server.shutdown()
    shutil.rmtree(aliases_dir, ignore_errors=True)


def maildir(sb, user):
    return os.path.join(sb.env["POSTERN_MAIL_ROOT"], DOMAIN, user, "Maildir")


def new_files(sb, user):
    d = os.path.join(maildir(sb, user), "new")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def read_msg(sb, user, name):
    with open(os.path.join(maildir(sb, user), "new", name), "rb") as f:
        return f.read()


def send(sb, sender, rcpts, subject, body="hello\r\n", relay=False):
    """Submit over port 25 as an outside client would (relay: from 127.0.0.2, which is in
    the sandbox's mynetworks, so remote recipients are accepted); the Message-ID."""
    mid = f"<{time.time_ns()}.{subject.replace(' ', '-')}@test>"
    msg = (f"From: <{sender}>\r\nTo: {', '.join(rcpts)}\r\n"
           f"Subject: {subject}\r\nMessage-ID: {mid}\r\n\r\n{body}")
    with smtplib.SMTP("127.0.0.1", int(sb.env["POSTERN_SMTP_PORT"]), timeout=30,
                      source_address=("127.0.0.2" if relay else "127.0.0.1", 0)) as s:
        s.sendmail(sender, rcpts, msg.encode())
    return mid


def find_by_mid(sb, user, mid, timeout=20):
    """Wait until a message with this Message-ID is in user's new/; its bytes."""
    found = []

    def look():
        found.clear()
        for n in new_files(sb, user):
            data = read_msg(sb, user, n)
            if mid.encode() in data:
                found.append((n, data))
        return found
    wait_until(look, timeout, what=f"{mid} in {user}'s Maildir")
    return found


def bounces_for(sb, user, mid):
    """Bounces in user's Maildir about the message with this Message-ID."""
    out = []
    for n in new_files(sb, user):
        data = read_msg(sb, user, n)
        if b"Undelivered Mail Returned to Sender" in data and mid.encode() in data:
            out.append(email.message_from_bytes(data, policy=email.policy.default))
    return out


def queue_empty(sb):
    spool = sb.env["POSTERN_SPOOL"]
    for d in ("incoming", "active", "deferred"):
        for _, _, files in os.walk(os.path.join(spool, "queue", d)):
            if files:
                return False
    return True


def sink_got(mid):
    with SINK.lock:
        return [(s, r, d) for s, r, d in SINK.messages if mid.encode() in d]


# ---- virtual delivery ----------------------------------------------------------------------

def test_message_lands_in_maildir_with_headers(dsb):
    mid = send(dsb, "someone@example.org", [f"carol@{DOMAIN}"], "to carol")
    ((name, data),) = find_by_mid(dsb, "carol", mid)
    m = NAME.match(name)
    assert m, f"not a Dovecot-style name: {name}"
    assert b"\r" not in data                # stored with LF line ends, as Dovecot does
    assert int(m.group(6)) == len(data)
    assert int(m.group(7)) == len(data) + data.count(b"\n")
    head = data.split(b"\n\n", 1)[0].decode()
    assert head.startswith("Return-Path: <someone@example.org>\n")
    assert f"\nDelivered-To: carol@{DOMAIN}\n" in head
    assert "\nReceived: from " in head
    assert data.endswith(b"hello\n")
    log = dsb.log_text()
    assert re.search(rf"postern/qmgr\[\d+\]: (\w+): from=<someone@example.org>, size=\d+, "
                     r"nrcpt=1 \(queue active\)", log)
    assert re.search(rf"postern/virtual\[\d+\]: \w+: to=<carol@{DOMAIN}>, relay=virtual, "
                     r"delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, "
                     r"status=sent \(delivered to maildir\)", log)
    wait_until(lambda: queue_empty(dsb), 10, what="empty queue")


def test_alias_reaches_two_users_and_an_outside_address(dsb):
    mid = send(dsb, "someone@example.org", [f"team@{DOMAIN}"], "team mail")
    find_by_mid(dsb, "alice", mid)
    find_by_mid(dsb, "bob", mid)
    wait_until(lambda: sink_got(mid), 20, what="the outside copy at the sink")
    ((sender, rcpts, _),) = sink_got(mid)
    assert sender == "someone@example.org"
    assert rcpts == ["partner@sink.test"]
    log = dsb.log_text()
    assert re.search(rf"to=<alice@{DOMAIN}>, orig_to=<team@{DOMAIN}>, relay=virtual", log)
    assert re.search(r"to=<partner@sink.test>, orig_to=<team@" + DOMAIN +
                     r">, relay=sink.test\[127.0.0.1\]:\d+, .*status=sent", log)
    wait_until(lambda: queue_empty(dsb), 10, what="empty queue")


def test_alias_loop_bounces_once(dsb):
    mid = send(dsb, f"bob@{DOMAIN}", [f"ping@{DOMAIN}"], "loop test")
    wait_until(lambda: bounces_for(dsb, "bob", mid), 20, what="the loop bounce")
    time.sleep(2)
    (b,) = bounces_for(dsb, "bob", mid)
    assert b["From"].startswith("MAILER-DAEMON@")
    assert b.get_content_type() == "multipart/report"
    report = [p for p in b.walk() if p.get_content_type() == "message/delivery-status"]
    assert report
    text = report[0].as_string()
    assert "Action: failed" in text and "Status: 5.4.6" in text
    assert f"Final-Recipient: rfc822; ping@{DOMAIN}" in text
    assert re.search(r"to=<ping@" + DOMAIN + r">, relay=none, .*dsn=5\.4\.6, "
                     r"status=bounced \(mail forwarding loop\)", dsb.log_text())


def test_unknown_alias_target_bounces_and_the_rest_is_delivered(dsb):
    admin(dsb, "alias", "add", f"ghost@{DOMAIN}", f"nobody-here@{DOMAIN}")
    mid = send(dsb, f"bob@{DOMAIN}", [f"ghost@{DOMAIN}", f"carol@{DOMAIN}"], "ghost test")
    find_by_mid(dsb, "carol", mid)
    wait_until(lambda: bounces_for(dsb, "bob", mid), 20, what="the bounce")
    (b,) = bounces_for(dsb, "bob", mid)
    text = b.as_string()
    assert f"Final-Recipient: rfc822; nobody-here@{DOMAIN}" in text
    assert "Status: 5.1.1" in text
    assert f"carol@{DOMAIN}" not in text.split("message/rfc822")[0].split("Reporting-MTA")[1]


# ---- remote delivery -----------------------------------------------------------------------

def test_remote_5xx_bounces_at_once_naming_the_reply(dsb):
    SINK.rcpt_replies["nosuch@sink.test"] = "550 5.1.1 <nosuch@sink.test>: mailbox unavailable"
    mid = send(dsb, f"bob@{DOMAIN}", ["nosuch@sink.test"], "remote reject", relay=True)
    wait_until(lambda: bounces_for(dsb, "bob", mid), 20, what="the bounce")
    (b,) = bounces_for(dsb, "bob", mid)
    text = b.as_string()
    assert "Status: 5.1.1" in text
    assert "Remote-MTA: dns; sink.test" in text
    assert "mailbox unavailable" in text
    assert "Diagnostic-Code: smtp;" in text


def test_unreachable_destination_is_deferred_then_returned(dsb):
    mid = send(dsb, f"bob@{DOMAIN}", ["someone@dead.test"], "dead end", relay=True)

    # first it waits in deferred/, and mailq says why
    def deferred_listed():
        r = postern(dsb, "mailq")
        return r.returncode == 0 and "someone@dead.test" in r.stdout and "(" in r.stdout
    wait_until(deferred_listed, 15, what="the message deferred in mailq")
    assert re.search(r"to=<someone@dead\.test>, relay=none, .*status=deferred", dsb.log_text())
    # then, past maximal_queue_lifetime (8 s), it comes back
    wait_until(lambda: bounces_for(dsb, "bob", mid), 40, what="the expiry bounce")
    (b,) = bounces_for(dsb, "bob", mid)
    assert b.get_content_type() == "multipart/report"
    assert b.get_param("report-type") == "delivery-status"
    parts = [p.get_content_type() for p in b.iter_parts()]
    assert parts[0] == "text/plain" and parts[1] == "message/delivery-status"
    assert parts[2] in ("message/rfc822", "text/rfc822-headers")
    text = b.as_string()
    assert "Action: failed" in text and "Final-Recipient: rfc822; someone@dead.test" in text
    assert "status=expired, returned to sender" in dsb.log_text()
    wait_until(lambda: queue_empty(dsb), 15, what="empty queue")


# ---- local: root and postmaster ------------------------------------------------------------

def test_postmaster_and_root_reach_the_configured_person(dsb):
    mid1 = send(dsb, "someone@example.org", [f"postmaster@{DOMAIN}"], "for postmaster")
    find_by_mid(dsb, "alice", mid1, timeout=30)
    mid2 = send(dsb, "someone@example.org", ["root@localhost"], "for root", relay=True)
    find_by_mid(dsb, "alice", mid2, timeout=30)


# ---- quota ---------------------------------------------------------------------------------

def test_over_quota_bounces_with_552(dsb):
    md = maildir(dsb, "quota")
    path = os.path.join(md, "maildirsize")
    with open(path, "w") as f:
        f.write("10S\n0 0\n")
    st = os.stat(os.path.join(md, "new"))
    os.chown(path, st.st_uid, st.st_gid)
    try:
        mid = send(dsb, f"bob@{DOMAIN}", [f"quota@{DOMAIN}"], "too big for quota")
        wait_until(lambda: bounces_for(dsb, "bob", mid), 20, what="the quota bounce")
        (b,) = bounces_for(dsb, "bob", mid)
        assert "Status: 5.2.2" in b.as_string()
        assert not [n for n in new_files(dsb, "quota") if mid.encode() in read_msg(dsb, "quota", n)]
    finally:
        os.unlink(path)


# ---- queue control -------------------------------------------------------------------------

def test_hold_release_and_delete(dsb):
    for i in range(2):
        send(dsb, f"bob@{DOMAIN}", [f"held{i}@dead.test"], f"hold {i}", relay=True)

    def ids():
        r = postern(dsb, "mailq")
        return re.findall(r"^([0-9A-F]{19})[*!]?\s", r.stdout, re.M)
    wait_until(lambda: len(ids()) >= 2, 15, what="two messages in mailq")
    first, second = ids()[:2]
    r = postern(dsb, "queue", "hold", first)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: re.search(rf"^{first}!", postern(dsb, "mailq").stdout, re.M), 15,
               what="the held marker")
    r = postern(dsb, "queue", "delete", second)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: second not in postern(dsb, "mailq").stdout, 15, what="deletion")
    assert re.search(rf"{second}: removed", dsb.log_text())
    r = postern(dsb, "queue", "release", first)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: not re.search(rf"^{first}!", postern(dsb, "mailq").stdout, re.M), 15,
               what="release")
    r = postern(dsb, "queue", "delete", "ALL")
    assert r.returncode == 0
    wait_until(lambda: queue_empty(dsb), 15, what="empty queue")
    r = postern(dsb, "queue", "delete", "0" * 19)
    assert r.returncode != 0
