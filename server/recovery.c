/* smimed: the decisions of two-person key recovery (recovery.h). */
#include <stdbool.h>
#include <string.h>

#include "recovery.h"

const char *
recovery_refusal(const struct store_recovery *r, const char *actor, enum recovery_status want,
    int64_t now, int *status_r)
{
	*status_r = 409;
	if (r->status == RECOVERY_EXPORTED)
		return "it was exported already: a request gives one export";
	/* Expired before anything else: an old request is asked for again. */
	if (r->expires <= now)
		return "it expired: ask again";
	if (want == RECOVERY_APPROVED) {
		if (r->status != RECOVERY_PENDING)
			return "it is approved already";
		/* Two people: the approver is another token than the requester. */
		if (strcmp(r->requester, actor) == 0) {
			*status_r = 403;
			return "the requester cannot approve their own request: a second, different "
			    "recovery or admin token must";
		}
		return NULL;
	}
	/* The export goes to the requester alone, so the approver cannot
	 * recover keys by approving a request and then taking it. */
	if (strcmp(r->requester, actor) != 0) {
		*status_r = 403;
		return "only the token that asked for it exports it";
	}
	if (r->status != RECOVERY_APPROVED)
		return "it waits for the approval of a second token";
	return NULL;
}

/* A token and the tokens that made it, the token itself first. */
struct lineage {
	char ids[RECOVERY_LINEAGE_MAX + 1][STORE_ID_SIZE];
	size_t n;
	int64_t created;         /* of the token itself */
	bool complete;           /* the walk reached "system" */
};

/* Follow actor's token to its makers; l->n is 0 when actor is no token known. */
static int
lineage_read(const char *actor, recovery_token_get_fn get, void *arg, struct lineage *l,
    struct smime_error *err)
{
	char next[STORE_ID_SIZE];
	int rc;

	memset(l, 0, sizeof(*l));
	if (strncmp(actor, "token:", 6) != 0 || strlen(actor + 6) >= sizeof(next))
		return 0;
	memcpy(next, actor + 6, strlen(actor + 6) + 1);
	for (;;) {
		struct store_token t = { 0 };
		bool system;

		/* Unknown, deeper than the walk goes, or a loop: not complete. */
		if (next[0] == '\0' || l->n > RECOVERY_LINEAGE_MAX)
			return 0;
		for (size_t i = 0; i < l->n; i++)
			if (strcmp(l->ids[i], next) == 0)
				return 0;
		if ((rc = get(arg, next, &t, err)) == SMIME_E_NOTFOUND)
			return 0;
		if (rc != 0)
			return rc;
		if (l->n == 0)
			l->created = t.created;
		memcpy(l->ids[l->n++], t.id, sizeof(t.id));
		system = strcmp(t.created_by, "system") == 0;
		memcpy(next, t.created_by, sizeof(next));
		store_token_clear(&t);
		if (system) {
			l->complete = true;
			return 0;
		}
	}
}

static bool
lineage_has(const struct lineage *l, const char *id)
{
	for (size_t i = 1; i < l->n; i++)
		if (strcmp(l->ids[i], id) == 0)
			return true;
	return false;
}

int
recovery_lineage_refusal(const struct store_recovery *r, const char *approver,
    recovery_token_get_fn get, void *arg, const char **why_r, struct smime_error *err)
{
	struct lineage req, app;
	int rc;

	*why_r = NULL;
	if (strcmp(r->requester, approver) == 0) {
		*why_r = "the requester cannot approve their own request: a second, different "
		    "recovery or admin token must";
		return 0;
	}
	if ((rc = lineage_read(approver, get, arg, &app, err)) != 0)
		return rc;
	if (app.n == 0) {
		*why_r = "the approver is not a token smimed knows: a second, different recovery "
		    "or admin token must approve";
		return 0;
	}
	if ((rc = lineage_read(r->requester, get, arg, &req, err)) != 0)
		return rc;
	if (!app.complete || !req.complete) {
		*why_r = "smimed cannot tell who made the approver's or the requester's token "
		    "(see smime admin token list, CREATED-BY): a token of a second person, made "
		    "by another token before the request, must approve";
		return 0;
	}
	/* The one who holds a token saw the secret of each token it made. */
	if (lineage_has(&app, req.ids[0])) {
		*why_r = "the approver's token was made by the requester (or by a token the "
		    "requester made): one person holds both; a token of a second person must approve";
		return 0;
	}
	if (lineage_has(&req, app.ids[0])) {
		*why_r = "the approver's token made the requester (or a token that made it): one "
		    "person holds both; a token of a second person must approve";
		return 0;
	}
	/* Made for the occasion: at or after the request, by whoever. */
	if (app.created >= r->created) {
		*why_r = "the approver's token was made at or after the request: a token that "
		    "existed before the request must approve";
		return 0;
	}
	return 0;
}
