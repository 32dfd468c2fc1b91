"""test_authd: postern-authd end to end against the sandbox's real MariaDB (issue 3).

Every request type of lib/authproto.h is asked over the real private socket, with rows put
into the database by the mariadb client, as an administrator following the common guides
would. Password hashes come from other tools (mkpasswd from Debian's whois package,
`doveadm pw`-style {SCHEME} strings, MariaDB's ENCRYPT()). The guides' virtual_users.password
is varchar(106), too short for "{SHA512-CRYPT}$6$..." (120 characters): the fixture widens the
column to varchar(255) in the session sandbox's database (ALTER TABLE), as an administrator
storing prefixed hashes must.

Failed logins are delayed (auth_failure_delay, 500 ms by default) and counted per client
address and per user, so every test that fails a login on purpose uses a fresh client
address (fresh_rip) and a user of its own, and independent failures run in parallel.

Tests that need other settings or disrupt the database have sandboxes of their own:
`tuned` (short failure delays and cache lifetimes) and one started by the outage test.
"""

import concurrent.futures
import itertools
import os
import re
import select
import signal
import statistics
import subprocess
import time

import pytest

import authd_client as ac
import postern_ipc as ipc
from authd_client import AUTH, RCPT, SENDER, TICKET, USER, AuthClient, Db, targets
from conftest import (alive, finish_sandbox, service_children, start_sandbox, uid_of,
                      gid_of, wait_until)

PASSWORD = "S3cret pass"
DEFAULT_FAILURE_DELAY = 0.5         # auth_failure_delay's default (lib/params.c)
AUTH_FAILED = "authentication failed"

_rips = itertools.count(1)


def fresh_rip():
    """A client address no other test used, so failure counters start at zero."""
    n = next(_rips)
    return f"198.18.{n // 250}.{n % 250 + 1}"


