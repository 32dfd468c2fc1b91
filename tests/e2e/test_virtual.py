"""test_virtual: postern-virtual from the outside (issue 5, lib/deliverproto.h).

Each test plays qmgr: it writes a queue file with build/tests/tools/qfwrite (so Python never
duplicates the format), opens it read-only and sends DELIVER over $POSTERN_SPOOL/private/
virtual with the descriptor attached (SCM_RIGHTS), as root. Users come from `postern admin`
against the sandbox's own MariaDB, so authd's real answers drive the agent. The module runs
its own sandbox with virtual_enable=yes; the over-quota-is-temporary case runs another.
"""

import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

import postern_ipc as ipc
from conftest import BINDIR, PYTHON, finish_sandbox, start_sandbox, wait_until

DELIVER = 40
QFWRITE = os.path.join(BINDIR, "tests", "tools", "qfwrite")
QF_END_LEN = 13
DOMAIN = "virt.test"
VMAIL = pwd.getpwnam("vmail")
BODY = (b"From: sender@example.org\r\nTo: someone@virt.test\r\nSubject: virtual test\r\n"
        b"\r\nline one\r\nline two\r\n")
NAME = re.compile(r"^(\d+)\.M(\d+)P(\d+)Q(\d+)\.([^,/:]+),S=(\d+),W=(\d+)$")
_qids = itertools.count(1)


# ---- helpers -------------------------------------------------------------------------------

def new_qid():
    """A queue id shaped as qid_new makes them (13 hex digits of time, 6 of a pid)."""
    usec = int(time.time() * 1e6) + next(_qids)
    return f"{usec:013X}{os.getpid() & 0xFFFFFF:06X}"


