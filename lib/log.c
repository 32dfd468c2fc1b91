/*
 * log.c: Postfix-format logging to syslog, stderr or a file (see log.h).
 *
 * A line is built completely in a local buffer and written with one write(2) on an O_APPEND
 * descriptor, so lines from many processes sharing one log file never interleave.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define LOG_LINE_MAX 4096

static pthread_mutex_t syslog_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	enum log_target target;
	char ident[64];		/* "postern/smtpd" */
	char host[64];
	int fd;			/* file target */
	pid_t pid;
	int verbose;
	int copy_stderr;
} lg = { LOG_TARGET_STDERR, "postern", "localhost", -1, 0, 0, 0 };

static void set_ident(const char *service)
{
	if (str_fmt(lg.ident, sizeof(lg.ident), "postern/%s", service) < 0)
		str_copy(lg.ident, sizeof(lg.ident), "postern");
}

int log_open(const char *service, enum log_target target, const char *path)
{
	char host[256];

	set_ident(service);
	lg.pid = getpid();
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		host[strcspn(host, ".")] = '\0';
		str_copy(lg.host, sizeof(lg.host), host);
	}
	if (lg.fd >= 0) {
		close(lg.fd);
		lg.fd = -1;
	}
	lg.target = target;
	switch (target) {
	case LOG_TARGET_SYSLOG:
		/* LOG_NDELAY: connect now, before any chroot hides /dev/log. */
		openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
		return 0;
	case LOG_TARGET_FILE:
		lg.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
		if (lg.fd < 0) {
			lg.target = LOG_TARGET_STDERR;
			return -1;
		}
		return 0;
	case LOG_TARGET_STDERR:
		return 0;
	}
	return 0;
}

void log_set_service(const char *service)
{
	set_ident(service);
	if (lg.target == LOG_TARGET_SYSLOG) {
		closelog();
		openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
}

void log_reset_pid(void)
{
	lg.pid = getpid();
}

void log_set_verbose(int level)
{
	lg.verbose = level;
}

int log_verbose(void)
{
	return lg.verbose;
}

void log_copy_to_stderr(int on)
{
	lg.copy_stderr = on;
}

int log_file_fd(void)
{
	return lg.target == LOG_TARGET_FILE ? lg.fd : -1;
}

/* Replace control characters so a peer's bytes cannot start a fake log line. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* tag NULL: "postern/<service>[pid]: "; otherwise "<tag>: ". */
static void emit(int prio, const char *tag, const char *level, const char *fmt, va_list ap)
{
	char text[LOG_LINE_MAX], line[LOG_LINE_MAX + 256];
	int saved = errno, n = 0;

	if (lg.pid == 0)
		lg.pid = getpid();
	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		str_copy(text, sizeof(text), "(unformattable message)");
	sanitize(text);

	switch (lg.target) {
	case LOG_TARGET_SYSLOG:
		if (tag) {
			/* The program name is what log parsers key on (fail2ban's dovecot filter
			 * wants "auth" or "dovecot"), so the line goes out under the tag itself.
			 * The lock keeps other threads' lines from borrowing the tag. */
			pthread_mutex_lock(&syslog_lock);
			openlog(tag, LOG_PID | LOG_NDELAY, LOG_MAIL);
			syslog(prio, "%s%s", level, text);
			openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
			pthread_mutex_unlock(&syslog_lock);
		} else {
			pthread_mutex_lock(&syslog_lock);
			syslog(prio, "%s%s", level, text);
			pthread_mutex_unlock(&syslog_lock);
		}
		break;
	case LOG_TARGET_FILE: {
		time_t now = time(NULL);
		struct tm tm;
		char stamp[32];

		localtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
		if (tag)
			n = snprintf(line, sizeof(line), "%s %s %s: %s%s\n", stamp, lg.host, tag,
				     level, text);
		else
			n = snprintf(line, sizeof(line), "%s %s %s[%d]: %s%s\n", stamp, lg.host,
				     lg.ident, (int)lg.pid, level, text);
		break;
	}
	case LOG_TARGET_STDERR:
		if (tag)
			n = snprintf(line, sizeof(line), "%s: %s%s\n", tag, level, text);
		else
			n = snprintf(line, sizeof(line), "%s[%d]: %s%s\n", lg.ident, (int)lg.pid,
				     level, text);
		break;
	}
	if (lg.copy_stderr && lg.target != LOG_TARGET_STDERR) {
		char copy[LOG_LINE_MAX + 128];
		int m = tag ? snprintf(copy, sizeof(copy), "%s: %s%s\n", tag, level, text)
			    : snprintf(copy, sizeof(copy), "%s: %s%s\n", lg.ident, level, text);

		if (m > 0)
			(void)write_all(2, copy, (size_t)m < sizeof(copy) ? (size_t)m : sizeof(copy) - 1);
	}
	if (lg.target != LOG_TARGET_SYSLOG && n > 0) {
		size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;

		if (len == sizeof(line) - 1)
			line[len - 1] = '\n';
		(void)write_all(lg.target == LOG_TARGET_FILE ? lg.fd : 2, line, len);
	}
	errno = saved;
}

#define EMIT(prio, tag, level)                 \
	do {                                   \
		va_list ap;                    \
		va_start(ap, fmt);             \
		emit(prio, tag, level, fmt, ap); \
		va_end(ap);                    \
	} while (0)

void msg_info(const char *fmt, ...)
{
	EMIT(LOG_INFO, NULL, "");
}

void msg_warn(const char *fmt, ...)
{
	EMIT(LOG_WARNING, NULL, "warning: ");
}

void msg_error(const char *fmt, ...)
{
	EMIT(LOG_ERR, NULL, "error: ");
}

void msg_debug(const char *fmt, ...)
{
	if (lg.verbose > 0)
		EMIT(LOG_DEBUG, NULL, "");
}

void msg_fatal(const char *fmt, ...)
{
	EMIT(LOG_CRIT, NULL, "fatal: ");
	exit(1);
}

void msg_panic(const char *fmt, ...)
{
	EMIT(LOG_CRIT, NULL, "panic: ");
	abort();
}

void msg_tagged(const char *tag, const char *fmt, ...)
{
	EMIT(LOG_INFO, tag, "");
}