def parallel(fn, items, workers=16):
    """fn(item) for every item at once (each opens its own connection); results in order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def authd_pid(system):
    kids = wait_until(lambda: service_children(system.master_pid, "authd"), 10,
                      what="an authd child of master")
    assert len(kids) == 1, f"more than one authd: {kids}"
    return kids[0].pid


def wait_authd(system, timeout=15):
    """Wait until authd answers on its socket (the listeners may be up before it is)."""
    path = ac.auth_socket(system)

    def answers():
        try:
            with AuthClient(path, timeout=3) as c:
                return c.rcpt("probe@not-ours.invalid") is not None
        except OSError:
            return False
    wait_until(answers, timeout, interval=0.1, what="authd to answer")


def assert_status(reply, status, reason=None):
    names = {ipc.OK: "OK", ipc.PERMFAIL: "PERMFAIL", ipc.TEMPFAIL: "TEMPFAIL"}
    assert reply is not None, "authd closed the connection instead of answering"
    assert reply.status == status, \
        f"want {names[status]}{' ' + reason if reason else ''}, got {names[reply.status]} {reply}"
    if reason is not None:
        assert reply.get("reason") == reason, f"want reason {reason!r}: {reply}"


# ---- the session sandbox's world -----------------------------------------------------------

class World:
    """The session sandbox plus what this module put into its database."""

    def __init__(self, sandbox):
        self.sb = sandbox
        self.env = sandbox.env
        self.db = Db(sandbox.env["POSTERN_MYSQL_SOCKET"])
        self.path = ac.auth_socket(sandbox)
        self.mail_root = sandbox.env["POSTERN_MAIL_ROOT"]

    def client(self, timeout=10.0):
        return AuthClient(self.path, timeout=timeout)

    def rcpt(self, address):
        with self.client() as c:
            return c.rcpt(address)


HASHES = {}     # user -> (scheme description, stored hash): filled by the fixture


def make_hashes(db):
    sha512 = ac.mkpasswd(PASSWORD, "sha-512")
    made = {
        "sha512": ("mkpasswd -m sha-512", sha512),
        "yescrypt": ("mkpasswd -m yescrypt", ac.mkpasswd(PASSWORD, "yescrypt")),
        "bcrypt": ("mkpasswd -m bcrypt", ac.mkpasswd(PASSWORD, "bcrypt")),
        "bcrypt-a": ("mkpasswd -m bcrypt-a ($2a$)", ac.mkpasswd(PASSWORD, "bcrypt-a")),
        "md5crypt": ("mkpasswd -m md5crypt", ac.mkpasswd(PASSWORD, "md5crypt")),
        "sha256": ("mkpasswd -m sha-256", ac.mkpasswd(PASSWORD, "sha-256")),
        "descrypt": ("mkpasswd -m descrypt", ac.mkpasswd(PASSWORD, "descrypt")),
        "dove-sha512": ("doveadm pw -s SHA512-CRYPT style", "{SHA512-CRYPT}" + sha512),
        "dove-blf": ("doveadm pw -s BLF-CRYPT style",
                     "{BLF-CRYPT}" + ac.mkpasswd(PASSWORD, "bcrypt")),
        "dove-sha256": ("doveadm pw -s SHA256-CRYPT style",
                        "{SHA256-CRYPT}" + ac.mkpasswd(PASSWORD, "sha-256")),
        "dove-md5": ("doveadm pw -s MD5-CRYPT style",
                     "{MD5-CRYPT}" + ac.mkpasswd(PASSWORD, "md5crypt")),
        "dove-crypt": ("{CRYPT} + mkpasswd -m sha-512", "{CRYPT}" + sha512),
        "dove-plain": ("{PLAIN} clear text", "{PLAIN}" + PASSWORD),
    }
    for name, (how, stored) in made.items():
        db.add_user(f"{name}@hash.test", stored)
    # MariaDB's ENCRYPT() exactly as the guides write it.
    did = db.domain("hash.test")
    db.run("INSERT INTO virtual_users (domain_id, password, email) VALUES "
           f"({did}, ENCRYPT({ac.quote(PASSWORD)}, CONCAT('$6$', SUBSTRING(SHA(RAND()), -16))), "
           "'encrypt@hash.test')")
    made["encrypt"] = ("MariaDB ENCRYPT(pw, CONCAT('$6$', SUBSTRING(SHA(RAND()), -16)))",
                       db.scalar("SELECT password FROM virtual_users "
                                 "WHERE email='encrypt@hash.test'"))
    assert made["encrypt"][1].startswith("$6$"), made["encrypt"]
    for name, (how, stored) in made.items():
        HASHES[f"{name}@hash.test"] = (how, stored)


@pytest.fixture(scope="module")
def world(sandbox):
    w = World(sandbox)
    db = w.db
    wait_authd(sandbox)
    # Room for {SCHEME}-prefixed hashes (see the module's docstring).
    db.run("ALTER TABLE virtual_users MODIFY password varchar(255) NOT NULL")
    sha = ac.mkpasswd(PASSWORD, "sha-512")
    for user in ("alice", "bob", "both", "o'brien"):
        db.add_user(f"{user}@example.test", sha)
    db.add_alias("info@example.test", "alice@example.test, bob@elsewhere.test")
    db.add_alias("sales@example.test", "alice@example.test")
    db.add_alias("support@example.test", "bob@example.test")
    db.add_alias("both@example.test", "bob@example.test")
    db.add_alias("x'y@example.test", "alice@example.test")
    db.add_alias("@catch.test", "alice@example.test")
    db.add_user("real@catch.test", sha)
    db.domain("pm.test")
    db.add_user("postmaster@haspm.test", sha)
    for i in range(6):
        db.add_user(f"t{i}@timing.test", sha)
    make_hashes(db)
    return w


# ---- rcpt ----------------------------------------------------------------------------------

@pytest.mark.parametrize("address, user", [
    ("alice@example.test", "alice@example.test"),
    ("alice+tag@example.test", "alice@example.test"),
    ("alice@EXAMPLE.TEST", "alice@example.test"),
    ("alice@Example.Test", "alice@example.test"),
    ("real@catch.test", "real@catch.test"),             # a mailbox beats the catch-all
    ("postmaster@haspm.test", "postmaster@haspm.test"),  # a real postmaster beats the default
])
def test_rcpt_virtual(world, address, user):
    r = world.rcpt(address)
    assert_status(r, ipc.OK)
    assert r.get("kind") == "virtual", r
    assert r.get("user") == user, r


def test_rcpt_domain_case_insensitive_whole_address(world):
    r = world.rcpt("ALICE@EXAMPLE.TEST")
    assert_status(r, ipc.OK)
    assert r.get("kind") == "virtual" and r.get("user").lower() == "alice@example.test", r


@pytest.mark.parametrize("address, want", [
    ("info@example.test", ["alice@example.test", "bob@elsewhere.test"]),
    ("sales@example.test", ["alice@example.test"]),
    ("sales+news@example.test", ["alice@example.test"]),
    ("both@example.test", ["bob@example.test"]),          # an alias wins over a mailbox
    ("anything@catch.test", ["alice@example.test"]),      # catch-all @domain
    ("x'y@example.test", ["alice@example.test"]),         # a quote is just a character
])
def test_rcpt_alias(world, address, want):
    r = world.rcpt(address)
    assert_status(r, ipc.OK)
    assert r.get("kind") == "alias", r
    assert r.kinds.get("targets") == ipc.BYTES, f"targets must be bytes: {r}"
    assert targets(r) == want, r


# The required local parts of a virtual domain go to required_aliases_target ("root"), which
# authd may qualify with a local domain (mydestination) so that it resolves as kind=local.
LOCAL_ROOT = {"root", "root@localhost", "root@mail.sandbox.test"}


@pytest.mark.parametrize("address", ["postmaster@pm.test", "abuse@pm.test",
                                     "postmaster@PM.TEST", "abuse+x@pm.test"])
def test_rcpt_required_aliases(world, address):
    r = world.rcpt(address)
    assert_status(r, ipc.OK)
    assert r.get("kind") == "alias", r
    got = targets(r)
    assert len(got) == 1 and got[0] in LOCAL_ROOT, r
    with world.client() as c:                   # and the target is a local user
        t = c.rcpt(got[0] if "@" in got[0] else got[0] + "@localhost")
    assert_status(t, ipc.OK)
    assert (t.get("kind"), t.get("user")) == ("local", "root"), t


@pytest.mark.parametrize("address", ["x@other.test", "alice@example.test.other",
                                     "alice@EXAMPLE.ORG"])
def test_rcpt_remote(world, address):
    r = world.rcpt(address)
    assert_status(r, ipc.OK)
    assert r.get("kind") == "remote", r


@pytest.mark.parametrize("address", ["nosuch@example.test", "nosuch+tag@example.test",
                                     "other@pm.test", "Alice.x@example.test"])
def test_rcpt_unknown_user(world, address):
    assert_status(world.rcpt(address), ipc.PERMFAIL, "unknown user")


@pytest.mark.parametrize("address", ["root@localhost", "root@mail.sandbox.test",
                                     "root+tag@localhost", "postmaster@localhost"])
def test_rcpt_local(world, address):
    r = world.rcpt(address)
    assert_status(r, ipc.OK)
    assert r.get("kind") == "local", r
    assert r.get("user") in ("root", "postmaster"), r


def test_rcpt_local_unknown(world):
    assert_status(world.rcpt("no-such-system-user@localhost"), ipc.PERMFAIL, "unknown user")


# ---- user ----------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["alice@example.test", "alice+tag@example.test",
                                     "alice@EXAMPLE.test"])
def test_user(world, address):
    with world.client() as c:
        r = c.user(address)
    assert_status(r, ipc.OK)
    assert r.get("user") == "alice@example.test", r
    assert r.get("home") == os.path.join(world.mail_root, "example.test", "alice"), r
    assert r.get("mail") == "~/Maildir", r
    assert (r.get("uid"), r.get("gid")) == (uid_of("vmail"), gid_of("vmail")) == (5000, 5000), r
    assert r.get("quota") == 0, r
    assert all(r.kinds[k] == ipc.INT for k in ("uid", "gid", "quota")), r


@pytest.mark.parametrize("address", ["nosuch@example.test", "info@example.test",
                                     "x@other.test"])
def test_user_unknown(world, address):
    with world.client() as c:
        assert_status(c.user(address), ipc.PERMFAIL, "unknown user")


# ---- sender --------------------------------------------------------------------------------

@pytest.mark.parametrize("user, address", [
    ("alice@example.test", "alice@example.test"),
    ("alice@example.test", "ALICE@example.test"),
    ("alice@example.test", "alice@EXAMPLE.TEST"),
    ("alice@example.test", "sales@example.test"),       # alias -> alice
    ("bob@example.test", "support@example.test"),
])
def test_sender_allowed(world, user, address):
    with world.client() as c:
        assert_status(c.sender(user, address), ipc.OK)


def test_sender_alias_with_several_destinations(world):
    """info@ -> "alice@example.test, bob@elsewhere.test" (one row, as rcpt splits it):
    alice is one of the users the alias points to."""
    with world.client() as c:
        assert_status(c.sender("alice@example.test", "info@example.test"), ipc.OK)


@pytest.mark.parametrize("user, address", [
    ("alice@example.test", "bob@example.test"),
    ("alice@example.test", "support@example.test"),     # alias -> bob
    ("alice@example.test", "nosuch@example.test"),
    ("alice@example.test", "alice@other.test"),
    ("alice@example.test", "anything@catch.test"),      # a catch-all is not ownership
    ("x' OR '1'='1", "bob@example.test"),
    ("alice@example.test", "bob@example.test' OR '1'='1"),
])
def test_sender_refused(world, user, address):
    with world.client() as c:
        assert_status(c.sender(user, address), ipc.PERMFAIL)


# ---- auth and tickets ----------------------------------------------------------------------

def test_auth_plain(world):
    with world.client() as c:
        for authzid in ("", "alice@example.test"):
            r = c.plain("alice@example.test", PASSWORD, authzid=authzid, rip=fresh_rip())
            assert_status(r, ipc.OK)
            assert r.get("user") == "alice@example.test", r
            assert "ticket" not in r.attrs, f"a ticket nobody asked for: {r}"


def test_auth_plain_other_authzid_refused(world):
    with world.client() as c:
        r = c.plain("alice@example.test", PASSWORD, authzid="bob@example.test",
                    rip=fresh_rip())
    assert_status(r, ipc.PERMFAIL)
    assert "user" not in r.attrs and "ticket" not in r.attrs, r


def test_auth_login(world):
    with world.client() as c:
        r = c.login("bob@example.test", PASSWORD, rip=fresh_rip(), service="imap")
    assert_status(r, ipc.OK)
    assert r.get("user") == "bob@example.test", r


def test_auth_canonical_user(world):
    """The login name as typed (domain in capitals) comes back canonical."""
    with world.client() as c:
        r = c.login("alice@EXAMPLE.TEST", PASSWORD, rip=fresh_rip())
    assert_status(r, ipc.OK)
    assert r.get("user") == "alice@example.test", r


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_ticket_redeemed_once(world, mech):
    with world.client() as c:
        if mech == "PLAIN":
            r = c.plain("alice@example.test", PASSWORD, rip=fresh_rip(), service="imap",
                        ticket=1)
        else:
            r = c.login("alice@example.test", PASSWORD, rip=fresh_rip(), service="imap",
                        ticket=1)
        assert_status(r, ipc.OK)
        ticket = r.get("ticket")
        assert isinstance(ticket, str) and len(ticket) >= 16, r
        t = c.redeem(ticket)
        assert_status(t, ipc.OK)
        assert t.get("user") == "alice@example.test", t
        assert t.get("home") == os.path.join(world.mail_root, "example.test", "alice"), t
        assert t.get("mail") == "~/Maildir", t
        assert (t.get("uid"), t.get("gid"), t.get("quota")) == (5000, 5000, 0), t
        assert_status(c.redeem(ticket), ipc.PERMFAIL)


def test_tickets_are_unique_and_unguessable(world):
    with world.client() as c:
        tickets = {c.plain("alice@example.test", PASSWORD, rip=fresh_rip(),
                           ticket=1).get("ticket") for _ in range(5)}
        assert len(tickets) == 5, tickets
        assert_status(c.redeem("0" * 32), ipc.PERMFAIL)
        assert_status(c.redeem(""), ipc.PERMFAIL)
        assert_status(c.redeem("x" * 1000), ipc.PERMFAIL)


@pytest.mark.parametrize("user", sorted(["sha512", "yescrypt", "bcrypt", "bcrypt-a",
                                         "md5crypt", "sha256", "descrypt", "dove-sha512",
                                         "dove-blf", "dove-sha256", "dove-md5", "dove-crypt",
                                         "dove-plain", "encrypt"]))
def test_hash_scheme_verifies(world, user):
    login = f"{user}@hash.test"
    how, stored = HASHES[login]
    with world.client() as c:
        r = c.plain(login, PASSWORD, rip=fresh_rip())
    assert r is not None and r.status == ipc.OK, \
        f"{how}: stored {stored!r} does not verify: {r}"
    assert r.get("user") == login


def test_hash_scheme_wrong_password(world):
    """Every scheme refuses a wrong password (also a prefix and the password plus a byte)."""
    attempts = []
    for login in sorted(HASHES):
        # Traditional DES crypt reads only the first 8 bytes of a password, so for it
        # "S3cret pas" and "S3cret passx" are the right password (as with crypt(3) anywhere).
        near = () if login.startswith("descrypt@") else (PASSWORD[:-1], PASSWORD + "x")
        for wrong in ("wrong", "s3cret pass") + near:
            attempts.append((login, wrong))

    def attempt(item):
        login, wrong = item
        with AuthClient(world.path, timeout=20) as c:
            return c.login(login, wrong, rip=fresh_rip())
    replies = parallel(attempt, attempts, workers=len(attempts))
    bad = [(HASHES[l][0], w, r) for (l, w), r in zip(attempts, replies)
           if r is None or r.status != ipc.PERMFAIL or r.get("reason") != AUTH_FAILED]
    assert not bad, f"wrong passwords not refused: {bad}"


@pytest.mark.parametrize("n, stored, attempt", [(1, "!", "!"), (2, "*", "*"), (3, "", "x"),
                                                (4, "garbage", "garbage"), (5, "{PLAIN}", "x"),
                                                (6, "{NO-SUCH-SCHEME}x", "x")])
def test_locked_or_broken_hash_never_verifies(world, n, stored, attempt):
    login = f"locked{n}@hash.test"
    world.db.add_user(login, stored)
    with world.client(timeout=20) as c:
        assert_status(c.login(login, attempt, rip=fresh_rip()), ipc.PERMFAIL, AUTH_FAILED)


def test_wrong_password_and_unknown_user_alike(world):
    """Same reply, same timing class: with the failure delay both take about
    auth_failure_delay (medians within a factor of 2)."""
    wrong = [(f"t{i}@timing.test", "wrong password") for i in range(6)]
    unknown = [(f"nobody{i}@timing.test", "wrong password") for i in range(6)]
    # Bounds kept apart from other domains: an unknown user in an unknown domain too.
    unknown += [("nobody@no-such-domain.test", "x")]

    def attempt(item):
        login, password = item
        with AuthClient(world.path, timeout=20) as c:
            return ac.timed(c.login, login, password, rip=fresh_rip())
    results = parallel(attempt, wrong + unknown, workers=len(wrong) + len(unknown))
    for (login, _), (r, _) in zip(wrong + unknown, results):
        assert_status(r, ipc.PERMFAIL, AUTH_FAILED)
        assert set(r.attrs) == {"reason"}, f"{login}: extra attributes {r}"
    t_wrong = statistics.median(t for _, t in results[:len(wrong)])
    t_unknown = statistics.median(t for _, t in results[len(wrong):])
    assert 0.8 * DEFAULT_FAILURE_DELAY <= t_wrong <= 3 * DEFAULT_FAILURE_DELAY, t_wrong
    assert 0.8 * DEFAULT_FAILURE_DELAY <= t_unknown <= 3 * DEFAULT_FAILURE_DELAY, t_unknown
    assert max(t_wrong, t_unknown) <= 2 * min(t_wrong, t_unknown), (t_wrong, t_unknown)


def test_wrong_password_does_not_log_in_and_ticket_not_issued(world):
    with world.client(timeout=20) as c:
        r = c.plain("alice@example.test", "not it", rip=fresh_rip(), ticket=1)
    assert_status(r, ipc.PERMFAIL, AUTH_FAILED)
    assert "ticket" not in r.attrs and "user" not in r.attrs, r


@pytest.mark.parametrize("attrs", [
    {"service": "smtp", "mech": "CRAM-MD5", "rip": "192.0.2.9", "user": "alice@example.test",
     "pass": PASSWORD},
    {"service": "smtp", "mech": "PLAIN", "rip": "192.0.2.9"},
    {"service": "smtp", "mech": "PLAIN", "rip": "192.0.2.9",
     "resp": b"alice@example.test\0" + PASSWORD.encode()},
    {"service": "smtp", "mech": "PLAIN", "rip": "192.0.2.9",
     "resp": "alice@example.test"},                        # resp must be bytes
    {"service": "smtp", "mech": "LOGIN", "rip": "192.0.2.9", "user": "alice@example.test"},
    {"mech": "LOGIN", "rip": "192.0.2.9", "user": "alice@example.test", "pass": PASSWORD},
    {"service": "smtp", "mech": "LOGIN", "rip": "192.0.2.9", "user": "alice@example.test",
     "pass": PASSWORD, "bogus": "x"},
])
def test_auth_malformed_refused(world, attrs):
    with world.client(timeout=20) as c:
        r = c.call(AUTH, attrs)
    assert_status(r, ipc.PERMFAIL)
    assert "user" not in r.attrs, r


# ---- hostile strings -----------------------------------------------------------------------

HOSTILE_LOCAL = ["x'OR'1'='1", "x'--", "x\\", "a\\'b", '"quoted"', "%", "a%b", "_", "*",
                 "x';DROP-TABLE-virtual_users;--", "'", "''", "\\0", "%s%u%d%n"]


def test_hostile_addresses_do_not_inject(world):
    users_before = world.db.count("virtual_users")
    with world.client() as c:
        for local in HOSTILE_LOCAL:
            for fn in (c.rcpt, c.user):
                r = fn(f"{local}@example.test")
                assert_status(r, ipc.PERMFAIL)
                assert r.get("reason") in ("unknown user", "bad address syntax"), r
            r = c.rcpt(f"{local}@other.test")
            assert r is not None and r.status != ipc.TEMPFAIL, r
            assert r.status == ipc.PERMFAIL or r.get("kind") == "remote", r
        for domain in ("example.test' OR '1'='1", "example.test'--", "%", "example.%",
                       "example.test\\", "x'.test"):
            r = c.rcpt(f"alice@{domain}")
            assert r is not None and r.status != ipc.TEMPFAIL, r
            assert r.status == ipc.PERMFAIL or r.get("kind") == "remote", r
        assert_status(c.rcpt("alice@example.test"), ipc.OK)
    assert world.db.count("virtual_users") == users_before


def test_quotes_in_stored_data_round_trip(world):
    """Data with quotes is found exactly (bound parameters, not rejected input)."""
    with world.client() as c:
        r = c.rcpt("o'brien@example.test")
        assert_status(r, ipc.OK)
        assert (r.get("kind"), r.get("user")) == ("virtual", "o'brien@example.test"), r
        r = c.login("o'brien@example.test", PASSWORD, rip=fresh_rip())
        assert_status(r, ipc.OK)
        assert r.get("user") == "o'brien@example.test"


def test_hostile_logins_do_not_inject(world):
    # Hostile passwords go to users of their own: failures of one user add up their delays.
    sha = ac.mkpasswd(PASSWORD, "sha-512")
    for i in range(4):
        world.db.add_user(f"hostile{i}@example.test", sha)
    users_before = world.db.count("virtual_users")
    logins = [("x' OR '1'='1", "x' OR '1'='1"), ("alice@example.test' -- ", "x"),
              ("alice@example.test'#", "x"), ("' OR 1=1 #", "' OR 1=1 #"),
              ("%", "%"), ("hostile0@example.test", "' OR '1'='1"),
              ("hostile1@example.test", "\\"), ("hostile2@example.test", "%"),
              ("hostile3@example.test", "x" * 1000), ("a" * 300 + "@example.test", "x")]

    def attempt(item):
        login, password = item
        with AuthClient(world.path, timeout=20) as c:
            return c.login(login, password, rip=fresh_rip())
    for (login, password), r in zip(logins, parallel(attempt, logins)):
        assert_status(r, ipc.PERMFAIL)
        assert "user" not in r.attrs, (login, password, r)
    assert world.db.count("virtual_users") == users_before
    assert world.rcpt("alice@example.test").get("kind") == "virtual"


def test_long_strings(world):
    """1,000-byte strings in every string attribute: a clean PERMFAIL, the daemon lives on."""
    long = "a" * 1000
    with world.client(timeout=20) as c:
        for address in (long, long + "@example.test", "a@" + long, "a" * 65 + "@example.test",
                        "a@" + "b" * 250 + ".test"):
            r = c.rcpt(address)
            assert r is not None and r.status != ipc.TEMPFAIL, r
            assert r.status == ipc.PERMFAIL or r.get("kind") == "remote", r
            assert_status(c.user(address), ipc.PERMFAIL)
            assert_status(c.sender("alice@example.test", address), ipc.PERMFAIL)
            assert_status(c.sender(address, "alice@example.test"), ipc.PERMFAIL)
        for attrs in ({"service": long, "mech": "LOGIN", "rip": fresh_rip(),
                       "user": "alice@example.test", "pass": PASSWORD},
                      {"service": "smtp", "mech": long, "rip": fresh_rip(),
                       "user": "alice@example.test", "pass": PASSWORD},
                      {"service": "smtp", "mech": "LOGIN", "rip": long,
                       "user": "alice@example.test", "pass": PASSWORD},
                      {"service": "smtp", "mech": "PLAIN", "rip": fresh_rip(),
                       "resp": b"\0" + long.encode() + b"\0" + PASSWORD.encode()},
                      {"service": "smtp", "mech": "PLAIN", "rip": fresh_rip(),
                       "resp": b"\0alice@example.test\0" + b"p" * 5000}):
            assert_status(c.call(AUTH, attrs), ipc.PERMFAIL)
        assert_status(c.redeem(long), ipc.PERMFAIL)
        assert_status(c.rcpt("alice@example.test"), ipc.OK)


def test_nul_in_string_closes_connection_only(world):
    """A NUL inside a string attribute is a malformed frame: that connection is closed,
    everyone else is served as before."""
    with world.client() as bystander:
        assert_status(bystander.rcpt("alice@example.test"), ipc.OK)
        for type_, key in ((RCPT, "address"), (USER, "address"), (AUTH, "user"),
                           (SENDER, "user"), (TICKET, "ticket")):
            with world.client() as bad:
                payload = ipc.attr_raw(ipc.STR, key, b"alice\0@example.test")
                if type_ == AUTH:
                    payload = (ipc.encode_attr("service", "smtp") + ipc.encode_attr("mech", "LOGIN")
                               + ipc.encode_attr("rip", "192.0.2.50") + payload
                               + ipc.encode_attr("pass", PASSWORD))
                if type_ == SENDER:
                    payload += ipc.encode_attr("address", "alice@example.test")
                bad.send_raw(ipc.encode_raw(type_, 7, payload))
                assert ipc.wait_eof(bad.sock, 5), f"type {type_}: connection not closed"
            assert_status(bystander.rcpt("alice@example.test"), ipc.OK)
        # A NUL in the PLAIN response's password is not a frame error but still no login.
        r = bystander.plain("alice@example.test", PASSWORD.encode() + b"\0x", rip=fresh_rip(),
                            timeout=20)
        assert_status(r, ipc.PERMFAIL)


def test_unknown_request_type_and_keys(world):
    with world.client() as c:
        assert_status(c.call(99, {"address": "alice@example.test"}), ipc.PERMFAIL)
        assert_status(c.call(RCPT, {"address": "alice@example.test", "extra": "x"}),
                      ipc.PERMFAIL)
        assert_status(c.call(RCPT, {}), ipc.PERMFAIL)
        assert_status(c.call(RCPT, {"address": 5}), ipc.PERMFAIL)
        assert_status(c.rcpt("alice@example.test"), ipc.OK)


# ---- the allow-list ------------------------------------------------------------------------

# DESIGN.md §3 and lib/authproto.h: who may ask what.
ALLOWED = {
    AUTH: {"root", "postern"},
    TICKET: {"root"},
    USER: {"root", "vmail", "postern-queue"},
    RCPT: {"root", "postern", "postern-queue"},
    SENDER: {"root", "postern"},
}


def test_nobody_cannot_connect(world):
    with pytest.raises(PermissionError):
        ac.connect_as(world.path, "nobody")


@pytest.mark.parametrize("user", ["postern", "postern-queue", "vmail"])
def test_allow_list_matrix(world, user):
    """An empty request of each type: "not allowed" for a peer not on the type's list, and
    some other answer (here "malformed request") for one that is: the check comes first."""
    with ac.client_as(world.path, user) as c:
        for type_, allowed in ALLOWED.items():
            r = c.call(type_, {})
            if user in allowed:
                assert r.status == ipc.PERMFAIL and r.get("reason") != "not allowed", \
                    f"{user} type {type_}: {r}"
            else:
                assert_status(r, ipc.PERMFAIL, "not allowed")


def test_foreign_uid_in_socket_group_refused(world):
    """Even a peer that gets through the socket's permissions (here nobody with the socket's
    group) is refused every request by its SO_PEERCRED uid."""
    postern_gid = gid_of("postern")
    with ac.client_as(world.path, uid=65534, gid=65534, groups=[postern_gid]) as c:
        for type_, attrs in ((RCPT, {"address": "alice@example.test"}),
                             (USER, {"address": "alice@example.test"}),
                             (SENDER, {"user": "alice@example.test",
                                       "address": "alice@example.test"}),
                             (TICKET, {"ticket": "0" * 32}),
                             (AUTH, {"service": "smtp", "mech": "LOGIN", "rip": fresh_rip(),
                                     "user": "alice@example.test", "pass": PASSWORD})):
            assert_status(c.call(type_, attrs), ipc.PERMFAIL, "not allowed")


def test_vmail_may_ask_user_but_not_auth(world):
    with ac.client_as(world.path, "vmail") as c:
        r = c.user("alice@example.test")
        assert_status(r, ipc.OK)
        assert r.get("home").endswith("/example.test/alice")
        r = c.login("alice@example.test", PASSWORD, rip=fresh_rip())
        assert_status(r, ipc.PERMFAIL, "not allowed")
        assert "user" not in r.attrs
        assert_status(c.rcpt("alice@example.test"), ipc.PERMFAIL, "not allowed")


def test_mail_owner_may_not_redeem_tickets(world):
    with world.client() as root:
        ticket = root.plain("alice@example.test", PASSWORD, rip=fresh_rip(),
                            ticket=1).get("ticket")
    with ac.client_as(world.path, "postern") as c:
        r = c.login("alice@example.test", PASSWORD, rip=fresh_rip(), ticket=1)
        assert_status(r, ipc.OK)                  # smtpd/imap-login may authenticate
        assert_status(c.redeem(ticket), ipc.PERMFAIL, "not allowed")
        assert_status(c.redeem(r.get("ticket")), ipc.PERMFAIL, "not allowed")
    with world.client() as root:                  # the refused attempt did not use it up
        assert_status(root.redeem(ticket), ipc.OK)


# ---- cache ---------------------------------------------------------------------------------

def test_cache_survives_row_deletion_until_sighup(world):
    sb = world.sb
    world.db.add_user("cached@example.test", "{PLAIN}x")
    world.db.add_alias("cachedalias@example.test", "alice@example.test")
    with world.client() as c:
        assert c.rcpt("cached@example.test").get("kind") == "virtual"
        assert c.rcpt("cachedalias@example.test").get("kind") == "alias"
        assert_status(c.user("cached@example.test"), ipc.OK)
        world.db.run("DELETE FROM virtual_users WHERE email='cached@example.test'; "
                     "DELETE FROM virtual_aliases WHERE source='cachedalias@example.test'")
        # Within authd_cache_ttl (60 s by default) the cached answers stand.
        assert c.rcpt("cached@example.test").get("kind") == "virtual"
        assert c.rcpt("cachedalias@example.test").get("kind") == "alias"
        assert_status(c.user("cached@example.test"), ipc.OK)
        log_size = os.path.getsize(sb.log)
        pid = authd_pid(sb)
        os.kill(pid, signal.SIGHUP)
        wait_until(lambda: "cached lookups dropped" in log_since(sb, log_size), 5,
                   what="authd to log the SIGHUP")
        assert_status(c.rcpt("cached@example.test"), ipc.PERMFAIL, "unknown user")
        assert_status(c.rcpt("cachedalias@example.test"), ipc.PERMFAIL, "unknown user")
        assert_status(c.user("cached@example.test"), ipc.PERMFAIL, "unknown user")
        assert authd_pid(sb) == pid, "SIGHUP restarted authd"


def log_since(system, offset):
    with open(system.log, errors="replace") as f:
        f.seek(offset)
        return f.read()


# ---- a sandbox with short delays and cache lifetimes ---------------------------------------

TUNED = ["auth_failure_delay=100ms", "auth_failure_max_delay=1s", "auth_failure_limit=5",
         "authd_cache_ttl=2s", "authd_negative_cache_ttl=2s", "auth_ticket_ttl=1s"]


@pytest.fixture(scope="module")
def tuned():
    sb = start_sandbox("postern-authd-tuned-", TUNED)
    try:
        wait_authd(sb)
        sb.db = Db(sb.env["POSTERN_MYSQL_SOCKET"])
        sha = ac.mkpasswd(PASSWORD, "sha-512")
        for user in ("victim", "spread", "ok", "ticket"):
            sb.db.add_user(f"{user}@brute.test", sha)
        sb.path = ac.auth_socket(sb)
        yield sb
    finally:
        finish_sandbox(sb)


def test_brute_force_slowed_then_refused(tuned):
    rip = "203.0.113.66"
    replies = []
    with AuthClient(tuned.path, timeout=20) as c:
        for i in range(15):
            replies.append(ac.timed(c.login, "victim@brute.test", f"guess{i}", rip=rip))
        # Refused even with the right password while the address is blocked ...
        r, _ = ac.timed(c.login, "victim@brute.test", PASSWORD, rip=rip)
        assert_status(r, ipc.TEMPFAIL)
    statuses = [r.status for r, _ in replies]
    summary = [(r.status, round(t, 3)) for r, t in replies]
    n_fail = statuses.count(ipc.PERMFAIL)
    assert statuses == [ipc.PERMFAIL] * n_fail + [ipc.TEMPFAIL] * (15 - n_fail), summary
    assert 2 <= n_fail <= 5, f"refusal should start at auth_failure_limit=5: {summary}"
    delays = [t for r, t in replies[:n_fail]]
    assert delays[0] >= 0.09, f"first failure not delayed by auth_failure_delay: {summary}"
    assert all(b >= 0.9 * a for a, b in zip(delays, delays[1:])), f"not growing: {summary}"
    assert delays[-1] >= 3 * delays[0], f"delay does not grow: {summary}"
    assert max(delays) <= 1.5, f"auth_failure_max_delay=1s exceeded: {summary}"
    for r, _ in replies[n_fail:]:
        assert r.get("reason"), r
    # ... while the user can still log in from another address.
    with AuthClient(tuned.path, timeout=20) as c:
        assert_status(c.login("victim@brute.test", PASSWORD, rip="203.0.113.7"), ipc.OK)


def test_brute_force_spread_over_addresses_slowed_per_user(tuned):
    """Guesses for one user from many addresses: the per-user count grows the delay."""
    times = []
    with AuthClient(tuned.path, timeout=20) as c:
        for i in range(4):
            r, t = ac.timed(c.login, "spread@brute.test", f"guess{i}", rip=f"203.0.113.{100 + i}")
            assert_status(r, ipc.PERMFAIL, AUTH_FAILED)
            times.append(t)
    assert times[-1] >= 3 * times[0], f"per-user delay does not grow: {times}"


def test_failure_log_lines_for_fail2ban(tuned):
    with AuthClient(tuned.path, timeout=20) as c:
        assert_status(c.login("nosuch@brute.test", "x", rip="203.0.113.201"), ipc.PERMFAIL)
        assert_status(c.login("ok@brute.test", "wrong", rip="203.0.113.202"), ipc.PERMFAIL)
    text = tuned.log_text()
    assert re.search(r"sql\(nosuch@brute\.test,203\.0\.113\.201\): unknown user", text), \
        tuned.log_tail()
    assert re.search(r"sql\(ok@brute\.test,203\.0\.113\.202\): Password mismatch", text), \
        tuned.log_tail()


def test_fail2ban_dovecot_filter_matches(tuned):
    with AuthClient(tuned.path, timeout=20) as c:
        assert_status(c.login("nosuch2@brute.test", "x", rip="203.0.113.211"), ipc.PERMFAIL)
        assert_status(c.login("ok@brute.test", "wrong2", rip="203.0.113.212"), ipc.PERMFAIL)
    res = subprocess.run(["fail2ban-regex", tuned.log, "/etc/fail2ban/filter.d/dovecot.conf"],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"^Failregex: (\d+) total", res.stdout, re.M)
    assert m, f"fail2ban-regex said:\n{res.stdout}{res.stderr}"
    lines = [line for line in tuned.log_text().splitlines() if "sql(" in line]
    assert int(m.group(1)) > 0, \
        "fail2ban's dovecot filter matches none of authd's failure lines:\n" + "\n".join(lines)


def test_cache_expires_after_ttl(tuned):
    db = tuned.db
    db.add_user("ttl@brute.test", "{PLAIN}x")
    with AuthClient(tuned.path) as c:
        assert c.rcpt("ttl@brute.test").get("kind") == "virtual"
        assert_status(c.rcpt("late@brute.test"), ipc.PERMFAIL, "unknown user")
        t0 = time.monotonic()
        db.run("DELETE FROM virtual_users WHERE email='ttl@brute.test'")
        db.add_user("late@brute.test", "{PLAIN}x")
        if time.monotonic() - t0 < 1.5:        # still inside authd_cache_ttl=2s
            assert c.rcpt("ttl@brute.test").get("kind") == "virtual", "positive not cached"
            assert_status(c.rcpt("late@brute.test"), ipc.PERMFAIL)   # negative cached
        time.sleep(max(0.0, 2.3 - (time.monotonic() - t0)))
        assert_status(c.rcpt("ttl@brute.test"), ipc.PERMFAIL, "unknown user")
        assert c.rcpt("late@brute.test").get("kind") == "virtual"


def test_ticket_expires(tuned):
    with AuthClient(tuned.path) as c:
        r = c.login("ticket@brute.test", PASSWORD, rip="203.0.113.221", ticket=1)
        assert_status(r, ipc.OK)
        time.sleep(1.3)                         # auth_ticket_ttl=1s
        assert_status(c.redeem(r.get("ticket")), ipc.PERMFAIL)


# ---- the database goes away and comes back -------------------------------------------------

@pytest.fixture(scope="module")
def outage():
    sb = start_sandbox("postern-authd-outage-")
    try:
        wait_authd(sb)
        sb.db = Db(sb.env["POSTERN_MYSQL_SOCKET"])
        sb.db.add_user("up@outage.test", ac.mkpasswd(PASSWORD, "sha-512"))
        sb.path = ac.auth_socket(sb)
        yield sb
    finally:
        finish_sandbox(sb)


def read_line_within(stream, timeout):
    """The next line of a pipe, or None if none comes within timeout."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else None


