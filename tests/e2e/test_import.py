"""test_import: `postern import` (issue 8) reads a Postfix + Dovecot + MySQL configuration and
writes an equivalent postern.conf and sql.conf.

The fixtures under fixtures/import/ are copies of the common guides' files: `guide` is the
reference stack (mysql-virtual-*.cf, master.cf submission/smtps with -o overrides, passdb
sql + userdb static), `linode` the Linode/ISPmail layout (conf.d includes, userdb sql with a
user_query, mail_location with an absolute path, an email2email map, hosts = 127.0.0.1) and
`legacy` the older domains/users/forwardings schema with the select_field form. The last test
imports the reference shape pointed at the sandbox's MariaDB and resolves a user, an alias and
a login through an authd that runs with the imported sql.conf.
"""

import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import BINDIR, postern_check

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "import")
POSTERN = os.path.join(BINDIR, "postern")
PASSWORD = "Imp0rted pass"


def run_import(*args, timeout=30):
    return subprocess.run([POSTERN, "import", *args], capture_output=True, text=True,
                          timeout=timeout)


def fixture_args(name):
    return ["--postfix", os.path.join(FIXTURES, name, "postfix"),
            "--dovecot", os.path.join(FIXTURES, name, "dovecot")]


def settings(text):
    """name -> value of a postern.conf/sql.conf text ('$$' read back as '$')."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip().replace("$$", "$")
    return out


def imported(tmp_path, name):
    """Import fixture name into tmp_path/out: (postern.conf settings, sql.conf settings,
    the result)."""
    out = tmp_path / "out"
    out.mkdir()
    res = run_import(*fixture_args(name), "-o", str(out))
    assert res.returncode == 0, res.stderr
    conf = (out / "postern.conf").read_text()
    sql = (out / "sql.conf").read_text()
    return settings(conf), settings(sql), res, out


def lost_lines(res):
    return [l for l in res.stderr.splitlines() if l.startswith("postern import: not carried")]


# ---- the reference guide -------------------------------------------------------------------

def test_guide_queries_connection_and_scheme(tmp_path):
    _, sql, _, out = imported(tmp_path, "guide")
    assert sql["hosts"] == "unix:/run/mysqld/mysqld.sock"
    assert sql["user"] == "mailuser" and sql["password"] == "mailuserpass"
    assert sql["dbname"] == "mailserver"
    assert sql["default_pass_scheme"] == "SHA512-CRYPT"
    # quotes dropped, Postfix's %s of a domain lookup is Postern's %d, ';' dropped
    assert sql["domain_query"] == "SELECT 1 FROM virtual_domains WHERE name=%d"
    assert sql["user_query"] == "SELECT 1 FROM virtual_users WHERE email=%s"
    assert sql["alias_query"] == "SELECT destination FROM virtual_aliases WHERE source=%s"
    assert sql["password_query"] == \
        "SELECT email as user, password FROM virtual_users WHERE email=%u"
    assert "UNION" in sql["sender_query"]
    mode = os.stat(out / "sql.conf").st_mode
    assert stat.S_IMODE(mode) == 0o600
    if os.geteuid() == 0:
        assert os.stat(out / "sql.conf").st_uid == __import__("pwd").getpwnam(
            "postern-auth").pw_uid


def test_guide_listeners_tls_and_templates(tmp_path):
    conf, _, res, out = imported(tmp_path, "guide")
    assert conf["smtp_listen"] == "25"
    assert conf["submission_listen"] == "587"
    assert conf["smtps_listen"] == "465"
    assert conf["imap_listen"] == "143" and conf["imaps_listen"] == "993"
    assert conf["pop3_listen"] == ""            # port = 0 in dovecot.conf
    assert conf["pop3s_listen"] == "995"
    assert conf["tls_cert_file"] == "/etc/letsencrypt/live/mail.example.com/fullchain.pem"
    assert conf["tls_key_file"] == "/etc/letsencrypt/live/mail.example.com/privkey.pem"
    assert conf["virtual_home"] == "/var/mail/vhosts/%d/%n"
    assert conf["virtual_mail"] == "~/Maildir"
    assert conf["virtual_mailbox_base"] == "/var/mail/vhosts"
    assert conf["vmail_owner"] == "vmail"
    assert conf["myhostname"] == "mail.example.com"
    assert conf["myorigin"] == "example.com"            # $mydomain expanded
    assert conf["relayhost"] == "[smtp.relay.example.net]:587"
    assert conf["smtp_sasl_password_file"] == "/etc/postfix/sasl_passwd"
    assert conf["message_size_limit"] == "52428800"
    assert conf["inet_interfaces"] == "0.0.0.0"         # all + inet_protocols = ipv4
    assert conf["aliases_file"] == "/etc/aliases"
    assert conf["config_directory"] == str(out)
    text = (out / "postern.conf").read_text()
    main_cf = os.path.join(FIXTURES, "guide", "postfix", "main.cf")
    assert f"# from {main_cf}:9 smtpd_tls_cert_file\ntls_cert_file =" in text


def test_guide_lists_what_is_not_carried_over(tmp_path):
    _, _, res, out = imported(tmp_path, "guide")
    lost = "\n".join(lost_lines(res))
    main_cf = os.path.join(FIXTURES, "guide", "postfix", "main.cf")
    dovecot = os.path.join(FIXTURES, "guide", "dovecot", "dovecot.conf")
    assert f"{main_cf}:46: smtpd_milters = inet:localhost:8891: " in lost
    assert f"{main_cf}:2: smtpd_banner = " in lost
    assert f"{dovecot}:84: mail_plugins = " in lost
    assert f"{dovecot}:5: first_valid_uid = 5000" in lost
    # what Postern does anyway is not listed
    for builtin in ("smtpd_sasl_type", "smtpd_relay_restrictions", "virtual_transport",
                    "syslog_name", "smtpd_tls_wrappermode", "mua_client_restrictions",
                    "service auth", "special_use"):
        assert builtin not in lost, builtin
    text = (out / "postern.conf").read_text()
    tail = text[text.index("# Not carried over"):]
    assert "smtpd_milters = inet:localhost:8891" in tail
    assert "mailuserpass" not in res.stderr and "mailuserpass" not in text


def test_imported_config_passes_the_config_loader(tmp_path):
    _, _, _, out = imported(tmp_path, "guide")
    res = postern_check(str(out / "postern.conf"))
    # the environment checks may fail here (no certificate at the guide's path), but no
    # line of the written files is refused
    assert not re.search(r"postern\.conf:\d+:|sql\.conf:\d+:", res.stdout), res.stdout


# ---- the Linode / ISPmail layout -----------------------------------------------------------

def test_linode_includes_user_query_and_absolute_mail_location(tmp_path):
    conf, sql, res, _ = imported(tmp_path, "linode")
    assert sql["hosts"] == "127.0.0.1"
    assert sql["password"] == "Pa$$w0rd"            # written as Pa$$$$w0rd, read back
    assert sql["password_query"].split() == \
        "SELECT email as user, password FROM virtual_users WHERE email = %u".split()
    # the email2email alias map is left out, the hash: map is listed
    assert sql["alias_query"] == "SELECT destination FROM virtual_aliases WHERE source=%s"
    assert sql["sender_query"].startswith("SELECT email FROM virtual_users WHERE email=%s")
    assert conf["virtual_home"] == "/var/mail/vhosts/%d/%n"
    assert conf["virtual_mail"] == "~/"
    assert conf["vmail_owner"] == "vmail"           # user_query's 5000 AS uid
    assert conf["imap_listen"] == "127.0.0.1:1143"  # listen = 127.0.0.1
    assert conf["imaps_listen"] == "127.0.0.1:1993"
    assert conf["pop3_listen"] == "" and conf["pop3s_listen"] == ""   # protocols: no pop3
    assert conf["submission_listen"] == "127.0.0.1:10587"
    assert conf["smtps_listen"] == ""               # commented out in master.cf
    assert conf["smtp_listen"] == "25"
    assert conf["inet_interfaces"] == "loopback-only"
    assert conf["imap_allow_plaintext_auth"] == "yes"
    assert conf["auth_cram_md5"] == "yes"
    assert conf["tls_cert_file"] == "/etc/ssl/certs/mx.pem"
    assert conf["recipient_delimiter"] == "+-"
    lost = "\n".join(lost_lines(res))
    assert "virtual_alias_maps = hash:/etc/postfix/virtual" in lost
    assert "content_filter = spamassassin" in lost
    assert "check_policy_service" in lost
    assert "message_size_limit = 0" in lost
    assert "10-ssl.conf:2: ssl_cert = /etc/ssl/certs/dovecot.pem" in lost
    assert "Pa$$w0rd" not in res.stderr


def test_legacy_schema_and_select_field_form(tmp_path):
    conf, sql, res, _ = imported(tmp_path, "legacy")
    assert sql["hosts"] == "127.0.0.1:3307"
    assert sql["dbname"] == "mail"
    assert sql["domain_query"] == ("SELECT 'virtual' FROM domains WHERE domain = %d UNION "
                                   "SELECT 1 FROM DUAL WHERE %d IN ('example.info')")
    assert sql["default_pass_scheme"] == "CRYPT"
    assert conf["tls_cert_file"] == "/etc/postfix/smtpd.cert"   # ${config_directory}
    assert conf["virtual_home"] == "/home/vmail/%d/%n"
    assert conf["virtual_mail"] == "~/Maildir"
    assert conf["virtual_mailbox_base"] == "/home/vmail"
    assert conf["pop3_uidl_format"] == "%08Xu%08Xv-%f"
    lost = "\n".join(lost_lines(res))
    assert "relayhost = $undefined_relay: cannot expand: $undefined_relay is not set" in lost
    assert "source='@%d': placeholder %d inside a quoted string" in lost
    assert "placeholder %L has no Postern equivalent" in lost
    assert "transport_maps = " in lost


# ---- command behaviour ---------------------------------------------------------------------

def test_dry_run_prints_both_and_writes_nothing(tmp_path):
    res = run_import(*fixture_args("guide"), "-n", "-o", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "# ==> postern.conf <==" in res.stdout and "# ==> sql.conf <==" in res.stdout
    assert "domain_query = SELECT 1 FROM virtual_domains WHERE name=%d" in res.stdout
    assert os.listdir(tmp_path) == []


def test_refuses_to_overwrite_unless_forced_and_keeps_a_backup(tmp_path):
    (tmp_path / "postern.conf").write_text("# mine\n")
    res = run_import(*fixture_args("guide"), "-o", str(tmp_path))
    assert res.returncode == 1
    assert "exists: not overwritten" in res.stderr
    assert (tmp_path / "postern.conf").read_text() == "# mine\n"
    assert not (tmp_path / "sql.conf").exists()
    res = run_import(*fixture_args("guide"), "-o", str(tmp_path), "--force")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "postern.conf.bak").read_text() == "# mine\n"
    assert "myhostname = mail.example.com" in (tmp_path / "postern.conf").read_text()
    assert not [n for n in os.listdir(tmp_path) if ".tmp" in n]


@pytest.mark.parametrize("args", [["--bogus"], ["extra"], ["-o"]])
def test_usage_errors_exit_2(args):
    assert run_import(*args).returncode == 2


def copy_fixture(tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(os.path.join(FIXTURES, name), dst)
    return dst


def test_malformed_input_names_file_and_line(tmp_path):
    src = copy_fixture(tmp_path, "guide")
    main_cf = src / "postfix" / "main.cf"
    main_cf.write_text("myhostname = a.example\nthis line has no equals sign\n")
    res = run_import("--postfix", str(src / "postfix"), "--dovecot", str(src / "dovecot"),
                     "-n")
    assert res.returncode == 1
    assert f"{main_cf}:2: expected 'name = value'" in res.stderr

    src = copy_fixture(tmp_path, "linode")
    conf = src / "dovecot" / "conf.d" / "10-master.conf"
    conf.write_text("service imap-login {\n  inet_listener imap {\n    port = 1143\n  }\n")
    res = run_import("--postfix", str(src / "postfix"), "--dovecot", str(src / "dovecot"),
                     "-n")
    assert res.returncode == 1
    assert f"{conf}:4: section 'service imap-login' not closed" in res.stderr

    master = src / "postfix" / "master.cf"
    conf.write_text("")
    master.write_text("smtp inet n - y - smtpd\n")
    res = run_import("--postfix", str(src / "postfix"), "--dovecot", str(src / "dovecot"),
                     "-n")
    assert res.returncode == 1
    assert f"{master}:1: expected 8 fields" in res.stderr


def test_long_lines_and_include_loops_are_bounded(tmp_path):
    src = copy_fixture(tmp_path, "linode")
    dovecot = src / "dovecot" / "dovecot.conf"
    with open(dovecot, "a") as f:
        f.write("!include dovecot.conf\n")
    res = run_import("--postfix", str(src / "postfix"), "--dovecot", str(src / "dovecot"),
                     "-n", timeout=30)
    assert res.returncode == 1
    assert "nested more than 8 deep" in res.stderr or "configuration files read" in res.stderr

    src = copy_fixture(tmp_path / "b", "guide")
    main_cf = src / "postfix" / "main.cf"
    main_cf.write_text("myhostname = " + "a" * 10000 + "\n")
    res = run_import("--postfix", str(src / "postfix"), "--dovecot", str(src / "dovecot"),
                     "-n")
    assert res.returncode == 1
    assert f"{main_cf}:1: line longer than 8192 bytes" in res.stderr

    main_cf.write_text("a = $b\nb = $a\nrelayhost = $a\n")
    res = run_import("--postfix", str(src / "postfix"), "--dovecot", str(src / "dovecot"),
                     "-n")
    assert res.returncode == 0, res.stderr
    assert "relayhost = $a: cannot expand: $ references nested too deep" in res.stderr


def test_nul_bytes_and_garbage_are_refused(tmp_path):
    src = copy_fixture(tmp_path, "guide")
    sql_cf = src / "postfix" / "mysql-virtual-mailbox-maps.cf"
    sql_cf.write_bytes(b"user = mailuser\npassword = x\0y\nquery = SELECT 1\n")
    res = run_import("--postfix", str(src / "postfix"), "--dovecot", str(src / "dovecot"),
                     "-n")
    assert res.returncode == 1
    assert "contains a NUL byte: not a text file" in res.stderr

    src = copy_fixture(tmp_path / "b", "guide")
    (src / "dovecot" / "dovecot.conf").write_bytes(bytes(range(1, 256)) * 20)
    res = run_import("--postfix", str(src / "postfix"), "--dovecot", str(src / "dovecot"),
                     "-n")
    assert res.returncode == 1 and "dovecot.conf:" in res.stderr, res.stderr


def test_refused_values_become_not_carried_over(tmp_path):
    src = copy_fixture(tmp_path, "guide")
    main_cf = src / "postfix" / "main.cf"
    with open(main_cf, "a") as f:
        f.write("smtpd_recipient_limit = lots\ninet_interfaces = mail.example.com\n")
    res = run_import("--postfix", str(src / "postfix"), "--dovecot", str(src / "dovecot"),
                     "-o", str(tmp_path))
    assert res.returncode == 0, res.stderr
    lost = "\n".join(lost_lines(res))
    assert "smtpd_recipient_limit = lots: Postern refuses it" in lost
    assert "inet_interfaces = mail.example.com" in lost
    conf = settings((tmp_path / "postern.conf").read_text())
    assert "smtpd_recipient_limit" not in conf and "inet_interfaces" not in conf


# ---- the imported configuration works ------------------------------------------------------

def write_reference_setup(root, sock, user, password):
    """The reference stack's files (peer-postfix-dovecot.sh) for the sandbox's database."""
    pf, dv = root / "postfix", root / "dovecot"
    pf.mkdir(parents=True)
    dv.mkdir(parents=True)
    maps = {
        "mysql-virtual-mailbox-domains.cf": "SELECT 1 FROM virtual_domains WHERE name='%s'",
        "mysql-virtual-mailbox-maps.cf": "SELECT 1 FROM virtual_users WHERE email='%s'",
        "mysql-virtual-alias-maps.cf":
            "SELECT destination FROM virtual_aliases WHERE source='%s'",
    }
    for name, query in maps.items():
        (pf / name).write_text(f"user = {user}\npassword = {password}\nhosts = unix:{sock}\n"
                               f"dbname = mailserver\nquery = {query}\n")
    (pf / "main.cf").write_text(
        "myhostname = peer.test\nmydestination = localhost\n"
        + "".join(f"virtual_{k} = mysql:/etc/postfix/mysql-virtual-{v}.cf\n" for k, v in
                  [("mailbox_domains", "mailbox-domains"), ("mailbox_maps", "mailbox-maps"),
                   ("alias_maps", "alias-maps")]))
    (pf / "master.cf").write_text("smtp inet n - y - - smtpd\n")
    (dv / "dovecot.conf").write_text(
        "mail_location = maildir:~/Maildir\n"
        "passdb {\n  driver = sql\n  args = /etc/dovecot/dovecot-sql.conf.ext\n}\n"
        "userdb {\n  driver = static\n  args = uid=vmail gid=vmail home=/var/mail/vhosts/%d/%n\n}\n")
    (dv / "dovecot-sql.conf.ext").write_text(
        f"driver = mysql\nconnect = host={sock} dbname=mailserver user={user} "
        f"password={password}\ndefault_pass_scheme = SHA512-CRYPT\n"
        "password_query = SELECT email as user, password FROM virtual_users WHERE email='%u';\n")
    return pf, dv


def test_imported_sql_conf_resolves_users_aliases_and_logins(sandbox, own_master, tmp_path):
    sql_text = open(os.path.join(os.path.dirname(sandbox.conf), "sql.conf")).read()
    db = settings(sql_text)
    pf, dv = write_reference_setup(tmp_path / "src", sandbox.env["POSTERN_MYSQL_SOCKET"],
                                   db["user"], db["password"])
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(out, 0o755)
    res = run_import("--postfix", str(pf), "--dovecot", str(dv), "-o", str(out))
    assert res.returncode == 0, res.stderr

    domain = "imported.test"

    def admin(*args, conf=sandbox.conf, stdin=None):
        return subprocess.run([POSTERN, "admin", "-c", conf, *args], input=stdin,
                              capture_output=True, text=True, timeout=60)

    r = admin("domain", "add", domain)
    assert r.returncode == 0 or "exists" in r.stderr, r.stderr
    r = admin("user", "add", f"ann@{domain}", "--password-stdin", stdin=PASSWORD + "\n")
    assert r.returncode == 0 or "exists" in r.stderr, r.stderr
    r = admin("alias", "add", f"sales@{domain}", f"ann@{domain}")
    assert r.returncode == 0 or "exists" in r.stderr, r.stderr

    # a master of its own whose authd reads the imported sql.conf
    m = own_master({"sql_config": str(out / "sql.conf")})
    m.start()
    r = admin("lookup", f"ann@{domain}", conf=m.conf)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0] == f"rcpt: virtual user=ann@{domain}"
    r = admin("lookup", f"sales@{domain}", conf=m.conf)
    assert r.stdout.splitlines()[0] == f"rcpt: alias -> ann@{domain}", r.stdout + r.stderr
    r = admin("lookup", f"nobody@{domain}", conf=m.conf)
    assert r.returncode == 1 and "rcpt: unknown user" in r.stdout
    r = admin("auth", "test", f"ann@{domain}", "--password-stdin", conf=m.conf,
              stdin=PASSWORD + "\n")
    assert r.stdout.splitlines()[0] == f"passdb: ann@{domain} auth succeeded", \
        r.stdout + r.stderr + m.log_tail()
