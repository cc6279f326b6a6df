/*
 * slack — the Slack adapter: events in over Socket Mode (a WebSocket opened
 * with the app-level token) or the Events API (signed HTTP POSTs to our
 * httpd), messages out over the Web API (chat.postMessage, chat.update,
 * reactions.add) with the bot token.
 *
 * Six files, one concept each:
 *	slack.c		the adapter_ops, auth.test, the Web API, ops → Web API
 *			calls and their errors
 *	slack-inbound.c	events and clicks → chat_on_event: filters, dedup
 *	slack-socket.c	Socket Mode: connections, hello, acks, disconnects, dead
 *			sockets, reconnect back-off
 *	slack-events.c	Events API: routes, v0 signatures, url_verification
 *	slack-text.c	mrkdwn escaping and Slack's inbound markup, Block Kit
 *			for questions, emoji names, form decoding
 *	slack-thread.c	does a thread a message names exist (thread_exists)
 *
 * Decision worth knowing: inbound dedup is two-level and persisted.  Slack
 * redelivers an envelope with the same payload.event_id (also with
 * retry_attempt 0, observed), so event_id is recorded first; and one user
 * message arrives twice with different event_ids, as `message` and as
 * `app_mention`, so (channel, ts) is recorded as well and only the first of
 * the two is acted on.  Recording happens before the ack; the work runs on
 * the next loop turn ("ack first, work later").
 *
 * Outbound dedup: bots cannot set client_msg_id, so every chat.postMessage
 * carries metadata {event_type "switchboard", event_payload {outbox_id N}};
 * when a post of row N is attempted again after an attempt whose outcome is
 * unknown (timeout, 5xx, crash), the thread is read back first
 * (conversations.replies / conversations.history with include_all_metadata)
 * and a message already carrying N is taken as the result instead of posting
 * twice.
 */
#ifndef SB_SLACK_H
#define SB_SLACK_H

#include "adapters/adapter.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

extern const struct adapter_ops slack_ops;

#define SLACK_MAX_TEXT		4000	/* chars of text per message */
#define SLACK_MAX_BLOCKS	50
#define SLACK_MAX_SECTION	3000	/* chars of a section's text */
#define SLACK_MAX_BUTTON	75	/* chars of a button's text */
#define SLACK_MAX_VALUE		2000	/* bytes of a button's value */
#define SLACK_MAX_BUTTONS	25	/* elements of one actions block */
#define SLACK_SIG_WINDOW_S	300	/* |now - X-Slack-Request-Timestamp| */
#define SLACK_SEEN_TTL_S	(7 * 24 * 3600)	/* ≥ Slack's retry window */

/* ---- slack-text.c: text in both directions ----------------------------- */

/* Agent text → mrkdwn: &, <, > as entities.  Malloc'd. */
char	*slack_text_escape(const char *);
/*
 * Slack's markup → plain text (malloc'd): &lt; &gt; &amp;, <@U1> → @U1,
 * <@U1|bob> → @bob, <#C1|general> → #general, <#C1> → #C1,
 * <!here> → @here, <url|label> → "label (url)", <url> → url.
 * If bot_user is not NULL, mentions of it are removed first.
 */
char	*slack_text_decode(const char *, const char *bot_user);
/* 1 if text mentions user (<@U…> or <@U…|name>). */
int	 slack_text_mentions(const char *text, const char *user);
/*
 * Cuts s into pieces of at most max characters (UTF-8), at a newline or a
 * space where one is in the last quarter, never inside an &entity;.
 * Returns the number of pieces; *out is a malloc'd array of malloc'd strings.
 */
size_t	 slack_text_split(const char *s, size_t max, char ***out);
void	 slack_text_free_pieces(char **, size_t);
/* Copy of s cut to at most max characters, "…" appended if cut. */
char	*slack_text_clip(const char *s, size_t max);
/* Number of UTF-8 characters in s. */
size_t	 slack_text_chars(const char *);

/*
 * Block Kit for a question: the (escaped) text in sections of ≤ 3,000
 * characters, then one button per choice (action_id "sbq:<question>:<i>",
 * value = the choice), ≤ 50 blocks in all.  With choices NULL or closed, the
 * sections only (which removes buttons on chat.update).  New reference.
 */
json_t	*slack_blocks_question(const char *mrkdwn, const char *question,
	    const char *const *choices, int closed);
/* Parses "sbq:<question>:<i>" into question (malloc'd); -1 if not ours. */
int	 slack_action_parse(const char *action_id, char **question);

/* Slack's name for a unicode emoji ("👀" → "eyes"), or NULL if unknown. */
const char *slack_emoji_name(const char *emoji);

/*
 * Value of field name in an application/x-www-form-urlencoded body
 * (+ and %XX decoded), malloc'd, or NULL if absent or malformed.
 */
char	*slack_form_value(const char *body, size_t len, const char *name);

/* ---- slack-events.c: Events API over HTTP -------------------------------- */

