"""test_sendmail: postern-sendmail, the sendmail(1)/mailq(1)/newaliases(1) compatibility program
(issue 8, docs/man/postern-sendmail.1), from the outside, installed the way packages install it.

build/postern-sendmail is copied into a world-readable temporary directory (on /tmp, which is
not mounted nosuid), made root:postern-drop mode 2755, and run as the unprivileged user
`nobody` with `-C` naming the sandbox's postern.conf (root-owned, mode 0644: trusted). The
module's sandbox runs qmgr and virtual delivery, so a message is followed from sendmail through
maildrop/, pickup and qmgr into a virtual user's Maildir. Real clients are used where the issue
names them: a cron-like empty environment, Python's subprocess, mutt and git send-email.

Cases that must not reach a queue run against a "dry" spool of the test's own: a maildrop/
directory with the real owner and mode (1730 root:postern-drop) that no pickup reads, so the
file sendmail leaves (or does not leave) can be inspected. The disk-full case mounts a small
tmpfs as the spool of a second sandbox, as test_queue does.
"""

import email
import email.policy
import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import time

import pytest

from conftest import (BINDIR, fill, finish_sandbox, make_world_dir, sandbox_on_tmpfs,
                      start_sandbox, wait_until)

DOMAIN = "sendmail.test"
USERS = ("alice", "bob", "carol", "dave")
NOBODY = pwd.getpwnam("nobody")
NOGROUP = grp.getgrnam("nogroup").gr_gid
DROP_GID = grp.getgrnam("postern-drop").gr_gid
QFWRITE = os.path.join(BINDIR, "tests", "tools", "qfwrite")
SIZE_LIMIT = 100 * 1024
EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_TEMPFAIL, EX_NOPERM = 64, 65, 66, 75, 77


# ---- helpers -------------------------------------------------------------------------------

def admin(sb, *args, password=None):
    cmd = [os.path.join(sb.bindir, "postern"), "admin", "-c", sb.conf, *args]
    res = subprocess.run(cmd, input=password, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{args}: {res.stdout}{res.stderr}"
    return res


def as_nobody():
    os.setgroups([])
    os.setgid(NOGROUP)
    os.setuid(NOBODY.pw_uid)


def sanitizer_env():
    """The sanitizer settings of `make e2e-asan`, if any: they must reach every run."""
    return {k: v for k, v in os.environ.items() if k.startswith(("ASAN_", "UBSAN_", "LSAN_"))}


def world_tmp(prefix):
    """A temporary directory nobody may use."""
    d = make_world_dir(prefix)
    os.chown(d, NOBODY.pw_uid, NOGROUP)
    return d


class Installed:
    """postern-sendmail installed setgid postern-drop, with its mailq and newaliases links."""

    def __init__(self):
        self.dir = make_world_dir("postern-sendmail-bin-")
        self.path = os.path.join(self.dir, "sendmail")
        shutil.copy(os.path.join(BINDIR, "postern-sendmail"), self.path)
        os.chown(self.path, 0, DROP_GID)
        os.chmod(self.path, 0o2755)
        for name in ("mailq", "newaliases"):
            os.symlink(self.path, os.path.join(self.dir, name))

    def run(self, args, conf, data=b"", user=True, env=None, cwd=None, prog=None, timeout=60):
        """Run it (as nobody unless user is False); -C conf unless conf is None."""
        cmd = [prog or self.path] + (["-C", conf] if conf else []) + list(args)
        e = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"} if env is None else dict(env)
        e.update(sanitizer_env())
        return subprocess.run(cmd, input=data, capture_output=True, env=e, cwd=cwd or "/",
                              preexec_fn=as_nobody if user else None, timeout=timeout)


def write_conf(path, base, extra=(), owner=0, mode=0o644):
    """A configuration: the lines of base (a file) plus extra lines, owned by owner."""
    with open(base) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text + "".join(line + "\n" for line in extra))
    os.chown(path, owner, 0)
    os.chmod(path, mode)
    return path


def maildir(sb, user):
    return os.path.join(sb.env["POSTERN_MAIL_ROOT"], DOMAIN, user, "Maildir")


def messages_with(sb, user, token):
    d = os.path.join(maildir(sb, user), "new")
    out = []
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        if token.encode() in data:
            out.append(data)
    return out


