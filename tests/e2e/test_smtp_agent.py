"""test_smtp_agent: postern-smtp from the outside (issue 5, lib/deliverproto.h).

Each test plays qmgr as test_virtual does: a queue file written by build/tests/tools/qfwrite,
opened read-only and sent with DELIVER over $POSTERN_SPOOL/private/smtp, as root, on one
connection per test unless the test needs several requests on one (connection reuse). The far
side is a tiny ESMTP sink in this process (a socketserver thread) whose behaviour the tests
switch: 550 or 452 on one recipient, a 421 greeting, no 8BITMIME, no PIPELINING, STARTTLS
with the sandbox's certificate, AUTH PLAIN/LOGIN with a chosen answer, a refused RSET. It
records every command, every chunk it received in one recv() (to see pipelining), every
AUTH exchange and the number of TCP connections.

Three sandboxes: `ssb` delivers by MX (smtp_host_override points sink.test at SINK;
refused.test at a port nobody listens on); `relay` sends everything to RELAY as relayhost
with credentials from a root-owned 0600 smtp_sasl_password_file; `unsafe` has a
group-readable password file, which must not be used.
"""

import base64
import os
import re
import shutil
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

import postern_ipc as ipc
from conftest import PYTHON, finish_sandbox, start_sandbox, wait_until
from test_virtual import DELIVER, QFWRITE, QueueFile, request

DOMAIN = "sink.test"
BODY = (b"From: sender@example.org\r\nTo: a@sink.test\r\nSubject: smtp agent test\r\n\r\n"
        b"line one\r\n.leading dot\r\n..two dots\r\n.\r\nlast line\r\n")
SASL_USER = "relayuser@example.org"
SASL_PASSWORD = "pa:ss w0rd#1"            # a colon, a space and a '#' inside: all kept
CACHE_TIME = 2.0                          # smtp_connection_cache_time's default


# ---- the sink ------------------------------------------------------------------------------

