"""test_mailq: queue administration in the `postern` command (issue 5, admin/admin_mailq.c
and admin/admin_queue.c): `postern mailq` (also run as `mailq`, and `postern queue list`)
and the control verbs of `postern queue`.

The module runs its own sandbox without qmgr and puts queue files into queue/<state>/X/Y/
itself, owned by the queue owner as the queue daemon leaves them. They are written by
build/tests/tools/qfwrite (lib/queuefile.h), never by Python. qfwrite cannot set recipient
states, so a small helper (QFSTATE_C below), compiled here against lib/queuefile.c, marks
recipients with qf_rcpt_set_status as qmgr would and prints the arrival time, so the
expected listing is computed from what the files hold.

`control(sandbox, op, *ids)` runs `postern queue OP IDS...` and is meant to be reused by
qmgr's tests against a running qmgr. Until then the client side of QMGR_REQ_CONTROL is
checked against FakeQmgr, a stand-in that records each request and answers as told.
"""

import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import postern_ipc as ipc
from conftest import BINDIR, REPO, finish_sandbox, start_sandbox

QFWRITE = os.path.join(BINDIR, "tests", "tools", "qfwrite")
QUEUE_OWNER = "postern-queue"
QMGR_REQ_CONTROL = 50
EX_TEMPFAIL = 75
INDENT = " " * 50
HEADER = ("-Queue ID---------- --Size-- ----Arrival Time---- -Sender/Recipient-------")

# Marks recipients of a queue file as qmgr does, through lib/queuefile.h, and prints
# "ARRIVAL_MS MSG_LEN". usage: qfstate FILE [STATE...] (STATE i is recipient i's).
QFSTATE_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "queuefile.h"