def wait_for(sb, user, token, timeout=20):
    """The one message carrying token in user's Maildir, parsed."""
    found = wait_until(lambda: messages_with(sb, user, token), timeout,
                       what=f"{token} in {user}'s Maildir")
    assert len(found) == 1, f"{len(found)} copies of {token} for {user}"
    return email.message_from_bytes(found[0], policy=email.policy.default), found[0]


def token(name):
    return f"{name}-{time.time_ns()}"


def listdir(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def qfcheck(path):
    res = subprocess.run([QFWRITE, "--check", path], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stderr
    return dict(item.split("=", 1) for item in res.stdout.split())


def queue_file_message(path):
    """The message bytes of a queue file (after the 'M' record header)."""
    info = qfcheck(path)
    with open(path, "rb") as f:
        data = f.read()
    size = int(info["msglen"])
    end = len(data) - 13                    # the END record
    return data[end - size:end]


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def installed():
    if not os.access(os.path.join(BINDIR, "postern-sendmail"), os.X_OK):
        pytest.fail("build/postern-sendmail is missing: run `make all` first")
    inst = Installed()
    yield inst
    shutil.rmtree(inst.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def ssb():
    sb = start_sandbox("postern-sendmail-", [
        "qmgr_enable=yes", "virtual_enable=yes", "maildrop_scan_interval=1s",
        f"message_size_limit={SIZE_LIMIT}"])
    try:
        admin(sb, "domain", "add", DOMAIN)
        for u in USERS:
            admin(sb, "user", "add", f"{u}@{DOMAIN}", "--password-stdin", password="pw\n")
        st = os.stat(sb.conf)
        assert st.st_uid == 0 and not st.st_mode & 0o022, "the sandbox's conf must be trusted"
    except BaseException:
        finish_sandbox(sb)
        raise
    yield sb
    finish_sandbox(sb)


@pytest.fixture
def dry(ssb):
    """A spool nobody picks up from: (conf, maildrop path)."""
    d = make_world_dir("postern-sendmail-dry-")
    spool = os.path.join(d, "spool")
    md = os.path.join(spool, "maildrop")
    os.makedirs(md)
    os.chown(md, 0, DROP_GID)
    os.chmod(md, 0o1730)
    conf = write_conf(os.path.join(d, "postern.conf"), ssb.conf,
                      [f"spool_directory = {spool}"])
    yield conf, md
    shutil.rmtree(d, ignore_errors=True)


# ---- delivery through the whole system -----------------------------------------------------

def test_cron_like_t_with_empty_environment(ssb, installed):
    tok = token("cron")
    msg = (f"To: Alice <alice@{DOMAIN}>\nSubject: cron output {tok}\n\n"
           f"/etc/cron.daily/something said:\n{tok}\n").encode()
    res = installed.run(["-t", "-oi"], ssb.conf, msg, env={}, cwd="/")
    assert res.returncode == 0, res.stderr
    assert res.stderr == b""
    m, raw = wait_for(ssb, "alice", tok)
    sender = f"nobody@{ssb_host(ssb)}"
    assert raw.startswith(f"Return-Path: <{sender}>\n".encode())
    assert m["From"] == f"nobody <{sender}>"
    assert re.fullmatch(r"<\d{14}\.[0-9A-F]{19}@" + re.escape(ssb_host(ssb)) + ">",
                        m["Message-ID"])
    assert m["Date"] and m["Subject"] == f"cron output {tok}"
    assert f"(Postern, from userid {NOBODY.pw_uid})" in m["Received"]
    assert b"\r" not in raw                 # Maildir holds LF; the queue held CRLF
    assert raw.endswith(f"{tok}\n".encode())
    log = wait_until(lambda: re.search(rf"postern/pickup\[\d+\]: ([0-9A-F]{{19}}): "
                                       rf"uid={NOBODY.pw_uid} from=<{re.escape(sender)}>",
                                       ssb.log_text()), 10, what="the pickup log line")
    assert log
    assert [n for n in listdir(os.path.join(ssb.spool, "maildrop"))] == []


def ssb_host(sb):
    with open(sb.conf) as f:
        return re.search(r"(?m)^myhostname = (\S+)", f.read()).group(1)


def test_python_subprocess_with_f_and_F(ssb, installed):
    tok = token("py")
    body = f"Subject: from python {tok}\n\nhello from Python, {tok}\n".encode()
    res = installed.run(["-f", "App Server <robot@example.org>", "-F", "Ünïcode Robot",
                         "--", f"alice@{DOMAIN}, Bob <bob@{DOMAIN}>", f"carol@{DOMAIN}"],
                        ssb.conf, body)
    assert res.returncode == 0, res.stderr
    for u in ("alice", "bob", "carol"):
        m, raw = wait_for(ssb, u, tok)
        assert raw.startswith(b"Return-Path: <robot@example.org>\n")
        assert m["From"] == "Ünïcode Robot <robot@example.org>"      # RFC 2047, decoded
        assert b"=?UTF-8?B?" in raw
        assert f"Delivered-To: {u}@{DOMAIN}".encode() in raw
    assert messages_with(ssb, "dave", tok) == []


def test_mutt(ssb, installed):
    tok = token("mutt")
    home = world_tmp("postern-sendmail-mutt-")
    try:
        muttrc = os.path.join(home, ".muttrc")
        with open(muttrc, "w") as f:
            f.write(f'set sendmail="{installed.path} -C {ssb.conf}"\n'
                    'set use_from=yes\nset from="Nobody Here <nobody@example.net>"\n'
                    'set record=""\nset copy=no\nset charset="utf-8"\n')
        os.chown(muttrc, NOBODY.pw_uid, NOGROUP)
        res = installed.run(["-F", muttrc, "-s", f"mutt test {tok}", f"dave@{DOMAIN}"],
                            None, f"Body from mutt {tok}\n".encode(), prog="/usr/bin/mutt",
                            env={"HOME": home, "PATH": "/usr/bin:/bin", "TERM": "dumb"},
                            cwd=home)
        assert res.returncode == 0, res.stdout + res.stderr
        m, raw = wait_for(ssb, "dave", tok)
        assert m["Subject"] == f"mutt test {tok}"
        assert m["From"] == "Nobody Here <nobody@example.net>"
        assert f"Body from mutt {tok}" in m.get_content()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_git_send_email(ssb, installed):
    tok = token("git")
    home = world_tmp("postern-sendmail-git-")
    env = {"HOME": home, "PATH": "/usr/bin:/bin", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00",
           "GIT_COMMITTER_DATE": "2026-01-01T00:00:00"}

    def git(*args):
        res = installed.run(list(args), None, b"", prog="/usr/bin/git", env=env, cwd=repo)
        assert res.returncode == 0, f"git {args}: {res.stdout}{res.stderr}"
        return res

    try:
        repo = os.path.join(home, "repo")
        os.makedirs(repo)
        os.chown(repo, NOBODY.pw_uid, NOGROUP)
        git("init", "-q")
        git("config", "user.name", "Git Hacker")
        git("config", "user.email", "hacker@example.org")
        with open(os.path.join(repo, "README"), "w") as f:
            f.write("hello\n")
        os.chown(os.path.join(repo, "README"), NOBODY.pw_uid, NOGROUP)
        git("add", "README")
        git("commit", "-q", "-m", f"Add a README {tok}")
        git("format-patch", "-1", "-o", "out")
        patch = os.path.join(repo, "out", os.listdir(os.path.join(repo, "out"))[0])
        git("send-email", f"--smtp-server={installed.path}",
            "--smtp-server-option=-C", f"--smtp-server-option={ssb.conf}",
            f"--to=bob@{DOMAIN}", f"--cc=carol@{DOMAIN}", "--confirm=never", "--quiet",
            "--suppress-cc=all", "--envelope-sender=hacker@example.org", patch)
        for u in ("bob", "carol"):
            m, raw = wait_for(ssb, u, tok)
            assert m["Subject"] == f"[PATCH] Add a README {tok}"
            assert m["From"] == "Git Hacker <hacker@example.org>"
            assert raw.startswith(b"Return-Path: <hacker@example.org>\n")
            assert "+hello" in m.get_content()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_bs_smtp_dialogue(ssb, installed):
    tok = token("bs")
    script = (f"EHLO client.example\r\n"
              f"MAIL FROM:<bs-sender@example.org>\r\n"
              f"RCPT TO:<alice@{DOMAIN}>\r\n"
              f"RSET\r\n"
              f"RCPT TO:<bob@{DOMAIN}>\r\n"
              f"MAIL FROM:<bs-sender@example.org> SIZE={SIZE_LIMIT * 2}\r\n"
              f"MAIL FROM:<bs-sender@example.org>\r\n"
              f"RCPT TO:<bob@{DOMAIN}>\r\n"
              f"DATA\r\n"
              f"Subject: one {tok}\r\n\r\n..a dot-stuffed line {tok}\r\n.\r\n"
              f"NOOP\r\n"
              f"BOGUS\r\n"
              f"MAIL FROM:<>\r\n"
              f"RCPT TO:<carol@{DOMAIN}> NOTIFY=NEVER\r\n"
              f"DATA\r\n"
              f"Subject: two {tok}\r\n\r\nsecond\r\n.\r\n"
              f"QUIT\r\n")
    res = installed.run(["-bs"], ssb.conf, script.encode())
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().split("\r\n")
    assert lines[-1] == ""
    codes = [l[:4] for l in lines[:-1] if l[3:4] == " "]
    assert codes == ["220 ", "250 ", "250 ", "250 ", "250 ", "503 ", "552 ", "250 ", "250 ",
                     "354 ", "250 ", "250 ", "500 ", "250 ", "250 ", "354 ", "250 ",
                     "221 "], lines
    assert "250-8BITMIME" in lines and "250-DSN" in lines
    queued = [l for l in lines if "queued as" in l]
    assert len(queued) == 2 and all(re.fullmatch(r"250 2\.0\.0 Ok: queued as [0-9A-F]{19}", l)
                                    for l in queued)
    m, raw = wait_for(ssb, "bob", tok)
    assert raw.startswith(b"Return-Path: <bs-sender@example.org>\n")
    assert f"\n.a dot-stuffed line {tok}\n".encode() in raw
    m, raw = wait_for(ssb, "carol", tok)
    assert raw.startswith(b"Return-Path: <>\n")
    assert messages_with(ssb, "alice", tok) == []


@pytest.mark.parametrize("with_i", [False, True])
def test_lone_dot_line(ssb, installed, with_i):
    tok = token("dot")
    body = f"Subject: dots {tok}\n\nbefore\n.\nafter {tok}-tail\n".encode()
    res = installed.run((["-i"] if with_i else []) + [f"alice@{DOMAIN}"], ssb.conf, body)
    assert res.returncode == 0, res.stderr
    m, raw = wait_for(ssb, "alice", f"dots {tok}")
    if with_i:
        assert raw.endswith(f"\nbefore\n.\nafter {tok}-tail\n".encode())
    else:
        assert raw.endswith(b"\nbefore\n") and b"-tail" not in raw


def test_t_adds_to_command_line_and_removes_bcc(ssb, installed):
    tok = token("bcc")
    msg = (f"From: Secretive <s@example.org>\nTo: alice@{DOMAIN}\n"
           f"Cc: \"Bob, the builder\" <bob@{DOMAIN}>,\n  undisclosed:;\n"
           f"Bcc: carol@{DOMAIN}\nSubject: bcc {tok}\n\nbody\n").encode()
    res = installed.run(["-t", "-v", f"dave@{DOMAIN}"], ssb.conf, msg)
    assert res.returncode == 0, res.stderr
    assert b"queued as maildrop/" in res.stderr and b"nrcpt=4" in res.stderr
    for u in USERS:
        m, raw = wait_for(ssb, u, tok)
        assert m["Bcc"] is None and b"\nBcc:" not in raw.split(b"\n\n")[0]
        assert "carol" not in str(m["To"]) + str(m["Cc"])
        assert m["From"] == "Secretive <s@example.org>"     # an existing From: is kept


def test_null_sender(ssb, installed):
    tok = token("null")
    res = installed.run(["-f", "<>", f"alice@{DOMAIN}"], ssb.conf,
                        f"Subject: null {tok}\n\nx\n".encode())
    assert res.returncode == 0, res.stderr
    m, raw = wait_for(ssb, "alice", tok)
    assert raw.startswith(b"Return-Path: <>\n")
    assert m["From"] == f"MAILER-DAEMON@{ssb_host(ssb)}"
    wait_until(lambda: re.search(rf"postern/pickup\[\d+\]: [0-9A-F]{{19}}: "
                                 rf"uid={NOBODY.pw_uid} from=<>", ssb.log_text()), 10,
               what="the pickup line with from=<>")


# ---- the file in maildrop/ -----------------------------------------------------------------

def test_maildrop_file(ssb, installed, dry):
    conf, md = dry
    body = (b"From mbox-line Sat Jan  1 00:00:00 2026\nSubject: dry\nX-Eight: caf\xc3\xa9\n"
            b"\nline one\r\nline two\nno newline at the end")
    res = installed.run(["-N", "success,delay", "-R", "hdrs", "-V", "env-id-1", "x@example.org"],
                        conf, body)
    assert res.returncode == 0, res.stderr
    names = listdir(md)
    assert len(names) == 1 and re.fullmatch(r"[0-9A-F]{19}", names[0]), names
    path = os.path.join(md, names[0])
    st = os.stat(path)
    assert st.st_uid == NOBODY.pw_uid and st.st_gid == DROP_GID
    assert stat.S_IMODE(st.st_mode) == 0o644 and st.st_nlink == 1
    info = qfcheck(path)
    assert info["rcpt"] == "x@example.org" and info["sender"] == f"<nobody@{ssb_host(ssb)}>"
    msg = queue_file_message(path)
    assert not msg.startswith(b"From ")
    assert b"\nSubject: dry\r\nX-Eight: caf\xc3\xa9\r\n" in msg
    assert msg.endswith(b"\r\n\r\nline one\r\nline two\r\nno newline at the end\r\n")
    assert b"\n" not in msg.replace(b"\r\n", b"")          # CRLF everywhere
    with open(path, "rb") as f:
        raw = f.read()
    assert b"env-id-1" in raw                                  # ENVID record
    assert b"B\x00\x00\x00\x01\x01" in raw                     # body type 8BITMIME


def test_too_large_leaves_nothing(installed, dry):
    conf, md = dry
    body = b"Subject: big\n\n" + (b"y" * 999 + b"\n") * (SIZE_LIMIT // 1000 + 5)
    res = installed.run(["x@example.org"], conf, body)
    assert res.returncode == EX_DATAERR, res
    assert b"message too large" in res.stderr
    assert listdir(md) == []


@pytest.mark.parametrize("args,stdin,status,text", [
    ([], b"Subject: x\n\n", EX_DATAERR, b"no recipients specified"),
    (["-t"], b"Subject: x\n\n", EX_DATAERR, b"no recipients found"),
    (["-t"], b"To: not an address@x\n\n", EX_DATAERR, b"bad recipient address"),
    (["two words@example.org"], b"x\n", EX_DATAERR, b"bad recipient address"),
    (["-f", "a@b, c@d", "x@example.org"], b"x\n", EX_DATAERR, b"bad sender address"),
    (["-N", "sometimes", "x@example.org"], b"x\n", EX_USAGE, b"-N:"),
    (["-bd"], b"", EX_USAGE, b"postern-master"),
    (["-Z"], b"", EX_USAGE, b"usage:"),
])
def test_refusals_leave_nothing(installed, dry, args, stdin, status, text):
    conf, md = dry
    res = installed.run(args, conf, stdin)
    assert res.returncode == status, res
    assert text in res.stderr
    assert listdir(md) == []


@pytest.mark.parametrize("what,body", [
    ("NUL in a header", b"To: x\0@example.org\nSubject: nul\n\nbody\n"),
    ("NUL in the body", b"To: x@example.org\n\nbo\0dy\n"),
    ("overlong header", b"To: x@example.org\nX-Long: " + b"a" * 200000 + b"\n\nbody\n"),
    ("binary garbage", b"To: x@example.org\n" + bytes(range(256)) * 64),
])
def test_hostile_input_is_refused_or_queued_valid(installed, dry, what, body):
    """-t on hostile input: a clean refusal with nothing left behind, or a file that
    validates as a queue file for exactly the one recipient (never a crash)."""
    conf, md = dry
    res = installed.run(["-t"], conf, body)
    assert res.returncode in (0, EX_DATAERR), (what, res)
    names = listdir(md)
    if res.returncode == EX_DATAERR:
        assert names == [] and res.stderr.startswith(b"sendmail: "), (what, res)
        return
    assert len(names) == 1, (what, names)
    info = qfcheck(os.path.join(md, names[0]))
    assert info["rcpt"] == "x@example.org", (what, info)


def test_missing_maildrop_is_tempfail(ssb, installed, dry):
    conf, md = dry
    os.rmdir(md)
    res = installed.run(["x@example.org"], conf, b"x\n")
    assert res.returncode == EX_TEMPFAIL, res
    assert re.search(rb"^sendmail: cannot queue the message: \S+/maildrop: "
                     rb"No such file or directory\n$", res.stderr), res.stderr


def test_not_setgid_cannot_write(installed, dry):
    """Without the set-group-ID bit maildrop/ is closed: the failure says why."""
    conf, md = dry
    plain = os.path.join(installed.dir, "plain-sendmail")
    shutil.copy(installed.path, plain)
    os.chmod(plain, 0o755)
    res = installed.run(["x@example.org"], conf, b"x\n", prog=plain)
    assert res.returncode == EX_TEMPFAIL and b"set-group-ID" in res.stderr, res
    assert listdir(md) == []


# ---- configuration trust -------------------------------------------------------------------

@pytest.mark.parametrize("how", ["owned-by-nobody", "group-writable", "env"])
def test_untrusted_config_refused_while_setgid(ssb, installed, dry, how):
    conf, md = dry
    bad = os.path.join(os.path.dirname(conf), "evil.conf")
    owner, mode = (NOBODY.pw_uid, 0o644) if how != "group-writable" else (0, 0o664)
    write_conf(bad, conf, [], owner=owner, mode=mode)
    if how == "env":
        env = {"PATH": "/usr/bin:/bin", "POSTERN_CONFIG": bad}
        res = installed.run(["x@example.org"], None, b"x\n", env=env)
    else:
        res = installed.run(["x@example.org"], bad, b"x\n")
    assert res.returncode == EX_NOPERM, res
    assert f"refusing the configuration file {bad}".encode() in res.stderr
    assert listdir(md) == []
    # The same file is fine once root owns it and nobody else may write it.
    write_conf(bad, conf, [], owner=0, mode=0o644)
    res = installed.run(["x@example.org"], bad, b"x\n")
    assert res.returncode == 0, res
    assert len(listdir(md)) == 1


# ---- mailq, flush, newaliases --------------------------------------------------------------

@pytest.fixture
def cmdconf(ssb):
    """The sandbox's configuration with command_directory = the build directory."""
    d = make_world_dir("postern-sendmail-cmdconf-")
    yield write_conf(os.path.join(d, "postern.conf"), ssb.conf,
                     [f"command_directory = {BINDIR}"])
    shutil.rmtree(d, ignore_errors=True)


def test_bp_lists_the_queue_as_root(ssb, installed, cmdconf):
    res = installed.run(["-bp"], cmdconf, user=False)
    direct = subprocess.run([os.path.join(BINDIR, "postern"), "mailq", "-c", ssb.conf],
                            capture_output=True, timeout=30)
    assert res.returncode == direct.returncode == 0, res
    assert res.stdout == direct.stdout
    assert res.stdout.startswith(b"Mail queue is empty") or b"Requests." in res.stdout
    res = installed.run([], cmdconf, user=False, prog=os.path.join(installed.dir, "mailq"))
    assert res.returncode == 0 and res.stdout.startswith((b"Mail queue is empty", b"-Queue"))
    # As anyone else: postern mailq runs, without our group, and says it needs root.
    res = installed.run(["-bp"], cmdconf)
    assert res.returncode != 0 and b"must be run as root" in res.stderr, res


@pytest.mark.parametrize("how,expect", [(["-bp"], "mailq"), (["-q"], "flush"),
                                        ("mailq", "mailq")])
def test_exec_drops_the_group_and_the_environment(ssb, installed, how, expect):
    """command_directory points at a stand-in `postern` that reports what it got."""
    d = make_world_dir("postern-sendmail-cmd-")
    try:
        fake = os.path.join(d, "postern")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\necho \"args=$*\"\necho \"gids=$(id -g) $(id -G)\"\n"
                    "echo \"env=$(env | grep -v '^PWD=' | grep -v '^SHLVL=' | grep -v '^_=' | "
                    "grep -v SAN_ | sort | tr '\\n' ' ')\"\n")
        os.chmod(fake, 0o755)
        conf = write_conf(os.path.join(d, "postern.conf"), ssb.conf,
                          [f"command_directory = {d}"])
        env = {"PATH": "/tmp/evil", "LD_PRELOAD": "/tmp/evil.so", "IFS": "x", "TZ": "UTC",
               "HOME": "/nonexistent"}
        if how == "mailq":
            res = installed.run(["-C", conf], None, env=env,
                                prog=os.path.join(installed.dir, "mailq"))
        else:
            res = installed.run(how, conf, env=env)
        assert res.returncode == 0, res
        out = dict(line.split("=", 1) for line in res.stdout.decode().splitlines())
        assert out["args"] == f"{expect} -c {conf}"
        assert out["gids"].split() == [str(NOGROUP), str(NOGROUP)]
        assert str(DROP_GID) not in out["gids"]
        assert out["env"].split() == ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TZ=UTC"]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_newaliases_good_and_bad(ssb, installed):
    d = make_world_dir("postern-sendmail-aliases-")
    try:
        good = os.path.join(d, "aliases")
        with open(good, "w") as f:
            f.write("# good\npostmaster: root\nabuse: postmaster\n"
                    f"team: alice@{DOMAIN},\n  bob@{DOMAIN}\n")
        conf = write_conf(os.path.join(d, "good.conf"), ssb.conf, [f"aliases_file = {good}"])
        res = installed.run(["-bi"], conf)
        assert res.returncode == 0, res
        assert res.stdout == f"{good}: 3 aliases\n".encode() and res.stderr == b""
        res = installed.run(["-C", conf], None, prog=os.path.join(installed.dir, "newaliases"))
        assert res.returncode == 0 and res.stdout == f"{good}: 3 aliases\n".encode(), res

        bad = os.path.join(d, "aliases.bad")
        with open(bad, "w") as f:
            f.write("postmaster: root\nthis line has no colon\nok: fine\n"
                    "broken: two words@example.org\n")
        conf = write_conf(os.path.join(d, "bad.conf"), ssb.conf, [f"aliases_file = {bad}"])
        res = installed.run(["-bi"], conf)
        assert res.returncode == EX_DATAERR, res
        err = res.stderr.decode()
        assert re.search(rf"^newaliases: warning: {re.escape(bad)}:2: ", err, re.M) or \
            re.search(rf"^sendmail: warning: {re.escape(bad)}:2: ", err, re.M), err
        assert f"{bad}:4: alias broken: bad address: two words@example.org" in err
        assert res.stdout == f"{bad}: 3 aliases, 2 problems\n".encode()

        missing = write_conf(os.path.join(d, "missing.conf"), ssb.conf,
                             [f"aliases_file = {d}/nope"])
        res = installed.run(["-bi"], missing)
        assert res.returncode == EX_NOINPUT and b"No such file" in res.stderr, res
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- disk full: the spool on a small tmpfs ---------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_spool_is_tempfail(installed):
    with sandbox_on_tmpfs("postern-sendmail-full-", ["qmgr_enable=no", "message_size_limit=256k",
                                                     "maildrop_scan_interval=1s"]) as (sb, spool):
        md = os.path.join(spool, "maildrop")
        filler = fill(os.path.join(spool, "filler"), 64 << 10)
        body = b"Subject: full\n\n" + (b"z" * 999 + b"\n") * 200
        res = installed.run(["x@example.org"], sb.conf, body)
        assert res.returncode == EX_TEMPFAIL, res
        assert re.fullmatch(rb"sendmail: cannot queue the message: write: "
                            rb"No space left on device\n", res.stderr), res.stderr
        assert listdir(md) == []                  # not even a dot file
        # Space comes back: the same message is queued and picked up.
        os.unlink(filler)
        res = installed.run(["x@example.org"], sb.conf, body)
        assert res.returncode == 0, res
        wait_until(lambda: re.search(rf"postern/pickup\[\d+\]: [0-9A-F]{{19}}: "
                                     rf"uid={NOBODY.pw_uid} from=<nobody@", sb.log_text()),
                   15, what="the pickup line")
        wait_until(lambda: listdir(md) == [], 10, what="maildrop/ to empty")
