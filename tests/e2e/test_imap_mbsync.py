"""test_imap_mbsync: a real sync client against Postern's IMAP server (issue 6, "Done means").

`mbsync` (Debian's isync) keeps a local Maildir and a Postern mailbox in step, both ways, over
IMAPS with the sandbox's CA (isync 1.4 in Debian 12 spells the setting SSLType; TLSType is
the name from isync 1.5 on). The test writes its own mbsyncrc, runs mbsync as a user would,
and checks each direction where the user would look: the local Maildir's files (names carry
the flags) and the server, through IMAP (imaplib, via test_imap's helpers).
"""

import os
import re
import subprocess
import time

import pytest

from conftest import BINDIR, finish_sandbox, start_sandbox
from test_imap import (CLIENTS, DOMAIN, Lit, admin, as_bytes, deliver, flags_of, make_user,
                       message, uids_of)

MBSYNC = "/usr/bin/mbsync"


@pytest.fixture(scope="module")
def sb():
    for prog in ("postern-master", "postern-imap-login", "postern-imap"):
        if not os.access(os.path.join(BINDIR, prog), os.X_OK):
            pytest.fail(f"{BINDIR}/{prog} is missing: run `make all` first")
    if not os.access(MBSYNC, os.X_OK):
        pytest.fail("mbsync is missing: scripts/deps.sh installs Debian's isync")
    box = start_sandbox("postern-mbsync-", ["qmgr_enable=yes"])
    try:
        admin(box, "domain", "add", DOMAIN)
    except BaseException:
        finish_sandbox(box)
        raise
    yield box
    finish_sandbox(box)


RUNS = []


@pytest.fixture(autouse=True)
def evidence(sb):
    """mbsync's output, the IMAP transcripts and the new log lines: shown on failure."""
    CLIENTS.clear()
    RUNS.clear()
    start = os.path.getsize(sb.log)
    yield
    for cmd, res in RUNS:
        print(f"==== {' '.join(cmd)} -> {res.returncode}\n{res.stdout}{res.stderr}")
    for c in CLIENTS:
        print(f"==== IMAP transcript\n{c.transcript(100)}")
        c.close_quietly()
    CLIENTS.clear()
    with open(sb.log, "rb") as f:
        f.seek(start)
        print("==== log lines written during the test\n" +
              f.read().decode(errors="replace")[-20000:])


class Sync:
    """A local Maildir tree and the mbsyncrc that pairs it with one Postern user."""

    def __init__(self, sb, user, base):
        self.user = user
        self.base = str(base)
        self.local = os.path.join(self.base, "mail")
        self.rc = os.path.join(self.base, "mbsyncrc")
        os.makedirs(self.local)
        with open(self.rc, "w") as f:
            f.write(f"""# written by test_imap_mbsync
IMAPAccount postern
Host localhost
Port {sb.ports["imaps"]}
User {user.addr}
Pass {user.pw}
SSLType IMAPS
CertificateFile {sb.ca}

IMAPStore remote
Account postern

MaildirStore local
Path {self.local}/
Inbox {self.local}/INBOX
SubFolders Verbatim

Channel postern
Far :remote:
Near :local:
Patterns *
Create Both
Remove None
Expunge Both
SyncState *
CopyArrivalDate yes
""")

    def run(self):
        cmd = [MBSYNC, "-c", self.rc, "-a"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "HOME": self.base})
        RUNS.append((cmd, res))
        assert res.returncode == 0, f"mbsync failed ({res.returncode}):\n{res.stdout}{res.stderr}"
        return res

    def folder(self, name):
        return os.path.join(self.local, name.replace(".", "/"))

    def files(self, name="INBOX"):
        out = []
        for sub in ("cur", "new"):
            d = os.path.join(self.folder(name), sub)
            if os.path.isdir(d):
                out += [os.path.join(d, n) for n in os.listdir(d)]
        return out

    def find(self, mid, name="INBOX"):
        found = []
        for path in self.files(name):
            with open(path, "rb") as f:
                if mid.encode() in f.read():
                    found.append(path)
        assert len(found) <= 1, f"{mid} twice in the local {name}: {found}"
        return found[0] if found else None

    def put(self, data, name="INBOX", flags=""):
        """A message written into the local Maildir as a mail program would."""
        d = self.folder(name)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        base = f"{time.time_ns()}.{os.getpid()}.localhost"
        tmp = os.path.join(d, "tmp", base)
        with open(tmp, "wb") as f:
            f.write(data.replace(b"\r\n", b"\n"))
        final = os.path.join(d, "cur", f"{base}:2,{flags}") if flags else \
            os.path.join(d, "new", base)
        os.rename(tmp, final)
        return final