def admin(sb, *args, password=None):
    cmd = [os.path.join(sb.bindir, "postern"), "admin", "-c", sb.conf, *args]
    res = subprocess.run(cmd, input=password, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{args}: {res.stdout}{res.stderr}"
    return res


def add_user(sb, local):
    admin(sb, "user", "add", f"{local}@{DOMAIN}", "--password-stdin", password="secret\n")
    return os.path.join(maildir(sb, local))


def maildir(sb, local):
    return os.path.join(sb.env["POSTERN_MAIL_ROOT"], DOMAIN, local, "Maildir")


class QueueFile:
    """A queue file written by qfwrite, open read-only; msg_off/msg_len locate the message."""

    def __init__(self, directory, body=BODY, sender="sender@example.org",
                 rcpts=(f"x@{DOMAIN}",)):
        self.qid = new_qid()
        self.path = os.path.join(directory, self.qid)
        cmd = [QFWRITE, "--out", self.path, "--qid", self.qid, "--sender", sender]
        for r in rcpts:
            cmd += ["--rcpt", r]
        res = subprocess.run(cmd, input=body, capture_output=True, timeout=30)
        assert res.returncode == 0, res.stderr
        self.msg_len = len(body)
        self.msg_off = os.path.getsize(self.path) - QF_END_LEN - self.msg_len
        self.sender = sender
        self.fd = os.open(self.path, os.O_RDONLY)

    def close(self):
        os.close(self.fd)


def request(qf, rcpts, origs=None):
    now = int(time.time() * 1000)
    attrs = [("qid", qf.qid), ("msg_off", qf.msg_off), ("msg_len", qf.msg_len),
             ("sender", qf.sender), ("arrival", now - 40), ("active", now - 20),
             ("body", "7BIT"), ("smtputf8", 0), ("nrcpt", len(rcpts))]
    for i, r in enumerate(rcpts):
        attrs += [(f"rcpt{i}", r), (f"orig{i}", (origs or {}).get(r, "")), (f"notify{i}", 0)]
    return attrs


def send(sb, attrs, fds, id_=7, timeout=30):
    """One request with descriptors attached; the reply."""
    with ipc.connect(os.path.join(sb.spool, "private", "virtual"), timeout) as s:
        frame = ipc.encode(DELIVER, id_, attrs, nfds=len(fds))
        socket.send_fds(s, [frame], fds)
        s.settimeout(timeout)
        reply = ipc.recv_msg(s)
    assert reply is not None and reply.id == id_, reply
    return reply


def deliver(sb, tmp, rcpts, body=BODY, sender="sender@example.org", origs=None):
    """Deliver one message to rcpts; the reply's per-recipient (code, dsn, text) list."""
    qf = QueueFile(tmp, body=body, sender=sender, rcpts=rcpts)
    try:
        reply = send(sb, request(qf, rcpts, origs), [qf.fd])
    finally:
        qf.close()
    assert reply.status == ipc.OK, reply
    out = []
    for i in range(len(rcpts)):
        assert reply.get(f"relay{i}") == "virtual"
        out.append((reply.get(f"code{i}"), reply.get(f"dsn{i}"), reply.get(f"text{i}")))
    return qf.qid, out


def messages(folder):
    new = os.path.join(folder, "new")
    return sorted(os.path.join(new, n) for n in os.listdir(new))


def wait_ready(sb):
    def answers():
        try:
            with ipc.connect(os.path.join(sb.spool, "private", "virtual"), 2) as s:
                r = ipc.call(s, DELIVER, {"nrcpt": 1}, 1, 2)
                return r is not None and r.status == ipc.PERMFAIL
        except OSError:
            return False
    wait_until(answers, 20, interval=0.1, what="postern-virtual answering")


@pytest.fixture(scope="module")
def vsb():
    if not os.access(QFWRITE, os.X_OK):
        pytest.fail(f"{QFWRITE} is missing: run `make all` first")
    sb = start_sandbox("postern-virtual-", ["virtual_enable=yes"])
    try:
        admin(sb, "domain", "add", DOMAIN)
        for local in ("alice", "bob", "carol", "dave", "erin"):
            add_user(sb, local)
        wait_ready(sb)
    except BaseException:
        finish_sandbox(sb)
        raise
    yield sb
    finish_sandbox(sb)


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="postern-vq-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ---- tests ---------------------------------------------------------------------------------

def test_runs_as_vmail_not_chrooted(vsb):
    kids = wait_until(lambda: [c for c in vsb.children() if c.service == "virtual"], 10,
                      what="a virtual child of master")
    assert len(kids) == 1
    assert kids[0].uids == (VMAIL.pw_uid,) * 4
    assert kids[0].root == "/"


def test_delivers_dovecot_shaped_file(vsb, tmp):
    qid, res = deliver(vsb, tmp, [f"alice@{DOMAIN}"])
    assert res == [(250, "2.0.0", "delivered to maildir")]
    (path,) = messages(maildir(vsb, "alice"))
    m = NAME.match(os.path.basename(path))
    assert m, path
    data = open(path, "rb").read()
    assert b"\r" not in data
    assert data.startswith(b"Return-Path: <sender@example.org>\nDelivered-To: "
                           b"alice@virt.test\nFrom: sender@example.org\n")
    assert data.endswith(b"\nline one\nline two\n")
    assert int(m.group(6)) == len(data)                        # S=: size on disk
    assert int(m.group(7)) == len(data) + data.count(b"\n")    # W=: size with CRLF
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (VMAIL.pw_uid, VMAIL.pw_gid)
    assert st.st_mode & 0o777 == 0o600
    assert not os.listdir(os.path.join(maildir(vsb, "alice"), "tmp"))
    line = re.compile(rf"postern/virtual\[\d+\]: {qid}: to=<alice@virt\.test>, relay=virtual, "
                      r"delay=[\d.]+, delays=[\d.]+/[\d.]+/0/[\d.]+, dsn=2\.0\.0, "
                      r"status=sent \(delivered to maildir\)$", re.M)
    wait_until(lambda: line.search(vsb.log_text()), 5, what="the delivery log line")


def test_unknown_user_bounces(vsb, tmp):
    qid, res = deliver(vsb, tmp, [f"nobody@{DOMAIN}"])
    assert res == [(550, "5.1.1", "user unknown")]
    line = re.compile(rf"{qid}: to=<nobody@virt\.test>, relay=virtual, .*dsn=5\.1\.1, "
                      r"status=bounced \(user unknown\)$", re.M)
    wait_until(lambda: line.search(vsb.log_text()), 5, what="the bounce log line")


def test_two_recipients_one_request_and_orig_to(vsb, tmp):
    before = len(messages(maildir(vsb, "carol")))
    qid, res = deliver(vsb, tmp, [f"bob@{DOMAIN}", f"carol@{DOMAIN}"],
                       origs={f"carol@{DOMAIN}": "list@example.org"})
    assert [r[0] for r in res] == [250, 250]
    assert len(messages(maildir(vsb, "bob"))) >= 1
    assert len(messages(maildir(vsb, "carol"))) == before + 1
    line = re.compile(rf"{qid}: to=<carol@virt\.test>, orig_to=<list@example\.org>, "
                      r"relay=virtual, ", re.M)
    wait_until(lambda: line.search(vsb.log_text()), 5, what="the orig_to log line")


def test_creates_missing_maildir_with_folders(vsb, tmp):
    home = os.path.dirname(maildir(vsb, "dave"))
    shutil.rmtree(home)
    _, res = deliver(vsb, tmp, [f"dave@{DOMAIN}"])
    assert res[0][0] == 250, res
    md = maildir(vsb, "dave")
    assert len(messages(md)) == 1
    for d in (home, md, *(os.path.join(md, f) for f in
                          (".Drafts", ".Sent", ".Trash", ".Junk", ".Archive"))):
        st = os.lstat(d)
        assert st.st_uid == VMAIL.pw_uid and st.st_mode & 0o777 == 0o700, d
    assert os.path.isfile(os.path.join(md, ".Sent", "maildirfolder"))


def test_symlinked_maildir_is_refused(vsb, tmp):
    md = maildir(vsb, "erin")
    elsewhere = os.path.join(tmp, "elsewhere")
    os.makedirs(os.path.join(elsewhere, "new"))
    os.chmod(tmp, 0o755)            # reachable for vmail: only the symlink stops it
    for d in (elsewhere, os.path.join(elsewhere, "new")):
        os.chown(d, VMAIL.pw_uid, VMAIL.pw_gid)
    shutil.rmtree(md)
    os.symlink(elsewhere, md)
    try:
        _, res = deliver(vsb, tmp, [f"erin@{DOMAIN}"])
        assert res[0][:2] == (451, "4.3.0"), res
        assert os.listdir(os.path.join(elsewhere, "new")) == []
    finally:
        os.unlink(md)


def test_plus_addressing(vsb, tmp):
    md = maildir(vsb, "alice")
    folder = os.path.join(md, ".Lists")
    for sub in ("", "cur", "new", "tmp"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
        os.chown(os.path.join(folder, sub), VMAIL.pw_uid, VMAIL.pw_gid)
    inbox_before = len(messages(md))
    _, res = deliver(vsb, tmp, [f"alice+Lists@{DOMAIN}"])
    assert res[0][0] == 250, res
    (path,) = messages(folder)
    assert b"Delivered-To: alice+Lists@virt.test\n" in open(path, "rb").read()
    assert len(messages(md)) == inbox_before
    _, res = deliver(vsb, tmp, [f"alice+nofolder@{DOMAIN}", f"alice+lists@{DOMAIN}"])
    assert [r[0] for r in res] == [250, 250], res
    assert len(messages(md)) == inbox_before + 2       # no such folder; ".lists" != ".Lists"
    assert len(messages(folder)) == 1


def test_loop_detected_by_delivered_to(vsb, tmp):
    before = len(messages(maildir(vsb, "bob")))
    body = b"Delivered-To: Bob@Virt.Test\r\n" + BODY
    _, res = deliver(vsb, tmp, [f"bob@{DOMAIN}", f"carol@{DOMAIN}"], body=body)
    assert res[0] == (554, "5.4.6", f"mail forwarding loop for bob@{DOMAIN}")
    assert res[1][0] == 250
    assert len(messages(maildir(vsb, "bob"))) == before
    # A Delivered-To in the body is not a loop.
    _, res = deliver(vsb, tmp, [f"bob@{DOMAIN}"], body=BODY + b"Delivered-To: bob@virt.test\r\n")
    assert res[0][0] == 250


def write_maildirsize(md, text):
    path = os.path.join(md, "maildirsize")
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, VMAIL.pw_uid, VMAIL.pw_gid)
    os.chmod(path, 0o600)


def test_over_quota_bounces_by_default(vsb, tmp):
    md = maildir(vsb, "carol")
    before = set(messages(md))
    write_maildirsize(md, "100S\n0 0\n")
    try:
        _, res = deliver(vsb, tmp, [f"carol@{DOMAIN}"])
        assert res == [(552, "5.2.2", "mailbox full")]
        assert set(messages(md)) == before
        write_maildirsize(md, "100000S\n0 0\n")
        _, res = deliver(vsb, tmp, [f"carol@{DOMAIN}"])
        assert res[0][0] == 250
        with open(os.path.join(md, "maildirsize")) as f:
            last = f.read().splitlines()[-1]
        (path,) = set(messages(md)) - before     # the one message this delivery wrote
        assert last == f"{os.path.getsize(path)} 1"     # usage appended after delivery
    finally:
        os.unlink(os.path.join(md, "maildirsize"))


def test_malformed_requests_are_permfail(vsb, tmp):
    qf = QueueFile(tmp, rcpts=(f"alice@{DOMAIN}",))
    try:
        good = request(qf, [f"alice@{DOMAIN}"])
        bad_off = [(k, qf.msg_off + 10**6 if k == "msg_off" else v) for k, v in good]
        assert send(vsb, bad_off, [qf.fd]).status == ipc.PERMFAIL
        assert send(vsb, good + [("extra", 1)], [qf.fd]).status == ipc.PERMFAIL
        assert send(vsb, good, []).status == ipc.PERMFAIL
        bad_sender = [(k, "a>\r\nX-Evil: 1" if k == "sender" else v) for k, v in good]
        assert send(vsb, bad_sender, [qf.fd]).status == ipc.PERMFAIL
        wfd = os.open(qf.path, os.O_RDWR)
        try:
            reply = send(vsb, good, [wfd])
            assert reply.status == ipc.PERMFAIL and "read-only" in reply.get("reason")
        finally:
            os.close(wfd)
    finally:
        qf.close()


def test_peer_not_on_allow_list(vsb):
    """uid postern with group postern-queue may open the socket but is not allowed."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import postern_ipc as ipc\n"
        "s = ipc.connect(sys.argv[2])\n"
        "r = ipc.call(s, 40, {'nrcpt': 1})\n"
        "print(r.status, r.get('reason'))\n")
    path = os.path.join(vsb.spool, "private", "virtual")
    res = subprocess.run([PYTHON, "-c", code, os.path.dirname(__file__), path],
                         user="postern", group="postern-queue", extra_groups=[],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{ipc.PERMFAIL} not allowed"
    # Without the group, the socket's mode keeps it out altogether.
    res = subprocess.run([PYTHON, "-c", code, os.path.dirname(__file__), path],
                         user="postern", group="postern", extra_groups=[],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and "PermissionError" in res.stderr


def test_over_quota_temporary_when_configured(tmp):
    sb = start_sandbox("postern-virtual-oq-", ["virtual_enable=yes",
                                               "virtual_overquota_temporary=yes"])
    try:
        admin(sb, "domain", "add", DOMAIN)
        md = add_user(sb, "full")
        wait_ready(sb)
        write_maildirsize(md, "100S\n0 0\n")
        _, res = deliver(sb, tmp, [f"full@{DOMAIN}"])
        assert res == [(452, "4.2.2", "mailbox full")]
        assert messages(md) == []
        assert re.search(r"to=<full@virt\.test>, relay=virtual, .*dsn=4\.2\.2, "
                         r"status=deferred \(mailbox full\)", sb.log_text())
    finally:
        finish_sandbox(sb)
