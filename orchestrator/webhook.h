/*
 * webhook — signed inbound HTTP POSTs (GitHub, or any sender that signs
 * "TIMESTAMP.BODY") that open a thread in a chat channel and start an agent
 * there, or continue the thread an earlier event opened.
 *
 * One httpd route per enabled webhook.  The handler only verifies, parses,
 * decides whether the event is one we act on, records it in the inbox with
 * its delivery id (and, for GitHub, a digest of the signed body: the id is
 * not signed) so a replay is dropped, and answers; the chat and agent work
 * runs from the inbox row afterwards (GitHub gives up after ~10 s).  Decision
 * worth knowing: an event names its thread by a key ("owner/repo#12", or
 * the generic thread field) mapped to the conversation in the store's kv, so
 * every later event about the same issue or PR lands in that thread as a
 * follow-up for its latest agent instead of opening another.
 */
#ifndef SB_WEBHOOK_H
#define SB_WEBHOOK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct cfg_webhook;

#define WEBHOOK_TASK_MAX	4000		/* bytes of task text */
#define WEBHOOK_WINDOW_S	300		/* generic: signature age */
#define WEBHOOK_DEDUP_TTL	(8LL * 24 * 3600) /* delivery ids kept */

/* What an event asks for, all malloc'd. */
struct webhook_event {
	char	*key;		/* thread key within the webhook; NULL = new */
	char	*headline;	/* one line for chat */
	char	*url;		/* of the issue, PR or run; may be NULL */
	char	*task;		/* for the agent, <= WEBHOOK_TASK_MAX bytes */
	char	*by;		/* "github:alice" */
	char	*gh_repo;	/* "owner/repo" for write-back, or NULL */
	int64_t	 gh_number;	/* issue or PR number, 0 = none */
};
void	 webhook_event_free(struct webhook_event *);

/*
 * (Re)registers one POST route per enabled webhook of c, dropping routes of
 * an earlier configuration.  c is borrowed and must outlive the routes.
 */
void	 webhook_configure(const struct config *);

/* SHA-256 of data, as lowercase hex. */
void	 webhook_sha256_hex(const void *data, size_t len, char out[65]);
/* HMAC-SHA256 of data under secret, as lowercase hex. */
void	 webhook_hmac_hex(const char *secret, const void *data, size_t len,
	    char out[65]);
/* GitHub's X-Hub-Signature-256 "sha256=HEX" over body: 1 valid, 0 not. */
int	 webhook_github_verify(const char *secret, const char *header,
	    const char *body, size_t len);
/*
 * Generic: "sha256=HEX" of HMAC-SHA256(secret, ts + "." + body), ts within
 * WEBHOOK_WINDOW_S of now.  0 ok; -1 with *reason a static metric label
 * ("missing_signature", "stale", "bad_signature").
 */
int	 webhook_generic_verify(const char *secret, const char *ts,
	    const char *sig, const char *body, size_t len, int64_t now,
	    const char **reason);

/*
 * webhook-github.c: maps a GitHub event to what it asks for.  1 = act (out
 * filled), 0 = not for us (*why malloc'd), -1 = payload lacks what the
 * event must carry (*why malloc'd).
 */
int	 webhook_github_map(const struct cfg_webhook *, const char *event,
	    const json_t *payload, struct webhook_event *out, char **why);

#endif