def test_locked_table_does_not_stall_cached_answers(outage):
    """A query that hangs (tables locked by another session) holds a worker, never the event
    loop: cached answers stay fast meanwhile and the held requests finish afterwards."""
    sb = outage
    with AuthClient(sb.path, timeout=20) as c:
        assert c.rcpt("up@outage.test").get("kind") == "virtual"      # cached
        locker = subprocess.Popen(
            ["mariadb", "--no-defaults", "-S", sb.env["POSTERN_MYSQL_SOCKET"], "-uroot",
             "--batch", "--unbuffered", "--skip-column-names", "mailserver"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        try:
            locker.stdin.write("LOCK TABLES virtual_users WRITE, virtual_aliases WRITE, "
                               "virtual_domains WRITE; SELECT 'locked';\n")
            locker.stdin.flush()
            line = read_line_within(locker.stdout, 10)
            assert line is not None and line.strip() == "locked", line
            with AuthClient(sb.path, timeout=20) as held:
                for i in range(8):              # more than authd_workers (4)
                    held.send_raw(ipc.encode(RCPT, 100 + i, {"address": f"h{i}@outage.test"}))
                time.sleep(0.3)
                for _ in range(20):
                    r, t = ac.timed(c.rcpt, "up@outage.test")
                    assert r.get("kind") == "virtual"
                    assert t < 0.5, f"a cached answer took {t:.3f} s while a query hangs"
                locker.stdin.write("UNLOCK TABLES;\n")
                locker.stdin.flush()
                got = set()
                held.sock.settimeout(20)
                while len(got) < 8:
                    m = ipc.recv_msg(held.sock)
                    assert m is not None, "authd closed the held connection"
                    assert m.status in (ipc.PERMFAIL, ipc.TEMPFAIL), m
                    got.add(m.id)
        finally:
            locker.stdin.close()
            try:
                locker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                locker.kill()
                locker.wait()


def test_database_outage_tempfail_then_recovery(outage):
    sb = outage
    pid = authd_pid(sb)
    with AuthClient(sb.path, timeout=20) as c:
        assert c.rcpt("up@outage.test").get("kind") == "virtual"      # now cached
        assert_status(c.login("up@outage.test", PASSWORD, rip="192.0.2.31"), ipc.OK)
        sb.stop_mysql()
        for i in range(3):
            for ask in (lambda: c.rcpt(f"new{i}@outage.test"),
                        lambda: c.rcpt(f"x{i}@somewhere{i}.test"),
                        lambda: c.user(f"new{i}@outage.test"),
                        lambda: c.sender("up@outage.test", f"alias{i}@outage.test"),
                        lambda: c.login("up@outage.test", PASSWORD, rip=f"192.0.2.{40 + i}"),
                        lambda: c.plain(f"new{i}@outage.test", "x", rip=f"192.0.2.{50 + i}")):
                r, t = ac.timed(ask)
                assert_status(r, ipc.TEMPFAIL)
                assert t < 1.0, f"TEMPFAIL took {t:.3f} s: {r}"
        # A cached answer does not need the database.
        assert c.rcpt("up@outage.test").get("kind") == "virtual"
        sb.start_mysql()

        def serving():
            r = c.rcpt("new0@outage.test")
            return r is not None and r.status == ipc.PERMFAIL
        t0 = time.monotonic()
        wait_until(serving, 10, interval=0.1, what="authd to use the database again")
        recovered = time.monotonic() - t0
        assert_status(c.login("up@outage.test", PASSWORD, rip="192.0.2.60"), ipc.OK)
        assert_status(c.user("up@outage.test"), ipc.OK)
    assert recovered < 8, f"recovery took {recovered:.1f} s"
    assert authd_pid(sb) == pid and alive(pid), "authd was restarted"


# ---- CRAM-MD5 and rehashing weak hashes ----------------------------------------------------

def cram(client, user, password, challenge="<1896.697170952@postern.test>", rip=None):
    import hmac
    digest = hmac.new(password.encode(), challenge.encode(), "md5").hexdigest()
    return client.call(10, [("service", "smtp"), ("mech", "CRAM-MD5"),
                            ("rip", rip or fresh_rip()), ("user", user),
                            ("challenge", challenge), ("response", digest)])


def test_cram_md5_for_cleartext_password(world):
    with world.client() as c:
        r = cram(c, "dove-plain@hash.test", PASSWORD)
        assert_status(r, ipc.OK)
        assert r.get("user") == "dove-plain@hash.test", r
        assert_status(cram(c, "dove-plain@hash.test", PASSWORD + "x"), ipc.PERMFAIL)


def test_cram_md5_impossible_for_hashed_password(world):
    """A crypt hash cannot answer a challenge: the right password still fails."""
    with world.client() as c:
        assert_status(cram(c, "sha512@hash.test", PASSWORD), ipc.PERMFAIL)


def authd_pid(system):
    conf = system.env["POSTERN_CONF"]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postern-authd") and conf.encode() in argv:
            return int(pid)
    return None


def test_weak_hash_rehashed_on_login(tuned):
    """password_update_query set: a $1$ hash becomes SHA512-CRYPT at the next good login."""
    sql_conf = os.path.join(tuned.env["POSTERN_DIR"], "etc", "sql.conf")
    with open(sql_conf, "a") as f:
        f.write("password_update_query = UPDATE virtual_users SET password='%p' "
                "WHERE email='%u'\n")
    old = authd_pid(tuned)
    os.kill(old, signal.SIGTERM)            # master starts a new authd with the new file
    wait_until(lambda: authd_pid(tuned) not in (None, old), 10, interval=0.1,
               what="a new authd")
    wait_authd(tuned)
    tuned.db.add_user("legacy@brute.test", ac.mkpasswd(PASSWORD, "md5crypt"))
    with AuthClient(tuned.path) as c:
        assert_status(c.login("legacy@brute.test", PASSWORD, rip=fresh_rip()), ipc.OK)
    stored = tuned.db.scalar("SELECT password FROM virtual_users "
                             "WHERE email='legacy@brute.test'")
    assert stored.startswith("$6$") and len(stored) == 106, stored
    with AuthClient(tuned.path) as c:
        assert_status(c.login("legacy@brute.test", PASSWORD, rip=fresh_rip()), ipc.OK)
