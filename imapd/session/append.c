/*
 * append.c: APPEND (RFC 3501 §6.3.11) with UIDPLUS's APPENDUID (RFC 4315): flags, an
 * optional internal date, the message as a literal (LITERAL+ and synchronizing both work;
 * the size limit is message_size_limit). The store writes it durably before the OK.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "session.h"
#include "util.h"

/* "21-Nov-2026 22:13:44 +0100" (day may be " 1" or "1"); (time_t)-1 if malformed. */
static time_t parse_date_time(const char *s)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4];
	int day, year, hh, mm, ss, zone, n = 0;
	const char *m;
	struct tm tm = { 0 };
	time_t t;

	while (*s == ' ')
		s++;
	if (sscanf(s, "%2d-%3s-%4d %2d:%2d:%2d %5d%n", &day, mon, &year, &hh, &mm, &ss, &zone,
		   &n) != 7 || s[n] != '\0')
		return (time_t)-1;
	m = strstr(months, mon);
	if (m == NULL || (m - months) % 3 != 0 || day < 1 || day > 31 || year < 1970 ||
	    hh > 23 || mm > 59 || ss > 60 || zone < -9959 || zone > 9959)
		return (time_t)-1;
	tm.tm_mday = day;
	tm.tm_mon = (int)((m - months) / 3);
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	t = timegm(&tm);
	return t - (zone / 100 * 3600 + zone % 100 * 60);
}

void cmd_append(const struct imaparg *a)
{
	const char *name = a ? imaparg_astring(a) : NULL;
	const char *kwnames[MS_MAX_KEYWORDS];
	size_t nkw = 0;
	unsigned flags = 0;
	time_t date = 0;
	uint32_t uidvalidity = 0, uid = 0;
	const struct imaparg *p;

	if (name == NULL || a->next == NULL) {
		reply_tagged("BAD", "APPEND wants a mailbox and a message.");
		return;
	}
	p = a->next;
	if (p->kind == IMAPARG_LIST) {
		for (const struct imaparg *f = p->child; f; f = f->next) {
			if (f->kind != IMAPARG_ATOM) {
				reply_tagged("BAD", "Invalid flag.");
				return;
			}
			if (strcasecmp(f->text, "\\Seen") == 0) flags |= MSF_SEEN;
			else if (strcasecmp(f->text, "\\Answered") == 0) flags |= MSF_ANSWERED;
			else if (strcasecmp(f->text, "\\Flagged") == 0) flags |= MSF_FLAGGED;
			else if (strcasecmp(f->text, "\\Deleted") == 0) flags |= MSF_DELETED;
			else if (strcasecmp(f->text, "\\Draft") == 0) flags |= MSF_DRAFT;
			else if (f->text[0] == '\\') {
				reply_tagged("BAD", "Invalid system flag %s.", f->text);
				return;
			} else if (nkw < MS_MAX_KEYWORDS) {
				kwnames[nkw++] = f->text;
			}
		}
		p = p->next;
	}
	if (p && p->kind == IMAPARG_STRING && !p->literal && p->next) {
		date = parse_date_time(p->text);
		if (date == (time_t)-1) {
			reply_tagged("BAD", "Invalid date-time.");
			return;
		}
		p = p->next;
	}
	if (p == NULL || p->kind != IMAPARG_STRING || p->next) {
		reply_tagged("BAD", "APPEND wants the message as a literal.");
		return;
	}
	if (p->len == 0) {
		reply_tagged("NO", "Can't save a zero byte message.");
		return;
	}
	if (p->len > S.append_limit) {
		reply_tagged("NO", "[TOOBIG] Message too large (message_size_limit is %llu bytes)",
			     (unsigned long long)S.append_limit);
		return;
	}
	if (mstore_append(S.store, strcasecmp(name, "INBOX") == 0 ? "INBOX" : name, p->text,
			  p->len, flags, kwnames, nkw, date, &uidvalidity, &uid) < 0) {
		if (errno == ENOENT)
			reply_tagged("NO", "[TRYCREATE] Mailbox doesn't exist: %s", name);
		else if (errno == EDQUOT)
			reply_tagged("NO", "[OVERQUOTA] Quota exceeded (mailbox for user is full)");
		else if (errno == EINVAL)
			reply_tagged("NO", "[CANNOT] Invalid mailbox name.");
		else {
			msg_warn("%s: append to %s: %s", S.user, name, mstore_error(S.store));
			reply_tagged("NO", "[SERVERBUG] Internal error occurred. Refer to server log "
				     "for more information.");
		}
		return;
	}
	if (S.folder && strcmp(S.folder_name, name) == 0)
		folder_report_changes(true);
	reply_tagged("OK", "[APPENDUID %u %u] Append completed.", uidvalidity, uid);
}