int main(int argc, char **argv)
{
	static const char *const names[] = { "pending", "delivered", "bounced", "deferred" };
	static const unsigned codes[] = { 0, 250, 550, 450 };
	static const char *const dsns[] = { "", "2.0.0", "5.1.1", "4.4.1" };
	char err[256];
	struct qf q;
	int fd = argc > 1 ? open(argv[1], O_RDWR) : -1;

	if (fd < 0 || qf_open_fd(fd, &q, err, sizeof(err)) < 0) {
		fprintf(stderr, "qfstate: %s\n", fd < 0 ? "cannot open" : err);
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		int s = -1;

		for (int k = 0; k < 4; k++)
			if (strcmp(argv[i], names[k]) == 0)
				s = k;
		if (s < 0 || (size_t)(i - 2) >= q.env.nrcpt || (s > 0 &&
		    qf_rcpt_set_status(fd, &q.env.rcpt[i - 2], (enum qf_state)s, codes[s],
				       dsns[s], q.env.arrival_ms + 1000) < 0)) {
			fprintf(stderr, "qfstate: bad state %s\n", argv[i]);
			return 1;
		}
	}
	printf("%lld %llu\n", (long long)q.env.arrival_ms, (unsigned long long)q.msg_len);
	qf_free(&q);
	return close(fd) < 0;
}
"""


# ---- helpers -------------------------------------------------------------------------------

def postern(sb, *args, argv0=None, timeout=30):
    """Run the postern binary (or a link to it named argv0) -> CompletedProcess."""
    exe = os.path.join(sb.bindir, "postern")
    if argv0:
        exe = argv0
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)


def mailq(sb, *extra):
    return postern(sb, "mailq", "-c", sb.conf, *extra)


def control(sandbox, op, *ids, timeout=60):
    """`postern queue -c CONF OP IDS...` as root -> (exit status, stdout, stderr). For the
    control verbs (flush, delete, hold, release, requeue) and list."""
    res = postern(sandbox, "queue", "-c", sandbox.conf, op, *ids, timeout=timeout)
    return res.returncode, res.stdout, res.stderr


def qdir(sb, *parts):
    return os.path.join(sb.spool, "queue", *parts)


def subdir(qid):
    """qid_subdir(): the last two time digits (of 13), lowest first."""
    return os.path.join(qid[12], qid[11])


def owner():
    pw = pwd.getpwnam(QUEUE_OWNER)
    return pw.pw_uid, pw.pw_gid


def make_dirs(base, sub):
    """base/X/Y, owned by the queue owner, 0700, as the queue daemon makes them."""
    uid, gid = owner()
    path = base
    for part in sub.split(os.sep):
        path = os.path.join(path, part)
        if not os.path.isdir(path):
            os.mkdir(path, 0o700)
            os.chown(path, uid, gid)
    return path


def qid_at(n, pid=0x12F):
    """A valid queue id whose time part is n (so tests choose ids and their order)."""
    return f"{0x63A1F0C2D4E00 + n:013X}{pid:06X}"


class Queued:
    """One queue file the test put in place, with what the listing should show."""

    def __init__(self, qid, queue, sender, rcpts, arrival_ms, size):
        self.qid, self.queue, self.sender, self.rcpts = qid, queue, sender, rcpts
        self.arrival_ms, self.size = arrival_ms, size


def put(sb, qtools, queue, qid, rcpts, sender="sender@example.org", body=None,
        reasons=None, extra=()):
    """Write a queue file into queue/QUEUE/X/Y/QID with qfwrite; rcpts is a list of
    (address, state); reasons (address -> (dsn, text)) go to queue/defer/X/Y/QID."""
    if body is None:
        body = b"From: a@example.org\r\nSubject: mailq\r\n\r\nhello\r\n"
    path = os.path.join(make_dirs(qdir(sb, queue), subdir(qid)), qid)
    cmd = [QFWRITE, "--out", path, "--qid", qid, "--sender", sender]
    for addr, _ in rcpts:
        cmd += ["--rcpt", addr]
    res = subprocess.run(cmd + list(extra), input=body, capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr
    uid, gid = owner()
    os.chown(path, uid, gid)
    os.chmod(path, 0o600)
    if extra:                   # a deliberately broken file: nothing to read back
        return path
    res = subprocess.run([qtools, path, *[state for _, state in rcpts]],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    arrival_ms, size = (int(x) for x in res.stdout.split())
    assert size == len(body)
    if reasons:
        defer = os.path.join(make_dirs(qdir(sb, "defer"), subdir(qid)), qid)
        with open(defer, "w") as f:
            for addr, (dsn, text) in reasons.items():
                f.write(f"{addr}\t{dsn}\t{text}\n")
        os.chown(defer, uid, gid)
    time.sleep(0.005)           # distinct arrival times, so the order is the test's
    return Queued(qid, queue, sender, rcpts, arrival_ms, size)


def clear_queue(sb):
    for name in ("incoming", "active", "deferred", "hold", "defer", "corrupt"):
        top = qdir(sb, name)
        for entry in os.listdir(top):
            path = os.path.join(top, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)


def arrival_text(ms):
    return time.strftime("%a %b %e %H:%M:%S", time.localtime(ms // 1000))


def tree_snapshot(root):
    """Every path under root with its type, owner, mode, mtime and content hash."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest = None
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            snap[path] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_size, digest)
    return snap


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def qtools():
    """Compile QFSTATE_C against lib/ (the same sources every build uses)."""
    if not os.access(QFWRITE, os.X_OK):
        pytest.fail(f"{QFWRITE} is missing: run `make all` first")
    tmp = tempfile.mkdtemp(prefix="postern-mailq-tools-")
    src, exe = os.path.join(tmp, "qfstate.c"), os.path.join(tmp, "qfstate")
    with open(src, "w") as f:
        f.write(QFSTATE_C)
    lib = os.path.join(REPO, "lib")
    sources = [os.path.join(lib, n) for n in
               ("queuefile.c", "queuefile_read.c", "util.c", "buf.c", "log.c")]
    res = subprocess.run(["cc", "-std=gnu11", "-D_GNU_SOURCE", "-I", lib, "-o", exe, src,
                          *sources], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    yield exe
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def msb():
    sb = start_sandbox("postern-mailq-")
    yield sb
    finish_sandbox(sb)


@pytest.fixture
def mq(msb):
    """The module's sandbox with an empty queue before and after the test."""
    clear_queue(msb)
    yield msb
    clear_queue(msb)


# ---- listing -------------------------------------------------------------------------------

def test_no_qmgr_in_this_sandbox(mq):
    assert not os.path.exists(os.path.join(mq.spool, "private", "qmgr"))


def test_empty_queue(mq, tmp_path):
    res = mailq(mq)
    assert (res.returncode, res.stdout, res.stderr) == (0, "Mail queue is empty\n", "")
    assert control(mq, "list") == (0, "Mail queue is empty\n", "")
    link = tmp_path / "mailq"
    link.symlink_to(os.path.join(mq.bindir, "postern"))
    res = postern(mq, "-c", mq.conf, argv0=str(link))
    assert (res.returncode, res.stdout) == (0, "Mail queue is empty\n")


def test_listing_exact(mq, qtools):
    big = b"Subject: big\r\n\r\n" + b"x" * 3000 + b"\r\n"
    # Written in arrival order; the ids are chosen so that neither id order nor queue order
    # is arrival order.
    held = put(mq, qtools, "hold", qid_at(0x90),
               [("one@example.com", "pending"), ("done@example.com", "delivered"),
                ("gone@example.com", "bounced")])
    refused = "connect to mx.example.com[192.0.2.1]:25: Connection refused"
    grey = "host mx.example.net[198.51.100.7] said: 450 4.7.1 Greylisted (in reply to RCPT TO)"
    deferred = put(mq, qtools, "deferred", qid_at(0x10),
                   [("a@example.com", "deferred"), ("b@example.com", "deferred"),
                    ("c@example.net", "deferred"), ("d@example.com", "pending"),
                    ("e@example.com", "delivered"), ("f@example.com", "deferred")],
                   sender="", reasons={"a@example.com": ("4.4.1", refused),
                                       "b@example.com": ("4.4.1", refused),
                                       "c@example.net": ("4.7.1", grey),
                                       "d@example.com": ("4.4.1", "stale reason"),
                                       "f@example.com": ("4.4.1", refused)})
    active = put(mq, qtools, "active", qid_at(0x50), [("act@example.org", "pending")],
                 body=big)
    incoming = put(mq, qtools, "incoming", qid_at(0x05), [("new@example.org", "pending")])

    def head(q, mark):
        return (f"{(q.qid + mark):<20}{q.size:>8} {arrival_text(q.arrival_ms)}  "
                f"{q.sender or 'MAILER-DAEMON'}")

    total = held.size + deferred.size + active.size + incoming.size
    expected = "\n".join([
        HEADER,
        head(held, "!"),
        INDENT + "one@example.com",
        "",
        head(deferred, ""),
        f"({refused})",
        INDENT + "a@example.com",
        INDENT + "b@example.com",
        f"({grey})",
        INDENT + "c@example.net",
        INDENT + "d@example.com",
        f"({refused})",
        INDENT + "f@example.com",
        "",
        head(active, "*"),
        INDENT + "act@example.org",
        "",
        head(incoming, ""),
        INDENT + "new@example.org",
        "",
        f"-- {total // 1024} Kbytes in 4 Requests.",
        "",
    ])
    res = mailq(mq)
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout == expected
    assert total // 1024 == 3            # the totals line is really computed
    # The columns of the first message line, literally (the layout of postqueue -p).
    line = res.stdout.splitlines()[1]
    assert line.startswith(held.qid + "!" + " " * (8 - len(str(held.size))) + str(held.size))
    assert line[28:31] == " " + arrival_text(held.arrival_ms)[:2] and line[48:50] == "  "
    assert res.stdout.splitlines()[4][19:21] == "  "     # no mark: a space
    # The same listing from `postern queue list`.
    assert control(mq, "list") == (0, expected, "")


def test_one_request_singular_and_control_characters(mq, qtools, tmp_path):
    q = put(mq, qtools, "deferred", qid_at(0x21), [("x@example.com", "deferred")],
            reasons={"x@example.com": ("4.0.0", "evil\x1b[2Jreply\x07")})
    res = mailq(mq)
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[2] == "(evil?[2Jreply?)"
    assert lines[-1] == "-- 0 Kbytes in 1 Request."
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout
    link = tmp_path / "mailq"
    link.symlink_to(os.path.join(mq.bindir, "postern"))
    res2 = postern(mq, "-c", mq.conf, argv0=str(link))
    assert (res2.returncode, res2.stdout) == (0, res.stdout)
    assert q.qid in res.stdout


def test_message_with_every_recipient_done_is_listed_without_recipients(mq, qtools):
    q = put(mq, qtools, "active", qid_at(0x33),
            [("ok@example.com", "delivered"), ("no@example.com", "bounced")])
    out = mailq(mq).stdout.splitlines()
    assert out[1].startswith(q.qid + "*")
    assert out[2] == "" and out[3] == "-- 0 Kbytes in 1 Request."
    assert "ok@example.com" not in "\n".join(out) and "no@example.com" not in "\n".join(out)


def test_corrupt_and_foreign_files_are_skipped(mq, qtools):
    good = put(mq, qtools, "deferred", qid_at(0x40), [("good@example.com", "pending")])
    torn = put(mq, qtools, "deferred", qid_at(0x41), [("torn@example.com", "pending")],
               extra=["--chop", "3"])
    # A valid file under a name that is not its queue id.
    other = put(mq, qtools, "hold", qid_at(0x42), [("other@example.com", "pending")])
    make_dirs(qdir(mq, "hold"), subdir(qid_at(0x43)))
    renamed = qdir(mq, "hold", subdir(qid_at(0x43)), qid_at(0x43))
    os.rename(qdir(mq, "hold", subdir(other.qid), other.qid), renamed)
    # A symbolic link to a valid queue file (of the same id, outside the queue) is not
    # followed; a name that is no queue id is ignored.
    outside = os.path.join(mq.dir, qid_at(0x44, pid=0x1))
    res = subprocess.run([QFWRITE, "--out", outside, "--qid", qid_at(0x44, pid=0x1),
                          "--rcpt", "outside@example.com"], input=b"x\r\n", timeout=30)
    assert res.returncode == 0
    link = qdir(mq, "deferred", subdir(good.qid), qid_at(0x44, pid=0x1))
    os.symlink(outside, link)
    junk = qdir(mq, "deferred", subdir(good.qid), "README")
    with open(junk, "w") as f:
        f.write("not a queue file\n")
    res = mailq(mq)
    assert res.returncode == 0
    body = res.stdout.splitlines()
    assert body[0] == HEADER
    assert body[1].startswith(good.qid + " ")
    assert body[-1] == "-- 0 Kbytes in 1 Request."
    for addr in ("torn@example.com", "other@example.com", "outside@example.com"):
        assert addr not in res.stdout
    assert qid_at(0x44, pid=0x1) not in res.stdout
    warnings = res.stderr.splitlines()
    assert any(torn.endswith(w.split("skipping ")[1].split(":")[0]) for w in warnings
               if "skipping" in w), res.stderr
    assert any(qid_at(0x43) in w and other.qid in w for w in warnings), res.stderr
    assert any(qid_at(0x44, pid=0x1) in w for w in warnings), res.stderr
    assert all(w.startswith("postern/mailq: warning: ") for w in warnings), res.stderr
    assert "README" not in res.stderr


def test_listing_changes_nothing(mq, qtools):
    put(mq, qtools, "hold", qid_at(0x60), [("h@example.com", "pending")])
    put(mq, qtools, "deferred", qid_at(0x61), [("d@example.com", "deferred")],
        reasons={"d@example.com": ("4.4.1", "later")})
    put(mq, qtools, "deferred", qid_at(0x62), [("t@example.com", "pending")],
        extra=["--truncate", "40"])
    before = tree_snapshot(qdir(mq))
    assert "(later)" in mailq(mq).stdout
    assert control(mq, "list")[0] == 0
    assert tree_snapshot(qdir(mq)) == before
    assert os.listdir(qdir(mq, "corrupt")) == []


def test_file_seen_in_two_queues_is_listed_once(mq, qtools):
    """qmgr may move a file from active/ to deferred/ while mailq walks the queue."""
    q = put(mq, qtools, "active", qid_at(0x64), [("twice@example.com", "pending")])
    copy = os.path.join(make_dirs(qdir(mq, "deferred"), subdir(q.qid)), q.qid)
    shutil.copy2(qdir(mq, "active", subdir(q.qid), q.qid), copy)
    out = mailq(mq).stdout
    assert out.count(q.qid) == 1 and out.count("twice@example.com") == 1
    assert out.endswith("-- 0 Kbytes in 1 Request.\n")


def test_not_root(mq, qtools):
    put(mq, qtools, "deferred", qid_at(0x65), [("r@example.com", "pending")])
    nobody = dict(user="nobody", group="nogroup", capture_output=True, text=True, timeout=30)
    exe = os.path.join(mq.bindir, "postern")
    res = subprocess.run([exe, "mailq", "-c", mq.conf], **nobody)
    assert (res.returncode, res.stdout) == (1, ""), res.stderr
    assert res.stderr == (f"postern/mailq: cannot open the queue {mq.spool}/queue: "
                          "Permission denied (mailq must be run as root)\n")
    res = subprocess.run([exe, "queue", "-c", mq.conf, "delete", qid_at(0x65)], **nobody)
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr == "postern/queue: only root may change the queue\n"


def test_usage_errors(mq):
    res = postern(mq, "mailq", "-c", mq.conf, "extra")
    assert res.returncode == 2 and "unexpected argument 'extra'" in res.stderr
    res = postern(mq, "mailq", "-c", os.path.join(mq.dir, "missing.conf"))
    assert res.returncode == 1 and res.stdout == ""
    assert control(mq, "bogus")[0] == 2
    rc, out, err = control(mq, "list", "ALL")
    assert (rc, out) == (2, "") and "list takes no arguments" in err
    rc, out, err = control(mq, "hold")
    assert (rc, out) == (2, "") and "a queue id or ALL is missing" in err
    rc, out, err = control(mq, "delete", "ALL", qid_at(1))
    assert (rc, out) == (2, "") and "ALL cannot be combined" in err
    rc, out, err = control(mq, "flush", qid_at(1))
    assert (rc, out) == (2, "") and "takes no queue id" in err


def test_bad_queue_id_is_refused_before_anything_is_sent(mq):
    for bad in ("63a1f0c2d4e0500012f", "63A1F0C2D4E0500012", "../../etc/passwd", "x"):
        rc, out, err = control(mq, "delete", qid_at(1), bad)
        assert (rc, out) == (1, ""), (bad, err)
        assert f"bad queue id '{bad}'" in err
        assert "qmgr" not in err          # refused before connecting


# ---- control without qmgr ------------------------------------------------------------------

@pytest.mark.parametrize("op,ids", [("delete", (qid_at(0x70),)), ("hold", ("ALL",)),
                                    ("release", (qid_at(0x70), qid_at(0x71))),
                                    ("requeue", ("ALL",)), ("flush", ())])
def test_control_without_qmgr_is_tempfail(mq, qtools, op, ids):
    q = put(mq, qtools, "deferred", qid_at(0x70), [("r@example.com", "deferred")])
    before = tree_snapshot(qdir(mq))
    rc, out, err = control(mq, op, *ids)
    assert (rc, out) == (EX_TEMPFAIL, "")
    lines = err.splitlines()
    assert len(lines) == 1, err
    sock = os.path.join(mq.spool, "private", "qmgr")
    assert lines[0].startswith("postern/queue: cannot connect to qmgr at " + sock), err
    assert tree_snapshot(qdir(mq)) == before
    assert q.qid in mailq(mq).stdout


def test_flush_alias_without_qmgr(mq):
    res = postern(mq, "flush", "-c", mq.conf)
    assert (res.returncode, res.stdout) == (EX_TEMPFAIL, "")
    assert "cannot connect to qmgr" in res.stderr


# ---- control against a stand-in qmgr -------------------------------------------------------

class FakeQmgr:
    """Listens on private/qmgr like qmgr would; answer(op, id) -> (status, attrs) or None
    (close the connection without answering). Records (connection number, type, attrs)."""

    def __init__(self, sb, answer):
        self.path = os.path.join(sb.spool, "private", "qmgr")
        self.answer = answer
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn_no = 0
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            conn_no += 1
            with conn:
                conn.settimeout(10)
                while True:
                    msg = ipc.recv_msg(conn)
                    if msg is None:
                        break
                    self.requests.append((conn_no, msg.type, dict(msg.attrs)))
                    reply = self.answer(msg.attrs.get("op"), msg.attrs.get("id"))
                    if reply is None:
                        break
                    status, attrs = reply
                    ipc.send_frame(conn, ipc.encode(msg.type, msg.id, attrs, status=status))

    def close(self):
        if self.stop:
            return
        self.stop = True
        self.thread.join(5)
        self.sock.close()
        os.unlink(self.path)


@pytest.fixture
def fake_qmgr(mq):
    made = []

    def start(answer):
        made.append(FakeQmgr(mq, answer))
        return made[-1]

    yield start
    for f in made:
        f.close()


KNOWN = {qid_at(0x80), qid_at(0x81)}


def answer_known(op, qid):
    """One message per known id, 7 for ALL, "no such message" otherwise."""
    if qid is None or qid == "ALL":
        return ipc.OK, {"count": 7}
    if qid in KNOWN:
        return ipc.OK, {"count": 1}
    return ipc.PERMFAIL, {"reason": "no such message"}


@pytest.mark.parametrize("op,done", [("delete", "Deleted"), ("hold", "Placed on hold"),
                                     ("release", "Released from hold"),
                                     ("requeue", "Requeued")])
def test_control_verbs_send_one_request_per_id(mq, fake_qmgr, op, done):
    q = fake_qmgr(answer_known)
    a, b = sorted(KNOWN)
    assert control(mq, op, a, b) == (0, f"postern/queue: {done}: 2 messages\n", "")
    assert q.requests == [(1, QMGR_REQ_CONTROL, {"op": op, "id": a}),
                          (1, QMGR_REQ_CONTROL, {"op": op, "id": b})]
    assert control(mq, op, "ALL") == (0, f"postern/queue: {done}: 7 messages\n", "")
    assert q.requests[2:] == [(2, QMGR_REQ_CONTROL, {"op": op, "id": "ALL"})]
    assert control(mq, op, a) == (0, f"postern/queue: {done}: 1 message\n", "")
    log = mq.log_text()
    assert f"queue {op} {a}: 1 message (uid 0)" in log
    assert f"queue {op} ALL: 7 messages (uid 0)" in log


def test_flush_sends_no_id(mq, fake_qmgr):
    q = fake_qmgr(answer_known)
    assert control(mq, "flush") == (0, "postern/queue: Flushed: 7 messages\n", "")
    res = postern(mq, "flush", "-c", mq.conf)
    assert (res.returncode, res.stdout) == (0, "postern/queue: Flushed: 7 messages\n")
    assert control(mq, "flush", "ALL")[0] == 0
    assert [r[2] for r in q.requests] == [{"op": "flush"}, {"op": "flush"},
                                          {"op": "flush", "id": "ALL"}]


def test_unknown_id_is_named_and_fails(mq, fake_qmgr):
    fake_qmgr(answer_known)
    unknown = qid_at(0x99)
    rc, out, err = control(mq, "delete", unknown)
    assert (rc, out) == (1, "")
    assert err == f"postern/queue: {unknown}: no such message\n"
    # The known ones are still done and counted.
    rc, out, err = control(mq, "delete", unknown, qid_at(0x80))
    assert (rc, out) == (1, "postern/queue: Deleted: 1 message\n")
    assert err == f"postern/queue: {unknown}: no such message\n"


def test_qmgr_tempfail_and_silence_are_tempfail(mq, fake_qmgr):
    q = fake_qmgr(lambda op, qid: (ipc.TEMPFAIL, {"reason": "queue scan in progress"}))
    rc, out, err = control(mq, "hold", qid_at(0x80), qid_at(0x81))
    assert (rc, out) == (EX_TEMPFAIL, "")
    assert err == "postern/queue: qmgr: temporary failure: queue scan in progress\n"
    assert len(q.requests) == 1           # it stops at the first temporary failure
    q.close()
    fake_qmgr(lambda op, qid: None)
    rc, out, err = control(mq, "delete", qid_at(0x80))
    assert (rc, out) == (EX_TEMPFAIL, "")
    assert err.startswith("postern/queue: no answer from qmgr at ") and err.count("\n") == 1
