/*
 * admin_mailbox.c: where a virtual user's mail lives (virtual_home, virtual_mail) and the
 * creation of that Maildir at `postern admin user add` (DESIGN.md §5). The layout and the
 * symlink-safe walk below virtual_mailbox_base are lib/mailbox.c's, shared with the virtual
 * delivery agent, which creates a missing Maildir the same way at first delivery. We run as
 * root here; whatever is created is handed to vmail_owner.
 */
#include <unistd.h>

#include "admin.h"
#include "mailbox.h"
#include "privsep.h"
#include "util.h"

int admin_user_paths(const struct admin_ctx *ctx, const struct addr *a, char *home,
		     size_t homelen, char *maildir, size_t maildirlen)
{
	const char *home_tmpl = conf_str(ctx->cfg, "virtual_home");
	const char *mail = conf_str(ctx->cfg, "virtual_mail");

	if (mailbox_expand(home_tmpl, a, home, homelen) < 0 || home[0] != '/')
		return admin_fail("virtual_home = %s does not give an absolute path (use %%d, %%n, "
				  "%%u, %%%%)", home_tmpl);
	if (mailbox_maildir_path(home, mail, a, maildir, maildirlen) < 0)
		return admin_fail("virtual_mail = %s is neither ~/PATH nor an absolute path (or "
				  "the mailbox path is too long)", mail);
	return ADMIN_OK;
}

int admin_make_mailbox(const struct admin_ctx *ctx, const char *maildir, char *err,
		       size_t errlen)
{
	const char *owner = conf_str(ctx->cfg, "vmail_owner");
	uid_t uid;
	gid_t gid;
	int fd;

	if (privsep_lookup_user(owner, &uid, &gid) < 0) {
		(void)str_fmt(err, errlen, "vmail_owner: user '%s' does not exist", owner);
		return ADMIN_FAIL;
	}
	fd = mailbox_open(conf_str(ctx->cfg, "virtual_mailbox_base"), maildir, uid, gid, true,
			  err, errlen);
	if (fd < 0)
		return ADMIN_FAIL;
	(void)close(fd);
	return ADMIN_OK;
}
