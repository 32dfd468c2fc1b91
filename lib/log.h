/*
 * log.h: logging in Postfix's line format. Every line is prefixed `postern/<service>[pid]: `
 * and goes to syslog (facility mail), to stderr (foreground, -f) or appended to a file in
 * syslog's own layout ("Nov 21 19:21:19 host postern/smtpd[123]: ..."), which is what the
 * sandbox uses because test machines run no syslog daemon. Control characters in a message
 * are replaced so untrusted input cannot forge extra log lines. Open the log before chroot:
 * the file or syslog socket stays open across it.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>

enum log_target { LOG_TARGET_SYSLOG, LOG_TARGET_STDERR, LOG_TARGET_FILE };

/* service: "master", "smtpd", ...; path is used for LOG_TARGET_FILE only. Returns -1 if the
 * file could not be opened (logging then falls back to stderr). */
int log_open(const char *service, enum log_target target, const char *path);
/* Change the service name (e.g. a forked child taking its own name). */
void log_set_service(const char *service);
/* Re-read getpid() for the prefix; call after fork(). */
void log_reset_pid(void);
void log_set_verbose(int level);
int log_verbose(void);
/* Also copy every line to stderr (a daemon's start-up, before it detaches). */
void log_copy_to_stderr(int on);
/* The file descriptor the log file is appended to, or -1 (so exec'd children can keep it). */
int log_file_fd(void);

void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));	/* "warning: " */
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));	/* "error: " */
void msg_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));	/* only if verbose */
/* "fatal: " then exit(1) */
void msg_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* "panic: " then abort(): a broken invariant, a bug */
void msg_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A line under another program name, for lines log parsers know by Dovecot's names
 * (fail2ban's dovecot filter wants "auth" or "dovecot"): in a file "<stamp> <host> <tag>: text";
 * through syslog the line is sent with <tag> as its ident (and pid). */
void msg_tagged(const char *tag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