/*
 * Slack's v0 request signature: "v0=" + hex HMAC-SHA256(secret,
 * "v0:" ts ":" body), and |now - ts| ≤ 5 minutes.  0 if good, -1 with
 * *cause (malloc'd) if not.
 */
int	 slack_signature_check(const char *secret, const char *ts,
	    const char *sig, const char *body, size_t len, int64_t now,
	    char **cause);
/* The signature for those inputs (tests, fakes).  Malloc'd. */
char	*slack_signature(const char *secret, const char *ts, const char *body,
	    size_t len);

/* ---- internal to the adapter's files ------------------------------------- */

struct config;
struct loop_timer;
struct slack_call;
struct slack_sock;

struct slack {
	struct adapter		 hdr;		/* first: the core casts */
	const struct config	*cfg;		/* borrowed from serve */
	int			 socket_mode;	/* else Events API */

	/* From auth.test. */
	char			*bot_user;	/* U… */
	char			*bot_id;	/* B… */
	char			*team;
	int			 ready;		/* auth.test succeeded */
	unsigned		 auth_attempt;
	struct loop_timer	*auth_timer;

	int			 started;
	int			 stopping;	/* stop() was called */
	int			 halted;	/* stopped on our own (bad token...) */
	int			 stopped_sent;
	int			 destroyed;
	/* Deferred deliveries and reports that still hold the struct. */
	unsigned		 pending;
	struct slack_call	*calls;		/* Web API calls in flight */

	/* Socket Mode (slack-socket.c). */
	struct slack_sock	*socks;		/* open or opening WebSockets */
	unsigned		 nsocks;
	int			 sock_opening;	/* a new socket is on its way */
	unsigned		 sock_attempt;	/* failures in a row */
	struct loop_timer	*sock_timer;	/* reconnect back-off */

	/* Events API (slack-events.c). */
	int			 routed;
	/* slack-thread.c: which threads exist, as far as we asked. */
	struct slack_threads	*threads;
	/* POSTs whose last attempt is known not to have posted anything. */
	uint64_t		 clean_posts[64];
	unsigned		 nclean;
};

void	 slack_events_start(struct slack *);
void	 slack_events_stop(struct slack *);

void	 slack_socket_start(struct slack *);
void	 slack_socket_stop(struct slack *);

/* slack-thread.c: the adapter's thread_exists op, and its cache's end. */
int	 slack_thread_exists(struct adapter *, const char *channel,
	    const char *thread);
void	 slack_threads_free(struct slack *);

void	 slack_set_state(struct slack *, const char *);
/* A fatal condition (link_disabled, revoked token): stop and say why once. */
void	 slack_halt(struct slack *, const char *state, const char *why);
/* After any callback that may have been the last user of the struct. */
void	 slack_settle(struct slack *);
/* 1 if a Web API error code means the token is bad for good. */
int	 slack_auth_error(const char *);

/*
 * Records and schedules an events_api payload (the event_callback object):
 * 0 when it may be acked (new, duplicate or ignored), -1 when it could not
 * be recorded (do not ack: Slack will redeliver).
 */
int	 slack_inbound_event(struct slack *, json_t *payload);
/* Same for an interactive payload (block_actions). */
int	 slack_inbound_interactive(struct slack *, json_t *payload);

/* What a Socket Mode frame asks of the socket (slack_inbound_frame). */
enum slack_frame {
	SLACK_FRAME_SKIP,	/* malformed or not for us: logged, dropped */
	SLACK_FRAME_HELLO,
	SLACK_FRAME_DISCONNECT,	/* *arg: the reason, or NULL */
	SLACK_FRAME_ACK,	/* *arg: the envelope_id to ack */
	SLACK_FRAME_NOACK,	/* could not be recorded: Slack redelivers */
};
/*
 * Parses one Socket Mode text frame and, for an envelope, records and
 * schedules what it carries (unless refuse is set: stopping, so not ours
 * to take).  *arg is malloc'd (or NULL).  Never touches a socket, so the
 * fuzzer can drive it.
 */
enum slack_frame slack_inbound_frame(struct slack *, const char *data,
	    size_t len, int refuse, char **arg);

/*
 * A Web API call with the bot token (app == 0) or the app token (app == 1);
 * body is stolen.  The callback gets the HTTP status and the parsed reply
 * (borrowed; NULL if not JSON), or an error string; exactly once, also when
 * the adapter is destroyed first (error "adapter destroyed").  retry_ms is
 * Retry-After for a 429, else -1.
 */
typedef void (*slack_api_cb)(struct slack *, long status, json_t *reply,
    long long retry_ms, const char *error, void *arg);
void	 slack_api(struct slack *, const char *method, int app, json_t *body,
	    slack_api_cb, void *arg);

/* Back-off with jitter: base * 2^attempt capped at cap, then in [d/2, d]. */
uint64_t slack_backoff_ms(unsigned attempt, uint64_t base, uint64_t cap);

#endif
