"""test_admin: `postern admin` end to end against the session sandbox (issue 3, admin/).

Every subcommand runs as a real process (as root, like an administrator would) on the
sandbox's postern.conf; what it did is checked where it lands: rows through the mariadb
client, the Maildir through lstat, answers of the running authd through `lookup` and
`auth test`. Every test makes its own domain with a random name, so tests are independent
of each other and of the order they run in. Hashes written by `user add` are checked with
another tool (openssl passwd) where one exists.
"""

import os
import pty
import pwd
import re
import secrets
import select
import stat
import subprocess
import time

import pytest

from conftest import REPO, finish_sandbox, start_sandbox

VMAIL_UID = 5000
FOLDERS = ["Drafts", "Sent", "Trash", "Junk", "Archive"]
PASSWORD = "correct horse"
EX_TEMPFAIL = 75


# ---- helpers -------------------------------------------------------------------------------

def uniq(prefix="t"):
    return f"{prefix}{secrets.token_hex(4)}"


def admin(sandbox, *args, password=None, conf=None, timeout=60):
    """Run `postern admin -c CONF ARGS`; password (if given) is fed on stdin."""
    cmd = [os.path.join(sandbox.bindir, "postern"), "admin", "-c", conf or sandbox.conf,
           *args]
    return subprocess.run(cmd, input=password, capture_output=True, text=True,
                          timeout=timeout)


def ok(res):
    assert res.returncode == 0, f"exit {res.returncode}\nstdout: {res.stdout}\n" \
                                f"stderr: {res.stderr}"
    return res


def fails(res, status, message):
    """The command failed with this status and one stderr line containing message."""
    assert res.returncode == status, f"exit {res.returncode}, wanted {status}\n" \
                                     f"stdout: {res.stdout}\nstderr: {res.stderr}"
    lines = res.stderr.splitlines()
    assert any(message in line and line.startswith("postern admin: ") for line in lines), \
        f"{message!r} not in stderr: {res.stderr!r}"
    return res


