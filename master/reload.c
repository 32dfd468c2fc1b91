/*
 * reload.c: SIGHUP. Re-read postern.conf; if it has errors, log them and keep running as
 * before. Otherwise compare each service with its new definition:
 *   - unchanged: keep it; pool processes are asked to finish their client and exit, so new
 *     ones start with the new configuration (and re-read TLS certificates); a single daemon
 *     gets SIGHUP and reloads itself;
 *   - changed: start the new definition; listeners whose addresses did not change are
 *     handed over, so no connection attempt is refused; old processes finish gracefully;
 *   - gone: its processes finish gracefully, its listeners close.
 * Live connections are never cut by a reload.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "master.h"
#include "log.h"
#include "util.h"
#include "version.h"

static struct service *take_by_name(struct service **list, const char *name)
{
	for (struct service **pp = list; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->def->name, name) == 0) {
			struct service *s = *pp;

			*pp = s->next;
			s->next = NULL;
			return s;
		}
	}
	return NULL;
}

static void reload_error(const char *msg, void *arg)
{
	(void)arg;
	msg_warn("reload: %s", msg);
}

/* Decide the fate of one new service definition; returns the service to keep. */
static struct service *reload_one(struct service *nsvc, struct service *old,
				  const struct config *cfg)
{
	if (old && strcmp(old->signature, nsvc->signature) == 0 &&
	    strcmp(old->listen_sig, nsvc->listen_sig) == 0) {
		old->limit = nsvc->limit;
		service_free(nsvc);
		if (old->def->kind == SERVICE_POOL) {
			supervise_retire_children(old, false);
		} else {
			for (struct child *c = M.children; c; c = c->next)
				if (c->svc == old && !c->retired)
					kill(c->pid, SIGHUP);
		}
		supervise_update(old);
		return old;
	}
	if (old) {
		/* Stop first: that unregisters the listeners the new service may take over. */
		msg_info("reload: service %s changed, restarting it", old->def->name);
		supervise_stop(old);
		if (strcmp(old->listen_sig, nsvc->listen_sig) == 0)
			service_take_listeners(nsvc, old);
		service_free(old);
	}
	if (nsvc->nlisten == 0 && service_bind(nsvc, cfg) < 0) {
		msg_warn("reload: service %s not started", nsvc->def->name);
		service_free(nsvc);
		return NULL;
	}
	supervise_start(nsvc);
	return nsvc;
}

void master_reload(void)
{
	struct config *cfg = conf_load(M.conf_path, reload_error, NULL);
	struct service *fresh, *old, *next, *kept = NULL, **tail = &kept;

	if (cfg == NULL) {
		msg_warn("reload: configuration has errors; keeping the running one");
		return;
	}
	msg_info("reload -- version %s, configuration %s", POSTERN_VERSION, M.conf_path);
	fresh = services_build_all(cfg, M.conf_path);
	old = M.services;
	M.services = NULL;
	for (struct service *nsvc = fresh; nsvc; nsvc = next) {
		struct service *keep;

		next = nsvc->next;
		nsvc->next = NULL;
		keep = reload_one(nsvc, take_by_name(&old, nsvc->def->name), cfg);
		if (keep) {
			*tail = keep;
			tail = &keep->next;
		}
	}
	for (struct service *gone = old; gone; gone = next) {
		next = gone->next;
		msg_info("reload: service %s removed", gone->def->name);
		supervise_stop(gone);
		service_free(gone);
	}
	M.services = kept;
	conf_free(M.cfg);
	M.cfg = cfg;
}