class Sink:
    """What one sink does and what it received."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tls_ctx = None             # server context for STARTTLS (set once)
        self.active = 0                 # connections open now
        self.reset()

    def reset(self):
        self.greeting = "220 sink.test ESMTP"
        self.eightbit = True
        self.pipelining = True
        self.starttls = False           # offer STARTTLS
        self.auth = []                  # AUTH mechanisms offered
        self.auth_reply = "235 2.7.0 Authentication successful"
        self.mail_reply = "250 2.1.0 Ok"
        self.rset_reply = "250 2.0.0 Ok"
        self.close_after_data = False
        self.rcpt_replies = {}          # address -> reply line
        self.messages = []              # (mail_from_line, [rcpts], data bytes)
        self.commands = []
        self.chunks = []                # bytes of each recv() outside DATA
        self.auths = []                 # (mechanism, user, password, over_tls)
        self.connections = 0

    def wait_idle(self, timeout=10):
        wait_until(lambda: self.active == 0, timeout, what="the sink's connections to end")


SINK, RELAY, UNSAFE = Sink(), Sink(), Sink()


class SinkHandler(socketserver.BaseRequestHandler):
    def setup(self):
        self.sink = self.server.sink
        self.sock = self.request
        self.buf = b""
        self.tls = False
        self.in_data = False

    def reply(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def readline(self):
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except (OSError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return None
            if not self.in_data:
                self.sink.chunks.append(chunk)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def handle(self):
        with self.sink.lock:
            self.sink.connections += 1
            self.sink.active += 1
        try:
            self.converse()
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            with self.sink.lock:
                self.sink.active -= 1

    def ehlo(self):
        sink = self.sink
        exts = ["sink.test"]
        if sink.pipelining:
            exts.append("PIPELINING")
        exts.append("SIZE 10000000")
        if sink.eightbit:
            exts.append("8BITMIME")
        if sink.starttls and not self.tls:
            exts.append("STARTTLS")
        if sink.auth:
            exts.append("AUTH " + " ".join(sink.auth))
        exts.append("ENHANCEDSTATUSCODES")
        for i, e in enumerate(exts):
            self.reply(("250 " if i == len(exts) - 1 else "250-") + e)

    def challenge(self, text):
        self.reply("334 " + text)
        line = self.readline()
        return None if line is None else line.decode("latin-1").strip()

    def auth(self, cmd):
        sink = self.sink
        parts = cmd.split()
        mech = parts[1].upper() if len(parts) > 1 else ""
        if mech not in sink.auth:
            self.reply("504 5.5.4 Unrecognized authentication type")
            return True
        if mech == "PLAIN":
            resp = parts[2] if len(parts) > 2 else self.challenge("")
            if resp is None:
                return False
            _, user, password = base64.b64decode(resp).split(b"\0", 2)
        else:
            u = self.challenge("VXNlcm5hbWU6")
            p = u and self.challenge("UGFzc3dvcmQ6")
            if p is None:
                return False
            user, password = base64.b64decode(u), base64.b64decode(p)
        sink.auths.append((mech, user.decode(), password.decode(), self.tls))
        self.reply(sink.auth_reply)
        return True

    def data(self, mail, rcpts):
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        data = b""
        self.in_data = True
        while True:
            dl = self.readline()
            if not dl or dl == b".\r\n":
                break
            data += dl[1:] if dl.startswith(b".") else dl
        self.in_data = False
        self.sink.messages.append((mail, rcpts, data))
        self.reply("250 2.0.0 Ok: queued as SINK1")

    def converse(self):
        sink = self.sink
        self.reply(sink.greeting)
        if not sink.greeting.startswith("220"):
            self.readline()
            return
        mail, rcpts = None, []
        while True:
            line = self.readline()
            if line is None:
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            sink.commands.append(cmd)
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.ehlo()
            elif verb == "STARTTLS" and sink.starttls and not self.tls:
                self.reply("220 2.0.0 Ready to start TLS")
                self.buf = b""
                self.sock = sink.tls_ctx.wrap_socket(self.sock, server_side=True)
                self.tls = True
            elif verb == "AUTH":
                if not self.auth(cmd):
                    return
            elif verb == "MAIL":
                self.reply(sink.mail_reply)
                mail, rcpts = (cmd if sink.mail_reply.startswith("250") else None), []
            elif verb == "RCPT":
                if mail is None:
                    self.reply("503 5.5.1 Error: need MAIL command")
                    continue
                addr = re.search(r"<([^>]*)>", cmd).group(1)
                r = sink.rcpt_replies.get(addr, "250 2.1.5 Ok")
                if r.startswith("250"):
                    rcpts.append(addr)
                self.reply(r)
            elif verb == "DATA":
                if not rcpts:
                    self.reply("554 5.5.1 Error: no valid recipients")
                    continue
                self.data(mail, rcpts)
                mail, rcpts = None, []
                if sink.close_after_data:
                    return
            elif verb == "RSET":
                mail, rcpts = None, []
                self.reply(sink.rset_reply)
                if not sink.rset_reply.startswith("250"):
                    return
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")


class SinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_sink(sink):
    server = SinkServer(("127.0.0.1", 0), SinkHandler)
    server.sink = sink
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sink_tls_context(sb):
    """The sandbox's own certificate and key, for the sink's STARTTLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sb.ca, os.path.join(os.path.dirname(sb.ca), "key.pem"))
    return ctx


# ---- fixtures and helpers ------------------------------------------------------------------

def agent_sandbox(prefix, sets):
    if not os.access(QFWRITE, os.X_OK):
        pytest.fail(f"{QFWRITE} is missing: run `make all` first")
    sb = start_sandbox(prefix, ["smtp_agent_enable=yes", *sets])
    try:
        wait_ready(sb)
    except BaseException:
        finish_sandbox(sb)
        raise
    return sb


@pytest.fixture(scope="module")
def ssb():
    server = start_sink(SINK)
    port = server.server_address[1]
    dead = free_port()
    try:
        sb = agent_sandbox("postern-smtp-", [
            f"smtp_host_override={DOMAIN}=127.0.0.1:{port} refused.test=127.0.0.1:{dead}"])
    except BaseException:
        server.shutdown()
        raise
    sb.sink_port = port
    SINK.tls_ctx = sink_tls_context(sb)
    yield sb
    finish_sandbox(sb)
    server.shutdown()