def sql(sandbox, query):
    """Rows of a query as lists of strings (mariadb --batch, no column names)."""
    res = subprocess.run(["mariadb", "--no-defaults", "-S", sandbox.env["POSTERN_MYSQL_SOCKET"],
                          "-uroot", "--batch", "--skip-column-names", "--raw", "mailserver"],
                         input=query, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return [line.split("\t") for line in res.stdout.splitlines()]


def q(value):
    """A string literal for the tests' own SQL (values the tests chose themselves)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def user_row(sandbox, email):
    rows = sql(sandbox, f"SELECT u.email, u.password, d.name FROM virtual_users u "
                        f"JOIN virtual_domains d ON u.domain_id = d.id WHERE u.email = {q(email)}")
    return rows[0] if rows else None


def domain_count(sandbox, name):
    return int(sql(sandbox, f"SELECT COUNT(*) FROM virtual_domains WHERE name = {q(name)}")[0][0])


def aliases_of(sandbox, source):
    return sorted(r[0] for r in sql(sandbox, f"SELECT destination FROM virtual_aliases "
                                             f"WHERE source = {q(source)}"))


def sha512_crypt(password, stored):
    """Recompute a $6$ hash with openssl from the stored salt."""
    salt = stored.split("$")[2]
    res = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password,
                         capture_output=True, text=True, check=True)
    return res.stdout.strip()


def mail_root(sandbox):
    return sandbox.env["POSTERN_MAIL_ROOT"]


def maildir_of(sandbox, domain, local):
    return os.path.join(mail_root(sandbox), domain, local, "Maildir")


@pytest.fixture
def domain(sandbox):
    name = f"{uniq('dom')}.test"
    ok(admin(sandbox, "domain", "add", name))
    return name


def add_user(sandbox, address, password=PASSWORD, *extra):
    return admin(sandbox, "user", "add", address, "--password-stdin", *extra,
                 password=password + "\n")


# ---- domains -------------------------------------------------------------------------------

def test_domain_add_stores_lower_case_and_refuses_a_duplicate(sandbox):
    name = f"{uniq('Dom')}.Example.TEST"
    res = ok(admin(sandbox, "domain", "add", name))
    assert name.lower() in res.stdout
    assert domain_count(sandbox, name.lower()) == 1
    assert sql(sandbox, f"SELECT name FROM virtual_domains WHERE name = {q(name)}") == \
        [[name.lower()]]
    fails(admin(sandbox, "domain", "add", name.lower()), 1, f"domain {name.lower()} exists")
    assert domain_count(sandbox, name.lower()) == 1
    assert re.search(rf"postern/admin\[\d+\]: added domain {re.escape(name.lower())}$",
                     sandbox.log_text(), re.M), "no audit line in the mail log"


@pytest.mark.parametrize("bad", ["a b.test", "bad..test", "-x.test", "x.test-", "x@y.test",
                                 "a/b.test", "dom\\x.test", "", "x" * 256])
def test_domain_add_refuses_bad_names(sandbox, bad):
    before = int(sql(sandbox, "SELECT COUNT(*) FROM virtual_domains")[0][0])
    fails(admin(sandbox, "domain", "add", "--", bad), 1, "bad domain name")
    assert int(sql(sandbox, "SELECT COUNT(*) FROM virtual_domains")[0][0]) == before


def test_domain_list_prints_one_per_line(sandbox, domain):
    other = f"{uniq('dom')}.test"
    ok(admin(sandbox, "domain", "add", other))
    lines = ok(admin(sandbox, "domain", "list")).stdout.splitlines()
    assert domain in lines and other in lines
    assert len(lines) == len(set(lines))


def test_domain_del_of_an_empty_domain(sandbox, domain):
    res = ok(admin(sandbox, "domain", "del", domain))
    assert "deleted domain" in res.stdout and "0 users" in res.stdout
    assert domain_count(sandbox, domain) == 0
    fails(admin(sandbox, "domain", "del", domain), 1, f"no such domain: {domain}")


def test_domain_del_refuses_users_unless_forced(sandbox, domain):
    ok(add_user(sandbox, f"alice@{domain}"))
    ok(add_user(sandbox, f"bob@{domain}"))
    ok(admin(sandbox, "alias", "add", f"info@{domain}", f"alice@{domain}"))
    fails(admin(sandbox, "domain", "del", domain), 1, f"domain {domain} has 2 users")
    assert "--force" in admin(sandbox, "domain", "del", domain).stderr
    assert domain_count(sandbox, domain) == 1
    assert user_row(sandbox, f"alice@{domain}") is not None

    res = ok(admin(sandbox, "domain", "del", domain, "--force"))
    assert "2 users and 1 alias" in res.stdout
    assert "kept" in res.stdout
    assert domain_count(sandbox, domain) == 0
    assert user_row(sandbox, f"alice@{domain}") is None     # ON DELETE CASCADE
    assert aliases_of(sandbox, f"info@{domain}") == []
    assert os.path.isdir(maildir_of(sandbox, domain, "alice")), "the Maildir must stay"


# ---- users ---------------------------------------------------------------------------------

def check_maildir(path, uid=VMAIL_UID):
    """The Maildir layout of DESIGN.md §5 with vmail's ownership and private modes."""
    def owned_dir(p):
        st = os.lstat(p)
        assert stat.S_ISDIR(st.st_mode), f"{p} is not a directory"
        assert st.st_uid == uid and st.st_gid == pwd.getpwuid(uid).pw_gid, \
            f"{p} belongs to {st.st_uid}:{st.st_gid}"
        assert stat.S_IMODE(st.st_mode) == 0o700, f"{p} has mode {stat.S_IMODE(st.st_mode):o}"

    def owned_file(p):
        st = os.lstat(p)
        assert stat.S_ISREG(st.st_mode), f"{p} is not a regular file"
        assert st.st_uid == uid, f"{p} belongs to uid {st.st_uid}"
        assert stat.S_IMODE(st.st_mode) == 0o600

    owned_dir(os.path.dirname(path))                        # home
    owned_dir(os.path.dirname(os.path.dirname(path)))       # domain directory
    owned_dir(path)
    for sub in ("cur", "new", "tmp"):
        owned_dir(os.path.join(path, sub))
    for folder in FOLDERS:
        fdir = os.path.join(path, "." + folder)
        owned_dir(fdir)
        for sub in ("cur", "new", "tmp"):
            owned_dir(os.path.join(fdir, sub))
        owned_file(os.path.join(fdir, "maildirfolder"))
    owned_file(os.path.join(path, "subscriptions"))
    with open(os.path.join(path, "subscriptions")) as f:
        assert f.read().splitlines() == FOLDERS


def test_user_add_stores_a_sha512_crypt_hash_and_creates_the_maildir(sandbox, domain):
    assert pwd.getpwnam("vmail").pw_uid == VMAIL_UID
    address = f"alice@{domain.upper()}"
    res = ok(add_user(sandbox, address))
    email = f"alice@{domain}"
    assert email in res.stdout
    row = user_row(sandbox, email)
    assert row is not None and row[0] == email and row[2] == domain
    assert row[1].startswith("$6$"), row[1]            # sql.conf's default_pass_scheme
    assert sha512_crypt(PASSWORD, row[1]) == row[1]
    check_maildir(maildir_of(sandbox, domain, "alice"))
    assert maildir_of(sandbox, domain, "alice") in res.stdout


def test_user_add_with_yescrypt_and_explicit_sha512(sandbox, domain):
    ok(add_user(sandbox, f"y@{domain}", PASSWORD, "--scheme", "yescrypt"))
    assert user_row(sandbox, f"y@{domain}")[1].startswith("$y$")
    ok(add_user(sandbox, f"s@{domain}", PASSWORD, "--scheme=SHA512-CRYPT"))
    stored = user_row(sandbox, f"s@{domain}")[1]
    assert sha512_crypt(PASSWORD, stored) == stored
    res = add_user(sandbox, f"m@{domain}", PASSWORD, "--scheme", "md5-crypt")
    fails(res, 2, "unknown password scheme 'md5-crypt'")
    assert user_row(sandbox, f"m@{domain}") is None


def test_user_add_password_stdin_takes_one_line(sandbox, domain):
    ok(admin(sandbox, "user", "add", f"l@{domain}", "--password-stdin",
             password="first line\nsecond line\n"))
    stored = user_row(sandbox, f"l@{domain}")[1]
    assert sha512_crypt("first line", stored) == stored
    ok(admin(sandbox, "user", "add", f"n@{domain}", "--password-stdin", password="no newline"))
    stored = user_row(sandbox, f"n@{domain}")[1]
    assert sha512_crypt("no newline", stored) == stored


def test_user_add_errors(sandbox, domain):
    for bad in ["no-at-sign", f"a b@{domain}", f"@{domain}", "x@", f"a/b@{domain}",
                f".dot@{domain}", f"{'l' * 65}@{domain}"]:
        fails(add_user(sandbox, bad), 1, "bad address syntax")
    other = f"{uniq('nodom')}.test"
    fails(add_user(sandbox, f"x@{other}"), 1,
          f"domain {other} is not a virtual domain; add it with postern admin domain add")
    assert user_row(sandbox, f"x@{other}") is None

    ok(add_user(sandbox, f"dup@{domain}"))
    first = user_row(sandbox, f"dup@{domain}")[1]
    fails(add_user(sandbox, f"DUP@{domain}", "other password"), 1,
          f"user DUP@{domain} exists")
    assert user_row(sandbox, f"dup@{domain}")[1] == first

    fails(add_user(sandbox, f"empty@{domain}", ""), 1, "the password is empty")
    fails(admin(sandbox, "user", "add", f"eof@{domain}", "--password-stdin", password=""), 1,
          "no password on standard input")
    fails(add_user(sandbox, f"long@{domain}", "x" * 512), 1, "the password is too long")
    for local in ("empty", "eof", "long"):
        assert user_row(sandbox, f"{local}@{domain}") is None
        assert not os.path.exists(os.path.dirname(maildir_of(sandbox, domain, local)))
    ok(add_user(sandbox, f"max@{domain}", "x" * 511))


def test_user_add_reports_what_the_database_refuses(sandbox):
    # virtual_users.email is varchar(100): a valid 105-character address does not fit.
    name = f"{'d' * 24}{uniq('x')}.test"
    ok(admin(sandbox, "domain", "add", name))
    email = f"{'l' * 64}@{name}"
    res = add_user(sandbox, email)
    fails(res, 1, "database error: ")
    assert "too long" in res.stderr.lower()
    assert user_row(sandbox, email) is None
    assert not os.path.exists(os.path.join(mail_root(sandbox), name, "l" * 64))


def test_user_add_binds_quotes_and_percent_as_data(sandbox, domain):
    for local in ["o'hara", "x'--", "pct%s%d", 'q"q', "semi;colon"]:
        email = f"{local}@{domain}"
        ok(add_user(sandbox, email))
        row = user_row(sandbox, email)
        assert row is not None and row[0] == email
        check_maildir(maildir_of(sandbox, domain, local))
    listed = ok(admin(sandbox, "user", "list", domain)).stdout.splitlines()
    assert f"o'hara@{domain}" in listed and f"pct%s%d@{domain}" in listed
    assert domain_count(sandbox, domain) == 1


def spawn_on_tty(argv):
    """Run argv with a new pseudo-terminal as its controlling terminal."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    return pid, fd


def read_until(fd, needle, timeout=20):
    out, deadline = b"", time.monotonic() + timeout
    while needle.encode() not in out:
        left = deadline - time.monotonic()
        assert left > 0, f"no {needle!r} on the terminal; got {out!r}"
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            out += chunk
    return out.decode(errors="replace")


def run_on_tty(sandbox, args, answers):
    """Answer the prompts of `postern admin ARGS` on a terminal; (status, terminal text)."""
    pid, fd = spawn_on_tty([os.path.join(sandbox.bindir, "postern"), "admin", "-c",
                            sandbox.conf, *args])
    seen = ""
    try:
        for prompt, answer in answers:
            seen += read_until(fd, prompt)
            os.write(fd, answer.encode() + b"\n")
        seen += read_until(fd, "\0", timeout=20)    # everything until the end
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), seen


def test_user_add_asks_twice_on_the_terminal_without_echo(sandbox, domain):
    email = f"tty@{domain}"
    status, seen = run_on_tty(sandbox, ["user", "add", email],
                              [("New password", "typed secret"),
                               ("Retype", "typed secret")])
    assert status == 0, seen
    assert "typed secret" not in seen, "the password was echoed"
    stored = user_row(sandbox, email)[1]
    assert sha512_crypt("typed secret", stored) == stored

    status, seen = run_on_tty(sandbox, ["user", "add", f"tty2@{domain}"],
                              [("New password", "one"), ("Retype", "two")])
    assert status == 1 and "the passwords do not match" in seen
    assert user_row(sandbox, f"tty2@{domain}") is None


def test_user_add_refuses_a_symlink_in_the_mailbox_path(sandbox, domain, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.symlink(target, os.path.join(mail_root(sandbox), domain))
    try:
        res = add_user(sandbox, f"sym@{domain}")
        fails(res, 1, "symbolic link")
        assert "not added" in res.stderr
        assert os.listdir(target) == [], "created something through the symlink"
        assert user_row(sandbox, f"sym@{domain}") is None, "the row must be taken back"
    finally:
        os.unlink(os.path.join(mail_root(sandbox), domain))
    ok(add_user(sandbox, f"sym@{domain}"))
    check_maildir(maildir_of(sandbox, domain, "sym"))


def test_user_add_refuses_a_symlinked_maildir(sandbox, domain, tmp_path):
    home = os.path.join(mail_root(sandbox), domain, "linked")
    os.makedirs(home)
    os.chown(os.path.dirname(home), VMAIL_UID, VMAIL_UID)
    os.chown(home, VMAIL_UID, VMAIL_UID)
    os.symlink(tmp_path, os.path.join(home, "Maildir"))
    fails(add_user(sandbox, f"linked@{domain}"), 1, "symbolic link")
    assert os.listdir(tmp_path) == []
    assert user_row(sandbox, f"linked@{domain}") is None


def test_user_del_keeps_the_maildir(sandbox, domain):
    email = f"gone@{domain}"
    ok(add_user(sandbox, email))
    maildir = maildir_of(sandbox, domain, "gone")
    open(os.path.join(maildir, "new", "1.msg"), "w").close()
    res = ok(admin(sandbox, "user", "del", email))
    assert "kept" in res.stdout and maildir in res.stdout
    assert user_row(sandbox, email) is None
    assert os.path.exists(os.path.join(maildir, "new", "1.msg"))
    fails(admin(sandbox, "user", "del", email), 1, f"no such user: {email}")
    fails(admin(sandbox, "user", "del", "not an address"), 1, "bad address syntax")
    ok(add_user(sandbox, email))                     # the kept Maildir is taken over
    assert os.path.exists(os.path.join(maildir, "new", "1.msg"))
    check_maildir(maildir)


def test_user_list_all_and_per_domain(sandbox, domain):
    other = f"{uniq('dom')}.test"
    ok(admin(sandbox, "domain", "add", other))
    for email in (f"b@{domain}", f"a@{domain}", f"c@{other}"):
        ok(add_user(sandbox, email))
    assert ok(admin(sandbox, "user", "list", domain)).stdout.splitlines() == \
        [f"a@{domain}", f"b@{domain}"]
    everyone = ok(admin(sandbox, "user", "list")).stdout.splitlines()
    assert {f"a@{domain}", f"b@{domain}", f"c@{other}"} <= set(everyone)
    missing = f"{uniq('nodom')}.test"
    fails(admin(sandbox, "user", "list", missing), 1, f"domain {missing} is not a virtual domain")


def test_listings_of_more_rows_than_one_query_may_return(sandbox, domain):
    """sqldb refuses results of more than 1,000 rows: listings must come in pages."""
    n = 1234
    values = ",".join(f"((SELECT id FROM virtual_domains WHERE name = {q(domain)}), 'x', "
                      f"'u{i:05d}@{domain}')" for i in range(n))
    sql(sandbox, f"INSERT INTO virtual_users (domain_id, password, email) VALUES {values}")
    values = ",".join(f"((SELECT id FROM virtual_domains WHERE name = {q(domain)}), "
                      f"'@{domain}', 'd{i:05d}@example.net')" for i in range(n))
    sql(sandbox, f"INSERT INTO virtual_aliases (domain_id, source, destination) VALUES {values}")
    try:
        users = ok(admin(sandbox, "user", "list", domain)).stdout.splitlines()
        assert users == [f"u{i:05d}@{domain}" for i in range(n)]
        aliases = ok(admin(sandbox, "alias", "list", domain)).stdout.splitlines()
        assert sorted(aliases) == sorted(f"@{domain} -> d{i:05d}@example.net" for i in range(n))
        assert len(aliases) == n
    finally:
        ok(admin(sandbox, "domain", "del", domain, "--force"))


def test_user_passwd(sandbox, domain):
    email = f"pw@{domain}"
    ok(add_user(sandbox, email))
    before = user_row(sandbox, email)[1]
    res = ok(admin(sandbox, "user", "passwd", email, "--password-stdin", password="new one\n"))
    assert email in res.stdout
    after = user_row(sandbox, email)[1]
    assert after != before and sha512_crypt("new one", after) == after
    ok(admin(sandbox, "user", "passwd", email, "--password-stdin", "--scheme", "yescrypt",
             password="newer\n"))
    assert user_row(sandbox, email)[1].startswith("$y$")
    fails(admin(sandbox, "user", "passwd", f"nobody@{domain}", "--password-stdin",
                password="x\n"), 1, f"no such user: nobody@{domain}")
    fails(admin(sandbox, "user", "passwd", email, "--password-stdin", password="\n"), 1,
          "the password is empty")
    assert user_row(sandbox, email)[1].startswith("$y$")


# ---- aliases -------------------------------------------------------------------------------

def test_alias_add_list_del(sandbox, domain):
    src = f"info@{domain}"
    ok(admin(sandbox, "alias", "add", src, f"alice@{domain}"))
    ok(admin(sandbox, "alias", "add", src, "bob@example.net"))
    ok(admin(sandbox, "alias", "add", f"@{domain.upper()}", f"catch@{domain}"))
    assert aliases_of(sandbox, src) == [f"alice@{domain}", "bob@example.net"]
    assert aliases_of(sandbox, f"@{domain}") == [f"catch@{domain}"]
    row = sql(sandbox, f"SELECT d.name FROM virtual_aliases a JOIN virtual_domains d "
                       f"ON a.domain_id = d.id WHERE a.source = {q(src)} LIMIT 1")
    assert row == [[domain]]

    fails(admin(sandbox, "alias", "add", src, "bob@example.net"), 1,
          f"alias {src} -> bob@example.net exists")
    assert len(aliases_of(sandbox, src)) == 2
    other = f"{uniq('nodom')}.test"
    fails(admin(sandbox, "alias", "add", f"x@{other}", f"alice@{domain}"), 1,
          f"domain {other} is not a virtual domain; add it with postern admin domain add")
    fails(admin(sandbox, "alias", "add", f"@{other}", f"alice@{domain}"), 1,
          f"domain {other} is not a virtual domain")
    fails(admin(sandbox, "alias", "add", src, "not an address"), 1, "bad address syntax")
    fails(admin(sandbox, "alias", "add", f"@bad..{domain}", "a@b.test"), 1, "bad domain name")

    listed = ok(admin(sandbox, "alias", "list", domain)).stdout.splitlines()
    assert listed == [f"@{domain} -> catch@{domain}", f"{src} -> alice@{domain}",
                      f"{src} -> bob@example.net"]
    assert set(listed) <= set(ok(admin(sandbox, "alias", "list")).stdout.splitlines())

    ok(admin(sandbox, "alias", "del", src, "bob@example.net"))
    assert aliases_of(sandbox, src) == [f"alice@{domain}"]
    fails(admin(sandbox, "alias", "del", src, "bob@example.net"), 1,
          f"no such alias: {src} -> bob@example.net")
    ok(admin(sandbox, "alias", "add", src, "carol@example.net"))
    res = ok(admin(sandbox, "alias", "del", src))
    assert "2 aliases" in res.stdout
    assert aliases_of(sandbox, src) == []
    fails(admin(sandbox, "alias", "del", src), 1, f"no such alias: {src}")
    ok(admin(sandbox, "alias", "del", f"@{domain}"))
    assert ok(admin(sandbox, "alias", "list", domain)).stdout == ""


# ---- lookups and logins through authd -----------------------------------------------------

def test_lookup_answers_what_authd_answers(sandbox, domain):
    ok(add_user(sandbox, f"alice@{domain}"))
    ok(admin(sandbox, "alias", "add", f"team@{domain}", f"alice@{domain}"))
    ok(admin(sandbox, "alias", "add", f"team@{domain}", "bob@example.net"))

    res = ok(admin(sandbox, "lookup", f"alice@{domain}"))
    lines = res.stdout.splitlines()
    assert lines[0] == f"rcpt: virtual user=alice@{domain}"
    home = os.path.join(mail_root(sandbox), domain, "alice")
    assert lines[1] == f"user: home={home} mail=~/Maildir uid={VMAIL_UID} " \
                      f"gid={pwd.getpwnam('vmail').pw_gid} quota=0"

    res = ok(admin(sandbox, "lookup", f"team@{domain}"))
    assert res.stdout.splitlines()[0] in (
        f"rcpt: alias -> alice@{domain}, bob@example.net",
        f"rcpt: alias -> bob@example.net, alice@{domain}")
    assert "user: unknown user" in res.stdout

    res = ok(admin(sandbox, "lookup", f"someone@{uniq('remote')}.example"))
    assert res.stdout.splitlines()[0] == "rcpt: remote (not a local domain)"

    res = admin(sandbox, "lookup", f"nobody@{domain}")
    assert res.returncode == 1, res
    assert res.stdout.splitlines() == ["rcpt: unknown user", "user: unknown user"]

    ok(admin(sandbox, "alias", "add", f"@{domain}", f"alice@{domain}"))
    res = ok(admin(sandbox, "lookup", f"anyone-else@{domain}"))
    assert res.stdout.splitlines()[0] == f"rcpt: alias -> alice@{domain}"


def test_auth_test(sandbox, domain):
    email = f"login@{domain}"
    ok(add_user(sandbox, email, PASSWORD, "--scheme", "yescrypt"))
    res = ok(admin(sandbox, "auth", "test", email, "--password-stdin", password=PASSWORD + "\n"))
    assert res.stdout.splitlines()[0] == f"passdb: {email} auth succeeded"
    assert f"user={email}" in res.stdout

    res = admin(sandbox, "auth", "test", email, "--password-stdin", password="wrong\n")
    assert res.returncode == 1, res
    assert res.stdout.splitlines() == [f"passdb: {email} auth failed"]
    res = admin(sandbox, "auth", "test", f"nobody@{domain}", "--password-stdin",
                password=PASSWORD + "\n")
    assert res.returncode == 1, res
    assert res.stdout.splitlines() == [f"passdb: nobody@{domain} auth failed"]

    status, seen = run_on_tty(sandbox, ["auth", "test", email], [("Password", PASSWORD)])
    assert status == 0 and f"passdb: {email} auth succeeded" in seen
    assert PASSWORD not in seen


# ---- unreachable services and usage --------------------------------------------------------

def conf_with(sandbox, tmp_path, extra):
    """A copy of the sandbox's postern.conf with extra lines (later lines win)."""
    with open(sandbox.conf) as f:
        text = f.read()
    path = tmp_path / "postern.conf"
    path.write_text(text + "".join(f"{line}\n" for line in extra))
    return str(path)


def test_database_unreachable_is_a_temporary_failure(sandbox, tmp_path):
    sql_conf = os.path.join(os.path.dirname(sandbox.conf), "sql.conf")
    with open(sql_conf) as f:
        text = re.sub(r"(?m)^hosts\s*=.*$", f"hosts = unix:{tmp_path}/no-such-socket", f.read())
    broken = tmp_path / "sql.conf"
    broken.write_text(text)
    broken.chmod(0o600)
    conf = conf_with(sandbox, tmp_path, [f"sql_config = {broken}"])
    for args in (["domain", "list"], ["domain", "add", "x.test"], ["user", "list"],
                 ["alias", "list"], ["user", "del", "a@x.test"]):
        fails(admin(sandbox, *args, conf=conf), EX_TEMPFAIL, "database unreachable: ")
    res = admin(sandbox, "user", "add", "a@x.test", "--password-stdin", password="pw\n",
                conf=conf)
    fails(res, EX_TEMPFAIL, "database unreachable: ")
    assert len(res.stderr.splitlines()) == 1, res.stderr


def test_sql_conf_readable_by_others_is_refused(sandbox, tmp_path):
    sql_conf = os.path.join(os.path.dirname(sandbox.conf), "sql.conf")
    with open(sql_conf) as f:
        text = f.read()
    loose = tmp_path / "sql.conf"
    loose.write_text(text)
    loose.chmod(0o644)
    conf = conf_with(sandbox, tmp_path, [f"sql_config = {loose}"])
    fails(admin(sandbox, "domain", "list", conf=conf), 1, "must not be accessible")


def test_authd_unreachable_is_a_temporary_failure(sandbox, tmp_path):
    conf = conf_with(sandbox, tmp_path, [f"spool_directory = {tmp_path}"])
    fails(admin(sandbox, "lookup", "a@example.org", conf=conf), EX_TEMPFAIL,
          "authd unreachable")
    fails(admin(sandbox, "auth", "test", "a@example.org", "--password-stdin", password="x\n",
                conf=conf), EX_TEMPFAIL, "authd unreachable")


@pytest.mark.parametrize("args", [
    [], ["frobnicate"], ["domain"], ["domain", "add"], ["domain", "add", "a.test", "b.test"],
    ["domain", "list", "extra"], ["user", "add", "a@b.test", "--bogus"],
    ["user", "add", "a@b.test", "--scheme"], ["domain", "add", "a.test", "--force"],
    ["alias", "add", "a@b.test"], ["lookup"], ["auth", "test"],
])
def test_usage_errors_exit_2(sandbox, args):
    res = admin(sandbox, *args)
    assert res.returncode == 2, res
    assert "usage: postern admin" in res.stderr


def test_help_and_missing_configuration(sandbox, tmp_path):
    res = subprocess.run([os.path.join(sandbox.bindir, "postern"), "admin", "-h"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and "user add ADDRESS" in res.stdout
    res = admin(sandbox, "domain", "list", conf=str(tmp_path / "missing.conf"))
    fails(res, 1, "missing.conf")


# ---- the README's settings for the older schema --------------------------------------------

OLD_SCHEMA = """
CREATE TABLE domains (domain varchar(50) NOT NULL, PRIMARY KEY (domain));
CREATE TABLE users (email varchar(80) NOT NULL, password varchar(106) NOT NULL,
                    PRIMARY KEY (email));
CREATE TABLE forwardings (source varchar(80) NOT NULL, destination TEXT NOT NULL,
                          PRIMARY KEY (source));
INSERT INTO domains VALUES ('old.test');
INSERT INTO users VALUES ('ann@old.test', ENCRYPT('ann pw', '$6$saltsaltsalt$'));
INSERT INTO forwardings VALUES ('sales@old.test', 'ann@old.test, x@example.net');
"""


def readme_old_schema_settings():
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    section = text[text.index("## Administration"):]
    lines = re.findall(r"(?m)^(?:domain|password|user|alias|sender|password_update)_query\s*=.*$",
                       section)
    assert len(lines) == 6, lines
    return lines


def test_readme_settings_for_the_older_schema_work(tmp_path):
    """A sandbox of its own: its database gets the older tables, its authd the README's
    queries; lookup and auth test then answer from them."""
    sb = start_sandbox("postern-admin-old-")
    try:
        sql(sb, OLD_SCHEMA)
        etc = os.path.dirname(sb.conf)
        with open(os.path.join(etc, "sql.conf")) as f:
            creds = [line for line in f if re.match(r"(hosts|user|password|dbname)\s*=", line)]
        old_conf = os.path.join(etc, "old-schema.conf")
        with open(old_conf, "w") as f:
            f.write("".join(creds) + "\n".join(readme_old_schema_settings()) + "\n")
        os.chmod(old_conf, 0o600)
        os.chown(old_conf, pwd.getpwnam("postern-auth").pw_uid, -1)
        sb.stop()
        sb.sets = [f"sql_config={old_conf}"]
        sb.start()

        res = ok(admin(sb, "lookup", "ann@old.test"))
        assert res.stdout.splitlines()[0] == "rcpt: virtual user=ann@old.test"
        res = ok(admin(sb, "lookup", "sales@old.test"))
        assert res.stdout.splitlines()[0] == "rcpt: alias -> ann@old.test, x@example.net"
        res = admin(sb, "lookup", "nobody@old.test")
        assert res.returncode == 1 and res.stdout.startswith("rcpt: unknown user"), res
        res = ok(admin(sb, "auth", "test", "ann@old.test", "--password-stdin",
                       password="ann pw\n"))
        assert res.stdout.startswith("passdb: ann@old.test auth succeeded")
    finally:
        finish_sandbox(sb)
