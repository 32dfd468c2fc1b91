"""Issue 5's crash test: kill -9 postern-qmgr and postern-virtual pool processes at random
while 2,000 messages arrive over SMTP and are delivered to ten virtual users (and to an alias
of two of them). Afterwards the queue is empty and every (message, recipient) pair was
delivered at least once. A pair delivered more than once must be explained by a kill:

  - a virtual agent killed mid-request may already have written some of its request's
    recipients (at most DELIVER_MAX_RCPT) before qmgr saw the connection break and deferred
    them all;
  - a qmgr killed mid-run loses the answers in flight on all its agent connections (at most
    virtual_process_limit requests of DELIVER_MAX_RCPT recipients each).

So the duplicated deliveries are bounded by virtual kills * 50 + qmgr kills * 20 * 50. The
delivery log makes it sharper: every delivery that was later repeated was made by an agent
the test killed (before the kill), or before the kill of a qmgr that had taken the message
into active/, and the repeat was handed out by another qmgr. Also: every file the
log says was delivered is there, nothing is in queue/corrupt, every delivered file is a
whole message that went to a recipient it was addressed to, at most one leftover file in a
Maildir tmp/ per killed agent, and the log holds no fatal or panic and no warning other than
those the kills explain.

A second test makes one crash window certain instead of lucky: qmgr killed after it renamed
an expanded copy into active/ and before it removed the incoming/ original (qmgr.h: the next
qmgr must treat the incoming/ file as a leftover, not as a new message).
"""

import collections
import os
import random
import re
import signal
import smtplib
import subprocess
import threading
import time

import pytest

from conftest import finish_sandbox, service_children, start_sandbox, uid_of, wait_until

DOMAIN = "crashdeliv.test"
USERS = [f"u{i:02d}" for i in range(10)]
ALIAS = "team"
ALIAS_TARGETS = ("u01", "u02")
LEFTOVER_USER = "leftover"      # test_incoming_leftover_not_delivered_again's own mailbox
MESSAGES = 2000
SENDERS = 8
SEND_SECONDS = 30.0             # sending is paced over this long, so the kills hit a busy queue
DELIVER_MAX_RCPT = 50           # lib/deliverproto.h
VIRTUAL_PROCESS_LIMIT = 20      # the default of virtual_process_limit (lib/params.c)
DRAIN_TIMEOUT = 120.0
KILL_AFTER_SENDING = 20.0       # the killer goes on at most this long after the last message
LOG_SLACK = 1.0                 # log timestamps have whole seconds
INFLIGHT_SLACK = 3.0            # an agent may finish its request this long after qmgr died
SEQ = re.compile(rb"^X-Seq: (\d+)$", re.M)
DELIVERED_TO = re.compile(rb"^Delivered-To: (\S+)$", re.M)
QUEUED_AS = re.compile(rb"queued as (\S+)")
SENT_LINE = re.compile(r"^(\w{3} +\d+ [\d:]{8}) \S+ postern/virtual\[(\d+)\]: (\w+): "
                       r"to=<([^>]+)>, .*status=sent ")
ACTIVE_LINE = re.compile(r"^.* postern/qmgr\[(\d+)\]: (\w+): from=<.*\(queue active\)$")
# Warnings the kills explain: master reporting its killed children and throttling a service
# that keeps dying, and qmgr reconnecting at once to an agent pool whose killed process
# master has not reaped yet.
EXPECTED_WARNING = re.compile(
    r"process \S+ pid \d+ killed by signal 9 \(service (qmgr|virtual)\)"
    r"|postern-(qmgr|virtual): bad command startup -- throttling"
    r"|service (qmgr|virtual): \d+ crashes in \d+ s"
    r"|service \"virtual\" \(\S+\) has reached its process limit")
TROUBLE = re.compile(r"fatal|panic|warning", re.I)


