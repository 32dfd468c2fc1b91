"""test_smtp_agent: postern-smtp from the outside (issue 5, lib/deliverproto.h).

Each test plays qmgr as test_virtual does: a queue file written by build/tests/tools/qfwrite,
opened read-only and sent with DELIVER over $POSTERN_SPOOL/private/smtp, as root. The far
side is a tiny ESMTP sink in this process (a socketserver thread) whose behaviour the tests
switch: 550 or 452 on one recipient, a 421 greeting, no 8BITMIME. smtp_host_override points
sink.test at it; refused.test points at a port nobody listens on.
"""

import os
import re
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading

import pytest

import postern_ipc as ipc
from conftest import PYTHON, finish_sandbox, start_sandbox, wait_until
from test_virtual import DELIVER, QFWRITE, QueueFile, request

DOMAIN = "sink.test"
BODY = (b"From: sender@example.org\r\nTo: a@sink.test\r\nSubject: smtp agent test\r\n\r\n"
        b"line one\r\n.leading dot\r\n..two dots\r\n.\r\nlast line\r\n")


# ---- the sink ------------------------------------------------------------------------------

class Sink:
    """What the sink does and what it received."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.greeting = "220 sink.test ESMTP"
        self.eightbit = True
        self.rcpt_replies = {}          # address -> reply line
        self.messages = []              # (mail_from_line, [rcpts], data bytes)
        self.commands = []


SINK = Sink()


class SinkHandler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.reply(SINK.greeting)
        if not SINK.greeting.startswith("220"):
            self.rfile.readline()
            return
        mail, rcpts = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            SINK.commands.append(cmd)
            verb = cmd[:4].upper()
            if verb == "EHLO":
                exts = ["250-sink.test", "250-PIPELINING", "250-SIZE 10000000"]
                if SINK.eightbit:
                    exts.append("250-8BITMIME")
                exts.append("250 ENHANCEDSTATUSCODES")
                for e in exts:
                    self.reply(e)
            elif verb == "MAIL":
                mail, rcpts = cmd, []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                addr = re.search(r"<([^>]*)>", cmd).group(1)
                r = SINK.rcpt_replies.get(addr, "250 2.1.5 Ok")
                if r.startswith("250"):
                    rcpts.append(addr)
                self.reply(r)
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = b""
                while True:
                    dl = self.rfile.readline()
                    if not dl or dl == b".\r\n":
                        break
                    data += dl[1:] if dl.startswith(b".") else dl
                SINK.messages.append((mail, rcpts, data))
                self.reply("250 2.0.0 Ok: queued as SINK1")
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


# ---- fixtures and helpers ------------------------------------------------------------------

@pytest.fixture(scope="module")
def ssb():
    if not os.access(QFWRITE, os.X_OK):
        pytest.fail(f"{QFWRITE} is missing: run `make all` first")
    server = SinkServer(("127.0.0.1", 0), SinkHandler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dead = free_port()
    sb = start_sandbox("postern-smtp-", [
        "smtp_agent_enable=yes",
        f"smtp_host_override={DOMAIN}=127.0.0.1:{port} refused.test=127.0.0.1:{dead}"])
    try:
        wait_ready(sb)
    except BaseException:
        finish_sandbox(sb)
        server.shutdown()
        raise
    sb.sink_port = port
    yield sb
    finish_sandbox(sb)
    server.shutdown()


@pytest.fixture
def tmp():
    SINK.reset()
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


def send(sb, attrs, fds, id_=9, timeout=60):
    with ipc.connect(sock_path(sb), timeout) as s:
        socket.send_fds(s, [ipc.encode(DELIVER, id_, attrs, nfds=len(fds))], fds)
        s.settimeout(timeout)
        reply = ipc.recv_msg(s)
    assert reply is not None and reply.id == id_, reply
    return reply


def deliver(sb, tmp, rcpts, body=BODY, body_type="7BIT"):
    """One request; the reply and the per-recipient (code, dsn, text, relay) list."""
    qf = QueueFile(tmp, body=body, rcpts=rcpts)
    try:
        attrs = [(k, body_type if k == "body" else v) for k, v in request(qf, rcpts)]
        reply = send(sb, attrs, [qf.fd])
    finally:
        qf.close()
    out = []
    if reply.status == ipc.OK:
        for i in range(len(rcpts)):
            out.append((reply.get(f"code{i}"), reply.get(f"dsn{i}"), reply.get(f"text{i}"),
                        reply.get(f"relay{i}")))
    return qf.qid, reply, out


# ---- tests ---------------------------------------------------------------------------------

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
    assert SINK.commands[-1] == "QUIT"
    line = re.compile(rf"postern/smtp-agent\[\d+\]: {qid}: to=<a@sink\.test>, "
                      rf"relay={re.escape(relay)}, delay=[\d.]+, "
                      r"delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, "
                      r"status=sent \(250 2\.0\.0 Ok: queued as SINK1\)$", re.M)
    wait_until(lambda: line.search(ssb.log_text()), 5, what="the delivery log line")


def test_one_rcpt_550_other_250(ssb, tmp):
    SINK.rcpt_replies[f"bad@{DOMAIN}"] = "550 5.1.1 <bad@sink.test>: no such user"
    qid, reply, res = deliver(ssb, tmp, [f"bad@{DOMAIN}", f"good@{DOMAIN}"])
    assert reply.status == ipc.OK, reply
    assert res[0][:3] == (550, "5.1.1", "host sink.test[127.0.0.1] said: 550 5.1.1 "
                          "<bad@sink.test>: no such user (in reply to RCPT TO command)")
    assert res[1][:2] == (250, "2.0.0")
    (_, rcpts, data), = SINK.messages
    assert rcpts == [f"good@{DOMAIN}"] and data == BODY
    line = re.compile(rf"{qid}: to=<bad@sink\.test>, relay=sink\.test\[127\.0\.0\.1\]:\d+, "
                      r".*dsn=5\.1\.1, status=bounced \(host sink\.test", re.M)
    wait_until(lambda: line.search(ssb.log_text()), 5, what="the bounce log line")


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
    line = re.compile(rf"{qid}: to=<a@sink\.test>, .*status=deferred \(", re.M)
    wait_until(lambda: line.search(ssb.log_text()), 5, what="the deferred log line")


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
    line = re.compile(rf"{qid}: to=<x@refused\.test>, relay=refused\.test\[127\.0\.0\.1\]:\d+,"
                      r" .*dsn=4\.4\.1, status=deferred \(connect to ", re.M)
    wait_until(lambda: line.search(ssb.log_text()), 5, what="the deferred log line")


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