def local_flags(path):
    name = os.path.basename(path)
    return set(name.split(":2,", 1)[1]) if ":2," in name else set()


def set_local_flags(path, flags):
    d = os.path.dirname(os.path.dirname(path))
    base = os.path.basename(path).split(":2,", 1)[0]
    new = os.path.join(d, "cur", f"{base}:2,{''.join(sorted(flags))}")
    os.rename(path, new)
    return new


def server_find(c, folder, mid):
    """(sequence number, UID, flags) of the message with this Message-ID, or None."""
    c.ok(f"SELECT {folder}")
    r = c.ok("SEARCH HEADER Message-ID", Lit(mid.encode()))
    found = r.search()
    assert len(found) <= 1, f"{mid} {len(found)} times in {folder}"
    if not found:
        return None
    f = c.ok(f"FETCH {found[0]} (UID FLAGS)").fetches()[found[0]]
    return found[0], int(f["UID"]), flags_of(f)


def test_mbsync_both_ways(sb, tmp_path):
    user = make_user(sb, "syncer")
    mids = {}
    for name in ("first", "second"):
        data, mid = message(f"{name} delivered")
        deliver(sb, user, data, mid)
        mids[name] = mid
    c = user.login()
    sent, sent_mid = message("a sent message")
    c.ok("APPEND Sent (\\Seen)", Lit(sent))

    sync = Sync(sb, user, tmp_path)
    sync.run()
    # server -> local: the messages, their bytes and flags, every folder
    for name in ("INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"):
        assert os.path.isdir(os.path.join(sync.folder(name), "cur")), f"local {name} missing"
    c.ok("EXAMINE INBOX")
    for mid in mids.values():
        path = sync.find(mid)
        assert path, f"{mid} not synced to the local INBOX"
        seq = server_find(c, "INBOX", mid)[0]
        server_bytes = as_bytes(c.ok(f"FETCH {seq} (BODY.PEEK[])").fetches()[seq]["BODY[]"])
        with open(path, "rb") as f:
            local_bytes = f.read()
        local_bytes = re.sub(rb"(?m)^X-TUID: .*\n", b"", local_bytes)    # mbsync's own mark
        assert local_bytes.replace(b"\r\n", b"\n") == server_bytes.replace(b"\r\n", b"\n")
    sent_path = sync.find(sent_mid, "Sent")
    assert sent_path and "S" in local_flags(sent_path), sent_path

    # local -> server: a new message and a new folder
    mine, mine_mid = message("written locally")
    sync.put(mine, "INBOX")
    other, other_mid = message("in a local folder")
    sync.put(other, "Local", flags="S")
    sync.run()
    assert server_find(c, "INBOX", mine_mid), "the local message did not reach the server"
    assert "Local" in c.ok('LIST "" "*"').lists(), "the local folder was not created"
    found = server_find(c, "Local", other_mid)
    assert found and "\\seen" in found[2], found

    # a flag changed on the server appears locally, and one changed locally on the server
    seq, _, _ = server_find(c, "INBOX", mids["first"])
    c.ok(f"STORE {seq} +FLAGS (\\Flagged)")
    second = sync.find(mids["second"])
    set_local_flags(second, local_flags(second) | {"S"})
    sync.run()
    assert "F" in local_flags(sync.find(mids["first"])), "server flag not synced"
    assert "\\seen" in server_find(c, "INBOX", mids["second"])[2], "local flag not synced"

    # deletions: expunged on the server -> gone locally; deleted locally -> gone on the server
    seq, _, _ = server_find(c, "INBOX", mids["first"])
    c.ok(f"STORE {seq} +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    os.unlink(sync.find(mine_mid))
    sync.run()
    assert sync.find(mids["first"]) is None, "a server expunge did not reach the local Maildir"
    assert server_find(c, "INBOX", mine_mid) is None, "a local deletion did not reach the server"
    assert server_find(c, "INBOX", mids["second"]), "the untouched message was lost"
    c.ok("SELECT INBOX")
    assert len(uids_of(c)) == 1
    res = sync.run()                         # nothing left to do
    assert not re.search(r"(?i)error|warning", res.stdout + res.stderr), res.stdout + res.stderr
    assert len(sync.files("INBOX")) == 1
