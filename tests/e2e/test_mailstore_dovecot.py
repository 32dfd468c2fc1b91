"""test_mailstore_dovecot: lib/mailstore against real Dovecot on the same Maildir.

Debian's dovecot-core provides doveadm; each test runs it with a throwaway configuration
(its own base_dir, no service started, the machine's /etc/dovecot untouched) on a Maildir
in a temporary directory, as the unprivileged user nobody, and drives lib/mailstore on the
same Maildir with build/tests/tools/mstore, also as nobody. What one writes the other must
read with the same UIDVALIDITY, UIDs, flags, keywords, folders and subscriptions. Skipped
when doveadm is not installed (apt-get install dovecot-core).
"""

import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from conftest import BINDIR

DOVEADM = shutil.which("doveadm")
MSTORE = os.path.join(BINDIR, "tests", "tools", "mstore")
NOBODY = pwd.getpwnam("nobody")

pytestmark = pytest.mark.skipif(DOVEADM is None, reason="doveadm (dovecot-core) not installed")

CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols =
ssl = no
first_valid_uid = 1
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = .
}}
"""

MESSAGE = "From: a@example.org\nTo: b@example.org\nSubject: {n}\n\nbody {n}\nline two\n"


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY.pw_gid)
    os.setuid(NOBODY.pw_uid)


class World:
    """A home for user "test", Dovecot's configuration, and the two ways into the Maildir."""

    def __init__(self, d):
        self.d = d
        self.home = os.path.join(d, "home")
        self.maildir = os.path.join(self.home, "Maildir")
        self.conf = os.path.join(d, "dovecot.conf")
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(d, sub))
        os.chmod(d, 0o755)
        os.chown(self.home, NOBODY.pw_uid, NOBODY.pw_gid)
        with open(self.conf, "w") as f:
            f.write(CONF.format(d=d, uid=NOBODY.pw_uid, gid=NOBODY.pw_gid))

    def doveadm(self, *args, stdin=None):
        env = {"USER": "test", "HOME": self.home, "PATH": os.environ.get("PATH", "/usr/bin")}
        r = subprocess.run([DOVEADM, "-c", self.conf] + list(args), input=stdin, env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"doveadm {args}: {r.stderr}"
        return r.stdout

    def mstore(self, *args, stdin=None, check=True):
        r = subprocess.run([MSTORE, self.maildir] + list(args), input=stdin,
                           capture_output=True, text=True, timeout=60, preexec_fn=as_nobody)
        if check:
            assert r.returncode == 0, f"mstore {args}: {r.stderr}"
        return r.stdout

    # -- what each side sees, in the same shape --

    def dovecot_messages(self, box="INBOX"):
        out = self.doveadm("-f", "tab", "fetch", "uid flags", "mailbox", box, "all")
        rows = []
        for line in out.splitlines()[1:]:
            uid, _, flags = line.partition("\t")
            flags = " ".join(f for f in flags.split() if f != "\\Recent")
            rows.append((int(uid), flags))
        return rows

    def dovecot_status(self, box="INBOX"):
        out = self.doveadm("-f", "tab", "mailbox", "status", "uidvalidity uidnext messages", box)
        names, values = out.splitlines()[:2]
        return {k: int(v) for k, v in zip(names.split("\t"), values.split("\t"))
                if k != "mailbox"}

    def our_messages(self, box="INBOX"):
        lines = self.mstore("dump", box).splitlines()
        head = dict(kv.split("=") for kv in lines[0].split())
        rows = []
        for line in lines[1:]:
            uid, _, flags = line.partition("\t")
            rows.append((int(uid), flags))
        return {k: int(v) for k, v in head.items()}, rows


@pytest.fixture
def world():
    if not os.path.exists(MSTORE):
        pytest.skip(f"{MSTORE} not built")
    d = tempfile.mkdtemp(prefix="mstore-dovecot.")
    try:
        yield World(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def canonical(flags):
    """Flags in doveadm's order: system flags first (its order), then keywords."""
    order = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]
    words = flags.split()
    system = [f for f in order if f in words]
    return " ".join(system + [w for w in words if w not in order])


def same(rows_a, rows_b):
    return [(u, canonical(f)) for u, f in rows_a] == [(u, canonical(f)) for u, f in rows_b]


def test_we_read_what_dovecot_wrote(world):
    for n in range(1, 6):
        world.doveadm("save", stdin=MESSAGE.format(n=n))
    world.doveadm("flags", "add", "\\Seen $Forwarded", "mailbox", "INBOX", "uid", "1")
    world.doveadm("flags", "add", "\\Answered \\Flagged Junk", "mailbox", "INBOX", "uid", "2")
    world.doveadm("flags", "add", "\\Deleted", "mailbox", "INBOX", "uid", "3")
    world.doveadm("expunge", "mailbox", "INBOX", "uid", "3")
    world.doveadm("flags", "add", "\\Draft NonJunk $label1", "mailbox", "INBOX", "uid", "4")
    world.doveadm("mailbox", "create", "Sent", "Lists.Work", "Caf\u00e9")
    world.doveadm("mailbox", "subscribe", "Sent", "Lists.Work")

    head, ours = world.our_messages()
    theirs = world.dovecot_messages()
    status = world.dovecot_status()
    assert [u for u, _ in theirs] == [1, 2, 4, 5]
    assert same(ours, theirs), (ours, theirs)
    assert head["uidvalidity"] == status["uidvalidity"]
    assert head["uidnext"] == status["uidnext"] == 6
    assert world.mstore("list").split() == ["INBOX", "Caf&AOk-", "Lists.Work", "Sent"]
    assert world.mstore("subs").split() == ["Sent", "Lists.Work"]
    sent = dict(kv.split("=") for kv in world.mstore("status", "Sent").split())
    assert int(sent["uidvalidity"]) == world.dovecot_status("Sent")["uidvalidity"]


def test_dovecot_reads_what_we_wrote(world):
    world.mstore("list")    # creates the Maildir
    assert world.mstore("append", "INBOX", "1000000000", "\\Seen", "Junk",
                        stdin=MESSAGE.format(n=1)).split()[1] == "uid=1"
    world.mstore("append", "INBOX", "\\Flagged", "\\Answered", stdin=MESSAGE.format(n=2))
    world.mstore("append", "INBOX", stdin=MESSAGE.format(n=3))
    world.mstore("store", "INBOX", "3", "\\Draft", "$label1", "Junk")
    world.mstore("create", "Lists.Work")
    world.mstore("subscribe", "Lists.Work")
    world.mstore("subscribe", "INBOX")

    head, ours = world.our_messages()
    theirs = world.dovecot_messages()
    assert [u for u, _ in ours] == [1, 2, 3]
    assert same(ours, theirs), (ours, theirs)
    status = world.dovecot_status()
    assert status["uidvalidity"] == head["uidvalidity"]
    assert status["uidnext"] == 4
    dates = world.doveadm("-f", "tab", "fetch", "uid date.received", "mailbox", "INBOX", "uid", "1")
    assert "2001-09-09" in dates     # internal date 1000000000, from the file's mtime
    sizes = world.doveadm("-f", "tab", "fetch", "size.virtual", "mailbox", "INBOX", "uid", "1")
    assert int(sizes.splitlines()[1]) == len(MESSAGE.format(n=1)) + MESSAGE.count("\n")
    boxes = world.doveadm("mailbox", "list").split()
    assert "Lists.Work" in boxes and "Lists" in boxes
    assert world.doveadm("mailbox", "list", "-s").split() == ["Lists.Work", "INBOX"]
    lists = world.dovecot_status("Lists.Work")
    ours_lists = dict(kv.split("=") for kv in world.mstore("status", "Lists.Work").split())
    assert lists["uidvalidity"] == int(ours_lists["uidvalidity"])

    # A delivery agent drops a file into new/; we number it first, Dovecot agrees.
    name = "1700000000.M1P1Q1.agent,S=%d" % len(MESSAGE.format(n=4))
    path = os.path.join(world.maildir, "new", name)
    with open(path, "w") as f:
        f.write(MESSAGE.format(n=4))
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    head, ours = world.our_messages()
    assert [u for u, _ in ours] == [1, 2, 3, 4]
    assert [u for u, _ in world.dovecot_messages()] == [1, 2, 3, 4]


def test_taking_turns(world):
    world.doveadm("save", stdin=MESSAGE.format(n=1))
    world.mstore("append", "INBOX", "\\Seen", stdin=MESSAGE.format(n=2))
    world.doveadm("save", stdin=MESSAGE.format(n=3))
    assert world.mstore("append", "INBOX", stdin=MESSAGE.format(n=4)).split()[1] == "uid=4"
    world.doveadm("flags", "add", "\\Flagged Junk", "mailbox", "INBOX", "uid", "4")
    world.mstore("store", "INBOX", "1", "\\Answered", "$Forwarded")
    world.doveadm("flags", "add", "\\Deleted", "mailbox", "INBOX", "uid", "2")
    assert world.mstore("expunge", "INBOX").strip() == "expunged=1"
    world.doveadm("save", stdin=MESSAGE.format(n=5))

    head, ours = world.our_messages()
    theirs = world.dovecot_messages()
    assert [u for u, _ in theirs] == [1, 3, 4, 5]
    assert same(ours, theirs), (ours, theirs)
    assert head["uidnext"] == world.dovecot_status()["uidnext"] == 6

    # A copy by hard link into a folder Dovecot made; Dovecot sees flags and keywords.
    world.doveadm("mailbox", "create", "Archive")
    out = world.mstore("copy", "INBOX", "4", "Archive").split()
    assert out[1] == "uid=1"
    assert [canonical(f) for _, f in world.dovecot_messages("Archive")] == ["\\Flagged Junk"]
    world.doveadm("save", "-m", "Archive", stdin=MESSAGE.format(n=6))
    assert [u for u, _ in world.our_messages("Archive")[1]] == [1, 2]

    # Renaming and deleting folders Dovecot knows.
    world.mstore("rename", "Archive", "Old")
    assert "Old" in world.doveadm("mailbox", "list").split()
    assert [u for u, _ in world.dovecot_messages("Old")] == [1, 2]
    world.mstore("delete", "Old")
    assert "Old" not in world.doveadm("mailbox", "list").split()