def admin(sb, *args, password=None):
    cmd = [os.path.join(sb.bindir, "postern"), "admin", "-c", sb.conf, *args]
    res = subprocess.run(cmd, input=password, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{args}: {res.stdout}{res.stderr}"


@pytest.fixture(scope="module")
def crashbox():
    sb = start_sandbox("postern-delivery-crash-", [
        "qmgr_enable=yes", "virtual_enable=yes", "minimal_backoff_time=1s",
        "maximal_backoff_time=2s", "queue_run_delay=1s"])
    try:
        admin(sb, "domain", "add", DOMAIN)
        for user in USERS + [LEFTOVER_USER]:
            admin(sb, "user", "add", f"{user}@{DOMAIN}", "--password-stdin",
                  password="crashpass\n")
        for target in ALIAS_TARGETS:
            admin(sb, "alias", "add", f"{ALIAS}@{DOMAIN}", f"{target}@{DOMAIN}")
        wait_until(lambda: service_children(sb.master_pid, "qmgr"), 15,
                   what="postern-qmgr to run")
    except BaseException:
        finish_sandbox(sb)
        raise
    yield sb
    finish_sandbox(sb)


# ---- what is sent --------------------------------------------------------------------------

def recipients_of(seq):
    """(SMTP recipients, the users who must get the message once each). Four shapes: one
    user, three users, the alias, and the alias plus one of its targets (de-duplicated)."""
    rng = random.Random(seq)
    shape = seq % 4
    if shape == 0:
        users = [rng.choice(USERS)]
        return [f"{u}@{DOMAIN}" for u in users], set(users)
    if shape == 1:
        users = rng.sample(USERS, 3)
        return [f"{u}@{DOMAIN}" for u in users], set(users)
    if shape == 2:
        return [f"{ALIAS}@{DOMAIN}"], set(ALIAS_TARGETS)
    other = rng.choice(ALIAS_TARGETS)
    return [f"{ALIAS}@{DOMAIN}", f"{other}@{DOMAIN}"], set(ALIAS_TARGETS)


def body_lines(seq):
    return [f"line {i} of message {seq}" for i in range(20)] + [f"end of message {seq}"]


def message(seq, rcpts):
    head = (f"From: sender@outside.example\r\nTo: {', '.join(rcpts)}\r\n"
            f"Subject: delivery crash {seq}\r\nMessage-ID: <dc{seq}@outside.example>\r\n"
            f"X-Seq: {seq}\r\n\r\n")
    return head + "".join(line + "\r\n" for line in body_lines(seq))


class Sender:
    """Sends its share of the sequence numbers, paced over SEND_SECONDS, over one SMTP session
    at a time. A message counts as accepted only on a 250 after DATA; a rejection is retried;
    a session that breaks after DATA was sent leaves the message ambiguous (maybe queued), and
    it is sent again, so it may be queued twice."""

    def __init__(self, sb, seqs, start):
        self.sb, self.seqs, self.start = sb, seqs, start
        self.accepted, self.ambiguous, self.errors = {}, set(), []

    def connect(self):
        s = smtplib.SMTP("127.0.0.1", self.sb.ports["smtp"], timeout=30)
        s.ehlo("crash.client")
        return s

    def send_one(self, s, seq):
        rcpts, _ = recipients_of(seq)
        s.mail("sender@outside.example")
        for r in rcpts:
            code, reply = s.rcpt(r)
            if code != 250:
                s.rset()
                return f"RCPT {r}: {code} {reply!r}"
        try:
            code, reply = s.data(message(seq, rcpts))
        except smtplib.SMTPServerDisconnected:
            self.ambiguous.add(seq)
            raise
        if code != 250:
            return f"DATA: {code} {reply!r}"
        m = QUEUED_AS.search(reply)
        self.accepted[seq] = m.group(1).decode() if m else None
        return None

    def run(self):
        s = None
        pace = SEND_SECONDS / len(self.seqs)
        for k, seq in enumerate(self.seqs):
            delay = self.start + k * pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for attempt in range(20):
                try:
                    if s is None:
                        s = self.connect()
                    error = self.send_one(s, seq)
                    if error is None:
                        break
                    self.errors.append(f"{seq}: {error}")
                except (OSError, smtplib.SMTPException) as e:
                    self.errors.append(f"{seq}: {type(e).__name__}: {e}")
                    try:
                        if s is not None:
                            s.close()
                    except OSError:
                        pass
                    s = None
                time.sleep(0.2 * (attempt + 1))
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass


# ---- the killer ----------------------------------------------------------------------------

class Killer:
    """SIGKILL to postern-qmgr (40 %) or a random postern-virtual pool process every 0.3 to
    1.5 s; master restarts them. victims: (wall-clock time, service, pid) of each kill."""

    def __init__(self, sb, seed):
        self.sb = sb
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.kills = collections.Counter()
        self.victims = []

    def run(self):
        while not self.stop.wait(self.rng.uniform(0.3, 1.5)):
            service = "qmgr" if self.rng.random() < 0.4 else "virtual"
            kids = service_children(self.sb.master_pid, service)
            if not kids:
                continue
            victim = self.rng.choice(kids)
            try:
                os.kill(victim.pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            self.kills[service] += 1
            self.victims.append((time.time(), service, victim.pid))


# ---- what is left --------------------------------------------------------------------------

def queue_files(sb, *dirs):
    out = []
    for d in dirs:
        for root, _, files in os.walk(os.path.join(sb.spool, "queue", d)):
            out += [os.path.join(root, f) for f in files]
    return out


def maildir(sb, user):
    return os.path.join(sb.env["POSTERN_MAIL_ROOT"], DOMAIN, user, "Maildir")


def read_deliveries(sb):
    """{(seq, user): count} from every user's new/, plus a list of malformed deliveries."""
    counts, bad = collections.Counter(), []
    for user in USERS:
        new = os.path.join(maildir(sb, user), "new")
        for name in os.listdir(new):
            with open(os.path.join(new, name), "rb") as f:
                data = f.read()
            head, _, body = data.partition(b"\n\n")
            seq, to = SEQ.search(head), DELIVERED_TO.search(head)
            if not seq or not to:
                bad.append(f"{user}/new/{name}: no X-Seq or Delivered-To header")
                continue
            n = int(seq.group(1))
            want = "".join(line + "\n" for line in body_lines(n)).encode()
            if body != want:
                bad.append(f"{user}/new/{name}: body of message {n} altered or cut")
            if to.group(1).decode().lower() != f"{user}@{DOMAIN}":
                bad.append(f"{user}/new/{name}: Delivered-To {to.group(1)!r}")
            counts[(n, user)] += 1
    return counts, bad


class Delivery:
    """One status=sent line: when (wall-clock seconds), which agent, and the qmgr processes
    that had taken the message into active/ by then (from their "(queue active)" lines)."""

    def __init__(self, when, agent, qmgrs, dispatcher):
        self.when, self.agent, self.qmgrs, self.dispatcher = when, agent, qmgrs, dispatcher

    def __repr__(self):
        return f"<sent {time.strftime('%H:%M:%S', time.localtime(self.when))} by virtual " \
               f"{self.agent}, qmgr {self.dispatcher} (earlier: {sorted(self.qmgrs)})>"


def read_sent_lines(sb):
    """{(qid, user): [Delivery, ...]} from the log, in log order."""
    year = time.localtime().tm_year
    taken = collections.defaultdict(list)      # qid -> qmgr pids, in order
    out = collections.defaultdict(list)
    for line in sb.log_text().splitlines():
        m = ACTIVE_LINE.match(line)
        if m:
            taken[m.group(2)].append(int(m.group(1)))
            continue
        m = SENT_LINE.match(line)
        if not m:
            continue
        stamp, pid, qid, to = m.groups()
        local, _, domain = to.lower().partition("@")
        if domain != DOMAIN:
            continue
        # The log's stamps are local time, as time.mktime takes them.
        when = time.mktime(time.strptime(f"{year} {stamp}", "%Y %b %d %H:%M:%S"))
        qmgrs = taken[qid]
        out[(qid, local)].append(Delivery(when, int(pid), set(qmgrs),
                                          qmgrs[-1] if qmgrs else None))
    return out


def unexplained_repeats(sent_lines, victims):
    """Deliveries that were repeated although neither their agent nor the qmgr that had them
    in flight was killed; and how many each kind of kill explains. A repeat is the qmgr's
    doing if a qmgr the test killed had taken the message into active/ before the first
    delivery and a different qmgr handed out the second (the killed one never recorded the
    result; the first delivery may be logged up to INFLIGHT_SLACK after that kill, by an
    agent finishing its request). An agent's doing if the agent of the first delivery was
    killed after it."""
    killed = {"virtual": {}, "qmgr": {}}
    for t, service, pid in victims:
        killed[service].setdefault(pid, t)

    def qmgr_explains(first, again):
        return any(q in killed["qmgr"] and q != again.dispatcher and
                   first.when <= killed["qmgr"][q] + LOG_SLACK + INFLIGHT_SLACK
                   for q in first.qmgrs)

    bad, by_agent, by_qmgr = [], 0, 0
    for key, lines in sent_lines.items():
        for first, again in zip(lines, lines[1:]):
            if first.agent in killed["virtual"] and \
                    first.when <= killed["virtual"][first.agent] + LOG_SLACK:
                by_agent += 1
            elif qmgr_explains(first, again):
                by_qmgr += 1
            else:
                bad.append((key, lines))
    return bad, by_agent, by_qmgr


def tmp_leftovers(sb):
    out = []
    for user in USERS:
        tmp = os.path.join(maildir(sb, user), "tmp")
        out += [f"{user}/tmp/{n}" for n in os.listdir(tmp)]
    return out


def log_trouble(sb):
    """Log lines with fatal/panic/warning that the kills do not explain, and the number of
    warnings they do explain."""
    trouble, explained = [], 0
    for line in sb.log_text().splitlines():
        if TROUBLE.search(line):
            if EXPECTED_WARNING.search(line):
                explained += 1
            else:
                trouble.append(line)
    return trouble, explained


# ---- the test ------------------------------------------------------------------------------

def test_kill_qmgr_and_virtual_while_delivering(crashbox):
    sb = crashbox
    for user in USERS:
        assert os.listdir(os.path.join(maildir(sb, user), "new")) == [], user
    started = time.monotonic()
    seqs = list(range(1, MESSAGES + 1))
    senders = [Sender(sb, seqs[i::SENDERS], started) for i in range(SENDERS)]
    killer = Killer(sb, seed=int(time.time()))
    threads = [threading.Thread(target=s.run) for s in senders]
    kthread = threading.Thread(target=killer.run)
    kthread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(SEND_SECONDS + 90)
    sent_at = time.monotonic()
    try:
        assert not any(t.is_alive() for t in threads), "senders did not finish"
        # Go on killing while the backlog is delivered, then let it drain undisturbed.
        while time.monotonic() - sent_at < KILL_AFTER_SENDING and \
                queue_files(sb, "incoming", "active", "deferred"):
            time.sleep(0.2)
    finally:
        killer.stop.set()
        kthread.join(10)
    killed_at = time.monotonic()

    accepted = {seq: qid for s in senders for seq, qid in s.accepted.items()}
    ambiguous = set().union(*(s.ambiguous for s in senders))
    errors = [e for s in senders for e in s.errors]
    print(f"\nsent: {len(accepted)} accepted of {MESSAGES} in {sent_at - started:.1f} s; "
          f"{len(errors)} retried sends, {len(ambiguous)} ambiguous")
    for e in errors[:10]:
        print(f"  send error: {e}")
    assert set(accepted) == set(seqs), \
        f"not accepted: {sorted(set(seqs) - set(accepted))[:20]}"

    def drained():
        return not queue_files(sb, "incoming", "active", "deferred")
    try:
        wait_until(drained, DRAIN_TIMEOUT, interval=0.5, what="the queue to empty")
    except AssertionError:
        left = queue_files(sb, "incoming", "active", "deferred")
        raise AssertionError(f"{len(left)} queue files left after {DRAIN_TIMEOUT:.0f} s, "
                             f"e.g. {left[:5]}\n{sb.log_tail(40)}") from None
    done = time.monotonic()
    time.sleep(0.5)         # the last agents' log lines are written by now

    counts, bad = read_deliveries(sb)
    expected = {(seq, u) for seq in seqs for u in recipients_of(seq)[1]}
    missing = sorted(expected - set(counts))
    unexpected = sorted(set(counts) - expected)
    dups = {pair: n - 1 for pair, n in counts.items() if n > 1}
    # A message sent again after an ambiguous session may legitimately be queued twice.
    by_resend = sum(n for (seq, _), n in dups.items() if seq in ambiguous)
    duplicates = sum(dups.values()) - by_resend
    kills = killer.kills
    bound = kills["virtual"] * DELIVER_MAX_RCPT + \
        kills["qmgr"] * VIRTUAL_PROCESS_LIMIT * DELIVER_MAX_RCPT

    # The log's view: each (queue id, user) has a status=sent line per delivery an agent
    # finished (one killed between its rename and its log line leaves a file without one).
    sent_lines = read_sent_lines(sb)
    logged_not_there = []
    for seq, qid in accepted.items():
        if seq in ambiguous:
            continue
        for user in recipients_of(seq)[1]:
            if len(sent_lines.get((qid, user), [])) > counts[(seq, user)]:
                logged_not_there.append((seq, qid, user, sent_lines[(qid, user)]))
    # (A message queued twice after an ambiguous session has two queue ids: no repeat here.)
    repeats, by_agent, by_qmgr = unexplained_repeats(sent_lines, killer.victims)

    leftovers = tmp_leftovers(sb)
    corrupt = queue_files(sb, "corrupt")
    trouble, warnings_explained = log_trouble(sb)
    print(f"kills: qmgr {kills['qmgr']}, virtual {kills['virtual']} "
          f"(killing for {killed_at - started:.1f} s)")
    print(f"deliveries: {sum(counts.values())} files for {len(expected)} (message, recipient) "
          f"pairs; {len(dups)} pairs duplicated, {duplicates} duplicate deliveries "
          f"(bound {bound}), {by_resend} from resent messages; in the log "
          f"{by_agent} repeated after their agent was killed, {by_qmgr} after a qmgr kill, "
          f"{len(repeats)} unexplained")
    print(f"queue empty {done - started:.1f} s after the start, {done - sent_at:.1f} s after "
          f"the last message was accepted (killing ended {killed_at - sent_at:.1f} s after it); "
          f"{len(leftovers)} Maildir tmp/ leftovers {leftovers[:5]}; "
          f"{warnings_explained} warnings explained by the kills")
    for line in trouble[:20]:
        print(f"  log: {line}")

    assert kills["qmgr"] >= 3 and kills["virtual"] >= 3, f"too few kills: {dict(kills)}"
    assert not bad, bad[:10]
    assert not missing, f"{len(missing)} (message, recipient) pairs never delivered, " \
        f"e.g. {missing[:10]}"
    assert not unexpected, f"delivered to users not addressed: {unexpected[:10]}"
    assert not logged_not_there, f"logged as sent but not in new/: {logged_not_there[:10]}"
    assert duplicates <= bound, f"{duplicates} duplicate deliveries, more than {bound}: " \
        f"{sorted(dups.items())[:20]}"
    assert not repeats, f"{len(repeats)} deliveries repeated without a kill to explain " \
        f"them: {repeats[:10]}; kills {killer.victims}"
    assert not corrupt, f"queue/corrupt holds {corrupt[:10]}"
    assert len(leftovers) <= kills["virtual"], f"Maildir tmp/ leftovers: {leftovers[:10]}"
    assert not trouble, "unexplained fatal/panic/warning lines:\n" + "\n".join(trouble[:20])


def test_incoming_leftover_not_delivered_again(crashbox):
    """The state a kill between rewrite_expanded()'s rename into active/ and the unlink of
    the incoming/ original leaves (qmgr.h, qmgr/rewrite.c): the same queue id in incoming/
    and active/. It is made by stopping qmgr, queueing a message and copying its file into
    active/ as the rename would, then killing the stopped qmgr. The next qmgr must deliver the
    message once and drop the incoming/ leftover, also after the active/ copy is gone."""
    sb = crashbox
    new = os.path.join(maildir(sb, LEFTOVER_USER), "new")
    (qmgr,) = wait_until(lambda: service_children(sb.master_pid, "qmgr"), 15,
                         what="postern-qmgr to run")
    os.kill(qmgr.pid, signal.SIGSTOP)
    try:
        with smtplib.SMTP("127.0.0.1", sb.ports["smtp"], timeout=30) as s:
            s.ehlo("crash.client")
            s.mail("sender@outside.example")
            s.rcpt(f"{LEFTOVER_USER}@{DOMAIN}")
            code, reply = s.data(message(MESSAGES + 1, [f"{LEFTOVER_USER}@{DOMAIN}"]))
        assert code == 250, reply
        qid = QUEUED_AS.search(reply).group(1).decode()
        (path,) = [f for f in queue_files(sb, "incoming") if os.path.basename(f) == qid]
        sub = os.path.relpath(os.path.dirname(path), os.path.join(sb.spool, "queue", "incoming"))
        tmp = os.path.join(sb.spool, "queue", "tmp", f"test.{qid}")
        with open(path, "rb") as f, open(tmp, "wb") as out:
            out.write(f.read())
        os.chown(tmp, uid_of("postern-queue"), os.stat(path).st_gid)
        os.chmod(tmp, 0o600)
        os.rename(tmp, os.path.join(sb.spool, "queue", "active", sub, qid))
    finally:
        os.kill(qmgr.pid, signal.SIGKILL)
    wait_until(lambda: not queue_files(sb, "incoming", "active", "deferred"), 30,
               interval=0.2, what="the queue to empty")
    time.sleep(3.5)         # several queue runs (queue_run_delay=1s)
    delivered = os.listdir(new)
    log = [line for line in sb.log_text().splitlines() if qid in line]
    assert len(delivered) == 1, f"{qid} delivered {len(delivered)} times:\n" + "\n".join(log)
    assert not queue_files(sb, "incoming", "active", "deferred")