NEXTHOP_USER, NEXTHOP_PASSWORD = "hop", "nexthop-secret"


def password_file(directory, port, mode):
    path = os.path.join(directory, "sasl_passwd")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# relayhost credentials\n\n"
                "other.example:587   someone:else\n"
                f"[127.0.0.1]:{port}\t{SASL_USER}:{SASL_PASSWORD}\r\n"
                "  # an indented comment\n"
                f"relay.test {NEXTHOP_USER}:{NEXTHOP_PASSWORD}\n")
    os.chmod(path, mode)
    return path


@pytest.fixture(scope="module")
def relay():
    server = start_sink(RELAY)
    port = server.server_address[1]
    d = tempfile.mkdtemp(prefix="postern-sasl-")
    try:
        pw = password_file(d, port, 0o600)
        sb = agent_sandbox("postern-smtp-relay-", [
            f"relayhost=[127.0.0.1]:{port}", f"smtp_sasl_password_file={pw}",
            f"smtp_host_override=relay.test=127.0.0.1:{port}"])
    except BaseException:
        server.shutdown()
        shutil.rmtree(d, ignore_errors=True)
        raise
    sb.sink_port = port
    RELAY.tls_ctx = sink_tls_context(sb)
    yield sb
    finish_sandbox(sb)
    server.shutdown()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def unsafe():
    server = start_sink(UNSAFE)
    port = server.server_address[1]
    d = tempfile.mkdtemp(prefix="postern-sasl-")
    try:
        pw = password_file(d, port, 0o640)
        sb = agent_sandbox("postern-smtp-unsafe-", [
            f"relayhost=[127.0.0.1]:{port}", f"smtp_sasl_password_file={pw}"])
    except BaseException:
        server.shutdown()
        shutil.rmtree(d, ignore_errors=True)
        raise
    sb.password_file = pw
    yield sb
    finish_sandbox(sb)
    server.shutdown()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tmp():
    for sink in (SINK, RELAY, UNSAFE):  # the last test's connections (QUIT) are over
        sink.wait_idle()
        sink.reset()
    d = tempfile.mkdtemp(prefix="postern-sq-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def sock_path(sb):
    return os.path.join(sb.spool, "private", "smtp")


def wait_ready(sb):
    def answers():
        try:
            with ipc.connect(sock_path(sb), 2) as s:
                r = ipc.call(s, DELIVER, {"nrcpt": 1}, 1, 2)
                return r is not None and r.status == ipc.PERMFAIL
        except OSError:
            return False
    wait_until(answers, 20, interval=0.1, what="postern-smtp answering")


class Qmgr:
    """One connection to postern-smtp, as qmgr holds it: requests one after another."""

    def __init__(self, sb, tmpdir, timeout=60):
        self.tmp = tmpdir
        self.timeout = timeout
        self.sock = ipc.connect(sock_path(sb), timeout)
        self.sock.settimeout(timeout)
        self.next_id = 9

    def deliver(self, rcpts, body=BODY, body_type="7BIT", nexthop=None):
        """One request; the qid, the reply and the per-recipient (code, dsn, text, relay)."""
        qf = QueueFile(self.tmp, body=body, rcpts=rcpts)
        try:
            attrs = [(k, body_type if k == "body" else v) for k, v in request(qf, rcpts)]
            if nexthop is not None:
                attrs.append(("nexthop", nexthop))
            id_ = self.next_id
            self.next_id += 1
            socket.send_fds(self.sock, [ipc.encode(DELIVER, id_, attrs, nfds=1)], [qf.fd])
            reply = ipc.recv_msg(self.sock)
        finally:
            qf.close()
        assert reply is not None and reply.id == id_, reply
        out = []
        if reply.status == ipc.OK:
            for i in range(len(rcpts)):
                out.append((reply.get(f"code{i}"), reply.get(f"dsn{i}"),
                            reply.get(f"text{i}"), reply.get(f"relay{i}")))
        return qf.qid, reply, out

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def deliver(sb, tmp, rcpts, body=BODY, body_type="7BIT", nexthop=None):
    """One request on a connection of its own."""
    with Qmgr(sb, tmp) as q:
        return q.deliver(rcpts, body, body_type, nexthop)


def log_line(sb, qid, rcpt, rest, timeout=5):
    line = re.compile(rf"postern/smtp-agent\[\d+\]: {qid}: to=<{re.escape(rcpt)}>, {rest}",
                      re.M)
    return wait_until(lambda: line.search(sb.log_text()), timeout,
                      what=f"the log line for {qid} to {rcpt}")


def verbs(sink):
    return [c.split(" ", 1)[0].upper() for c in sink.commands]


# ---- delivery by MX ------------------------------------------------------------------------

def test_delivers_exact_bytes_and_logs(ssb, tmp):
    qid, reply, res = deliver(ssb, tmp, [f"a@{DOMAIN}"])
    assert reply.status == ipc.OK, reply
    relay = f"{DOMAIN}[127.0.0.1]:{ssb.sink_port}"
    assert res == [(250, "2.0.0", "250 2.0.0 Ok: queued as SINK1", relay)]
    (mail, rcpts, data), = SINK.messages
    assert mail == "MAIL FROM:<sender@example.org> SIZE=%d" % len(BODY)
    assert rcpts == [f"a@{DOMAIN}"]
    assert data == BODY                          # dot-stuffing undone by the sink
    assert any(c.startswith("EHLO ") for c in SINK.commands)
    # The connection was kept for a next request; closing ours lets it go with QUIT.
    wait_until(lambda: SINK.commands and SINK.commands[-1] == "QUIT", 5, what="QUIT")
    log_line(ssb, qid, f"a@{DOMAIN}",
             rf"relay={re.escape(relay)}, delay=[\d.]+, "
             r"delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, "
             r"status=sent \(250 2\.0\.0 Ok: queued as SINK1\)$")


def test_one_rcpt_550_other_250(ssb, tmp):
    SINK.rcpt_replies[f"bad@{DOMAIN}"] = "550 5.1.1 <bad@sink.test>: no such user"
    qid, reply, res = deliver(ssb, tmp, [f"bad@{DOMAIN}", f"good@{DOMAIN}"])
    assert reply.status == ipc.OK, reply
    assert res[0][:3] == (550, "5.1.1", "host sink.test[127.0.0.1] said: 550 5.1.1 "
                          "<bad@sink.test>: no such user (in reply to RCPT TO command)")
    assert res[1][:2] == (250, "2.0.0")
    (_, rcpts, data), = SINK.messages
    assert rcpts == [f"good@{DOMAIN}"] and data == BODY
    log_line(ssb, qid, f"bad@{DOMAIN}", r"relay=sink\.test\[127\.0\.0\.1\]:\d+, "
             r".*dsn=5\.1\.1, status=bounced \(host sink\.test")


def test_rcpt_452_defers_that_one(ssb, tmp):
    SINK.rcpt_replies[f"later@{DOMAIN}"] = "452 4.2.2 mailbox full"
    _, _, res = deliver(ssb, tmp, [f"later@{DOMAIN}", f"now@{DOMAIN}"])
    assert res[0][:2] == (452, "4.2.2") and "in reply to RCPT TO command" in res[0][2]
    assert res[1][0] == 250


def test_greeting_421_defers(ssb, tmp):
    SINK.greeting = "421 4.3.2 sink busy"
    qid, _, res = deliver(ssb, tmp, [f"a@{DOMAIN}", f"b@{DOMAIN}"])
    for code, dsn, text, _ in res:
        assert code == 421 and dsn == "4.3.2", res
        assert "refused to talk to me: 421 4.3.2 sink busy" in text
    assert SINK.messages == []
    log_line(ssb, qid, f"a@{DOMAIN}", r".*status=deferred \(")


def test_8bit_to_peer_without_8bitmime_bounces(ssb, tmp):
    SINK.eightbit = False
    body = BODY.replace(b"line one", "grüße".encode())
    _, _, res = deliver(ssb, tmp, [f"a@{DOMAIN}"], body=body, body_type="8BITMIME")
    assert res[0][:2] == (554, "5.6.3"), res
    assert SINK.messages == []
    assert not any(c.startswith("MAIL") for c in SINK.commands)


def test_8bitmime_offered_sends_body_param(ssb, tmp):
    body = BODY.replace(b"line one", "grüße".encode())
    _, _, res = deliver(ssb, tmp, [f"a@{DOMAIN}"], body=body, body_type="8BITMIME")
    assert res[0][0] == 250, res
    (mail, _, data), = SINK.messages
    assert mail.endswith(" BODY=8BITMIME") and data == body


def test_connection_refused_defers(ssb, tmp):
    qid, _, res = deliver(ssb, tmp, ["x@refused.test"])
    code, dsn, text, relay = res[0]
    assert (code // 100, dsn) == (4, "4.4.1"), res
    assert re.fullmatch(r"connect to refused\.test\[127\.0\.0\.1\]:\d+: Connection refused",
                        text), text
    # no session was made: Postfix says relay=none then
    assert relay == "none"
    log_line(ssb, qid, "x@refused.test", r"relay=none,"
             r" .*dsn=4\.4\.1, status=deferred \(connect to refused\.test\[127")


def test_mixed_domains_permfail(ssb, tmp):
    _, reply, _ = deliver(ssb, tmp, [f"a@{DOMAIN}", "b@other.test"])
    assert reply.status == ipc.PERMFAIL
    assert SINK.commands == []


def test_peer_not_on_allow_list(ssb):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import postern_ipc as ipc\n"
        "s = ipc.connect(sys.argv[2])\n"
        "r = ipc.call(s, 40, {'nrcpt': 1})\n"
        "print(r.status, r.get('reason'))\n")
    res = subprocess.run([PYTHON, "-c", code, os.path.dirname(__file__), sock_path(ssb)],
                         user="postern", group="postern-queue", extra_groups=[],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{ipc.PERMFAIL} not allowed"


def test_two_qmgr_connections_served_at_once(ssb, tmp):
    """A pool: one process per qmgr connection, so an idle one does not block another."""
    with Qmgr(ssb, tmp) as idle, Qmgr(ssb, tmp, timeout=20) as busy:
        _, reply, res = busy.deliver([f"a@{DOMAIN}"])
        assert reply.status == ipc.OK and res[0][0] == 250, res
        _, reply, res = idle.deliver([f"b@{DOMAIN}"])
        assert reply.status == ipc.OK and res[0][0] == 250, res
    assert SINK.connections == 2


# ---- pipelining ----------------------------------------------------------------------------

def test_pipelining_used_when_offered(ssb, tmp):
    rcpts = [f"p{i}@{DOMAIN}" for i in range(3)]
    _, _, res = deliver(ssb, tmp, rcpts)
    assert [r[0] for r in res] == [250, 250, 250], res
    assert verbs(SINK)[1:6] == ["MAIL", "RCPT", "RCPT", "RCPT", "DATA"], SINK.commands
    groups = [c for c in SINK.chunks if b"MAIL FROM:" in c]
    assert len(groups) == 1, SINK.chunks
    assert groups[0].count(b"RCPT TO:") == 3 and groups[0].endswith(b"DATA\r\n"), groups[0]


def test_no_pipelining_when_not_offered(ssb, tmp):
    SINK.pipelining = False
    rcpts = [f"s{i}@{DOMAIN}" for i in range(2)]
    _, _, res = deliver(ssb, tmp, rcpts)
    assert [r[0] for r in res] == [250, 250], res
    assert verbs(SINK)[1:5] == ["MAIL", "RCPT", "RCPT", "DATA"], SINK.commands
    for chunk in SINK.chunks:                   # each command waited for its reply
        assert chunk.count(b"\r\n") == 1, SINK.chunks


def test_pipelined_mail_from_refused(ssb, tmp):
    SINK.mail_reply = "553 5.7.1 <sender@example.org>: sender rejected"
    qid, _, res = deliver(ssb, tmp, [f"a@{DOMAIN}", f"b@{DOMAIN}"])
    for code, dsn, text, _ in res:
        assert (code, dsn) == (553, "5.7.1"), res
        assert text == ("host sink.test[127.0.0.1] said: 553 5.7.1 <sender@example.org>: "
                        "sender rejected (in reply to MAIL FROM command)")
    assert SINK.messages == []
    # MAIL, both RCPTs and DATA went out together; the 503/554 answers were read and
    # ignored, and the conversation ended cleanly.
    assert verbs(SINK)[1:] == ["MAIL", "RCPT", "RCPT", "DATA", "QUIT"], SINK.commands


def test_pipelined_all_rcpts_refused(ssb, tmp):
    for r in ("x", "y"):
        SINK.rcpt_replies[f"{r}@{DOMAIN}"] = f"550 5.1.1 <{r}@{DOMAIN}>: no such user"
    _, _, res = deliver(ssb, tmp, [f"x@{DOMAIN}", f"y@{DOMAIN}"])
    assert [(r[0], r[1]) for r in res] == [(550, "5.1.1"), (550, "5.1.1")], res
    assert SINK.messages == []
    SINK.wait_idle()
    assert verbs(SINK)[-1] == "QUIT"


# ---- nexthop ------------------------------------------------------------------------------

def test_nexthop_bracketed_overrides_domain(ssb, tmp):
    rcpt = "someone@elsewhere.invalid"          # no such domain: only the nexthop can work
    qid, reply, res = deliver(ssb, tmp, [rcpt], nexthop=f"[127.0.0.1]:{ssb.sink_port}")
    relay = f"127.0.0.1[127.0.0.1]:{ssb.sink_port}"
    assert res == [(250, "2.0.0", "250 2.0.0 Ok: queued as SINK1", relay)], res
    (_, rcpts, _), = SINK.messages
    assert rcpts == [rcpt]
    log_line(ssb, qid, rcpt, rf"relay={re.escape(relay)}, .*status=sent")


def test_nexthop_domain_uses_its_mx(ssb, tmp):
    rcpts = ["one@first.invalid", "two@second.invalid"]   # one destination: any domains
    _, reply, res = deliver(ssb, tmp, rcpts, nexthop=DOMAIN)
    relay = f"{DOMAIN}[127.0.0.1]:{ssb.sink_port}"
    assert [(r[0], r[3]) for r in res] == [(250, relay), (250, relay)], res
    (_, got, _), = SINK.messages
    assert got == rcpts


def test_nexthop_bad_syntax_defers(ssb, tmp):
    _, reply, res = deliver(ssb, tmp, [f"a@{DOMAIN}"], nexthop="[127.0.0.1")
    assert res[0][:2] == (451, "4.3.5"), res
    assert "bad nexthop" in res[0][2]
    assert SINK.connections == 0


def test_without_nexthop_domain_decides(ssb, tmp):
    """The control for the nexthop tests: the same recipient without one fails."""
    _, _, res = deliver(ssb, tmp, ["someone@elsewhere.invalid"])
    assert res[0][0] // 100 in (4, 5) and res[0][0] != 250, res
    assert SINK.connections == 0


# ---- connection reuse ----------------------------------------------------------------------

def test_connection_reused_then_expires(ssb, tmp):
    with Qmgr(ssb, tmp) as q:
        qid1, _, res1 = q.deliver([f"r1@{DOMAIN}"])
        qid2, _, res2 = q.deliver([f"r2@{DOMAIN}"])
        relay = f"{DOMAIN}[127.0.0.1]:{ssb.sink_port}"
        assert res1[0][0] == 250 and res2[0] == (250, "2.0.0", "250 2.0.0 Ok: queued as "
                                                 "SINK1", relay), (res1, res2)
        assert SINK.connections == 1
        assert [m[1] for m in SINK.messages] == [[f"r1@{DOMAIN}"], [f"r2@{DOMAIN}"]]
        assert verbs(SINK)[1:] == ["MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"], \
            SINK.commands
        log_line(ssb, qid2, f"r2@{DOMAIN}", rf"relay={re.escape(relay)}, delay=[\d.]+, "
                 r"delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, status=sent \(250 ")
        # Idle past smtp_connection_cache_time: the agent says QUIT by itself.
        wait_until(lambda: SINK.active == 0, CACHE_TIME + 5, what="the cached connection "
                   "to be let go")
        assert verbs(SINK)[-1] == "QUIT"
        assert SINK.connections == 1
        _, _, res3 = q.deliver([f"r3@{DOMAIN}"])
        assert res3[0][0] == 250, res3
        assert SINK.connections == 2
    SINK.wait_idle()
    assert verbs(SINK).count("QUIT") == 2


def test_no_reuse_for_another_destination(ssb, tmp):
    with Qmgr(ssb, tmp) as q:
        _, _, res1 = q.deliver([f"a@{DOMAIN}"])
        _, _, res2 = q.deliver(["b@other.invalid"], nexthop=f"[127.0.0.1]:{ssb.sink_port}")
        assert res1[0][0] == 250 and res2[0][0] == 250, (res1, res2)
        assert res2[0][3] == f"127.0.0.1[127.0.0.1]:{ssb.sink_port}"
        assert SINK.connections == 2
        v = verbs(SINK)
        assert "RSET" not in v
        assert v.index("QUIT") < len(v) - 1 - v[::-1].index("EHLO"), v   # QUIT, then anew


def test_cached_connection_refusing_rset_falls_back(ssb, tmp):
    SINK.rset_reply = "421 4.4.2 sink.test closing: idle too long"
    with Qmgr(ssb, tmp) as q:
        _, _, res1 = q.deliver([f"a@{DOMAIN}"])
        qid, _, res2 = q.deliver([f"b@{DOMAIN}"])
    assert res1[0][0] == 250 and res2[0][:2] == (250, "2.0.0"), (res1, res2)
    assert SINK.connections == 2 and len(SINK.messages) == 2
    assert "RSET" in verbs(SINK)
    log_line(ssb, qid, f"b@{DOMAIN}", r".*status=sent")


def test_cached_connection_closed_by_server_falls_back(ssb, tmp):
    SINK.close_after_data = True
    with Qmgr(ssb, tmp) as q:
        _, _, res1 = q.deliver([f"a@{DOMAIN}"])
        time.sleep(0.2)                          # the server has hung up meanwhile
        _, _, res2 = q.deliver([f"b@{DOMAIN}"])
        _, _, res3 = q.deliver([f"c@{DOMAIN}"])  # and at once after the delivery
    assert [r[0][0] for r in (res1, res2, res3)] == [250, 250, 250], (res1, res2, res3)
    assert SINK.connections == 3 and len(SINK.messages) == 3


# ---- relayhost with AUTH -------------------------------------------------------------------

def relay_name(sb):
    return f"127.0.0.1[127.0.0.1]:{sb.sink_port}"


def assert_secret_not_logged(sb):
    text = sb.log_text()
    plain = base64.b64encode(f"\0{SASL_USER}\0{SASL_PASSWORD}".encode()).decode()
    assert SASL_PASSWORD not in text and plain not in text
    assert base64.b64encode(SASL_PASSWORD.encode()).decode() not in text


def test_relay_auth_plain_over_starttls(relay, tmp):
    RELAY.starttls, RELAY.auth = True, ["LOGIN", "PLAIN"]
    qid, reply, res = deliver(relay, tmp, ["x@anywhere.example"])
    assert res == [(250, "2.0.0", "250 2.0.0 Ok: queued as SINK1", relay_name(relay))], res
    assert RELAY.auths == [("PLAIN", SASL_USER, SASL_PASSWORD, True)]
    v = verbs(RELAY)
    assert v.index("STARTTLS") < v.index("AUTH") < v.index("MAIL"), v
    log_line(relay, qid, "x@anywhere.example",
             rf"relay={re.escape(relay_name(relay))}, .*status=sent")
    assert re.search(r"Anonymous TLS connection established to "
                     rf"{re.escape(relay_name(relay))}", relay.log_text())
    assert_secret_not_logged(relay)


def test_relay_auth_login(relay, tmp):
    RELAY.starttls, RELAY.auth = True, ["LOGIN"]
    _, _, res = deliver(relay, tmp, ["y@anywhere.example"])
    assert res[0][0] == 250, res
    assert RELAY.auths == [("LOGIN", SASL_USER, SASL_PASSWORD, True)]
    assert_secret_not_logged(relay)


def test_relay_auth_refused_defers(relay, tmp):
    RELAY.starttls, RELAY.auth = True, ["PLAIN"]
    RELAY.auth_reply = "535 5.7.8 Error: authentication failed"
    qid, reply, res = deliver(relay, tmp, ["z@anywhere.example"])
    code, dsn, text, rel = res[0]
    assert code // 100 == 4 and dsn == "4.7.0", res
    assert text == ("SASL authentication failed; server 127.0.0.1[127.0.0.1] said: "
                    "535 5.7.8 Error: authentication failed")
    assert rel == relay_name(relay)
    assert "MAIL" not in verbs(RELAY) and RELAY.messages == []
    log_line(relay, qid, "z@anywhere.example", r".*dsn=4\.7\.0, status=deferred \(SASL "
             r"authentication failed")
    assert_secret_not_logged(relay)


def test_relay_without_starttls_gets_no_password(relay, tmp):
    RELAY.starttls, RELAY.auth = False, ["PLAIN", "LOGIN"]
    _, _, res = deliver(relay, tmp, ["w@anywhere.example"])
    code, dsn, text, _ = res[0]
    assert code // 100 == 4 and dsn == "4.7.0", res
    assert "TLS is required for SASL authentication" in text
    assert "does not offer STARTTLS" in text
    assert RELAY.auths == [] and "AUTH" not in verbs(RELAY) and "MAIL" not in verbs(RELAY)
    assert_secret_not_logged(relay)


def test_relay_no_common_mechanism_defers(relay, tmp):
    RELAY.starttls, RELAY.auth = True, ["CRAM-MD5", "XOAUTH2"]
    _, _, res = deliver(relay, tmp, ["v@anywhere.example"])
    assert res[0][:2] == (454, "4.7.0") and "no mechanism available" in res[0][2], res
    assert RELAY.auths == [] and RELAY.messages == []


def test_relay_reuse_authenticates_once(relay, tmp):
    RELAY.starttls, RELAY.auth = True, ["PLAIN"]
    with Qmgr(relay, tmp) as q:
        for i in range(3):
            _, _, res = q.deliver([f"u{i}@anywhere.example"])
            assert res[0][0] == 250, res
    assert RELAY.connections == 1 and len(RELAY.messages) == 3
    assert len(RELAY.auths) == 1 and verbs(RELAY).count("STARTTLS") == 1
    assert verbs(RELAY).count("RSET") == 2


def test_nexthop_credentials_by_exact_name(relay, tmp):
    """The file is looked up with the nexthop as given: relay.test has its own entry,
    127.0.0.1:PORT (no brackets) has none, although both reach the same server."""
    RELAY.starttls, RELAY.auth = True, ["PLAIN"]
    _, _, res = deliver(relay, tmp, ["n1@anywhere.example"], nexthop="relay.test")
    assert res[0][:2] == (250, "2.0.0") and res[0][3].startswith("relay.test[127.0.0.1]:"), res
    assert RELAY.auths == [("PLAIN", NEXTHOP_USER, NEXTHOP_PASSWORD, True)]
    _, _, res = deliver(relay, tmp, ["n2@anywhere.example"],
                        nexthop=f"127.0.0.1:{relay.sink_port}")
    assert res[0][0] == 250, res
    assert len(RELAY.auths) == 1 and len(RELAY.messages) == 2
    assert NEXTHOP_PASSWORD not in relay.log_text()


def test_unsafe_password_file_defers(unsafe, tmp):
    _, reply, res = deliver(unsafe, tmp, ["t@anywhere.example"])
    code, dsn, text, _ = res[0]
    assert (code // 100, dsn) == (4, "4.3.5"), res
    assert "smtp_sasl_password_file" in text
    assert UNSAFE.connections == 0
    assert re.search(r"postern/smtp-agent\[\d+\]: warning: smtp_sasl_password_file "
                     rf"{re.escape(unsafe.password_file)}: group or others may read or write "
                     r"it \(mode 0640; want 0600\); not used", unsafe.log_text())
    assert SASL_PASSWORD not in unsafe.log_text()
